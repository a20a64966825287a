package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/realtime-go/realtime"
	"github.com/redis/go-redis/v9"
)

// follower is one Follow call, fed by the Broker's loop.
type follower struct {
	channel string
	key     string // the stream
	meta    string
	epoch   string // decimal, as in the entries
	deliver func(realtime.Entry)

	// mu is held by the loop while it delivers, so that once Follow has
	// taken it to stop, deliver is not called again.
	mu      sync.Mutex
	last    uint64 // the offset delivered last; the loop's alone
	checked bool   // the loop read the channel's epoch since f was added; the loop's alone
	stopped atomic.Bool
	done    chan error // cap 1: why the loop stopped it
}

// stop marks f stopped, from the loop with f.mu held: Follow returns err.
func (f *follower) stop(err error) {
	if f.stopped.CompareAndSwap(false, true) {
		f.done <- err
	}
}

// lost is the error of a follower that cannot go on without a gap.
func (f *follower) lost(why string) error {
	return fmt.Errorf("redisbroker: follow %q after offset %d: %s: %w", f.channel, f.last, why, realtime.ErrPositionLost)
}

// Backoff of the loop and of Follow's first check while Redis cannot be
// reached.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// readCount is how many entries of each stream one XREAD returns.
const readCount = 512

// Follow implements realtime.Broker. Every Follow of a Broker is served
// by one loop on one connection, which calls deliver; a slow deliver
// delays the other channels of the Broker too. A zero pos follows from
// the start of the channel's current epoch. While Redis cannot be
// reached, Follow keeps trying (also for its first check of pos), and
// goes on after its last entry. It returns an error wrapping
// realtime.ErrBrokerClosed when the Broker is closed.
func (b *Broker) Follow(ctx context.Context, channel string, pos realtime.Position, deliver func(realtime.Entry)) error {
	if b.closed.Load() {
		return errClosed("follow")
	}
	var latest realtime.Position
	for wait := minBackoff; ; wait = min(2*wait, maxBackoff) {
		octx, cancel := b.opContext(ctx)
		var err error
		_, latest, err = b.since(octx, b.client, channel, pos, false)
		cancel()
		if err == nil {
			break
		}
		if b.closed.Load() {
			return errClosed("follow")
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if !errors.Is(err, realtime.ErrBrokerUnavailable) {
			return err
		}
		if !sleep(ctx, b.closing, wait) {
			if b.closed.Load() {
				return errClosed("follow")
			}
			return ctx.Err()
		}
	}
	if b.afterCheck != nil {
		b.afterCheck(channel)
	}
	f := &follower{
		channel: channel,
		key:     b.streamKey(channel),
		meta:    b.metaKey(channel),
		epoch:   strconv.FormatUint(latest.Epoch, 10),
		deliver: deliver,
		last:    pos.Offset,
		done:    make(chan error, 1),
	}
	wake := b.add(f)
	defer b.remove(f)
	if wake && !b.wake(ctx) {
		b.fmu.Lock()
		b.wakeSent = false // the next Follow tries again
		b.fmu.Unlock()
	}
	select {
	case err := <-f.done:
		return err
	case <-ctx.Done():
		f.mu.Lock()
		f.stopped.Store(true)
		f.mu.Unlock()
		return ctx.Err()
	case <-b.closing:
		f.mu.Lock()
		f.stopped.Store(true)
		f.mu.Unlock()
		return errClosed("follow")
	}
}

// sleep waits for d, and reports false if ctx or closing ended first.
func sleep(ctx context.Context, closing <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-closing:
		return false
	}
}

// add registers f with the loop, starting the loop if need be, and
// reports whether the loop must be woken: it is blocked in an XREAD
// that does not carry f's stream, and no wake is on its way already
// (one wake brings in every Follow added before the loop takes up the
// new set).
func (b *Broker) add(f *follower) (wake bool) {
	b.fmu.Lock()
	defer b.fmu.Unlock()
	b.followers[f.key] = append(b.followers[f.key], f)
	if !b.started {
		b.started = true
		b.wg.Add(1)
		go b.loop()
	}
	select {
	case b.changed <- struct{}{}:
	default:
	}
	wake = b.reading && !b.wakeSent
	if wake {
		b.wakeSent = true
	}
	return wake
}

// remove unregisters f.
func (b *Broker) remove(f *follower) {
	b.fmu.Lock()
	defer b.fmu.Unlock()
	fs := slices.DeleteFunc(b.followers[f.key], func(g *follower) bool { return g == f })
	if len(fs) == 0 {
		delete(b.followers, f.key)
	} else {
		b.followers[f.key] = fs
	}
}

// wakeTTL is the TTL of the wake key, so that it goes when its Broker
// does; a wake sets it again once half of it has passed.
const wakeTTL = time.Minute

// wake ends the loop's current XREAD by adding an entry to the wake
// stream, which every XREAD of the loop reads from its last entry: an
// entry added before the XREAD starts ends it at once, so no wake is
// missed. If Redis cannot be reached, the loop is not blocked in Redis
// either, and reads the new set when it is back. It reports whether
// the entry was added.
func (b *Broker) wake(ctx context.Context) bool {
	octx, cancel := b.opContext(ctx)
	defer cancel()
	key := b.wakeKey()
	now := time.Now()
	if time.Duration(now.UnixNano()-b.wakeExpiry.Load()) < wakeTTL/2 {
		// The key expires after now + wakeTTL/2: it is there, or XADD
		// makes it again and the TTL is set by a later wake.
		return b.client.XAdd(octx, &redis.XAddArgs{Stream: key, MaxLen: 1, Values: []string{"w", "1"}}).Err() == nil
	}
	var add *redis.StringCmd
	var exp *redis.BoolCmd
	_, _ = b.client.Pipelined(octx, func(p redis.Pipeliner) error {
		add = p.XAdd(octx, &redis.XAddArgs{Stream: key, MaxLen: 1, Values: []string{"w", "1"}})
		exp = p.PExpire(octx, key, wakeTTL)
		return nil
	})
	if exp.Err() == nil {
		b.wakeExpiry.Store(now.UnixNano())
	}
	return add.Err() == nil
}

// loop serves every Follow of the Broker: XREAD BLOCK over all followed
// streams, the wake stream and the epochs stream, on the reader's one
// connection.
func (b *Broker) loop() {
	defer b.wg.Done()
	wakeKey, epochsKey := b.wakeKey(), b.epochsKey()
	wakeID := "0-0"
	// epochsID is the last entry of the epochs stream the loop read,
	// "" when unknown: then every followed channel's epoch is read
	// again (a full check), with the stream's last id.
	epochsID := ""
	var (
		lastFull time.Time
		wait     = minBackoff
		streams  []string
		groups   [][]*follower
		todo     []int // indexes in groups of the channels to check
		// announced holds the followed streams whose new epoch the
		// epochs stream announced, to be checked before the next XREAD.
		announced = make(map[string]bool)
	)
	for !b.closed.Load() {
		// The set of streams and where each is read from.
		streams, groups = streams[:0], groups[:0]
		streams = append(streams, wakeKey, epochsKey)
		b.fmu.Lock()
		for key, fs := range b.followers {
			streams = append(streams, key)
			groups = append(groups, slices.Clone(fs))
		}
		b.reading = len(groups) > 0
		b.wakeSent = false
		b.fmu.Unlock()
		if len(groups) == 0 {
			// Nothing to watch: read everything again when a Follow
			// comes.
			epochsID = ""
			clear(announced)
			select {
			case <-b.changed:
			case <-b.closing:
			}
			continue
		}

		// The epochs, after every new connection (Redis may have
		// restarted without its data, and an XREAD from an old id waits
		// for ever on a stream started again), when announcements were
		// missed, and every checkEvery; else those of the channels
		// announced and of the Follows added since the last check.
		if epochsID == "" || b.reconnect.Load() || time.Since(lastFull) >= b.checkEvery {
			id, err := b.checkEpochs(groups, true)
			if err != nil {
				b.reconnect.Store(true)
				b.backoff(&wait)
				continue
			}
			// The check ran on the reader's one connection, used by
			// this loop only: any reconnection so far is covered.
			b.reconnect.Store(false)
			b.wakeExpiry.Store(0) // the wake key may be gone with its TTL
			epochsID, lastFull = id, time.Now()
			clear(announced)
		} else {
			todo = todo[:0]
			for i, fs := range groups {
				if announced[streams[i+2]] || slices.ContainsFunc(fs, func(f *follower) bool { return !f.checked }) {
					todo = append(todo, i)
				}
			}
			if len(todo) > 0 {
				sub := make([][]*follower, len(todo))
				for j, i := range todo {
					sub[j] = groups[i]
				}
				if _, err := b.checkEpochs(sub, false); err != nil {
					b.reconnect.Store(true)
					b.backoff(&wait)
					continue
				}
				clear(announced)
			}
		}

		ids := make([]string, 0, len(streams))
		ids = append(ids, wakeID, epochsID)
		for _, fs := range groups {
			low := uint64(1<<64 - 1)
			for _, f := range fs {
				low = min(low, f.last)
			}
			ids = append(ids, strconv.FormatUint(low, 10)+"-0")
		}
		res, err := b.reader.XRead(b.ctx, &redis.XReadArgs{
			Streams: append(streams, ids...),
			Count:   readCount,
			Block:   b.followTimeout,
		}).Result()
		b.fmu.Lock()
		b.reading = false
		b.fmu.Unlock()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			b.reconnect.Store(true)
			b.backoff(&wait)
			continue
		}
		wait = minBackoff
		for _, st := range res {
			switch st.Stream {
			case wakeKey:
				if n := len(st.Messages); n > 0 {
					wakeID = st.Messages[n-1].ID
				}
				continue
			case epochsKey:
				epochsID = b.announcements(st.Messages, epochsID, streams, groups, announced)
				continue
			}
			i := slices.Index(streams, st.Stream)
			if i < 2 {
				continue
			}
			for _, f := range groups[i-2] {
				f.feed(st.Messages)
			}
		}
	}
}

// announcements reads entries of the epochs stream after the one of id
// last: it marks in announced the followed streams whose followers'
// epoch is not the one announced, and returns the id of the last entry,
// or "" when an entry does not name the one before it as its previous:
// entries were trimmed before the loop read them, or the stream was
// lost, and every followed channel must be checked.
func (b *Broker) announcements(msgs []redis.XMessage, last string, streams []string, groups [][]*follower, announced map[string]bool) string {
	for _, m := range msgs {
		p, _ := m.Values["p"].(string)
		if p != last {
			return ""
		}
		last = m.ID
		c, _ := m.Values["c"].(string)
		e, _ := m.Values["e"].(string)
		key := b.streamKey(c)
		i := slices.Index(streams, key)
		if i < 2 {
			continue
		}
		if slices.ContainsFunc(groups[i-2], func(f *follower) bool { return f.epoch != e }) {
			announced[key] = true
		}
	}
	return last
}

// backoff waits before the loop tries Redis again.
func (b *Broker) backoff(wait *time.Duration) {
	sleep(b.ctx, b.closing, *wait)
	*wait = min(2**wait, maxBackoff)
}

// feed delivers to f the messages after its last, checking that each is
// of its epoch and the next offset.
func (f *follower) feed(msgs []redis.XMessage) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range msgs {
		if f.stopped.Load() {
			return
		}
		e, _ := m.Values["e"].(string)
		d, _ := m.Values["d"].(string)
		en, err := makeEntry(m.ID, e, d)
		if err != nil {
			f.stop(f.lost(err.Error()))
			return
		}
		if en.Position.Offset <= f.last {
			continue
		}
		switch {
		case e != f.epoch:
			f.stop(f.lost("the channel's epoch changed"))
			return
		case en.Position.Offset != f.last+1:
			f.stop(f.lost(fmt.Sprintf("the next entry kept is %d", en.Position.Offset)))
			return
		}
		f.deliver(en)
		f.last = en.Position.Offset
	}
}

// checkEpochs compares the epochs of the channels of groups with their
// followers', in one script call on the reader, and stops the followers
// of a channel whose epoch changed or whose meta is gone. A full check
// also sets the metas' TTLs again, and returns the id of the epochs
// stream's last entry ("0-0" for none), read in the same atomic step.
func (b *Broker) checkEpochs(groups [][]*follower, full bool) (string, error) {
	keys := make([]string, 1, 1+len(groups))
	keys[0] = b.epochsKey()
	for _, fs := range groups {
		keys = append(keys, fs[0].meta)
	}
	ttl, last := "0", "0"
	if full {
		ttl, last = b.metaTTL, "1"
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.followTimeout+DefaultTimeout)
	defer cancel()
	r, err := epochsScript.Run(ctx, b.reader, keys, ttl, last).StringSlice()
	if err != nil {
		return "", err
	}
	id := ""
	if full {
		if len(r) == 0 {
			return "", errors.New("redisbroker: epochs: empty reply")
		}
		id, r = r[0], r[1:]
	}
	if len(r) != len(groups) {
		return "", fmt.Errorf("redisbroker: epochs: %d replies for %d channels", len(r), len(groups))
	}
	for i, fs := range groups {
		for _, f := range fs {
			f.checked = true
			if r[i] != f.epoch {
				f.mu.Lock()
				f.stop(f.lost("the channel's epoch changed"))
				f.mu.Unlock()
			}
		}
	}
	return id, nil
}
