package websocket

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"github.com/realtime-go/realtime/internal/ctxio"
)

// watcher makes the end of a call's context interrupt the blocked I/O of
// one direction of the connection, by moving that direction's deadline
// into the past. The owner of the direction's lock uses it, one call at
// a time.
//
// The callback runs on a goroutine of its own, so when unwatch finds it
// started it may not have set the deadline yet: unwatch waits for it
// before restoring the deadline. Restoring first would let a late
// callback leave a deadline in the past behind, and every later call on
// the live connection would fail at once.
type watcher struct {
	c       *Conn
	ctx     context.Context // the watched call's, while it runs
	stop    func() bool     // stops the callback; nil when ctx had ended
	running sync.WaitGroup  // the callback, from watch to its end
	fire    func()          // interrupt, made on the first watch
}

// watch arranges for ctx's end to interrupt the I/O until unwatch. It
// reports false, and does nothing, when ctx can never end.
func (w *watcher) watch(ctx context.Context) bool {
	if ctx.Done() == nil {
		return false
	}
	w.ctx = ctx
	w.running.Add(1)
	if ctx.Err() != nil {
		w.stop = nil
		w.interrupt()
		return true
	}
	if w.fire == nil {
		w.fire = w.interrupt
	}
	w.stop = ctxio.AfterFunc(ctx, w.fire)
	return true
}

// interrupt is the callback: it makes the I/O under way, and any that
// follows until unwatch, fail with os.ErrDeadlineExceeded.
func (w *watcher) interrupt() {
	w.setDeadline(aLongTimeAgo)
	w.running.Done()
}

// unwatch ends the watch. When ctx ended meanwhile it waits for the
// callback, restores the deadline (the one set through NetConn, if any)
// and reports true: an I/O error that says the deadline passed was then
// ctx's doing.
func (w *watcher) unwatch() (ended bool) {
	if w.stop != nil && w.stop() {
		w.running.Done()
		w.ctx, w.stop = nil, nil
		return false
	}
	w.running.Wait()
	w.setDeadline(w.c.deadline(w.write()))
	w.ctx, w.stop = nil, nil
	return true
}

// write reports whether w watches the writes, c.wwatch.
func (w *watcher) write() bool { return w == &w.c.wwatch }

func (w *watcher) setDeadline(t time.Time) {
	if w.write() {
		w.c.nc.SetWriteDeadline(t)
	} else {
		w.c.nc.SetReadDeadline(t)
	}
}

// interrupted reports whether err is the failure of I/O that the watched
// context's end interrupted.
func (w *watcher) interrupted(err error) bool {
	return w.ctx != nil && w.ctx.Err() != nil && errors.Is(err, os.ErrDeadlineExceeded)
}

// ctxError is the error of a call whose context ended before its message
// started; the connection stays usable.
func ctxError(op string, ctx context.Context) error {
	return &opError{op: op, err: ctx.Err()}
}

// asCtxError returns err, unless it is the watched context's interruption
// of I/O that the connection survives: then the error says ctx ended.
func (w *watcher) asCtxError(err error) error {
	if err == nil || !w.interrupted(err) || w.c.isClosed() {
		return err
	}
	return ctxError(w.op(), w.ctx)
}

func (w *watcher) op() string {
	if w.write() {
		return "write"
	}
	return "read"
}

// cut closes the connection because a message could not be finished:
// err interrupted it half read or half written. When the watched context
// ended, that is the reason given, so the error satisfies both
// errors.Is(err, net.ErrClosed) and errors.Is(err, ctx.Err()).
func (w *watcher) cut(err error) error {
	c := w.c
	if c.isClosed() {
		return c.err()
	}
	cause := err
	if w.interrupted(err) {
		cause = w.ctx.Err()
	} else if oe, ok := err.(*opError); ok {
		cause = oe.err
	}
	return c.closeConn(&opError{op: w.op(), cut: true, err: cause})
}

// netError makes an error of the raw system-call path look like the one
// net.Conn gives for the same failure: a *net.OpError with Op "read" or
// "write" around the poller's error or an *os.SyscallError.
func (c *Conn) netError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		// RawConn's own, with Op "raw-read" or "raw-write".
		e := *oe
		e.Op = op
		return &e
	}
	return &net.OpError{Op: op, Net: c.nc.LocalAddr().Network(), Source: c.nc.LocalAddr(), Addr: c.nc.RemoteAddr(), Err: err}
}
