package eventsource

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/realtime-go/realtime/internal/eshook"
)

func init() {
	eshook.OnEnd = func(s any, f func()) { s.(*Stream).onEnd(f) }
	eshook.Interrupt = func(s any, cause error) { s.(*Stream).interrupt(cause) }
}

// onEnd makes f run on its own goroutine once the stream has ended.
func (s *Stream) onEnd(f func()) {
	s.lockNow()
	defer s.unlock()
	if s.ended {
		go f()
		return
	}
	s.endFn = f
}

// Stream is the server side of one EventSource connection, made by
// Accept.
//
// All methods are safe for concurrent use; concurrent sends are
// serialized event by event, so events never interleave on the wire.
//
// A stream ends once: when Close is called, when the client goes away
// (the request's context ends, or a hijacked connection's read fails),
// or when a write fails or times out. Done
// is then closed and Err tells why. Once Done is closed no write to the
// ResponseWriter is in progress or will start, so the handler may
// return.
//
// A Stream written through net/http starts no goroutines; one on a
// hijacked connection starts one, which reads the connection to see the
// client leave and ends with the stream. Keep-alive comments are
// written from a timer, under the same lock as sends, and the timer is
// stopped when the stream ends.
type Stream struct {
	w         http.ResponseWriter      // nil once hijacked
	rc        *http.ResponseController // nil once hijacked
	conn      net.Conn                 // the hijacked connection, or nil
	r         *http.Request
	lastID    string
	keepAlive time.Duration // <0: none
	timeout   time.Duration // <0: none

	// lockc is the write lock: a channel, so that waiting for it can
	// respect a context. It guards everything below up to done.
	lockc     chan struct{}
	buf       []byte      // reused encoding buffer
	head      []byte      // the response head, until written (hijacked only)
	broken    bool        // a write failed or was cut: the response cannot end cleanly
	ended     bool        // done is closed
	lastWrite time.Time   // when the last write ended, for the keep-alive
	kaTimer   *time.Timer // nil without keep-alive
	stopCtx   func() bool // stops the context.AfterFunc on r.Context()
	aborts    sync.WaitGroup
	abortFn   func() // s.abortWrite, bound once
	endFn     func() // run once the stream has ended (eshook.OnEnd)

	// closing is set before Close or the end of the request takes the
	// lock, so that queued senders give way to them.
	closing atomic.Bool

	// cut, once set, fails the write in progress and every later one
	// with its error (see interrupt).
	cut atomic.Pointer[error]

	done chan struct{}
	err  error // why the stream ended; set before done is closed
}

func newStream(w http.ResponseWriter, r *http.Request, o *Options, conn net.Conn) *Stream {
	s := &Stream{
		conn:      conn,
		r:         r,
		lastID:    lastEventID(r, o.LastEventIDParam),
		keepAlive: o.Heartbeat,
		timeout:   o.WriteTimeout,
		lockc:     make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	s.abortFn = s.abortWrite
	if conn == nil {
		s.w, s.rc = w, http.NewResponseController(w)
	}
	return s
}

// start arms the keep-alive timer and watches for the client leaving:
// the request's context, or on a hijacked connection a read of it.
func (s *Stream) start() {
	s.lockNow()
	defer s.unlock()
	if s.ended {
		return
	}
	if s.keepAlive > 0 {
		s.lastWrite = time.Now()
		s.kaTimer = time.AfterFunc(s.keepAlive, s.sendKeepAlive)
	}
	if s.conn != nil {
		go s.watchConn()
		return
	}
	s.stopCtx = context.AfterFunc(s.r.Context(), func() {
		s.end(fmt.Errorf("%w: %w", ErrClientGone, context.Cause(s.r.Context())))
	})
}

// Done returns a channel that is closed when the stream has ended.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Err returns nil while the stream is live or after it was ended by
// Close. Otherwise it tells why the stream ended: an error wrapping
// ErrClientGone, ErrWriteTimeout, or the write error.
func (s *Stream) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Close ends the stream: Done is closed and later sends fail with an
// error matching net.ErrClosed. Close waits for a write in progress,
// which WriteTimeout bounds, so that once it returns the handler may
// return. The response itself ends when the handler returns, or, on a
// hijacked connection, at once: its last chunk is written and the
// connection closed. Close returns nil, or the error that had already
// ended the stream.
func (s *Stream) Close() error {
	s.end(nil)
	return s.Err()
}

// Request returns the request the stream answers. Its context ends when
// the client goes away, but the stream already watches for that; on a
// hijacked connection (see Hijacked) it ends with the handler instead.
func (s *Stream) Request() *http.Request { return s.r }

// URL returns the request's URL.
func (s *Stream) URL() *url.URL { return s.r.URL }

// LastEventID returns the id of the last event the client received, as
// an opaque string: the Last-Event-ID header a reconnecting EventSource
// sends, or else the query parameter named by Options.LastEventIDParam.
// It is "" for a client that has seen no event with an id.
func (s *Stream) LastEventID() string { return s.lastID }

// end ends the stream with cause, once. It waits for the lock, so that
// done is never closed during a write.
func (s *Stream) end(cause error) {
	s.closing.Store(true)
	s.lockNow()
	s.endLocked(cause)
	s.unlock()
}

func (s *Stream) endLocked(cause error) {
	if s.ended {
		return
	}
	s.ended = true
	if s.kaTimer != nil {
		s.kaTimer.Stop()
	}
	if s.stopCtx != nil {
		s.stopCtx()
	}
	s.buf = nil
	s.err = cause
	if s.conn != nil {
		s.endConn(cause)
	}
	close(s.done)
	if f := s.endFn; f != nil {
		s.endFn = nil
		go f()
	}
}

// lock takes the write lock, giving up when ctx ends or the stream ends.
func (s *Stream) lock(ctx context.Context) error {
	select {
	case s.lockc <- struct{}{}:
		return nil
	default:
	}
	select {
	case s.lockc <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return &closedError{cause: s.err}
	}
}

// interrupt makes the write in progress, and every later one, fail with
// cause, without waiting for the write lock as end does: a Broker cuts
// the write to a stream it drops, so that a write context need not be
// watched for every write. The caller makes sure the handler has not
// returned.
func (s *Stream) interrupt(cause error) {
	if s.cut.CompareAndSwap(nil, &cause) {
		// A writer that set its own deadline after this one sees cut.
		s.setWriteDeadline(time.Now())
	}
}

func (s *Stream) lockNow() { s.lockc <- struct{}{} }
func (s *Stream) unlock()  { <-s.lockc }
