package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/realtime-go/realtime/eventsource"
)

func init() {
	register(server{
		name:  "realtime",
		pkg:   "github.com/realtime-go/realtime",
		notes: "eventsource.Accept; one eventsource.Encode per broadcast into a shared ring of the last 1,024 events (no per-subscriber queue); a few writer goroutines take the subscribers that have events pending and write all of them with Stream.SendEncoded, flushing once (a ResponseWriter wrapper holds the flushes in between — see the proposal); writers also run Accept, so the handler goroutine only waits; the publisher waits for the slowest subscriber when the ring is full, and drops one whose write has been blocked for 2 s (it would reconnect and resume with Last-Event-ID)",
		start: func(cfg serverConfig) (http.Handler, func(uint64, []byte), func() string) {
			return startRealtime(cfg, true)
		},
	})
	register(server{
		name:  "realtime-flush1",
		pkg:   "github.com/realtime-go/realtime",
		notes: "as realtime, without the wrapper: one Stream.SendEncoded and so one flush (and two write-deadline changes) per event",
		start: func(cfg serverConfig) (http.Handler, func(uint64, []byte), func() string) {
			return startRealtime(cfg, false)
		},
	})
}

const (
	// rtRing is how many events the broadcaster keeps: how far a
	// subscriber may fall behind before the publisher waits for it.
	rtRing = 1024
	// rtStallGrace is how long a write to a subscriber that holds up the
	// ring may stay blocked before the publisher drops it.
	rtStallGrace = 2 * time.Second
	// rtBatch bounds the events written to one subscriber at a turn.
	rtBatch = 128
)

// rtEntry is one slot of the ring.
type rtEntry struct {
	seq uint64
	e   *eventsource.EncodedEvent
}

// rtSub is one subscriber: a cursor into the ring.
type rtSub struct {
	w       http.ResponseWriter // until a writer has called Accept
	r       *http.Request
	s       *eventsource.Stream
	hold    *flushHolder  // nil: flush every event
	started chan struct{} // closed once Accept returned (s is set, or nil on failure)
	next    atomic.Uint64 // sequence of the next event to write
	queued  atomic.Bool   // in the ready queue or being written
	gone    atomic.Bool   // dropped or ended: skip it
	writing atomic.Int64  // when the write in progress started (Unix ns), 0: none
	idx     int           // in rtBroadcaster.subs, -1 once removed; guarded by its mu
	dropped chan struct{} // closed when the publisher drops it
}

// rtBroadcaster fans events out to subscribers through a ring: publishing
// costs one store plus a wake-up of the subscribers that are idle, and a
// subscriber that fell behind catches up with one write of everything it
// missed.
type rtBroadcaster struct {
	batch bool
	ring  [rtRing]atomic.Pointer[rtEntry]
	head  atomic.Uint64 // sequence of the next event to publish

	mu    sync.Mutex
	subs  []*rtSub    // guarded by mu; rtSub.idx is the index
	dirty atomic.Bool // subs changed since the publisher's snapshot
	snap  []*rtSub    // publisher only: its copy of subs

	ready    chan *rtSub   // subscribers with events pending, for the writers
	advanced chan struct{} // a writer moved a cursor while the publisher waits
	waiting  atomic.Bool
	minNext  uint64 // publisher only: lowest cursor when last computed
	timer    *time.Timer
	evicted  atomic.Int64
	batches  atomic.Int64
	events   atomic.Int64
}

func startRealtime(_ serverConfig, batch bool) (http.Handler, func(uint64, []byte), func() string) {
	b := &rtBroadcaster{
		batch:    batch,
		ready:    make(chan *rtSub, 1<<17), // more than the subscribers: a send never blocks
		advanced: make(chan struct{}, 1),
		timer:    time.NewTimer(time.Hour),
	}
	b.timer.Stop()
	b.head.Store(1)
	b.minNext = 1
	for range 8 * runtime.GOMAXPROCS(0) {
		go b.writer()
	}
	stats := func() string {
		per := 0.0
		if n := b.batches.Load(); n > 0 {
			per = float64(b.events.Load()) / float64(n)
		}
		return fmt.Sprintf("evicted=%d,events/write=%.1f", b.evicted.Load(), per)
	}
	return b, b.publish, stats
}

// snapshot refreshes the publisher's copy of the subscriber list, if it
// changed: once per publish at most, however many join meanwhile.
func (b *rtBroadcaster) snapshot() []*rtSub {
	if b.dirty.Swap(false) {
		b.mu.Lock()
		b.snap = append(b.snap[:0], b.subs...)
		b.mu.Unlock()
		clear(b.snap[len(b.snap):cap(b.snap)])
	}
	return b.snap
}

func (b *rtBroadcaster) add(s *rtSub) {
	b.mu.Lock()
	s.next.Store(b.head.Load()) // from the next event on
	s.idx = len(b.subs)
	b.subs = append(b.subs, s)
	b.mu.Unlock()
	b.dirty.Store(true)
}

func (b *rtBroadcaster) remove(s *rtSub) {
	s.gone.Store(true)
	b.mu.Lock()
	if i := s.idx; i >= 0 {
		last := len(b.subs) - 1
		b.subs[i] = b.subs[last]
		b.subs[i].idx = i
		b.subs[last] = nil
		b.subs = b.subs[:last]
		s.idx = -1
	}
	b.mu.Unlock()
	b.dirty.Store(true)
}

// publish encodes the event once, puts it in the ring and wakes the idle
// subscribers.
func (b *rtBroadcaster) publish(seq uint64, payload []byte) {
	e, err := eventsource.Encode(eventsource.Event{ID: strconv.FormatUint(seq, 10), Data: string(payload)})
	if err != nil {
		panic(err)
	}
	h := b.head.Load()
	if h-b.minNext >= rtRing {
		b.makeRoom(h)
	}
	b.ring[h%rtRing].Store(&rtEntry{seq: h, e: e})
	b.head.Store(h + 1)
	for _, s := range b.snapshot() {
		if !s.queued.Load() && !s.queued.Swap(true) {
			b.ready <- s
		}
	}
}

// makeRoom waits until every subscriber has written the event that the
// next one overwrites. A subscriber holding the ring up whose write has
// been blocked for rtStallGrace has stopped reading: it is dropped. One
// that merely waits for a writer's turn is waited for.
func (b *rtBroadcaster) makeRoom(h uint64) {
	for {
		// Announce the wait before looking, so that a writer moving on
		// after the look still wakes the publisher.
		b.waiting.Store(true)
		low := h
		for _, s := range b.snapshot() {
			if n := s.next.Load(); !s.gone.Load() && n < low {
				low = n
			}
		}
		b.minNext = low
		if h-low < rtRing {
			b.waiting.Store(false)
			return
		}
		now := time.Now().UnixNano()
		wait, dropped := rtStallGrace, false
		for _, s := range b.snap {
			if s.gone.Load() || s.next.Load() != low {
				continue
			}
			if ws := s.writing.Load(); ws != 0 {
				if blocked := time.Duration(now - ws); blocked >= rtStallGrace {
					b.evicted.Add(1)
					s.gone.Store(true)
					close(s.dropped)
					dropped = true
				} else {
					wait = min(wait, rtStallGrace-blocked)
				}
			}
		}
		if dropped {
			continue // the others may have room already
		}
		b.timer.Reset(wait)
		select {
		case <-b.advanced:
		case <-b.timer.C:
		}
		b.timer.Stop()
	}
}

// writer writes the events pending for one ready subscriber at a time.
func (b *rtBroadcaster) writer() {
	ctx := context.Background() // each stream watches its own request
	for s := range b.ready {
		if s.s == nil {
			b.start(s)
			continue
		}
		for {
			if s.gone.Load() {
				break // stays queued: nobody wakes it again
			}
			n, h := s.next.Load(), b.head.Load()
			if n == h {
				s.queued.Store(false)
				// A publish between the load of head and the store above
				// found s queued and did not wake it: look again.
				if b.head.Load() != h && !s.queued.Swap(true) {
					continue
				}
				break
			}
			h = min(h, n+rtBatch)
			if s.hold != nil {
				s.hold.hold.Store(true)
			}
			s.writing.Store(time.Now().UnixNano())
			var err error
			for i := n; i < h && err == nil; i++ {
				if i == h-1 && s.hold != nil {
					s.hold.hold.Store(false) // the last one flushes them all
				}
				ent := b.ring[i%rtRing].Load()
				if ent.seq != i {
					// Overwritten: only possible once s was dropped.
					err = errOverrun
					break
				}
				err = s.s.SendEncoded(ctx, ent.e)
			}
			s.writing.Store(0)
			if s.hold != nil {
				s.hold.hold.Store(false)
			}
			if err != nil {
				s.gone.Store(true)
				break
			}
			s.next.Store(h)
			b.batches.Add(1)
			b.events.Add(int64(h - n))
			if b.waiting.Load() {
				select {
				case b.advanced <- struct{}{}:
				default:
				}
			}
			if b.head.Load() == h {
				continue // caught up: the check above idles it
			}
			// More is pending: give the others a turn first.
			b.ready <- s
			break
		}
	}
}

// ServeHTTP hands the request to a writer, which accepts the stream and
// subscribes it, and waits for the stream's end. The handler goroutine
// thus never runs the deep write path, and its stack stays small.
func (b *rtBroadcaster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sub := &rtSub{w: w, r: r, idx: -1, started: make(chan struct{}), dropped: make(chan struct{})}
	sub.queued.Store(true)
	b.ready <- sub
	<-sub.started
	if sub.s == nil {
		return // Accept answered with an error
	}
	defer sub.s.Close()
	defer b.remove(sub)
	select {
	case <-sub.s.Done():
	case <-sub.dropped:
	}
}

// start accepts the stream of a new subscriber, on a writer.
func (b *rtBroadcaster) start(sub *rtSub) {
	w := sub.w
	if b.batch {
		sub.hold = newFlushHolder(w)
		w = sub.hold
	}
	s, err := eventsource.Accept(w, sub.r, nil)
	sub.w, sub.r = nil, nil
	if err == nil {
		sub.s = s
		b.add(sub)
	}
	sub.queued.Store(false)
	close(sub.started)
	if err == nil && b.head.Load() != sub.next.Load() && !sub.queued.Swap(true) {
		b.ready <- sub
	}
}

var errOverrun = errors.New("ring overrun")

// flushHolder wraps a ResponseWriter so that, while hold is set, flushes
// and write-deadline changes are held back: the events written meanwhile
// wait in net/http's buffer and leave with the next real flush, and the
// deadline armed by the batch's first event covers the whole batch. The
// stream's http.ResponseController finds FlushError and SetWriteDeadline
// here, and anything else through Unwrap.
type flushHolder struct {
	http.ResponseWriter
	flush    func() error
	deadline func(time.Time) error
	hold     atomic.Bool // set by the writer outside the stream's lock
	armed    bool        // a deadline is set; only touched under the stream's lock
}

func newFlushHolder(w http.ResponseWriter) *flushHolder {
	f := &flushHolder{ResponseWriter: w}
	rc := http.NewResponseController(w)
	f.flush, f.deadline = rc.Flush, rc.SetWriteDeadline
	return f
}

func (f *flushHolder) FlushError() error {
	if f.hold.Load() {
		return nil
	}
	return f.flush()
}

func (f *flushHolder) SetWriteDeadline(t time.Time) error {
	if f.hold.Load() && f.armed {
		return nil // keep the deadline of the batch's first write
	}
	f.armed = !t.IsZero()
	return f.deadline(t)
}

func (f *flushHolder) Unwrap() http.ResponseWriter { return f.ResponseWriter }
