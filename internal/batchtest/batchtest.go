// Package batchtest helps the tests of write batching in the realtime,
// websocket and eventsource packages: it counts the writes that reach a
// connection, gives a context whose AfterFunc costs nothing, and compares
// writes one by one with batches.
package batchtest

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
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

// Compare benchmarks n messages written one by one against the same
// written as one batch, for n = 1, 8 and 64, in sub-benchmarks named
// one/n=N and batch/n=N, and reports the ns and the network writes per
// message, named after unit ("msg", "event"). setup prepares one
// sub-benchmark, its teardown left to b.Cleanup: it returns the counter
// of the connection's writes and write, which sends the n messages,
// batched or not.
func Compare(b *testing.B, one, batch, unit string, setup func(b *testing.B, n int, batched bool) (writes *atomic.Int64, write func() error)) {
	for _, n := range []int{1, 8, 64} {
		for _, batched := range []bool{false, true} {
			name := one
			if batched {
				name = batch
			}
			b.Run(fmt.Sprintf("%s/n=%d", name, n), func(b *testing.B) {
				writes, write := setup(b, n, batched)
				writes.Store(0)
				b.ReportAllocs()
				for b.Loop() {
					if err := write(); err != nil {
						b.Fatal(err)
					}
				}
				msgs := float64(b.N * n)
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/msgs, "ns/"+unit)
				b.ReportMetric(float64(writes.Load())/msgs, "writes/"+unit)
				b.StopTimer()
			})
		}
	}
}
