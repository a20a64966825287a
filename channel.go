package realtime

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// channel is one channel a hub follows while it has sockets in it: the
// last position delivered, a cache of recent messages, the members.
type channel struct {
	hub   *Hub
	name  string
	hash  uint64
	refs  int           // under hub.mu: sockets joined or joining
	ready chan struct{} // closed once started
	err   error         // why the start failed; set before ready closes
	stop  context.CancelFunc

	mu      sync.Mutex
	last    Position      // the latest delivered (or the start)
	waiters int           // Publish calls waiting for a delivery
	moved   chan struct{} // closed when last moves while waiters wait
	stopped bool          // no longer followed: waiters stop waiting
	cache   []*message    // oldest first, from cache[head]
	head    int
	bytes   int64
	members map[*Socket]*member
	list    []memberRef // the members again, in an array: see deliver
	seq     uint64      // the seq of the last message delivered; see runSeqs
	prev    *message    // the last message delivered
}

// runSeqs gives each channel its own range of message seqs (see
// message.seq), so that seqs that follow each other are deliveries that
// followed each other on one channel.
var runSeqs atomic.Uint64

// member is a socket's state in a channel.
type member struct {
	// floor: entries up to it are not delivered. A client that came
	// from a node further ahead presented a position beyond this node's.
	floor uint64

	// catch is set while the socket catches up from the broker, outside
	// the lock; entries delivered meanwhile wait in it.
	catch *catchUp

	idx int // in channel.list
}

// memberRef is a member in channel.list.
type memberRef struct {
	s  *Socket
	mb *member
}

// addMember makes s, with mb, a member. Called with mu held.
func (c *channel) addMember(s *Socket, mb *member) {
	mb.idx = len(c.list)
	c.list = append(c.list, memberRef{s, mb})
	c.members[s] = mb
}

// removeMember takes s out of the members, if it is one. Called with mu
// held.
func (c *channel) removeMember(s *Socket) {
	mb, ok := c.members[s]
	if !ok {
		return
	}
	delete(c.members, s)
	last := len(c.list) - 1
	moved := c.list[last]
	c.list[mb.idx] = moved
	moved.mb.idx = mb.idx
	c.list[last] = memberRef{}
	c.list = c.list[:last]
}

// catchUp is what a channel keeps for a socket catching up.
type catchUp struct {
	pending   []*message // delivered meanwhile, after base
	base      Position   // the channel's position when the socket came
	restarted bool       // the channel restarted meanwhile
}

// membership is a channel as a socket holds it.
type membership struct {
	ch     *channel
	start  Position // the position the join started from
	status string   // fresh, resumed or failed
}

// memberships are the channels of a socket: a slice, which a socket in
// one channel (the common case) holds in far less memory than a map, and
// at most MaxChannels long.
type memberships []*membership

func (ms memberships) get(name string) *membership {
	for _, m := range ms {
		if m.ch.name == name {
			return m
		}
	}
	return nil
}

// put adds m, in place of the membership of the same channel.
func (ms *memberships) put(m *membership) {
	for i, old := range *ms {
		if old.ch.name == m.ch.name {
			(*ms)[i] = m
			return
		}
	}
	*ms = append(*ms, m)
}

// drop removes the membership of channel name.
func (ms *memberships) drop(name string) {
	for i, m := range *ms {
		if m.ch.name == name {
			*ms = slices.Delete(*ms, i, i+1)
			return
		}
	}
}

// The status of a join: "subscribed CHANNEL" carries it.
const (
	statusFresh   = "fresh"
	statusResumed = "resumed"
	statusFailed  = "failed"
)

// acquire returns channel name started, counting a reference that
// release gives back.
func (h *Hub) acquire(ctx context.Context, name string) (*channel, error) {
	for {
		c, err := h.acquireOnce(ctx, name)
		// A start that failed because its caller's context ended is tried
		// again by the others.
		if err == nil || ctx.Err() != nil || !(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
			return c, err
		}
	}
}

func (h *Hub) acquireOnce(ctx context.Context, name string) (*channel, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrHubClosed
	}
	c := h.channels[name]
	if c != nil {
		c.refs++
		h.mu.Unlock()
		select {
		case <-c.ready:
		default:
			// Only now ctx.Done: a socket's context makes its channel
			// when first asked for it (see Socket.Done).
			select {
			case <-c.ready:
			case <-ctx.Done():
				h.release(c)
				return nil, ctx.Err()
			}
		}
		if c.err != nil {
			h.release(c)
			return nil, c.err
		}
		return c, nil
	}
	c = &channel{
		hub:     h,
		name:    name,
		hash:    channelHash(name),
		refs:    1,
		ready:   make(chan struct{}),
		moved:   make(chan struct{}),
		members: make(map[*Socket]*member),
	}
	h.channels[name] = c
	h.mu.Unlock()
	c.err = c.start(ctx)
	close(c.ready)
	if c.err != nil {
		h.release(c)
		return nil, c.err
	}
	return c, nil
}

// release gives back a reference; the last one stops the channel.
func (h *Hub) release(c *channel) {
	h.mu.Lock()
	c.refs--
	var stop context.CancelFunc
	if c.refs == 0 {
		if h.channels[c.name] == c {
			delete(h.channels, c.name)
		}
		stop = c.stop
	}
	h.mu.Unlock()
	if stop != nil {
		stop()
		c.mu.Lock()
		c.stopped = true
		c.wakeWaiters()
		c.mu.Unlock()
	}
}

// wakeWaiters wakes the Publish calls waiting for the channel to move.
// Called with mu held.
func (c *channel) wakeWaiters() {
	if c.waiters > 0 {
		close(c.moved)
		c.moved = make(chan struct{})
	}
}

// maxPublishWait bounds how long Publish waits for its node to deliver
// the message it published.
const maxPublishWait = time.Second

// waitDelivered waits until the channel has delivered p to its sockets,
// ctx ends, maxPublishWait has passed, or the channel is no longer
// followed or lost p's epoch. It reports whether p was delivered.
func (c *channel) waitDelivered(ctx context.Context, p Position) bool {
	var timeout <-chan time.Time
	c.mu.Lock()
	defer c.mu.Unlock()
	for !c.stopped && c.last.Epoch == p.Epoch && c.last.Offset < p.Offset {
		if timeout == nil {
			t := time.NewTimer(maxPublishWait)
			defer t.Stop()
			timeout = t.C
		}
		moved := c.moved
		c.waiters++
		c.mu.Unlock()
		expired := false
		select {
		case <-moved:
		case <-ctx.Done():
			expired = true
		case <-timeout:
			expired = true
		}
		c.mu.Lock()
		c.waiters--
		if expired {
			return false
		}
	}
	return !c.stopped && c.last.Epoch == p.Epoch
}

// start finds the latest position, from which the channel is followed:
// never "now", which would lose what is published while the node
// starts.
func (c *channel) start(ctx context.Context) error {
	h := c.hub
	_, last, err := h.broker.Since(ctx, c.name, Position{})
	var plast Position
	if err == nil {
		// The presence stream too, so that the joins of the first
		// sockets are not missed.
		_, plast, err = h.broker.Since(ctx, presencePrefix+c.name, Position{})
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil && h.closed {
		err = ErrHubClosed
	}
	if err != nil {
		if h.channels[c.name] == c {
			delete(h.channels, c.name)
		}
		return err
	}
	c.last = last
	fctx, stop := context.WithCancel(h.ctx)
	c.stop = stop
	h.wg.Add(2)
	go c.follow(fctx, last)
	go c.followPresence(fctx, plast)
	return nil
}

// follow delivers the channel's entries after pos until ctx ends. When
// the broker cannot go on without a gap, the members are told the
// channel was lost and it starts again at the latest position.
func (c *channel) follow(ctx context.Context, pos Position) {
	defer c.hub.wg.Done()
	var b backoff
	for {
		err := c.hub.broker.Follow(ctx, c.name, pos, c.deliver)
		if ctx.Err() != nil || errors.Is(err, ErrBrokerClosed) {
			return
		}
		if errors.Is(err, ErrPositionLost) {
			last, ok := c.hub.latest(ctx, c.name)
			if !ok {
				return
			}
			c.restart(last)
			pos = last
			b.reset()
			continue
		}
		// Anything else: try again from the last entry delivered.
		if !b.wait(ctx) {
			return
		}
		c.mu.Lock()
		pos = c.last
		c.mu.Unlock()
	}
}

// latest returns the latest position of channel, retrying until ctx
// ends (ok false).
func (h *Hub) latest(ctx context.Context, channel string) (Position, bool) {
	var b backoff
	for {
		_, last, err := h.broker.Since(ctx, channel, Position{})
		if err == nil {
			return last, true
		}
		if errors.Is(err, ErrBrokerClosed) || !b.wait(ctx) {
			return Position{}, false
		}
	}
}

// entryMessage makes a channel message of a broker entry. The text is
// made valid and its line ends normalized, should another publisher
// than Hub.Publish have written to the broker.
func (c *channel) entryMessage(e Entry, at time.Time) *message {
	text := e.Text
	if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, "\uFFFD")
	}
	return &message{kind: kindChannel, channel: c.name, hash: c.hash, pos: e.Position, text: normalizeLineEnds(text), at: at}
}

// deliver is the broker's: it keeps e and queues it for the members.
// The broker may hold its locks: nothing here calls it.
func (c *channel) deliver(e Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.Position.Epoch == c.last.Epoch && e.Position.Offset <= c.last.Offset {
		return // delivered already
	}
	m := c.entryMessage(e, time.Now())
	c.last = e.Position
	c.wakeWaiters()
	c.keep(m)
	if c.seq == 0 {
		c.seq = runSeqs.Add(1) << 32
	}
	c.seq++
	m.seq = c.seq
	if c.prev != nil {
		c.prev.next = m
	}
	c.prev = m
	sched.beginFanout()
	defer sched.endFanout()
	// Through the array, not the map: a broadcast to 10,000 sockets
	// spent as long stepping through the map as queueing the message.
	for _, r := range c.list {
		s, mb := r.s, r.mb
		switch {
		case mb.catch != nil:
			mb.catch.pending = append(mb.catch.pending, m)
		case m.pos.Offset > mb.floor:
			s.enqueue(m)
		}
	}
}

// restart makes last the channel's position after the broker lost it:
// the cache goes, and every member is told ("lost CHANNEL").
func (c *channel) restart(last Position) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = last
	c.wakeWaiters()
	clear(c.cache)
	c.cache, c.head, c.bytes = c.cache[:0], 0, 0
	for s, mb := range c.members {
		mb.floor = 0
		if cu := mb.catch; cu != nil {
			cu.pending, cu.base, cu.restarted = nil, last, true
			continue
		}
		s.mu.Lock()
		s.enqueueReplay([]*message{{kind: kindLost, channel: c.name, pos: last}})
		s.mu.Unlock()
	}
}

// join adds s to the channel, resuming from the position the client
// presented for it, and queues the position, the replay and the
// "subscribed" frame. It consumes the reference taken by acquire: on
// failure it is given back.
func (c *channel) join(ctx context.Context, s *Socket) (status string, err error) {
	s.mu.Lock()
	p, hasP := s.presented.get(c.name)
	bad := s.badCursor
	s.mu.Unlock()

	c.mu.Lock()
	last := c.last
	mb := &member{}
	var replay []*message
	start := last
	switch {
	case bad:
		status = statusFailed
	case !hasP:
		status = statusFresh
	case p.Epoch != last.Epoch:
		status = statusFailed
	case p.Offset >= last.Offset:
		// At this node's position or ahead of it: entries up to p are
		// the client's already.
		status, start, mb.floor = statusResumed, p, p.Offset
	default:
		if missed, ok := c.since(p); ok {
			status, start, replay = statusResumed, p, missed
			break
		}
		// Older than the cache: catch up from the broker, outside the
		// lock (the broker may deliver under its own), while entries
		// delivered meanwhile wait.
		mb.catch = &catchUp{base: last}
		if err := c.add(s, mb, p, ""); err != nil {
			c.mu.Unlock()
			c.hub.release(c)
			return "", err
		}
		c.mu.Unlock()
		return c.catchUp(ctx, s, mb, p)
	}
	defer c.mu.Unlock()
	if err := c.add(s, mb, start, status); err != nil {
		c.hub.release(c)
		return "", err
	}
	c.queueJoin(s, start, replay, status)
	return status, nil
}

// add makes s a member and records the channel in s. Called with c.mu
// held.
func (c *channel) add(s *Socket, mb *member, start Position, status string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || s.closing {
		return errSocketClosed
	}
	s.chans.put(&membership{ch: c, start: start, status: status})
	c.addMember(s, mb)
	return nil
}

// queueJoin queues a join's position, its replay and the "subscribed"
// frame for s, and records its outcome. Called with c.mu held.
func (c *channel) queueJoin(s *Socket, start Position, replay []*message, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if mb := s.chans.get(c.name); mb != nil {
		mb.start, mb.status = start, status
	}
	if status == statusFailed {
		x := s.extra()
		if x.failed == nil {
			x.failed = make(map[string]bool)
		}
		x.failed[c.name] = true
	} else {
		if s.x != nil {
			delete(s.x.failed, c.name)
		}
	}
	ms := make([]*message, 0, len(replay)+2)
	ms = append(ms, &message{kind: kindMark, channel: c.name, pos: start})
	ms = append(ms, replay...)
	ms = append(ms, &message{kind: kindSubscribed, channel: c.name, text: status, early: !s.hello})
	s.enqueueReplay(ms)
}

// catchUp gets from the broker what s missed after p, then merges what
// was delivered meanwhile, each entry once, and makes s live.
func (c *channel) catchUp(ctx context.Context, s *Socket, mb *member, p Position) (string, error) {
	entries, _, err := c.hub.broker.Since(ctx, c.name, p)
	c.mu.Lock()
	if c.members[s] != mb {
		// The socket ended meanwhile; its end gave the reference back.
		c.mu.Unlock()
		return "", errSocketClosed
	}
	cu := mb.catch
	mb.catch = nil
	pending := cu.pending
	if err != nil && !errors.Is(err, ErrPositionLost) {
		// The broker could not tell: the join fails as a whole.
		c.removeMember(s)
		s.mu.Lock()
		if mb := s.chans.get(c.name); mb != nil && mb.ch == c {
			s.chans.drop(c.name)
		}
		s.mu.Unlock()
		c.mu.Unlock()
		c.hub.release(c)
		return "", err
	}
	defer c.mu.Unlock()
	if err != nil || cu.restarted || (len(entries) > 0 && entries[0].Position.Epoch != cu.base.Epoch) {
		// The history no longer reaches back to p: the client goes on
		// from where this node stood, with what came since.
		c.queueJoin(s, cu.base, pending, statusFailed)
		return statusFailed, nil
	}
	at := time.Now()
	replay := make([]*message, 0, len(entries)+len(pending))
	seen := p.Offset
	for _, e := range entries {
		replay = append(replay, c.entryMessage(e, at))
		seen = e.Position.Offset
	}
	for _, m := range pending {
		if m.pos.Offset > seen {
			replay = append(replay, m)
			seen = m.pos.Offset
		}
	}
	// The broker may be ahead of this node: what the follow delivers
	// next up to seen, the socket has had.
	mb.floor = seen
	c.queueJoin(s, p, replay, statusResumed)
	return statusResumed, nil
}

// since returns the cached messages after p, if the cache can tell them
// all. Called with mu held, p of the current epoch and before last.
func (c *channel) since(p Position) ([]*message, bool) {
	c.evictOld(time.Now())
	first := c.last.Offset + 1 // the oldest message kept
	if c.head < len(c.cache) {
		first = c.cache[c.head].pos.Offset
	}
	if p.Offset+1 < first || first > c.last.Offset {
		return nil, false
	}
	from := c.head + int(p.Offset+1-first)
	return append([]*message(nil), c.cache[from:]...), true
}

// keep adds m to the cache and applies the bounds. Called with mu held.
func (c *channel) keep(m *message) {
	if n := len(c.cache) - c.head; n > 0 && c.cache[len(c.cache)-1].pos.Offset+1 != m.pos.Offset {
		// Not contiguous (a restart): since relies on contiguous offsets.
		clear(c.cache)
		c.cache, c.head, c.bytes = c.cache[:0], 0, 0
	}
	c.cache = append(c.cache, m)
	c.bytes += int64(len(m.text))
	c.evict(m.at)
}

func (c *channel) evictOld(now time.Time) {
	if c.hub.maxAge > 0 {
		c.evict(now)
	}
}

// evict drops the oldest messages until the bounds hold. Only the
// oldest go, so the kept offsets stay contiguous, which since relies on.
func (c *channel) evict(now time.Time) {
	h := c.hub
	for c.head < len(c.cache) {
		m := c.cache[c.head]
		n := len(c.cache) - c.head
		if (h.maxN < 0 || n <= h.maxN) && (h.maxBytes < 0 || c.bytes <= h.maxBytes) &&
			(h.maxAge <= 0 || now.Sub(m.at) <= h.maxAge) {
			break
		}
		c.bytes -= int64(len(m.text))
		c.cache[c.head] = nil
		c.head++
	}
	// Reclaim the evicted prefix once it is half the slice, so memory
	// stays proportional to what is kept.
	if c.head > 0 && c.head >= len(c.cache)/2 {
		n := copy(c.cache, c.cache[c.head:])
		clear(c.cache[n:])
		c.cache = c.cache[:n]
		c.head = 0
	}
}

// Join adds the socket to channel, on behalf of the application (serve,
// Options.OnConnect, Options.OnSubscribe's caller), and returns once the
// messages it missed there are queued: when the client presented a
// position in channel (its last event id), those after it, else none.
// A client that cannot resume is told (ResumeFailed, and "subscribed
// CHANNEL failed" on v2). Joining a channel the socket is in does
// nothing. ctx bounds the wait for the broker.
//
// Join fails with an error matching ErrInvalidChannel for a name against
// the rules or starting with "$", ErrTooManyChannels beyond
// Options.MaxChannels, ErrNoHub without Options.Hub, net.ErrClosed once
// the socket is closing, or the broker's error (ErrBrokerUnavailable...).
func (s *Socket) Join(ctx context.Context, channel string) error {
	_, err := s.join(ctx, channel)
	return err
}

// join is Join, returning the status of the channel's (latest) join.
func (s *Socket) join(ctx context.Context, name string) (string, error) {
	if s.hub == nil {
		return "", ErrNoHub
	}
	if err := checkChannel(name); err != nil {
		return "", err
	}
	s.joinMu.Lock()
	defer s.joinMu.Unlock()
	s.mu.Lock()
	switch {
	case s.ended || s.closing:
		s.mu.Unlock()
		return "", errSocketClosed
	case s.chans.get(name) != nil:
		status := s.chans.get(name).status
		s.mu.Unlock()
		return status, nil
	case len(s.chans) >= s.cfg().maxChannels:
		s.mu.Unlock()
		return "", ErrTooManyChannels
	}
	s.makeRoom(name)
	e := s.presence
	s.mu.Unlock()
	c, err := s.hub.acquire(ctx, name)
	if err != nil {
		return "", err
	}
	status, err := c.join(ctx, s)
	if err == nil {
		s.observeJoin(name, status)
	}
	if err == nil && e != nil {
		s.hub.pres.add(name, *e)
	}
	return status, err
}

// makeRoom keeps the cursor within MaxChannels entries before a join of
// name: a presented entry of a channel not joined goes when there is no
// other room. Called with mu held.
func (s *Socket) makeRoom(name string) {
	if _, ok := s.presented.get(name); ok || len(s.presented) == 0 {
		return
	}
	n := len(s.presented)
	joined := make(map[uint64]bool, len(s.chans))
	for _, other := range s.chans {
		h := other.ch.hash
		joined[h] = true
		if _, ok := s.presented.search(h); !ok {
			n++
		}
	}
	if n < s.cfg().maxChannels {
		return
	}
	for i, e := range s.presented {
		if !joined[e.hash] {
			s.presented = append(s.presented[:i:i], s.presented[i+1:]...)
			s.enqueueReplay([]*message{{kind: kindForget, hash: e.hash}})
			return
		}
	}
}

// Leave removes the socket from channel, and forgets the position the
// client presented for it, so that its cursor no longer names it. A v2
// client is told ("unsubscribed CHANNEL" with "left"). Leaving a channel
// the socket is not in does nothing but that forgetting.
func (s *Socket) Leave(ctx context.Context, channel string) error {
	_, err := s.leave(channel)
	return err
}

// leave is Leave, reporting whether the socket was in the channel.
func (s *Socket) leave(name string) (bool, error) {
	if s.hub == nil {
		return false, ErrNoHub
	}
	s.joinMu.Lock()
	defer s.joinMu.Unlock()
	s.mu.Lock()
	mb := s.chans.get(name)
	if mb == nil {
		if _, ok := s.presented.get(name); ok {
			s.presented.remove(name)
			s.enqueueReplay([]*message{{kind: kindForget, hash: channelHash(name)}})
		}
		s.mu.Unlock()
		return false, nil
	}
	s.mu.Unlock()
	c := mb.ch
	// Out of the members before the frame is queued, so that no message
	// of the channel follows it.
	c.mu.Lock()
	c.removeMember(s)
	s.mu.Lock()
	s.chans.drop(name)
	if s.x != nil {
		delete(s.x.failed, name)
	}
	s.presented.remove(name)
	e := s.presence
	s.enqueueReplay([]*message{{kind: kindUnsubscribed, channel: name, text: "left"}})
	s.mu.Unlock()
	c.mu.Unlock()
	s.hub.release(c)
	if e != nil {
		s.hub.pres.remove(name, *e)
	}
	return true, nil
}

// Channels returns the channels the socket is in, in no particular
// order.
func (s *Socket) Channels() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.chans))
	for _, m := range s.chans {
		out = append(out, m.ch.name)
	}
	return out
}
