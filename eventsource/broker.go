package eventsource

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for BrokerOptions fields left zero. They are the values of
// the root package's send queue, under the same names.
const (
	// DefaultMaxQueue is how many events may wait for one stream.
	DefaultMaxQueue = 256

	// DefaultMaxQueueBytes bounds the wire size of the events waiting for
	// one stream: 4 MiB.
	DefaultMaxQueueBytes = 4 << 20
)

var (
	// ErrQueueFull is wrapped by the error that ends a stream whose
	// queue in a Broker overflowed: its client reads more slowly than
	// events are published. The client reconnects and resumes from its
	// Last-Event-ID.
	ErrQueueFull = errors.New("eventsource: queue full")

	// ErrBrokerClosed is wrapped by the error that ends the streams of a
	// Broker when it is closed, and returned by Publish and Serve after.
	ErrBrokerClosed = errors.New("eventsource: broker closed")
)

// BrokerOptions configures a Broker. A nil *BrokerOptions means the zero
// value; NewBroker copies it deeply, and later changes do not affect the
// Broker.
type BrokerOptions struct {
	// Stream configures the streams that Broker.ServeHTTP accepts.
	Stream Options

	// History, when set, keeps the events published with an id, and a
	// client that reconnects with a Last-Event-ID is sent those it
	// missed before the live ones, exactly once. The History is shared,
	// not copied: Publish adds to it, under the lock that makes the
	// replay exact, so add events only through the Broker, and give each
	// Broker its own History.
	History *History

	// MaxQueue bounds the events waiting for one stream's writer. A
	// publish that would exceed it drops the stream instead (see
	// Broker). 0 means DefaultMaxQueue; a negative value removes the
	// bound.
	MaxQueue int

	// MaxQueueBytes bounds the summed wire size of the events waiting
	// for one stream's writer, as MaxQueue does; an event is always
	// queued for a stream that has nothing waiting. 0 means
	// DefaultMaxQueueBytes; a negative value removes the bound.
	MaxQueueBytes int64

	// OnResumeFailed, when set, is called by Serve, on the stream's
	// writer before any live event, for a client whose Last-Event-ID the
	// History no longer holds: it missed events that cannot be replayed.
	// It may send the stream an event that makes the client reload its
	// state. An error ends Serve with it.
	OnResumeFailed func(ctx context.Context, s *Stream) error
}

// Broker fans published events out to streams: a ready publish and
// subscribe for server-sent events.
//
// Publish encodes an event once and appends it to one queue shared by
// all streams, in which each stream has its place; its cost does not
// depend on the number of streams, and it never waits for a client. A
// few writer goroutines take the streams that have events waiting and
// write all of them at once with one flush, the stream furthest behind
// first. No lock is held across a write, so a client that stops reading
// holds up nobody but itself. The events waiting for one stream are
// bounded (MaxQueue, MaxQueueBytes); the publish that would exceed the
// bound drops the stream instead: its write in progress is cut and the
// stream ends with ErrQueueFull. The client then reconnects and, with a
// History, resumes where it stopped.
//
// A Broker is an http.Handler, or handlers that accept streams
// themselves call Serve. A Broker is safe for concurrent use.
type Broker struct {
	stream   Options
	hist     *History
	maxQueue int   // <0: no bound
	maxBytes int64 // <0: no bound
	onFailed func(context.Context, *Stream) error
	base     int // writers kept parked, and run before any is stalled

	mu     sync.Mutex
	closed bool
	subs   []*subscriber // subscriber.idx is the index

	// The events published with sequence numbers tail to head-1 are in
	// slots[seq&mask], and slots[seq&mask].waiting lists the streams
	// whose next event is seq (head: the streams that have taken
	// everything). An event leaves the ring once no stream needs it, or
	// when a bound pushes it out: the streams that still needed it are
	// dropped.
	slots      []slot
	mask       uint64
	tail, head uint64
	total      int64  // bytes published; slot.start is total before the event
	low        uint64 // no stream is listed in a slot from tail to low-1

	// writing lists the streams being written (their replay, or
	// events a writer took), in increasing order of next: a stream's
	// next becomes head when it is taken, so appending keeps the order.
	writing queue

	starts  []*start  // requests for the writers to accept
	cond    sync.Cond // writers park on it; L is &mu
	writers int       // writer goroutines running
	parked  int

	checked    time.Time   // when kick last counted the stalled writers
	recheck    *time.Timer // runs kickAgain
	rechecking bool        // recheck is armed

	room    chan struct{} // closed (and replaced) to wake Wait
	waiters int
}

// slot is one place of a Broker's ring.
type slot struct {
	e       *EncodedEvent
	start   int64 // Broker.total before e
	waiting queue // the streams waiting for this event
}

// queue is a list of subscribers, linked through their prev and link.
type queue struct{ first, last *subscriber }

func (q *queue) push(sub *subscriber) {
	sub.prev, sub.link = q.last, nil
	if q.last != nil {
		q.last.link = sub
	} else {
		q.first = sub
	}
	q.last = sub
}

func (q *queue) remove(sub *subscriber) {
	if sub.prev != nil {
		sub.prev.link = sub.link
	} else {
		q.first = sub.link
	}
	if sub.link != nil {
		sub.link.prev = sub.prev
	} else {
		q.last = sub.prev
	}
	sub.prev, sub.link = nil, nil
}

// Where a subscriber is listed; guarded by Broker.mu.
const (
	listedNowhere = iota // left or dropped
	listedSlot           // waits in slots[next]
	listedWriting        // in the writing list
)

// subscriber is one stream served by a Broker.
type subscriber struct {
	s      *Stream
	ctx    context.Context         // Serve's, ended when the stream is dropped
	cancel context.CancelCauseFunc // drops the stream

	// Guarded by Broker.mu.
	idx        int    // in Broker.subs
	next       uint64 // sequence of the first event not taken
	listed     uint8
	prev, link *subscriber // in its slot's list or the writing list
	taken      bool        // a writer goroutine is writing to it
	left       chan struct{}
	dropped    error // why the stream was dropped, or nil

	// writing is when the write in progress started (Unix ns), 0 if none.
	writing atomic.Int64
}

// NewBroker returns a Broker with no streams.
func NewBroker(opts *BrokerOptions) *Broker {
	var o BrokerOptions
	if opts != nil {
		o = *opts
	}
	o.Stream.Header = o.Stream.Header.Clone()
	b := &Broker{
		stream:   o.Stream,
		hist:     o.History,
		maxQueue: o.MaxQueue,
		maxBytes: o.MaxQueueBytes,
		onFailed: o.OnResumeFailed,
		base:     max(4, 4*runtime.GOMAXPROCS(0)),
		room:     make(chan struct{}),
	}
	if b.maxQueue == 0 {
		b.maxQueue = DefaultMaxQueue
	}
	if b.maxBytes == 0 {
		b.maxBytes = DefaultMaxQueueBytes
	}
	b.cond.L = &b.mu
	b.resize(minSlots)
	return b
}

// minSlots is the smallest ring.
const minSlots = 16

// ServeHTTP accepts an EventSource request with BrokerOptions.Stream and
// serves the stream until it ends (see Serve). Requests that are not
// EventSource requests get Accept's error response. Once the Broker is
// closed, requests get 503 (Service Unavailable), which also stops a
// browser from reconnecting to this server over and over.
//
// The stream is accepted, its replay written and its events too by the
// Broker's writers, so that the handler's goroutine, which lives as long
// as the stream, only waits and keeps a small stack.
func (b *Broker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := &start{w: w, r: r, done: make(chan struct{})}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		http.Error(w, ErrBrokerClosed.Error(), http.StatusServiceUnavailable)
		return
	}
	b.starts = append(b.starts, st)
	b.kick()
	b.mu.Unlock()
	<-st.done
	if st.s == nil {
		return
	}
	defer st.s.Close()
	if st.sub == nil {
		return
	}
	if st.err != nil {
		b.leave(st.sub)
		return
	}
	b.wait(st.sub)
}

// start is a request that ServeHTTP hands to a writer to accept and
// subscribe.
type start struct {
	w    http.ResponseWriter
	r    *http.Request
	s    *Stream
	sub  *subscriber
	err  error
	done chan struct{}
}

func (st *start) run(b *Broker) {
	defer close(st.done)
	if st.s, st.err = Accept(st.w, st.r, &b.stream); st.err == nil {
		st.sub, st.err = b.join(st.r.Context(), st.s)
	}
	st.w, st.r = nil, nil
}

// Publish encodes ev once, adds it to the History if it has an id, and
// queues it for every stream. It returns the encoded event. It fails if
// ev cannot be encoded (see ErrInvalidField) or the Broker is closed.
// Publish never blocks on a client.
func (b *Broker) Publish(ev Event) (*EncodedEvent, error) {
	e, err := Encode(ev)
	if err != nil {
		return nil, err
	}
	return e, b.PublishEncoded(e)
}

// PublishEncoded publishes an event encoded beforehand, as Publish does.
func (b *Broker) PublishEncoded(e *EncodedEvent) error {
	if e == nil {
		return errNilEvent
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrBrokerClosed
	}
	// Kept and queued under the lock, so that a joining stream gets each
	// event either in its replay or from the ring, never both, and every
	// stream gets them in the order published.
	if b.hist != nil && e.id != "" {
		b.hist.add(e)
	}
	if len(b.subs) == 0 {
		return nil // nobody would take it
	}
	if b.head-b.tail+2 > uint64(len(b.slots)) {
		b.resize(2 * len(b.slots))
	}
	sl := &b.slots[b.head&b.mask]
	sl.e, sl.start = e, b.total
	b.total += int64(len(e.b))
	b.head++
	b.evict()
	if b.ready() {
		b.kick()
	}
	return nil
}

// resize moves the ring to n slots, a power of two that holds it.
func (b *Broker) resize(n int) {
	slots := make([]slot, n)
	mask := uint64(n - 1)
	for q := b.tail; q <= b.head && b.slots != nil; q++ {
		slots[q&mask] = b.slots[q&b.mask]
	}
	b.slots, b.mask = slots, mask
}

// evict takes out of the ring the events no stream needs, and those
// beyond the bounds, dropping the streams that still needed them.
func (b *Broker) evict() {
	for b.tail < b.head {
		sl := &b.slots[b.tail&b.mask]
		n, bytes := b.head-b.tail, b.total-sl.start
		over := (b.maxQueue > 0 && n > uint64(b.maxQueue)) || (b.maxBytes > 0 && n > 1 && bytes > b.maxBytes)
		if !over && (sl.waiting.first != nil || (b.writing.first != nil && b.writing.first.next == b.tail)) {
			break // needed
		}
		if over {
			// The counts before the publish that overflowed.
			last := b.slots[(b.head-1)&b.mask].start
			err := fmt.Errorf("%w: %d events, %d bytes waiting", ErrQueueFull, n-1, last-sl.start)
			for sl.waiting.first != nil {
				b.drop(sl.waiting.first, err)
			}
			for b.writing.first != nil && b.writing.first.next == b.tail {
				b.drop(b.writing.first, err)
			}
		}
		*sl = slot{}
		b.tail++
	}
	b.low = max(b.low, b.tail)
	if n := len(b.slots); n > 4*minSlots && 4*(b.head-b.tail+1) < uint64(n) {
		b.resize(n / 2)
	}
}

// ready reports whether a stream waits for events a writer could take,
// moving low to the first such stream.
func (b *Broker) ready() bool {
	for b.low < b.head && b.slots[b.low&b.mask].waiting.first == nil {
		b.low++
	}
	return b.low < b.head
}

// kick gets a writer to take the work waiting: a parked one, or a new
// one while fewer than base run that are not stalled. Called with mu
// held.
func (b *Broker) kick() {
	if b.parked > 0 {
		b.cond.Broadcast()
		return
	}
	if b.writers < b.base {
		b.writers++
		go b.writer()
		return
	}
	// Every writer is busy. One blocked on a client that stopped reading
	// does not count, so that the other clients do not wait for it: the
	// stalled ones are counted, at most every stallCheck, and again after
	// it in case nothing else calls.
	now := time.Now()
	if now.Sub(b.checked) >= stallCheck {
		b.checked = now
		stalled := 0
		for w := b.writing.first; w != nil; w = w.link {
			if start := w.writing.Load(); start != 0 && time.Duration(now.UnixNano()-start) >= stallBound {
				stalled++
			}
		}
		for n := b.base - (b.writers - stalled); n > 0; n-- {
			b.writers++
			go b.writer()
		}
	}
	if !b.rechecking {
		b.rechecking = true
		if b.recheck == nil {
			b.recheck = time.AfterFunc(stallCheck, b.kickAgain)
		} else {
			b.recheck.Reset(stallCheck)
		}
	}
}

// kickAgain runs kick if work is still waiting.
func (b *Broker) kickAgain() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rechecking = false
	if !b.closed && (len(b.starts) > 0 || b.ready()) {
		b.kick()
	}
}

// maxKeptBatch is the most events a writer's batch slice keeps room for
// between writes: the default MaxQueue.
const maxKeptBatch = DefaultMaxQueue

// stallCheck is how often, at most, kick counts the stalled writers.
const stallCheck = 100 * time.Millisecond

// writer accepts the requests ServeHTTP hands it, and writes the events
// of ready streams, one stream at a time, until none is ready and enough
// writers are parked, or the Broker has no streams.
func (b *Broker) writer() {
	var batch []*EncodedEvent
	b.mu.Lock()
	for {
		if len(b.starts) > 0 {
			st := b.starts[0]
			b.starts[0] = nil
			b.starts = b.starts[1:]
			b.mu.Unlock()
			st.run(b)
			b.mu.Lock()
			continue
		}
		if !b.ready() {
			if b.closed || len(b.subs) == 0 || b.parked >= b.base {
				b.writers--
				b.mu.Unlock()
				return
			}
			b.parked++
			b.cond.Wait()
			b.parked--
			continue
		}
		sub := b.slots[b.low&b.mask].waiting.first
		crowded := b.waiters > 0 && b.crowdedAt(sub.next)
		b.unlink(sub)
		for q := sub.next; q < b.head; q++ {
			batch = append(batch, b.slots[q&b.mask].e)
		}
		sub.next = b.head
		b.pushWriting(sub)
		sub.taken = true
		if crowded {
			if _, busy := b.crowding(time.Now().UnixNano()); !busy {
				b.wakeWaiters()
			}
		}
		if len(b.starts) > 0 || b.ready() {
			// More for another writer: this one may block on its client.
			b.kick()
		}
		sub.writing.Store(time.Now().UnixNano())
		b.mu.Unlock()

		// No context to watch: drop interrupts the write instead, which
		// costs nothing per write.
		err := sub.s.sendEncodedBatch(context.Background(), batch)
		sub.writing.Store(0)
		clear(batch) // the events may be large: do not pin them
		batch = batch[:0]
		if cap(batch) > maxKeptBatch {
			batch = nil // one long batch should not pin its slice
		}

		b.mu.Lock()
		sub.taken = false
		if sub.left != nil {
			close(sub.left)
		}
		b.written(sub, err)
	}
}

// written puts sub, whose write ended with err, back in the ring to wait
// for its next events, or, if the write failed, nowhere: the stream has
// ended, and Serve sees it. Called with mu held.
func (b *Broker) written(sub *subscriber, err error) {
	if sub.listed != listedWriting {
		return // dropped or left meanwhile
	}
	b.unlink(sub)
	if err != nil {
		if b.waiters > 0 {
			b.wakeWaiters() // it may have been the crowded one
		}
		return
	}
	b.list(sub)
	if sub.next < b.head {
		b.kick()
	}
}

// list puts sub, listed nowhere, last in the slot of its next event, so
// that the streams are written in the same order event after event.
// Called with mu held.
func (b *Broker) list(sub *subscriber) {
	b.slots[sub.next&b.mask].waiting.push(sub)
	sub.listed = listedSlot
	b.low = min(b.low, sub.next)
}

// pushWriting appends sub, whose next is head, to the writing list.
func (b *Broker) pushWriting(sub *subscriber) {
	b.writing.push(sub)
	sub.listed = listedWriting
}

// unlink takes sub out of the list it is in. Called with mu held.
func (b *Broker) unlink(sub *subscriber) {
	switch sub.listed {
	case listedSlot:
		b.slots[sub.next&b.mask].waiting.remove(sub)
	case listedWriting:
		b.writing.remove(sub)
	}
	sub.listed = listedNowhere
}

// drop ends sub's stream with cause: the write in progress, if any, is
// cut at once through its context, and Serve ends the stream. Called
// with mu held.
func (b *Broker) drop(sub *subscriber, cause error) {
	writing := sub.listed == listedWriting || sub.taken
	b.unlink(sub)
	if sub.dropped != nil {
		return
	}
	sub.dropped = cause
	if writing {
		sub.s.interrupt(cause)
	}
	sub.cancel(cause)
	if b.waiters > 0 {
		b.wakeWaiters()
	}
}

// Serve subscribes s to the Broker and writes its events until the
// stream ends, ctx ends, or the stream is dropped (see Broker). It first
// sends, from BrokerOptions.History, the events published after
// s.LastEventID(), then the live ones, each exactly once and in order.
// The replay is written by the goroutine that calls Serve, and the live
// events by the Broker's writers. Call Serve from the handler that
// accepted s, which must wait for the stream anyway; once Serve returns,
// no write of the Broker's to s is in progress.
//
// Serve returns nil once s was closed, or the error that ended it: the
// stream's (see Stream.Err), ctx's, or one wrapping ErrQueueFull or
// ErrBrokerClosed, with which it has also ended s.
func (b *Broker) Serve(ctx context.Context, s *Stream) error {
	sub, err := b.join(ctx, s)
	if sub == nil {
		return err
	}
	if err != nil {
		b.leave(sub)
		return err
	}
	return b.wait(sub)
}

// join subscribes s and writes its replay. It returns a nil subscriber if
// the Broker is closed, and an error if the replay failed; then the
// caller calls leave.
func (b *Broker) join(ctx context.Context, s *Stream) (*subscriber, error) {
	wctx, cancel := context.WithCancelCause(ctx)
	sub := &subscriber{s: s, ctx: wctx, cancel: cancel}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		cancel(nil)
		s.end(ErrBrokerClosed)
		return nil, ErrBrokerClosed
	}
	replay, known := []*EncodedEvent(nil), true
	if b.hist != nil {
		replay, known = b.hist.Since(s.LastEventID())
	}
	sub.idx = len(b.subs)
	b.subs = append(b.subs, sub)
	// The stream starts at head: the events published from now on wait
	// for it in the ring while its replay is written, here, with no lock
	// held. Meanwhile it is in the writing list, so that falling too far
	// behind drops it and cuts the replay.
	sub.next = b.head
	b.pushWriting(sub)
	sub.writing.Store(time.Now().UnixNano())
	b.mu.Unlock()

	var err error
	if !known && b.onFailed != nil {
		err = b.onFailed(wctx, s)
	}
	if err == nil {
		err = s.sendEncodedBatch(wctx, replay)
	}
	sub.writing.Store(0)
	b.mu.Lock()
	b.written(sub, err)
	b.mu.Unlock()
	if err != nil {
		return sub, b.served(sub, err)
	}
	return sub, nil
}

// wait waits until sub's stream ends, it is dropped or its context ends,
// then leaves the Broker.
func (b *Broker) wait(sub *subscriber) error {
	var err error
	select {
	case <-sub.s.Done():
		err = sub.s.Err()
	case <-sub.ctx.Done():
		err = context.Cause(sub.ctx)
	}
	b.leave(sub)
	return b.served(sub, err)
}

// served ends sub's stream, if it was dropped, with why, and returns the
// error Serve returns.
func (b *Broker) served(sub *subscriber, err error) error {
	b.mu.Lock()
	dropped := sub.dropped
	b.mu.Unlock()
	if dropped != nil {
		sub.s.end(dropped)
		return dropped
	}
	if errors.Is(err, net.ErrClosed) && sub.s.Err() == nil {
		return nil // closed by its handler
	}
	return err
}

// leave removes sub from the Broker and waits until no writer writes to
// it.
func (b *Broker) leave(sub *subscriber) {
	b.mu.Lock()
	last := len(b.subs) - 1
	b.subs[sub.idx] = b.subs[last]
	b.subs[sub.idx].idx = sub.idx
	b.subs[last] = nil
	b.subs = b.subs[:last]
	b.unlink(sub)
	var left chan struct{}
	if sub.taken {
		left = make(chan struct{})
		sub.left = left
	}
	if b.waiters > 0 {
		b.wakeWaiters()
	}
	if len(b.subs) == 0 {
		b.cond.Broadcast() // parked writers exit
		b.evict()          // and the events are freed
	}
	b.mu.Unlock()
	if left != nil {
		// Its write ends soon: the stream has ended or its context, which
		// cuts the write.
		<-left
	}
	sub.cancel(nil)
}

// Len returns the number of streams being served.
func (b *Broker) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Close drops every stream, which ends with an error wrapping
// ErrBrokerClosed (its client reconnects, to another server if the
// process is going away), and makes later Publish and Serve calls fail.
// Call it before http.Server.Shutdown, which does not end the requests
// of live streams and would otherwise wait for them.
func (b *Broker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for _, sub := range b.subs {
		b.drop(sub, ErrBrokerClosed)
	}
	b.evict()
	b.cond.Broadcast()
	if b.recheck != nil {
		b.recheck.Stop()
	}
	return nil
}

// stallBound is how long a stream's write may be blocked before Wait
// stops waiting for that stream, and before its writer stops counting
// as one.
const stallBound = time.Second

// Wait blocks until every stream has at most half of MaxQueue events
// and half of MaxQueueBytes bytes waiting, or until ctx ends. A
// publisher that produces faster than clients read calls it before
// Publish to go at the pace of the clients instead of dropping them.
// It does not wait for a stream whose write has been blocked for over a
// second: that client has stopped reading, and the publishes that follow
// drop it.
func (b *Broker) Wait(ctx context.Context) error {
	for {
		b.mu.Lock()
		delay, busy := b.crowding(time.Now().UnixNano())
		if !busy {
			b.mu.Unlock()
			return nil
		}
		b.waiters++
		room := b.room
		b.mu.Unlock()
		t := time.NewTimer(delay)
		select {
		case <-room:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		b.mu.Lock()
		b.waiters--
		b.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// wakeWaiters wakes the callers of Wait. Called with mu held.
func (b *Broker) wakeWaiters() {
	close(b.room)
	b.room = make(chan struct{})
}

// crowdedAt reports whether a stream whose next event is seq has over
// half its bound waiting. Called with mu held.
func (b *Broker) crowdedAt(seq uint64) bool {
	n := b.head - seq
	if n == 0 {
		return false
	}
	return (b.maxQueue > 0 && n > uint64(b.maxQueue/2)) ||
		(b.maxBytes > 0 && b.total-b.slots[seq&b.mask].start > b.maxBytes/2)
}

// crowding reports whether a stream that is not stalled is crowded, and
// how long until the first crowded stream's blocked write reaches
// stallBound. Called with mu held.
func (b *Broker) crowding(now int64) (delay time.Duration, busy bool) {
	delay = stallBound
	// The streams furthest behind: the first that waits in the ring, and
	// the first ones of the writing list.
	if b.ready() && b.crowdedAt(b.low) {
		return delay, true
	}
	for w := b.writing.first; w != nil && b.crowdedAt(w.next); w = w.link {
		start := w.writing.Load()
		if start == 0 {
			return delay, true // between writes
		}
		blocked := time.Duration(now - start)
		if blocked < stallBound {
			delay, busy = min(delay, stallBound-blocked), true
		}
	}
	return delay, busy
}
