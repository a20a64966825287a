package realtime

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"
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

// An idle socket holds no Done channel until something asks for it (a
// channel each was 96 bytes of every idle socket), and Done, Err and the
// context behave alike whether asked before the end or after it.
func TestDoneMadeWhenAsked(t *testing.T) {
	opened := make(chan *Socket, 2)
	h := Handler(&Options{OnConnect: func(_ context.Context, s *Socket) error {
		opened <- s
		return nil
	}}, nil)
	srv := httptest.NewServer(h)
	defer srv.Close()
	ts := &testServer{srv: srv, URL: srv.URL}
	for _, askFirst := range []bool{true, false} {
		c := dialWS(t, ts, wsDial{}) // reads the position: the socket is open
		s := <-opened
		s.mu.Lock()
		made := s.done.Made()
		s.mu.Unlock()
		if made {
			t.Fatal("an open socket nobody asked for Done holds a Done channel")
		}
		var done <-chan struct{}
		if askFirst {
			done = s.Done()
			select {
			case <-done:
				t.Fatal("Done is closed while the socket is open")
			default:
			}
		}
		if s.Err() != nil || s.context().Err() != nil {
			t.Fatalf("Err() = %v, context's %v, while open", s.Err(), s.context().Err())
		}
		c.c.CloseNow()
		if !askFirst {
			<-s.Done()
			done = s.Done()
		}
		select {
		case <-done:
		case <-time.After(waitLong):
			t.Fatal("Done not closed after the client left")
		}
		if s.Err() == nil || !errors.Is(s.context().Err(), context.Canceled) {
			t.Fatalf("after the end: Err() = %v, context's %v", s.Err(), s.context().Err())
		}
	}
}
