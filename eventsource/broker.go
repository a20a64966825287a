package eventsource

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
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
// Publish encodes an event once and appends it to the queue of every
// stream; it never waits for a client. Each stream's events are written
// by its own writer, the goroutine that runs Serve (the handler's), all
// that are waiting at once with one flush. No lock is held across a
// write, so a client that stops reading holds up nobody but itself. Its
// queue is bounded (MaxQueue, MaxQueueBytes); the publish that would
// overflow it drops the stream instead: its write in progress is cut,
// its queue freed, and the stream ends with ErrQueueFull. The client
// then reconnects and, with a History, resumes where it stopped.
//
// A Broker is an http.Handler, or handlers that accept streams
// themselves call Serve. A Broker is safe for concurrent use.
type Broker struct {
	stream   Options
	hist     *History
	maxQueue int   // <0: no bound
	maxBytes int64 // <0: no bound
	onFailed func(context.Context, *Stream) error

	mu     sync.Mutex
	subs   []*subscriber // subscriber.idx is the index
	closed bool

	// crowded holds the streams with over half their bound waiting, for
	// Wait; a writer that empties the last one while waiters > 0 closes
	// room (and replaces it), waking the waiters. Taken under
	// subscriber.mu, never the other way round.
	crowdMu sync.Mutex
	crowded map[*subscriber]struct{}
	room    chan struct{}
	waiters atomic.Int32
}

// subscriber is one stream served by a Broker.
type subscriber struct {
	s      *Stream
	cancel context.CancelCauseFunc // cuts the write in progress when dropped
	wake   chan struct{}           // capacity 1: events are waiting
	idx    int                     // in Broker.subs; guarded by Broker.mu

	// writing is when the write in progress started (Unix ns), 0 if none.
	writing atomic.Int64

	mu      sync.Mutex
	q       []*EncodedEvent
	bytes   int64
	dropped error // why the stream was dropped, or nil
	over    bool  // in Broker.crowded
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
		crowded:  make(map[*subscriber]struct{}),
		room:     make(chan struct{}),
	}
	if b.maxQueue == 0 {
		b.maxQueue = DefaultMaxQueue
	}
	if b.maxBytes == 0 {
		b.maxBytes = DefaultMaxQueueBytes
	}
	return b
}

// ServeHTTP accepts an EventSource request with BrokerOptions.Stream and
// serves the stream until it ends (see Serve). Requests that are not
// EventSource requests get Accept's error response. Once the Broker is
// closed, requests get 503 (Service Unavailable), which also stops a
// browser from reconnecting to this server over and over.
func (b *Broker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		http.Error(w, ErrBrokerClosed.Error(), http.StatusServiceUnavailable)
		return
	}
	s, err := Accept(w, r, &b.stream)
	if err != nil {
		return
	}
	defer s.Close()
	b.Serve(r.Context(), s)
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
	// event either in its replay or in its queue, never both, and every
	// stream gets them in the order published.
	if b.hist != nil && e.id != "" {
		b.hist.add(e)
	}
	for _, sub := range b.subs {
		b.push(sub, e)
	}
	return nil
}

// push queues e for sub, or drops sub if its queue is full.
func (b *Broker) push(sub *subscriber, e *EncodedEvent) {
	sub.mu.Lock()
	if sub.dropped != nil {
		sub.mu.Unlock()
		return
	}
	n, bytes := len(sub.q)+1, sub.bytes+int64(len(e.b))
	if n > 1 && ((b.maxQueue > 0 && n > b.maxQueue) || (b.maxBytes > 0 && bytes > b.maxBytes)) {
		err := fmt.Errorf("%w: %d events, %d bytes waiting", ErrQueueFull, n-1, sub.bytes)
		sub.mu.Unlock()
		b.drop(sub, err)
		return
	}
	sub.q = append(sub.q, e)
	sub.bytes = bytes
	if !sub.over && ((b.maxQueue > 0 && n > b.maxQueue/2) || (b.maxBytes > 0 && bytes > b.maxBytes/2)) {
		sub.over = true
		b.crowdMu.Lock()
		b.crowded[sub] = struct{}{}
		b.crowdMu.Unlock()
	}
	sub.mu.Unlock()
	if n == 1 {
		select {
		case sub.wake <- struct{}{}:
		default:
		}
	}
}

// drop frees sub's queue and ends its stream with cause: the write in
// progress, if any, is cut at once through its context.
func (b *Broker) drop(sub *subscriber, cause error) {
	sub.mu.Lock()
	if sub.dropped == nil {
		sub.dropped = cause
		clear(sub.q)
		sub.q, sub.bytes = nil, 0
		b.uncrowd(sub)
	}
	sub.mu.Unlock()
	sub.cancel(cause)
}

// Serve subscribes s to the Broker and writes its events until the
// stream ends, ctx ends, or the stream is dropped (see Broker). It first
// sends, from BrokerOptions.History, the events published after
// s.LastEventID(), then the live ones, each exactly once and in order.
// The goroutine that calls Serve is the stream's writer, so call it from
// the handler that accepted s, which must wait for the stream anyway.
//
// Serve returns nil once s was closed, or the error that ended it: the
// stream's (see Stream.Err), ctx's, or one wrapping ErrQueueFull or
// ErrBrokerClosed, with which it has also ended s.
func (b *Broker) Serve(ctx context.Context, s *Stream) error {
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sub := &subscriber{s: s, cancel: cancel, wake: make(chan struct{}, 1)}

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		s.end(ErrBrokerClosed)
		return ErrBrokerClosed
	}
	replay, known := []*EncodedEvent(nil), true
	if b.hist != nil {
		replay, known = b.hist.Since(s.LastEventID())
	}
	sub.idx = len(b.subs)
	b.subs = append(b.subs, sub)
	b.mu.Unlock()
	defer b.leave(sub)

	// The replay is written here, by the stream's writer, with no lock
	// held: events published meanwhile wait in the queue.
	if !known && b.onFailed != nil {
		if err := b.onFailed(wctx, s); err != nil {
			return b.served(sub, wctx, err)
		}
	}
	if err := b.write(sub, wctx, replay); err != nil {
		return err
	}
	var batch []*EncodedEvent
	for {
		select {
		case <-sub.wake:
		case <-s.Done():
			return s.Err()
		case <-wctx.Done():
			return b.served(sub, wctx, context.Cause(wctx))
		}
		sub.mu.Lock()
		batch, sub.q = sub.q, batch[:0]
		sub.bytes = 0
		b.uncrowd(sub)
		sub.mu.Unlock()
		err := b.write(sub, wctx, batch)
		clear(batch) // the events may be large: do not pin them
		if err != nil {
			return err
		}
	}
}

// uncrowd takes sub out of Broker.crowded, with sub.mu held, and wakes
// the waiters once no stream is crowded.
func (b *Broker) uncrowd(sub *subscriber) {
	if !sub.over {
		return
	}
	sub.over = false
	b.crowdMu.Lock()
	delete(b.crowded, sub)
	if len(b.crowded) == 0 && b.waiters.Load() > 0 {
		close(b.room)
		b.room = make(chan struct{})
	}
	b.crowdMu.Unlock()
}

// write sends events to sub's stream with one flush.
func (b *Broker) write(sub *subscriber, ctx context.Context, events []*EncodedEvent) error {
	if len(events) == 0 {
		return nil
	}
	sub.writing.Store(time.Now().UnixNano())
	err := sub.s.sendEncodedBatch(ctx, events)
	sub.writing.Store(0)
	if err != nil {
		return b.served(sub, ctx, err)
	}
	return nil
}

// served ends sub's stream, if it was dropped, with why, and returns the
// error Serve returns.
func (b *Broker) served(sub *subscriber, ctx context.Context, err error) error {
	sub.mu.Lock()
	dropped := sub.dropped
	sub.mu.Unlock()
	if dropped != nil {
		sub.s.end(dropped)
		return dropped
	}
	if errors.Is(err, net.ErrClosed) && sub.s.Err() == nil {
		return nil // closed by its handler
	}
	return err
}

// leave removes sub from the Broker.
func (b *Broker) leave(sub *subscriber) {
	b.mu.Lock()
	last := len(b.subs) - 1
	b.subs[sub.idx] = b.subs[last]
	b.subs[sub.idx].idx = sub.idx
	b.subs[last] = nil
	b.subs = b.subs[:last]
	b.mu.Unlock()
	sub.mu.Lock()
	clear(sub.q)
	sub.q = nil
	b.uncrowd(sub)
	sub.mu.Unlock()
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
	return nil
}

// stallBound is how long a stream's write may be blocked before Wait
// stops waiting for that stream.
const stallBound = time.Second

// Wait blocks until every stream has at most half of MaxQueue events
// and half of MaxQueueBytes bytes waiting, or until ctx ends. A
// publisher that produces faster than clients read calls it before
// Publish to go at the pace of the clients instead of dropping them.
// It does not wait for a stream whose write has been blocked for over a
// second: that client has stopped reading, and the publishes that follow
// fill its queue and drop it.
func (b *Broker) Wait(ctx context.Context) error {
	for {
		b.waiters.Add(1)
		delay, room, busy := b.crowding()
		if !busy {
			b.waiters.Add(-1)
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-room:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		b.waiters.Add(-1)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// crowding reports whether a stream that is not stalled is crowded, the
// channel that is closed once none is, and how long until the first
// crowded stream's blocked write reaches stallBound.
func (b *Broker) crowding() (delay time.Duration, room chan struct{}, busy bool) {
	now := time.Now().UnixNano()
	delay = stallBound
	b.crowdMu.Lock()
	defer b.crowdMu.Unlock()
	for sub := range b.crowded {
		if start := sub.writing.Load(); start != 0 {
			blocked := time.Duration(now - start)
			if blocked >= stallBound {
				continue
			}
			delay = min(delay, stallBound-blocked)
		}
		busy = true
	}
	return delay, b.room, busy
}
