package realtime

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Sockets with something to write wait in one list, drained by a few
// writer goroutines shared by every socket, as eventsource.Broker does.
// A goroutine per socket, started at the first message queued, ran
// beside the broadcast that queued it: on a busy node the deliver loop
// readied thousands of writers and then waited behind them, so each
// wrote its socket's one message, a write system call per delivery. With
// a few writers, a broadcast reaches every queue long before they are
// all written, and a writer takes each socket's whole queue at once.
// The list is in the order the sockets were kicked: the socket that
// waited longest goes first. An idle socket is in no list and holds no
// goroutine; writers end once the list is empty.
var sched writerSched

type writerSched struct {
	mu      sync.Mutex
	ready   []*Socket // from head on: sockets with something to write
	head    int
	running int          // writer goroutines
	base    int          // baseWriters, as of the last start from none
	waits   atomic.Int32 // len(ready) - head, read without mu
	takes   uint64       // sockets taken, ever
	seen    uint64       // takes when recheck was armed
	recheck *time.Timer
	pending bool // recheck is armed

	// fanouts counts the publishes and channel deliveries under way on
	// this node, fanoutGen the ones begun, ever: see giveWay.
	fanouts   atomic.Int32
	fanoutGen atomic.Uint64
}

// beginFanout and endFanout bracket a Publish or a channel's delivery of
// a message: while one is under way, writers give way to it (giveWay).
func (w *writerSched) beginFanout() {
	w.fanoutGen.Add(1)
	w.fanouts.Add(1)
}

func (w *writerSched) endFanout() { w.fanouts.Add(-1) }

// maxGiveWay bounds the turns a writer gives to fan-outs under way
// before each socket it takes, so that it still writes when publishes
// never stop.
const maxGiveWay = 4

// giveWay lets the publishes and deliveries under way go first, before
// the writer takes a socket: a delivery queues a message for many
// sockets at a fraction of the cost of a write each, and a socket
// written before a burst is fully queued is written again for the rest.
// Publishing 20 messages to 10,000 EventSource sockets on one core took
// 2-2.4 writes per socket, and about twice the CPU per delivery of an
// eventsource.Broker, whose Publish never yields to its writers. It
// stops giving way once a turn let no fan-out begin: the one under way
// runs on another processor, or waits (a broker's answer), so that a
// writer never spins.
func (w *writerSched) giveWay() {
	for range maxGiveWay {
		if w.fanouts.Load() == 0 {
			return
		}
		g := w.fanoutGen.Load()
		runtime.Gosched()
		if w.fanoutGen.Load() == g {
			return
		}
	}
}

// stallBound is how long the list may make no progress before kick
// starts another writer beyond the base: a writer blocked on a client
// that stopped reading (until WriteTimeout), or on a close handshake,
// must not hold up the other sockets.
const stallBound = 20 * time.Millisecond

// baseWriters is how many writers drain the list when none is stalled.
func baseWriters() int {
	return max(4, 4*runtime.GOMAXPROCS(0))
}

// startWriter puts s in the list for a writer: s has something to write
// and none runs for it (s.writing was false).
func startWriter(s *Socket) {
	w := &sched
	w.mu.Lock()
	w.push(s)
	w.kickLocked()
	w.mu.Unlock()
}

// push appends s to the list, moving the waiting ones to the front of
// the array first once the taken ones are most of it. Called with mu
// held.
func (w *writerSched) push(s *Socket) {
	if w.head > 0 && w.head*2 >= len(w.ready) {
		n := copy(w.ready, w.ready[w.head:])
		clear(w.ready[n:])
		w.ready, w.head = w.ready[:n], 0
	}
	w.ready = append(w.ready, s)
	w.waits.Add(1)
}

// kickLocked starts a writer while fewer than the base run. Otherwise
// the list waits for the running ones, and recheck makes sure they
// progress: without a socket taken for stallBound, it starts one more.
// Called with mu held.
func (w *writerSched) kickLocked() {
	if w.running == 0 {
		// Not on every kick: GOMAXPROCS takes the scheduler's lock.
		w.base = baseWriters()
	}
	if w.running < w.base {
		w.start()
		return
	}
	if !w.pending {
		w.pending = true
		w.seen = w.takes
		if w.recheck == nil {
			w.recheck = time.AfterFunc(stallBound, w.kickAgain)
		} else {
			w.recheck.Reset(stallBound)
		}
	}
}

// start starts a writer. Called with mu held.
func (w *writerSched) start() {
	w.running++
	go w.writer()
}

// kickAgain runs stallBound after kickLocked found the base running:
// while sockets wait, one more writer if none was taken since, and
// another check later.
func (w *writerSched) kickAgain() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = false
	if w.head == len(w.ready) {
		return
	}
	if w.takes == w.seen {
		w.start()
	}
	w.kickLocked()
}

// take returns the socket that waited longest, or nil when none waits.
// Called with mu held.
func (w *writerSched) take() *Socket {
	if w.head == len(w.ready) {
		return nil
	}
	s := w.ready[w.head]
	w.ready[w.head] = nil
	w.head++
	w.takes++
	w.waits.Add(-1)
	return s
}

// waiting reports whether other sockets wait for a writer, without
// the lock: a writer asks after each batch.
func (w *writerSched) waiting() bool {
	return w.waits.Load() > 0
}

// requeue puts s back at the end of the list: it has more to write, and
// others waited longer. s.writing stays set.
func (w *writerSched) requeue(s *Socket) {
	w.mu.Lock()
	w.push(s)
	w.mu.Unlock()
}

// writer writes for the sockets of the list until it is empty.
func (w *writerSched) writer() {
	// Let the goroutine that kicked, typically a broadcast's deliver
	// loop, go on first: more of the burst is queued by the time this
	// writer takes a socket, and goes in the same write.
	runtime.Gosched()
	for {
		w.giveWay()
		w.mu.Lock()
		s := w.take()
		if s == nil {
			w.running--
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		s.writeLoop()
	}
}
