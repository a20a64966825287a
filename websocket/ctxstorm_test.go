package websocket

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestContextEndsAnytime: contexts that end at any moment of a Read or a
// Write (on timers, from OnPing and OnPong, and from inside the net.Conn's
// own Read and Write, just before or just after the system call) never
// cost a message or the connection. Each call returns nil or its
// context's error, never net.ErrClosed or an I/O error, since no message
// is ever cut: messages are small, so they leave in one system call and
// arrive in one. 100,000 calls in all, on the raw system-call path and on
// a net.Conn.
func TestContextEndsAnytime(t *testing.T) {
	total := int64(100_000)
	if testing.Short() {
		total = 10_000
	}
	for _, wrap := range []bool{false, true} {
		name := "raw"
		if wrap {
			name = "net.Conn"
		}
		t.Run(name, func(t *testing.T) { runContextStorm(t, wrap, total/2) })
	}
}

// stormSide is one end of the storm: its Conn and the cancel functions of
// the read and the write under way, which its hooks may call.
type stormSide struct {
	name        string
	c           *Conn
	readCancel  atomic.Pointer[context.CancelFunc]
	writeCancel atomic.Pointer[context.CancelFunc]
	ops         *atomic.Int64
}

// maybeCancel ends the context of the call under way in slot, one time in
// n.
func maybeCancel(slot *atomic.Pointer[context.CancelFunc], n int) {
	if p := slot.Load(); p != nil && rand.N(n) == 0 {
		(*p)()
	}
}

// context returns a context for one call: one that never ends, one that
// ends on a timer a few microseconds away, or one the hooks may cancel.
func (s *stormSide) context(slot *atomic.Pointer[context.CancelFunc]) (context.Context, func()) {
	s.ops.Add(1)
	switch rand.N(8) {
	case 0:
		return context.Background(), func() {}
	case 1, 2, 3:
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rand.N(300))*time.Microsecond)
		return ctx, cancel
	default:
		ctx, cancel := context.WithCancel(context.Background())
		slot.Store(&cancel)
		return ctx, func() {
			slot.Store(nil)
			cancel()
		}
	}
}

// check returns nil when err is nil, errRetry when it is its context's
// error on a connection still open, and otherwise describes what is wrong.
func (s *stormSide) check(what string, ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) && !errors.Is(err, net.ErrClosed) {
		return errRetry
	}
	return fmt.Errorf("%s %s: %w (its context: %v)", s.name, what, err, ctx.Err())
}

var errRetry = errors.New("retry")

func (s *stormSide) write(p []byte) error {
	for {
		ctx, done := s.context(&s.writeCancel)
		err := s.check("Write", ctx, s.c.Write(ctx, MessageBinary, p))
		done()
		if err != errRetry {
			return err
		}
	}
}

func (s *stormSide) read() ([]byte, error) {
	for {
		ctx, done := s.context(&s.readCancel)
		_, p, err := s.c.Read(ctx)
		err = s.check("Read", ctx, err)
		done()
		if err != errRetry {
			return p, err
		}
	}
}

// hookConn calls hook around each Read and Write. It hides the socket, so
// the Conn goes through net.Conn.
type hookConn struct {
	net.Conn
	read, write *atomic.Pointer[context.CancelFunc]
}

func (h *hookConn) Read(p []byte) (int, error) {
	maybeCancel(h.read, 8)
	n, err := h.Conn.Read(p)
	maybeCancel(h.read, 8)
	return n, err
}

func (h *hookConn) Write(p []byte) (int, error) {
	maybeCancel(h.write, 8)
	n, err := h.Conn.Write(p)
	maybeCancel(h.write, 8)
	return n, err
}

func runContextStorm(t *testing.T, wrap bool, total int64) {
	var ops atomic.Int64
	server := &stormSide{name: "server", ops: &ops}
	client := &stormSide{name: "client", ops: &ops}
	opts := func(s *stormSide) ConnOptions {
		return ConnOptions{
			OnPing: func([]byte) { maybeCancel(&s.readCancel, 2) },
			OnPong: func([]byte) { maybeCancel(&s.readCancel, 2) },
		}
	}
	a, b := netPair(t, overTCP)
	if wrap {
		a = &hookConn{Conn: a, read: &server.readCancel, write: &server.writeCancel}
		b = &hookConn{Conn: b, read: &client.readCancel, write: &client.writeCancel}
	}
	sch, cch := acceptOn(a, opts(server)), dialOn(b, opts(client))
	sr, cr := <-sch, <-cch
	if sr.err != nil || cr.err != nil {
		a.Close()
		b.Close()
		t.Fatalf("handshake: server %v, client %v", sr.err, cr.err)
	}
	server.c, client.c = sr.c, cr.c
	defer server.c.CloseNow()
	defer client.c.CloseNow()
	if want := haveRawIO && !wrap; (server.c.raw != nil) != want {
		t.Fatalf("raw system calls in use: %v, want %v", server.c.raw != nil, want)
	}

	// The server echoes, pinging now and then; the client sends numbered
	// messages of random sizes, pings now and then, and checks the echo.
	var finished atomic.Bool
	echoErr := make(chan error, 1)
	go func() {
		var err error
		for n := 0; ; n++ {
			var p []byte
			if p, err = server.read(); err != nil {
				break
			}
			if n%16 == 0 {
				server.c.PingFunc([]byte("s"), func(time.Duration, error) {})
			}
			if err = server.write(p); err != nil {
				break
			}
		}
		if finished.Load() && errors.Is(err, net.ErrClosed) {
			err = nil
		}
		if err != nil {
			server.c.CloseNow() // so the client stops waiting for echoes
		}
		echoErr <- err
	}()
	var err error
	for i := uint64(0); ops.Load() < total; i++ {
		msg := make([]byte, 8+rand.N(1000))
		binary.BigEndian.PutUint64(msg, i)
		if i%16 == 0 {
			client.c.PingFunc([]byte("c"), func(time.Duration, error) {})
		}
		if err = client.write(msg); err != nil {
			break
		}
		var got []byte
		if got, err = client.read(); err != nil {
			break
		}
		if len(got) != len(msg) || binary.BigEndian.Uint64(got) != i {
			err = fmt.Errorf("echo of message %d (%d bytes) is %d bytes, numbered %d", i, len(msg), len(got), binary.BigEndian.Uint64(got))
			break
		}
	}
	if err == nil {
		// Still usable: one more echo, then the closing handshake.
		ctx := context.Background()
		if err = client.c.Write(ctx, MessageText, []byte("last")); err == nil {
			var got []byte
			if _, got, err = client.c.Read(ctx); err == nil && string(got) != "last" {
				err = fmt.Errorf("last echo %q", got)
			}
		}
	}
	finished.Store(true)
	if err == nil {
		err = client.c.Close(StatusNormalClosure, "")
	}
	client.c.CloseNow()
	if err != nil {
		t.Errorf("after %d calls: %v", ops.Load(), err)
	}
	if err := <-echoErr; err != nil {
		t.Errorf("after %d calls: %v", ops.Load(), err)
	}
}
