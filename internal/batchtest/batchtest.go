// Package batchtest helps the tests of write batching in the realtime,
// websocket and eventsource packages: it counts the writes that reach a
// connection, and gives a context whose AfterFunc costs nothing.
package batchtest

import (
	"context"
	"net"
	"sync/atomic"
)

// Conn counts the Write calls that reach the connection it wraps. The
// wrapping also hides a TCP connection's type, so a websocket.Conn
// writes through Write alone (a vectored write then counts once per
// slice).
type Conn struct {
	net.Conn
	Writes *atomic.Int64
}

func (c Conn) Write(p []byte) (int, error) {
	c.Writes.Add(1)
	return c.Conn.Write(p)
}

// Listener wraps each connection it accepts in a Conn counting into
// Writes.
type Listener struct {
	net.Listener
	Writes *atomic.Int64
}

// Accept accepts a connection and wraps it.
func (l Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Conn{c, l.Writes}, nil
}

// HookContext is a context that never ends but has a Done channel, and an
// AfterFunc method of its own that counts its calls and the calls of the
// stop functions it returns, allocating nothing: a write under it shows
// whether it registered through the method directly, and what that
// costs.
type HookContext struct {
	context.Context
	Calls, Stops int
	stop         func() bool
}

var never = make(chan struct{})

// NewHookContext returns a HookContext.
func NewHookContext() *HookContext {
	h := &HookContext{Context: context.Background()}
	h.stop = func() bool {
		h.Stops++
		return true
	}
	return h
}

// Done returns a channel that is never closed.
func (h *HookContext) Done() <-chan struct{} { return never }

// AfterFunc counts the call; f is never run, as the context never ends.
func (h *HookContext) AfterFunc(f func()) func() bool {
	h.Calls++
	return h.stop
}
