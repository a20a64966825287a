package realtime

import (
	"sync"
	"sync/atomic"
	"time"
)

// Writer goroutines are pooled for a moment between uses. A socket's
// writer ends once its queue is empty, so that an idle socket holds no
// goroutine; but under a stream of broadcasts every socket needs a
// writer again for each message, and a new goroutine would grow its
// stack through the write path each time (copying it twice or three
// times), which cost more than the write. A writer that has drained its
// socket therefore waits, for idleWriterTimeout, to be handed another
// socket's writing, and then ends. The pool is shared by every socket,
// and the writers in it hold no socket.
const idleWriterTimeout = 100 * time.Millisecond

// idleWriterWait is idleWriterTimeout, which a test shortens.
var idleWriterWait atomic.Int64

func init() { idleWriterWait.Store(int64(idleWriterTimeout)) }

// pooledWriter is a writer goroutine waiting in a writerShard.
type pooledWriter struct {
	state atomic.Uint32 // writerIdle, writerTaken or writerGone
	c     chan *Socket  // capacity 1: the taker never blocks
	timer *time.Timer
}

const (
	writerIdle uint32 = iota
	writerTaken
	writerGone
)

// writerShards hold the writers waiting, in shards, each a stack with
// the latest parked on top, so that a socket's kick contends with a
// few others only. A sync.Pool would drop its writers at every other
// garbage collection, which a broadcast triggers often.
var writerShards [16]writerShard

type writerShard struct {
	mu   sync.Mutex
	idle []*pooledWriter // by the time they parked; gone ones at the bottom
	_    [40]byte        // a cache line each
}

// shard returns the shard of s's writers.
func (s *Socket) shard() *writerShard {
	return &writerShards[s.shardIdx%uint32(len(writerShards))]
}

var nextShard atomic.Uint32

// startWriter gets a goroutine to run s's writer: one waiting in s's
// shard, or a new one.
func startWriter(s *Socket) {
	sh := s.shard()
	sh.mu.Lock()
	for n := len(sh.idle); n > 0; n-- {
		w := sh.idle[n-1]
		sh.idle[n-1] = nil
		sh.idle = sh.idle[:n-1]
		if w.state.CompareAndSwap(writerIdle, writerTaken) {
			sh.mu.Unlock()
			w.c <- s
			return
		}
		// Its wait ended: it is gone.
	}
	sh.mu.Unlock()
	go runWriter(s)
}

// runWriter is a writer goroutine: it writes for s, then for each
// socket it is handed while pooled.
func runWriter(s *Socket) {
	var w *pooledWriter
	for s != nil {
		s.writeLoop()
		if w == nil {
			w = &pooledWriter{c: make(chan *Socket, 1), timer: time.NewTimer(time.Duration(idleWriterWait.Load()))}
		} else {
			w.timer.Reset(time.Duration(idleWriterWait.Load()))
		}
		s = w.park(s.shard())
	}
}

// park puts w in sh and waits to be handed a socket, which it returns,
// or for idleWriterTimeout, after which it returns nil unless a socket
// is on its way.
func (w *pooledWriter) park(sh *writerShard) *Socket {
	w.state.Store(writerIdle)
	sh.mu.Lock()
	sh.idle = append(sh.idle, w)
	sh.mu.Unlock()
	select {
	case s := <-w.c:
		w.timer.Stop()
		return s
	case <-w.timer.C:
		if !w.state.CompareAndSwap(writerIdle, writerGone) {
			return <-w.c // taken just now
		}
		// The writers below w parked earlier and are gone too: all
		// wait the same time.
		sh.mu.Lock()
		for len(sh.idle) > 0 && sh.idle[0].state.Load() == writerGone {
			sh.idle[0] = nil
			sh.idle = sh.idle[1:]
		}
		sh.mu.Unlock()
		return nil
	}
}
