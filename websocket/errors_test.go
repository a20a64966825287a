package websocket

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// netOnly hides the socket under a net.Conn, so a Conn goes through
// net.Conn's methods rather than raw system calls.
type netOnly struct{ net.Conn }

// errWant is what an error must satisfy.
type errWant struct {
	closed  bool   // errors.Is(err, net.ErrClosed), and not otherwise
	is      error  // errors.Is(err, is), when set
	op      string // errors.As(err, **net.OpError) with this Op, when set
	syscall bool   // and that OpError's Err is an *os.SyscallError
}

// checkErr checks err against want, and that its message names the
// package once, at the start, and the operation once.
func checkErr(t *testing.T, c *Conn, what string, err error, want errWant) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", what)
		return
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "websocket: ") || strings.Count(msg, "websocket") != 1 {
		t.Errorf("%s: %q: want the package named once, at the start", what, msg)
	}
	for _, op := range []string{"read", "write"} {
		if strings.Contains(msg, op+": "+op) {
			t.Errorf("%s: %q: names %s twice", what, msg, op)
		}
	}
	if got := errors.Is(err, net.ErrClosed); got != want.closed {
		t.Errorf("%s: %q: errors.Is(err, net.ErrClosed) = %v, want %v", what, msg, got, want.closed)
	}
	if want.is != nil && !errors.Is(err, want.is) {
		t.Errorf("%s: %q: want errors.Is(err, %v)", what, msg, want.is)
	}
	if want.op == "" {
		return
	}
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Errorf("%s: %q: want a *net.OpError", what, msg)
		return
	}
	if oe.Op != want.op || oe.Net != "tcp" || oe.Source.String() != c.LocalAddr().String() || oe.Addr.String() != c.RemoteAddr().String() {
		t.Errorf("%s: OpError{Op: %q, Net: %q, Source: %v, Addr: %v}, want {%q, \"tcp\", %v, %v}", what, oe.Op, oe.Net, oe.Source, oe.Addr, want.op, c.LocalAddr(), c.RemoteAddr())
	}
	var se *os.SyscallError
	if want.syscall && !errors.As(oe.Err, &se) {
		t.Errorf("%s: OpError.Err %v (%T), want an *os.SyscallError", what, oe.Err, oe.Err)
	}
}

// errEnv is where an error case runs: c is a server Conn, and peer the
// other end, which nobody reads.
type errEnv struct {
	c      *Conn
	peer   net.Conn
	onPing atomic.Pointer[context.CancelFunc] // called by c's OnPing
}

// TestErrorContract goes down every way a call can fail, on the raw
// system-call path and on net.Conn: an error after the connection is
// closed satisfies errors.Is(err, net.ErrClosed), and only then; a
// context's end is its error; an I/O error is the *net.OpError that
// net.Conn gives; every message names the package once.
func TestErrorContract(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	bg := context.Background()
	closed := errWant{closed: true}
	type errCase struct {
		name string
		// run makes e.c fail and returns the error.
		run  func(t *testing.T, e *errEnv) error
		want errWant
		// the connection stays usable afterwards, or else every later
		// call fails with net.ErrClosed
		usable bool
	}
	cases := []errCase{
		{name: "read after CloseNow", want: closed, run: func(t *testing.T, e *errEnv) error {
			e.c.CloseNow()
			_, _, err := e.c.Read(bg)
			return err
		}},
		{name: "write after CloseNow", want: closed, run: func(t *testing.T, e *errEnv) error {
			e.c.CloseNow()
			return e.c.Write(bg, MessageText, []byte("x"))
		}},
		{name: "ping after CloseNow", want: closed, run: func(t *testing.T, e *errEnv) error {
			e.c.CloseNow()
			_, err := e.c.Ping(bg, nil)
			return err
		}},
		{name: "close after CloseNow", want: closed, run: func(t *testing.T, e *errEnv) error {
			e.c.CloseNow()
			return e.c.Close(StatusNormalClosure, "")
		}},
		{name: "read, context ended before", want: errWant{is: context.Canceled}, usable: true, run: func(t *testing.T, e *errEnv) error {
			_, _, err := e.c.Read(canceled)
			return err
		}},
		{name: "Reader, context ended before", want: errWant{is: context.Canceled}, usable: true, run: func(t *testing.T, e *errEnv) error {
			_, _, err := e.c.Reader(canceled)
			return err
		}},
		{name: "write, context ended before", want: errWant{is: context.Canceled}, usable: true, run: func(t *testing.T, e *errEnv) error {
			return e.c.Write(canceled, MessageText, []byte("x"))
		}},
		{name: "Writer, context ended before", want: errWant{is: context.Canceled}, usable: true, run: func(t *testing.T, e *errEnv) error {
			_, err := e.c.Writer(canceled, MessageText)
			return err
		}},
		{name: "ping, context ended before", want: errWant{is: context.Canceled}, usable: true, run: func(t *testing.T, e *errEnv) error {
			_, err := e.c.Ping(canceled, nil)
			return err
		}},
		{name: "read, context ends mid-message", want: errWant{closed: true, is: context.Canceled}, run: func(t *testing.T, e *errEnv) error {
			// A ping, whose OnPing ends the context, and in the same
			// system call the header and the start of a message.
			ctx, cancel := context.WithCancel(bg)
			defer cancel()
			e.onPing.Store(&cancel)
			key := [4]byte{1, 2, 3, 4}
			f := appendFrame(nil, true, 0, opPing, true, key, nil)
			f = append(f, appendFrame(nil, true, 0, opBinary, true, key, make([]byte, 100))[:20]...)
			if _, err := e.peer.Write(f); err != nil {
				t.Fatal(err)
			}
			_, _, err := e.c.Read(ctx)
			return err
		}},
		{name: "write, context ends mid-frame", want: errWant{closed: true, is: context.Canceled}, run: func(t *testing.T, e *errEnv) error {
			// The context ends once part of the frame has arrived.
			ctx, cancel := context.WithCancel(bg)
			defer cancel()
			go func() {
				e.peer.Read(make([]byte, 1))
				cancel()
			}()
			return e.c.Write(ctx, MessageBinary, make([]byte, 64<<20)) // more than the socket buffers hold
		}},
		{name: "Writer, context ends mid-message", want: errWant{closed: true, is: context.Canceled}, run: func(t *testing.T, e *errEnv) error {
			ctx, cancel := context.WithCancel(bg)
			w, err := e.c.Writer(ctx, MessageBinary)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(make([]byte, 10000)); err != nil { // a fragment goes
				t.Fatal(err)
			}
			cancel()
			return w.Close()
		}},
		{name: "read, NetConn deadline", want: errWant{is: os.ErrDeadlineExceeded, op: "read"}, usable: true, run: func(t *testing.T, e *errEnv) error {
			nc := NetConn(e.c, MessageBinary)
			nc.SetReadDeadline(aLongTimeAgo)
			_, err := nc.Read(make([]byte, 10))
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("%v: want a net.Error whose Timeout is true", err)
			}
			nc.SetReadDeadline(time.Time{})
			return err
		}},
		{name: "write, NetConn deadline", want: errWant{closed: true, is: os.ErrDeadlineExceeded, op: "write"}, run: func(t *testing.T, e *errEnv) error {
			nc := NetConn(e.c, MessageBinary)
			nc.SetWriteDeadline(aLongTimeAgo)
			_, err := nc.Write([]byte("x"))
			return err
		}},
		{name: "read, peer gone", want: errWant{closed: true, is: io.ErrUnexpectedEOF}, run: func(t *testing.T, e *errEnv) error {
			e.peer.Close()
			_, _, err := e.c.Read(bg)
			return err
		}},
		{name: "read, peer reset", want: errWant{closed: true, op: "read", syscall: true}, run: func(t *testing.T, e *errEnv) error {
			e.peer.(*net.TCPConn).SetLinger(0)
			e.peer.Close()
			_, _, err := e.c.Read(bg)
			return err
		}},
		{name: "write, peer reset", want: errWant{closed: true, op: "write", syscall: true}, run: func(t *testing.T, e *errEnv) error {
			e.peer.(*net.TCPConn).SetLinger(0)
			e.peer.Close()
			// The reset takes a moment to come back: write until it has.
			for {
				if err := e.c.Write(bg, MessageBinary, make([]byte, 100)); err != nil {
					return err
				}
			}
		}},
	}
	for _, wrap := range []bool{false, true} {
		for _, tc := range cases {
			path := "raw"
			if wrap {
				path = "net.Conn"
			}
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				a, b := netPair(t, overTCP)
				if wrap {
					a = netOnly{a}
				}
				e := &errEnv{}
				c, peer := benchConnOn(t, a, b, false, ConnOptions{
					CloseTimeout: 100 * time.Millisecond,
					OnPing: func([]byte) {
						if f := e.onPing.Load(); f != nil {
							(*f)()
						}
					},
				})
				e.c, e.peer = c, peer
				defer peer.Close()
				defer c.CloseNow()
				if (c.raw != nil) != (haveRawIO && !wrap) {
					t.Fatalf("raw system calls in use: %v", c.raw != nil)
				}
				var err error
				within(t, waitLong, tc.name, func() { err = tc.run(t, e) })
				checkErr(t, c, tc.name, err, tc.want)
				if tc.usable {
					go peer.Write(appendFrame(nil, true, 0, opText, true, [4]byte{1, 2, 3, 4}, []byte("still")))
					var p []byte
					within(t, waitLong, "Read afterwards", func() { _, p, err = c.Read(bg) })
					if err != nil || string(p) != "still" {
						t.Fatalf("Read after the error = %q, %v; want the connection usable", p, err)
					}
					return
				}
				if !errors.Is(err, net.ErrClosed) {
					return // reported; later calls could block
				}
				_, _, err = c.Read(bg)
				checkErr(t, c, "read afterwards", err, closed)
				err = c.Write(bg, MessageText, []byte("x"))
				checkErr(t, c, "write afterwards", err, closed)
			})
		}
	}
}
