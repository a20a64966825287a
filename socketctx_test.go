package realtime

import (
	"context"
	"errors"
	"testing"
)

// TestSocketContext checks the socket's context against the
// context.WithCancel it replaces: it ends with the socket, with
// context.Canceled, and runs the AfterFunc registrations not stopped,
// for contexts derived from it too.
func TestSocketContext(t *testing.T) {
	type result struct {
		derived   context.Context
		ran, kept chan struct{}
		stopped   bool
	}
	got := make(chan result, 1)
	ts := newTestServer(t, nil, func(ctx context.Context, s *Socket) {
		r := result{ran: make(chan struct{}), kept: make(chan struct{})}
		if ctx.Err() != nil {
			t.Error("context ended before the socket")
		}
		if _, ok := ctx.Deadline(); ok {
			t.Error("context has a deadline")
		}
		var cancel context.CancelFunc
		r.derived, cancel = context.WithCancel(ctx)
		defer cancel()
		context.AfterFunc(ctx, func() { close(r.ran) })
		stop := context.AfterFunc(ctx, func() { close(r.kept) })
		r.stopped = stop()
		got <- r
		<-ctx.Done()
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Errorf("Err() = %v after the end", ctx.Err())
		}
	})
	wc := dialWS(t, ts, wsDial{})
	s := ts.next(t)
	r := <-got
	if !r.stopped {
		t.Fatal("stopping an AfterFunc before the end returned false")
	}
	select {
	case <-r.derived.Done():
		t.Fatal("derived context ended while the socket is open")
	default:
	}
	wc.c.CloseNow()
	waitDone(t, s)
	<-r.derived.Done()
	<-r.ran
	if !errors.Is(r.derived.Err(), context.Canceled) {
		t.Fatalf("derived Err() = %v", r.derived.Err())
	}
	select {
	case <-r.kept:
		t.Fatal("a stopped AfterFunc ran")
	default:
	}
	// After the end, AfterFunc runs at once.
	ran := make(chan struct{})
	if context.AfterFunc(s.context(), func() { close(ran) })() {
		t.Fatal("stop after the end returned true")
	}
	<-ran
}
