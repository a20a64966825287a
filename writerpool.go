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

// pooledWriter is a writer goroutine waiting in writerPool.
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

// writerPool holds the *pooledWriter waiting. A sync.Pool may drop one
// at any time: its goroutine then ends when its wait does, and a writer
// that has ended is never handed a socket (see startWriter).
var writerPool sync.Pool

// startWriter gets a goroutine to run s's writer: a pooled one, or a
// new one.
func startWriter(s *Socket) {
	for {
		w, _ := writerPool.Get().(*pooledWriter)
		if w == nil {
			go runWriter(s)
			return
		}
		if w.state.CompareAndSwap(writerIdle, writerTaken) {
			w.c <- s
			return
		}
		// Its wait ended: it is gone, or going.
	}
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
		s = w.park()
	}
}

// park puts w in the pool and waits to be handed a socket, which it
// returns, or for idleWriterTimeout, after which it returns nil unless
// a socket is on its way.
func (w *pooledWriter) park() *Socket {
	w.state.Store(writerIdle)
	writerPool.Put(w)
	select {
	case s := <-w.c:
		w.timer.Stop()
		return s
	case <-w.timer.C:
		if w.state.CompareAndSwap(writerIdle, writerGone) {
			return nil
		}
		return <-w.c // taken just now
	}
}
