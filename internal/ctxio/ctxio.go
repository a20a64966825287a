// Package ctxio lets a context interrupt the I/O of a net.Conn that has
// no context of its own, for the client and proxy packages, and the
// websocket and eventsource writes watch their context cheaply.
package ctxio

import (
	"context"
	"net"
	"time"
)

// aLongTimeAgo is a deadline that has passed; setting it interrupts
// blocked reads and writes.
var aLongTimeAgo = time.Unix(1, 0)

// Interrupt makes c's reads and writes fail once ctx is done, by setting
// a deadline in the past. stop ends that. It reports true when ctx had
// not interrupted c; otherwise it waits until the interruption has been
// made, clears the deadline and reports false. Either way c is left with
// no deadline that ctx set: a deadline restored before the interrupting
// function has run would be overwritten by it, and every later I/O on c
// would fail.
//
// stop must be called once, from one goroutine; later calls report the
// same as the first.
func Interrupt(ctx context.Context, c net.Conn) (stop func() bool) {
	if ctx.Done() == nil {
		return func() bool { return true }
	}
	interrupted := make(chan struct{})
	after := context.AfterFunc(ctx, func() {
		c.SetDeadline(aLongTimeAgo)
		close(interrupted)
	})
	var stopped, ok bool
	return func() bool {
		if stopped {
			return ok
		}
		stopped = true
		if ok = after(); !ok {
			<-interrupted
			c.SetDeadline(time.Time{})
		}
		return ok
	}
}

// AfterFunc is context.AfterFunc, except that a context with an AfterFunc
// method of its own (as the realtime package's writer gives) is asked
// directly: context.AfterFunc would wrap it in a context of its own, at
// several allocations per call, for the same result.
func AfterFunc(ctx context.Context, f func()) (stop func() bool) {
	if a, ok := ctx.(interface{ AfterFunc(func()) func() bool }); ok {
		return a.AfterFunc(f)
	}
	return context.AfterFunc(ctx, f)
}

// Sleep waits d, or until ctx ends, and reports whether d passed first.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
