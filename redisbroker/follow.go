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
	if wake {
		b.wake(ctx)
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
// that does not carry f's stream.
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
	return b.reading
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

// wake ends the loop's current XREAD by adding an entry to the wake
// stream, which every XREAD of the loop reads from its last entry: an
// entry added before the XREAD starts ends it at once, so no wake is
// missed. If Redis cannot be reached, the loop is not blocked in Redis
// either, and reads the new set when it is back.
func (b *Broker) wake(ctx context.Context) {
	octx, cancel := b.opContext(ctx)
	defer cancel()
	key := b.wakeKey()
	_, _ = b.client.Pipelined(octx, func(p redis.Pipeliner) error {
		p.XAdd(octx, &redis.XAddArgs{Stream: key, MaxLen: 1, Values: []string{"w", "1"}})
		p.PExpire(octx, key, time.Minute)
		return nil
	})
}

// loop serves every Follow of the Broker: XREAD BLOCK over all followed
// streams and the wake stream, on the reader's one connection.
func (b *Broker) loop() {
	defer b.wg.Done()
	wakeKey, wakeID := b.wakeKey(), "0-0"
	var (
		lastCheck time.Time
		wait      = minBackoff
		streams   []string
		groups    [][]*follower
	)
	for !b.closed.Load() {
		// The set of streams and where each is read from.
		streams, groups = streams[:0], groups[:0]
		streams = append(streams, wakeKey)
		b.fmu.Lock()
		for key, fs := range b.followers {
			streams = append(streams, key)
			groups = append(groups, slices.Clone(fs))
		}
		b.reading = len(groups) > 0
		b.fmu.Unlock()
		if len(groups) == 0 {
			select {
			case <-b.changed:
			case <-b.closing:
			}
			continue
		}
		ids := make([]string, 0, len(streams))
		ids = append(ids, wakeID)
		for _, fs := range groups {
			low := uint64(1<<64 - 1)
			for _, f := range fs {
				low = min(low, f.last)
			}
			ids = append(ids, strconv.FormatUint(low, 10)+"-0")
		}

		// The epochs, after every new connection and every
		// FollowTimeout: an XREAD from an old id waits for ever on a
		// stream that Redis lost and started again.
		if b.reconnect.Swap(false) || time.Since(lastCheck) >= b.followTimeout {
			if err := b.checkEpochs(groups); err != nil {
				b.reconnect.Store(true)
				b.backoff(&wait)
				continue
			}
			lastCheck = time.Now()
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
			if st.Stream == wakeKey {
				if n := len(st.Messages); n > 0 {
					wakeID = st.Messages[n-1].ID
				}
				continue
			}
			i := slices.Index(streams, st.Stream)
			if i < 1 {
				continue
			}
			for _, f := range groups[i-1] {
				f.feed(st.Messages)
			}
		}
	}
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

// checkEpochs compares the epochs of the followed channels with their
// followers', in one script call, and stops the followers of a channel
// whose epoch changed or whose meta is gone.
func (b *Broker) checkEpochs(groups [][]*follower) error {
	metas := make([]string, len(groups))
	for i, fs := range groups {
		metas[i] = fs[0].meta
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.followTimeout+DefaultTimeout)
	defer cancel()
	r, err := epochsScript.Run(ctx, b.reader, metas, b.metaTTL).StringSlice()
	if err != nil {
		return err
	}
	if len(r) != len(groups) {
		return fmt.Errorf("redisbroker: epochs: %d replies for %d channels", len(r), len(groups))
	}
	for i, fs := range groups {
		for _, f := range fs {
			if r[i] != f.epoch {
				f.mu.Lock()
				f.stop(f.lost("the channel's epoch changed"))
				f.mu.Unlock()
			}
		}
	}
	return nil
}
