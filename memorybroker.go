package realtime

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryBrokerOptions bounds the history a MemoryBroker keeps of each
// channel. A nil *MemoryBrokerOptions means the zero value;
// NewMemoryBroker copies it.
type MemoryBrokerOptions struct {
	// MaxHistory is how many recent messages of each channel are kept.
	// 0 means DefaultMaxHistory; a negative value means no bound on the
	// count. The latest message of a channel is always kept (unless
	// MaxHistoryAge drops it), so a node that follows it never loses its
	// place to a bound smaller than one message.
	MaxHistory int

	// MaxHistoryBytes bounds the summed text bytes of each channel's
	// kept messages. 0 means DefaultMaxHistoryBytes; a negative value
	// means no bound on the bytes.
	MaxHistoryBytes int64

	// MaxHistoryAge, when positive, drops messages older than this;
	// 0 or a negative value means no bound on the age.
	MaxHistoryAge time.Duration
}

// MemoryBroker is the Broker of one process: the default of a Hub, and
// shareable by several Hubs (several nodes) of the same process. Each
// channel's history is bounded by MemoryBrokerOptions. The epoch of
// every channel is one random nonzero number per MemoryBroker (32 bits,
// like the epoch of the ids of the Hubs before brokers), so a position
// from another broker, such as one of a process that has restarted, is
// never mistaken for one of this broker.
//
// Its deduplication window is the history: a publish key is remembered
// as long as the message it published is kept, so the keys cost memory
// within the history's bounds (and no clock reading per publish). A
// retry that comes after its message was evicted appends a second one;
// since a MemoryBroker is never unavailable, a Hub does not retry its
// publishes.
//
// Nothing is ever unreachable, so no method fails with
// ErrBrokerUnavailable. A channel's history stays until the bounds
// evict it, and the latest message stays unless MaxHistoryAge drops it:
// with many short-lived channels, set MaxHistoryAge. Even then each
// channel name used costs a small constant amount of memory for the
// broker's life, as the channel keeps its count of messages so that its
// positions are never reused.
//
// A MemoryBroker is safe for concurrent use.
type MemoryBroker struct {
	epoch    uint64
	maxN     int   // <0: no bound
	maxBytes int64 // <0: no bound
	maxAge   time.Duration

	closed atomic.Bool
	done   chan struct{} // closed by Close
	once   sync.Once

	channels sync.Map // string -> *memChannel

	presMu   sync.Mutex
	presence map[string]map[string]memPresence // channel -> socket -> entry

	srvMu   sync.Mutex
	servers map[string]*memServer
}

// memEntry is a kept message: its offset is implied by its place.
type memEntry struct {
	text string
	key  string // the publish key; "" for none
	at   int64  // UnixNano of the publish; 0 when no age bound applies
}

type memChannel struct {
	mu    sync.Mutex
	last  uint64     // offset of the latest message; 0 before the first
	ring  []memEntry // kept messages, oldest at ring[head], n of them
	head  int
	n     int
	bytes int64

	keys map[string]uint64 // publish key -> offset, of the kept entries

	followers []chan struct{} // woken (without blocking) by every publish
}

type memPresence struct {
	entry   PresenceEntry
	expires int64 // UnixNano; 0: never
}

type memServer struct {
	answer func(ctx context.Context, req []byte) []byte
	ctx    context.Context // the Serve's: ends the answers' contexts
	calls  sync.WaitGroup
}

var _ Broker = (*MemoryBroker)(nil)

// NewMemoryBroker returns an empty MemoryBroker.
func NewMemoryBroker(opts *MemoryBrokerOptions) *MemoryBroker {
	var o MemoryBrokerOptions
	if opts != nil {
		o = *opts
	}
	b := &MemoryBroker{
		epoch:    randomEpoch(),
		maxN:     o.MaxHistory,
		maxBytes: o.MaxHistoryBytes,
		maxAge:   o.MaxHistoryAge,
		done:     make(chan struct{}),
		presence: make(map[string]map[string]memPresence),
		servers:  make(map[string]*memServer),
	}
	if b.maxN == 0 {
		b.maxN = DefaultMaxHistory
	}
	if b.maxBytes == 0 {
		b.maxBytes = DefaultMaxHistoryBytes
	}
	return b
}

// randomEpoch returns a random number in [1, 2^32).
func randomEpoch() uint64 {
	var e [4]byte
	for {
		rand.Read(e[:])
		if v := uint64(binary.BigEndian.Uint32(e[:])); v != 0 {
			return v
		}
	}
}

func errMemoryClosed() error {
	return fmt.Errorf("realtime: memory broker: %w", ErrBrokerClosed)
}

// channel returns the channel named name, made on first use.
func (b *MemoryBroker) channel(name string) *memChannel {
	if c, ok := b.channels.Load(name); ok {
		return c.(*memChannel)
	}
	c, _ := b.channels.LoadOrStore(name, &memChannel{})
	return c.(*memChannel)
}

// Publish implements Broker. It never blocks: the channel's followers
// are woken, and deliver from their own goroutines.
func (b *MemoryBroker) Publish(ctx context.Context, channel, text, key string) (Position, error) {
	if b.closed.Load() {
		return Position{}, errMemoryClosed()
	}
	if err := ctx.Err(); err != nil {
		return Position{}, err
	}
	c := b.channel(channel)
	var now int64
	if b.maxAge > 0 {
		now = time.Now().UnixNano()
	}
	c.mu.Lock()
	if key != "" {
		if off, ok := c.keys[key]; ok {
			c.mu.Unlock()
			return Position{b.epoch, off}, nil
		}
	}
	c.last++
	off := c.last
	c.push(memEntry{text: text, key: key, at: now})
	c.bytes += int64(len(text))
	if key != "" {
		if c.keys == nil {
			c.keys = make(map[string]uint64)
		}
		c.keys[key] = off
	}
	b.evict(c, now)
	for _, w := range c.followers {
		select {
		case w <- struct{}{}:
		default: // already woken
		}
	}
	c.mu.Unlock()
	return Position{b.epoch, off}, nil
}

// Since implements Broker.
func (b *MemoryBroker) Since(ctx context.Context, channel string, pos Position) ([]Entry, Position, error) {
	if b.closed.Load() {
		return nil, Position{}, errMemoryClosed()
	}
	if err := ctx.Err(); err != nil {
		return nil, Position{}, err
	}
	c := b.channel(channel)
	c.mu.Lock()
	defer c.mu.Unlock()
	b.evictOld(c)
	latest := Position{b.epoch, c.last}
	if pos == (Position{}) {
		return nil, latest, nil
	}
	first, err := b.check(c, channel, pos)
	if err != nil {
		return nil, latest, err
	}
	out := make([]Entry, 0, c.last-pos.Offset)
	for off := pos.Offset + 1; off <= c.last; off++ {
		out = append(out, Entry{Position{b.epoch, off}, c.at(int(off - first)).text})
	}
	return out, latest, nil
}

// check tells whether every entry after pos is kept, and returns the
// offset of the oldest entry kept (c.last+1 when none is). Called with
// c.mu held.
func (b *MemoryBroker) check(c *memChannel, channel string, pos Position) (first uint64, err error) {
	first = c.last - uint64(c.n) + 1
	switch {
	case pos.Epoch != b.epoch:
		return first, fmt.Errorf("realtime: memory broker: channel %q: position %v is not of epoch %d: %w",
			channel, pos, b.epoch, ErrPositionLost)
	case pos.Offset > c.last:
		return first, fmt.Errorf("realtime: memory broker: channel %q: position %v is after the latest, %d: %w",
			channel, pos, c.last, ErrPositionLost)
	case pos.Offset+1 < first:
		return first, fmt.Errorf("realtime: memory broker: channel %q: the entries after %v were evicted (the oldest kept is %d): %w",
			channel, pos, first, ErrPositionLost)
	}
	return first, nil
}

// followBatch is how many entries Follow copies out of a channel per
// pass: it delivers them without the channel's lock, so publishers do
// not wait for the fan-out of a slow deliver.
const followBatch = 256

// Follow implements Broker. A zero pos follows from the start of the
// channel. Follow returns an error wrapping ErrBrokerClosed when the
// broker is closed.
func (b *MemoryBroker) Follow(ctx context.Context, channel string, pos Position, deliver func(Entry)) error {
	if b.closed.Load() {
		return errMemoryClosed()
	}
	if pos == (Position{}) {
		pos.Epoch = b.epoch
	}
	c := b.channel(channel)
	wake := make(chan struct{}, 1)
	c.mu.Lock()
	c.followers = append(c.followers, wake)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		i := slices.Index(c.followers, wake)
		c.followers[i] = c.followers[len(c.followers)-1]
		c.followers[len(c.followers)-1] = nil
		c.followers = c.followers[:len(c.followers)-1]
		c.mu.Unlock()
	}()
	batch := make([]Entry, 0, followBatch)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if b.closed.Load() {
			return errMemoryClosed()
		}
		c.mu.Lock()
		b.evictOld(c)
		first, err := b.check(c, channel, pos)
		if err != nil {
			c.mu.Unlock()
			return err
		}
		for off := pos.Offset + 1; off <= c.last && len(batch) < followBatch; off++ {
			batch = append(batch, Entry{Position{b.epoch, off}, c.at(int(off - first)).text})
		}
		c.mu.Unlock()
		if len(batch) == 0 {
			// Every publish after the check above signals wake, which
			// holds one signal, so none is missed while we wait.
			select {
			case <-wake:
			case <-ctx.Done():
				return ctx.Err()
			case <-b.done:
				return errMemoryClosed()
			}
			continue
		}
		for _, e := range batch {
			deliver(e)
		}
		pos = batch[len(batch)-1].Position
		clear(batch) // let delivered texts go
		batch = batch[:0]
	}
}

// evictOld applies the age bound. Called with c.mu held.
func (b *MemoryBroker) evictOld(c *memChannel) {
	if b.maxAge > 0 && c.n > 0 {
		b.evict(c, time.Now().UnixNano())
	}
}

// evict drops the oldest entries until the bounds hold; the latest
// entry stays unless it is too old. Only the oldest go, so the kept
// offsets stay contiguous, which check relies on. Called with c.mu held.
func (b *MemoryBroker) evict(c *memChannel, now int64) {
	for c.n > 0 {
		e := c.at(0)
		over := c.n > 1 && ((b.maxN >= 0 && c.n > b.maxN) || (b.maxBytes >= 0 && c.bytes > b.maxBytes))
		if !over && (b.maxAge <= 0 || now-e.at <= int64(b.maxAge)) {
			break
		}
		c.bytes -= int64(len(e.text))
		if e.key != "" {
			delete(c.keys, e.key)
		}
		c.pop()
	}
	c.shrink()
}

// at returns the i-th kept entry, 0 being the oldest.
func (c *memChannel) at(i int) *memEntry {
	i += c.head
	if i >= len(c.ring) {
		i -= len(c.ring)
	}
	return &c.ring[i]
}

func (c *memChannel) push(e memEntry) {
	if c.n == len(c.ring) {
		c.resize(max(8, 2*len(c.ring)))
	}
	*c.at(c.n) = e
	c.n++
}

func (c *memChannel) pop() {
	c.ring[c.head] = memEntry{}
	c.head++
	if c.head == len(c.ring) {
		c.head = 0
	}
	c.n--
}

// shrink halves a ring that is mostly empty, so that memory follows
// what is kept after a burst.
func (c *memChannel) shrink() {
	size := len(c.ring)
	for size > 64 && c.n < size/4 {
		size /= 2
	}
	if size != len(c.ring) {
		c.resize(size)
	}
}

func (c *memChannel) resize(size int) {
	ring := make([]memEntry, size)
	for i := 0; i < c.n; i++ {
		ring[i] = *c.at(i)
	}
	c.ring, c.head = ring, 0
}

// AddPresence implements Broker. A ttl of 0 or less keeps the entry
// until it is removed.
func (b *MemoryBroker) AddPresence(ctx context.Context, channel string, e PresenceEntry, ttl time.Duration) (bool, error) {
	if b.closed.Load() {
		return false, errMemoryClosed()
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := time.Now().UnixNano()
	var expires int64
	if ttl > 0 {
		expires = now + int64(ttl)
	}
	b.presMu.Lock()
	defer b.presMu.Unlock()
	m := b.presence[channel]
	if m == nil {
		m = make(map[string]memPresence)
		b.presence[channel] = m
	}
	_, ok := m[e.Socket]
	// An entry that has expired but that no Presence call has reported
	// yet is still there: refreshing it revives it, and no leave is
	// reported for it.
	m[e.Socket] = memPresence{entry: e, expires: expires}
	return !ok, nil
}

// RemovePresence implements Broker.
func (b *MemoryBroker) RemovePresence(ctx context.Context, channel, socket string) (bool, error) {
	if b.closed.Load() {
		return false, errMemoryClosed()
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	b.presMu.Lock()
	defer b.presMu.Unlock()
	m := b.presence[channel]
	if _, ok := m[socket]; !ok {
		return false, nil
	}
	delete(m, socket)
	if len(m) == 0 {
		delete(b.presence, channel)
	}
	return true, nil
}

// Presence implements Broker. Both lists are sorted by socket id.
func (b *MemoryBroker) Presence(ctx context.Context, channel string) (live, expired []PresenceEntry, err error) {
	if b.closed.Load() {
		return nil, nil, errMemoryClosed()
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	now := time.Now().UnixNano()
	b.presMu.Lock()
	m := b.presence[channel]
	for s, p := range m {
		if p.expires != 0 && now >= p.expires {
			expired = append(expired, p.entry)
			delete(m, s)
		} else {
			live = append(live, p.entry)
		}
	}
	if m != nil && len(m) == 0 {
		delete(b.presence, channel)
	}
	b.presMu.Unlock()
	bySocket := func(a, b PresenceEntry) int { return strings.Compare(a.Socket, b.Socket) }
	slices.SortFunc(live, bySocket)
	slices.SortFunc(expired, bySocket)
	return live, expired, nil
}

// Call implements Broker: answer runs on a goroutine of its own, with a
// context that ends with ctx or with the Serve. req and the answer are
// copied, as an engine would.
func (b *MemoryBroker) Call(ctx context.Context, node string, req []byte) ([]byte, error) {
	if b.closed.Load() {
		return nil, errMemoryClosed()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.srvMu.Lock()
	s := b.servers[node]
	if s == nil {
		b.srvMu.Unlock()
		return nil, fmt.Errorf("realtime: memory broker: call to node %q: %w", node, ErrNoNode)
	}
	s.calls.Add(1) // under srvMu, so the Serve waits for this call
	b.srvMu.Unlock()
	actx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	res := make(chan []byte, 1)
	go func() {
		defer s.calls.Done()
		res <- bytesClone(s.answer(actx, bytesClone(req)))
	}()
	defer func() {
		stop()
		cancel()
	}()
	select {
	case a := <-res:
		return a, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.ctx.Done():
		// The node stopped serving while it answered: as with an
		// engine, the caller cannot tell whether it acted.
		return nil, fmt.Errorf("realtime: memory broker: node %q stopped serving during a call: %w", node, ErrNoNode)
	case <-b.done:
		return nil, errMemoryClosed()
	}
}

func bytesClone(p []byte) []byte {
	if p == nil {
		return nil
	}
	return append([]byte{}, p...)
}

// Serve implements Broker. It returns when ctx ends, once the answers
// in progress have returned (their contexts end with ctx). A second
// Serve for a node already served fails at once.
func (b *MemoryBroker) Serve(ctx context.Context, node string, answer func(ctx context.Context, req []byte) []byte) error {
	if b.closed.Load() {
		return errMemoryClosed()
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &memServer{answer: answer, ctx: sctx}
	b.srvMu.Lock()
	if b.servers[node] != nil {
		b.srvMu.Unlock()
		return fmt.Errorf("realtime: memory broker: node %q is already served", node)
	}
	b.servers[node] = s
	b.srvMu.Unlock()
	var err error
	select {
	case <-ctx.Done():
		err = ctx.Err()
	case <-b.done:
		err = errMemoryClosed()
	}
	b.srvMu.Lock()
	delete(b.servers, node)
	b.srvMu.Unlock()
	cancel()
	s.calls.Wait()
	return err
}

// Close implements Broker: Follow and Serve return, and every method
// then fails with an error wrapping ErrBrokerClosed. It always returns
// nil.
func (b *MemoryBroker) Close() error {
	b.once.Do(func() {
		b.closed.Store(true)
		close(b.done)
	})
	return nil
}
