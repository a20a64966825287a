package websocket

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// validCloseCodes may be sent and received (RFC 6455 §7.4.1, §7.4.2 and
// the IANA registry: 1012-1014 were registered later).
var validCloseCodes = []StatusCode{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999}

// invalidCloseCodes may not appear in a close frame: 1005, 1006 and 1015
// are for local reporting only, the rest are reserved or out of range.
var invalidCloseCodes = []StatusCode{0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}

func roleName(client bool) string {
	if client {
		return "client"
	}
	return "server"
}

func TestCloseCodesFromPeer(t *testing.T) {
	for _, tr := range transports {
		for _, client := range []bool{false, true} {
			for _, code := range validCloseCodes {
				t.Run(fmt.Sprintf("%s/%s/%d", tr, roleName(client), code), func(t *testing.T) {
					c, p := newTestConn(t, tr, client, ConnOptions{})
					reads := startReader(t, c)
					reason := fmt.Sprintf("bye %d é", code)
					p.send(t, p.frame(true, 0, opClose, closeBody(code, reason)))
					p.expectClose(t, code)
					p.finishClose(t)
					err := expectReadErr(t, reads)
					if got := CloseStatus(err); got != code {
						t.Fatalf("CloseStatus(%v) = %d, want %d", err, got, code)
					}
					var ce CloseError
					if !errors.As(err, &ce) || ce.Reason != reason {
						t.Fatalf("CloseError %+v, want reason %q", ce, reason)
					}
					var pe *ProtocolError
					if errors.As(err, &pe) {
						t.Fatalf("a clean close reported as a protocol error: %v", err)
					}
				})
			}
		}
	}
}

// TestCloseCodesFromConn: Close sends exactly the code and reason given,
// and returns nil once the peer answers.
func TestCloseCodesFromConn(t *testing.T) {
	for _, tr := range transports {
		for _, client := range []bool{false, true} {
			for _, code := range validCloseCodes {
				t.Run(fmt.Sprintf("%s/%s/%d", tr, roleName(client), code), func(t *testing.T) {
					c, p := newTestConn(t, tr, client, ConnOptions{})
					reason := strings.Repeat("é", code.reasonLen())
					done := make(chan error, 1)
					go func() { done <- c.Close(code, reason) }()
					f := p.expectClose(t, code)
					if string(f.payload[2:]) != reason {
						t.Fatalf("reason %q, want %q", f.payload[2:], reason)
					}
					p.send(t, p.frame(true, 0, opClose, f.payload))
					p.finishClose(t)
					select {
					case err := <-done:
						if err != nil {
							t.Fatalf("Close = %v, want nil after a clean handshake", err)
						}
					case <-time.After(waitLong):
						t.Fatal("Close did not return")
					}
					if _, _, err := c.Read(context.Background()); !errors.Is(err, net.ErrClosed) {
						t.Fatalf("Read after Close: %v", err)
					}
				})
			}
		}
	}
}

// reasonLen varies the reason's length with the code, up to the 123 bytes
// a close frame has room for (é is 2 bytes).
func (c StatusCode) reasonLen() int { return int(c) % 62 }

// TestCloseCodesBetweenConns closes each way between two Conns.
func TestCloseCodesBetweenConns(t *testing.T) {
	for _, code := range validCloseCodes {
		for _, serverCloses := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d/serverCloses=%v", code, serverCloses), func(t *testing.T) {
				s, c := connPair(t, overTCP, ConnOptions{}, ConnOptions{})
				closer, other := c, s
				if serverCloses {
					closer, other = s, c
				}
				reads := startReader(t, other)
				reason := "reason " + strings.Repeat("x", 116)
				if err := closer.Close(code, reason); err != nil {
					t.Fatalf("Close: %v", err)
				}
				err := expectReadErr(t, reads)
				var ce CloseError
				if CloseStatus(err) != code || !errors.As(err, &ce) || ce.Reason != reason {
					t.Fatalf("peer Read: %v, want code %d reason %q", err, code, reason)
				}
			})
		}
	}
}

func TestCloseInvalidCodesFromPeer(t *testing.T) {
	for _, tr := range transports {
		for _, client := range []bool{false, true} {
			for _, code := range invalidCloseCodes {
				t.Run(fmt.Sprintf("%s/%s/%d", tr, roleName(client), code), func(t *testing.T) {
					c, p := newTestConn(t, tr, client, ConnOptions{})
					reads := startReader(t, c)
					w := p.sendAsync(p.frame(true, 0, opClose, closeBody(code, "")))
					p.expectFail(t, StatusProtocolError)
					expectProtocolError(t, expectReadErr(t, reads), StatusProtocolError)
					<-w
				})
			}
		}
	}
}

func TestClosePayloadFaults(t *testing.T) {
	cases := []struct {
		name    string
		payload []byte
		code    StatusCode
	}{
		{"one byte", []byte{0x03}, StatusProtocolError},
		{"one byte zero", []byte{0x00}, StatusProtocolError},
		{"reason not UTF-8", closeBody(1000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"), StatusInvalidFramePayloadData},
		{"reason truncated character", closeBody(1000, "ok\xe2\x82"), StatusInvalidFramePayloadData},
		{"reason lone byte", closeBody(1001, "\xff"), StatusInvalidFramePayloadData},
	}
	for _, tr := range transports {
		for _, client := range []bool{false, true} {
			for _, tc := range cases {
				t.Run(fmt.Sprintf("%s/%s/%s", tr, roleName(client), tc.name), func(t *testing.T) {
					c, p := newTestConn(t, tr, client, ConnOptions{})
					reads := startReader(t, c)
					w := p.sendAsync(p.frame(true, 0, opClose, tc.payload))
					p.expectFail(t, tc.code)
					err := expectReadErr(t, reads)
					expectProtocolError(t, err, tc.code)
					if CloseStatus(err) != -1 {
						t.Fatalf("a refused close frame reported as the peer's close: %v", err)
					}
					<-w
				})
			}
		}
	}
}

// TestCloseEmptyPayload: a close frame without a body is answered with one
// without a body (no code to echo), and reported as 1005.
func TestCloseEmptyPayload(t *testing.T) {
	for _, tr := range transports {
		for _, client := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/%s", tr, roleName(client)), func(t *testing.T) {
				c, p := newTestConn(t, tr, client, ConnOptions{})
				reads := startReader(t, c)
				p.send(t, p.frame(true, 0, opClose, nil))
				f := p.next(t)
				if f.op != opClose || len(f.payload) != 0 {
					t.Fatalf("got %v, want an empty close frame", f)
				}
				p.finishClose(t)
				err := expectReadErr(t, reads)
				if CloseStatus(err) != StatusNoStatusRcvd {
					t.Fatalf("CloseStatus(%v) = %d, want 1005", err, CloseStatus(err))
				}
			})
		}
	}
}

// TestCloseLongestReason: 123 bytes of reason fill a control frame.
func TestCloseLongestReason(t *testing.T) {
	c, p := newTestConn(t, overTCP, false, ConnOptions{})
	reads := startReader(t, c)
	reason := strings.Repeat("€", 41) // 123 bytes
	p.send(t, p.frame(true, 0, opClose, closeBody(3000, reason)))
	p.expectClose(t, 3000)
	p.finishClose(t)
	var ce CloseError
	if err := expectReadErr(t, reads); !errors.As(err, &ce) || ce.Reason != reason {
		t.Fatalf("Read: %v", err)
	}
}

// TestCloseArgumentErrors: Close refuses what may not be sent, without a
// panic, without sending anything, and leaves the connection usable.
func TestCloseArgumentErrors(t *testing.T) {
	type args struct {
		code   StatusCode
		reason string
	}
	var cases []args
	for _, code := range invalidCloseCodes {
		cases = append(cases, args{code, ""})
	}
	cases = append(cases,
		args{-1, ""},
		args{70000, ""},
		args{1000, strings.Repeat("x", 124)},
		args{1000, strings.Repeat("é", 62)},
		args{1000, "\xff"},
		args{1000, "ok\xed\xa0\x80"},
	)
	for _, client := range []bool{false, true} {
		t.Run(roleName(client), func(t *testing.T) {
			c, p := newTestConn(t, overTCP, client, ConnOptions{})
			for _, a := range cases {
				var err error
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Fatalf("Close(%d, %q) panicked: %v", a.code, trunc([]byte(a.reason)), r)
						}
					}()
					err = c.Close(a.code, a.reason)
				}()
				if err == nil {
					t.Fatalf("Close(%d, %q) = nil, want an error", a.code, trunc([]byte(a.reason)))
				}
				if errors.Is(err, net.ErrClosed) {
					t.Fatalf("Close(%d, ...) = %v: a refused call must not report the connection closed", a.code, err)
				}
			}
			p.expectNothing(t, 20*time.Millisecond)
			if err := c.Write(context.Background(), MessageText, []byte("still open")); err != nil {
				t.Fatalf("Write after refused Close calls: %v", err)
			}
			p.expectFrame(t, opText, []byte("still open"))
		})
	}
}

// closedMethods calls every method of c and reports those whose error does
// not satisfy errors.Is(err, net.ErrClosed).
func checkAllClosed(t *testing.T, c *Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	pm, err := NewPreparedMessage(MessageText, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"Read": func() error { _, _, err := c.Read(ctx); return err },
		"Reader": func() error {
			_, _, err := c.Reader(ctx)
			return err
		},
		"Write":         func() error { return c.Write(ctx, MessageText, []byte("x")) },
		"Write binary":  func() error { return c.Write(ctx, MessageBinary, nil) },
		"Writer":        func() error { _, err := c.Writer(ctx, MessageBinary); return err },
		"Ping":          func() error { _, err := c.Ping(ctx, []byte("x")); return err },
		"PingFunc":      func() error { return c.PingFunc(nil, func(time.Duration, error) {}) },
		"Close":         func() error { return c.Close(StatusNormalClosure, "") },
		"CloseNow":      func() error { return c.CloseNow() },
		"WritePrepared": func() error { return c.WritePrepared(ctx, pm) },
		"NetConn Write": func() error { _, err := NetConn(c, MessageBinary).Write([]byte("x")); return err },
	}
	for name, call := range calls {
		var err error
		within(t, waitLong, name, func() { err = call() })
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("%s after close: %v, want errors.Is(err, net.ErrClosed)", name, err)
		}
	}
}

func TestMethodsAfterClose(t *testing.T) {
	for _, client := range []bool{false, true} {
		t.Run(roleName(client)+"/Close", func(t *testing.T) {
			c, p := newTestConn(t, overTCP, client, ConnOptions{})
			done := make(chan error, 1)
			go func() { done <- c.Close(StatusNormalClosure, "") }()
			p.expectClose(t, StatusNormalClosure)
			p.send(t, p.frame(true, 0, opClose, closeBody(StatusNormalClosure, "")))
			p.finishClose(t)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			checkAllClosed(t, c)
		})
		t.Run(roleName(client)+"/CloseNow", func(t *testing.T) {
			c, _ := newTestConn(t, overTCP, client, ConnOptions{})
			if err := c.CloseNow(); err != nil {
				t.Fatal(err)
			}
			checkAllClosed(t, c)
		})
		t.Run(roleName(client)+"/peer closed", func(t *testing.T) {
			c, p := newTestConn(t, overTCP, client, ConnOptions{})
			reads := startReader(t, c)
			p.send(t, p.frame(true, 0, opClose, closeBody(4000, "")))
			p.expectClose(t, 4000)
			p.finishClose(t)
			expectReadErr(t, reads)
			checkAllClosed(t, c)
		})
		t.Run(roleName(client)+"/protocol error", func(t *testing.T) {
			c, p := newTestConn(t, overTCP, client, ConnOptions{})
			reads := startReader(t, c)
			p.send(t, p.frame(true, rsv2, opText, nil))
			p.expectFail(t, StatusProtocolError)
			expectReadErr(t, reads)
			checkAllClosed(t, c)
		})
		t.Run(roleName(client)+"/connection lost", func(t *testing.T) {
			c, p := newTestConn(t, overTCP, client, ConnOptions{})
			reads := startReader(t, c)
			p.nc.Close()
			expectReadErr(t, reads)
			checkAllClosed(t, c)
		})
	}
}

// TestCloseTimeout: a peer that never answers the close frame must not
// keep Close waiting longer than CloseTimeout (RFC 6455 §7.1.1 lets an
// endpoint give up and close the TCP connection).
func TestCloseTimeout(t *testing.T) {
	for _, tr := range transports {
		for _, client := range []bool{false, true} {
			for _, reading := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/reading=%v", tr, roleName(client), reading), func(t *testing.T) {
					c, p := newTestConn(t, tr, client, ConnOptions{CloseTimeout: 100 * time.Millisecond})
					var reads <-chan readResult
					if reading {
						reads = startReader(t, c)
					}
					done := make(chan error, 1)
					go func() { done <- c.Close(StatusGoingAway, "") }()
					p.expectClose(t, StatusGoingAway)
					select {
					case err := <-done:
						if err == nil {
							t.Error("Close = nil although the peer never answered")
						}
					case <-time.After(3 * time.Second):
						t.Error("Close still waiting 3s after a CloseTimeout of 100ms")
						c.CloseNow()
						<-done
					}
					p.expectEOF(t, waitLong)
					if reading {
						expectReadErr(t, reads)
					}
					if _, _, err := c.Read(context.Background()); !errors.Is(err, net.ErrClosed) {
						t.Errorf("Read after the timed-out Close: %v", err)
					}
				})
			}
		}
	}
}

// TestCloseDiscardsUntilEcho: with nobody reading, Close reads past the
// messages still in flight to the peer's close frame.
func TestCloseDiscardsUntilEcho(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			c, p := newTestConn(t, tr, false, ConnOptions{})
			done := make(chan error, 1)
			go func() { done <- c.Close(StatusNormalClosure, "done") }()
			p.expectClose(t, StatusNormalClosure)
			var b []byte
			for i := range 20 {
				b = append(b, p.frame(true, 0, opBinary, pattern(3000, byte(i)))...)
			}
			b = append(b, p.frame(true, 0, opClose, closeBody(StatusNormalClosure, ""))...)
			w := p.sendAsync(b)
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Close = %v", err)
				}
			case <-time.After(waitLong):
				t.Fatal("Close did not return")
			}
			p.expectEOF(t, eofWait)
			<-w
		})
	}
}

// TestPingAfterCloseSent: a ping that arrives after the Conn sent its close
// frame gets no pong (RFC 6455 §5.5.1: nothing after a close frame) and
// does not disturb the closing handshake: Close still returns nil when the
// peer's close frame follows.
func TestPingAfterCloseSent(t *testing.T) {
	for _, tr := range transports {
		for _, reading := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/reading=%v", tr, reading), func(t *testing.T) {
				c, p := newTestConn(t, tr, false, ConnOptions{})
				var reads <-chan readResult
				if reading {
					reads = startReader(t, c)
				}
				done := make(chan error, 1)
				go func() { done <- c.Close(StatusNormalClosure, "") }()
				p.expectClose(t, StatusNormalClosure)
				b := p.frame(true, 0, opPing, []byte("late"))
				b = append(b, p.frame(true, 0, opText, []byte("late"))...)
				b = append(b, p.frame(true, 0, opClose, closeBody(StatusNormalClosure, ""))...)
				w := p.sendAsync(b)
				select {
				case err := <-done:
					if err != nil {
						t.Errorf("Close = %v, want nil: the peer answered", err)
					}
				case <-time.After(waitLong):
					t.Fatal("Close did not return")
				}
				p.expectEOF(t, eofWait) // and no pong before it
				if reading {
					r := recvMsg(t, reads)
					if r.err == nil {
						// The message sent before the peer's close may be read.
						r = recvMsg(t, reads)
					}
					if CloseStatus(r.err) != StatusNormalClosure {
						t.Errorf("Read = %v, want CloseStatus 1000", r.err)
					}
				}
				<-w
			})
		}
	}
}

func TestCloseNowDoesNotWait(t *testing.T) {
	for _, tr := range transports {
		for _, client := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/%s", tr, roleName(client)), func(t *testing.T) {
				c, p := newTestConn(t, tr, client, ConnOptions{CloseTimeout: time.Minute})
				start := time.Now()
				if err := c.CloseNow(); err != nil {
					t.Fatalf("CloseNow = %v", err)
				}
				if d := time.Since(start); d > time.Second {
					t.Fatalf("CloseNow took %v", d)
				}
				// No close frame: the connection just ends.
				p.expectEOF(t, time.Second)
			})
		}
	}
}

// TestConcurrentClose: Close from several goroutines sends one close frame
// and every call returns.
func TestConcurrentClose(t *testing.T) {
	c, p := newTestConn(t, overTCP, false, ConnOptions{})
	reads := startReader(t, c)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- c.Close(StatusNormalClosure, "")
		}()
	}
	p.expectClose(t, StatusNormalClosure)
	p.send(t, p.frame(true, 0, opClose, closeBody(StatusNormalClosure, "")))
	p.expectEOF(t, eofWait) // one close frame only
	within(t, waitLong, "Close", wg.Wait)
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("Close = %v", err)
		}
	}
	expectReadErr(t, reads)
}

// TestCloseWhileWriterOpen: a close frame may go between fragments; the
// open writer then fails.
func TestCloseWhileWriterOpen(t *testing.T) {
	c, p := newTestConn(t, overTCP, false, ConnOptions{WriteBufferSize: 200, CloseTimeout: time.Second})
	w, err := c.Writer(context.Background(), MessageBinary)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 500)); err != nil {
		t.Fatal(err)
	}
	f := p.next(t)
	if f.op != opBinary || f.fin {
		t.Fatalf("first fragment %v", f)
	}
	done := make(chan error, 1)
	go func() { done <- c.Close(StatusNormalClosure, "") }()
	for {
		f = p.next(t)
		if f.op == opClose {
			break
		}
		if f.op != opContinuation || f.fin {
			t.Fatalf("got %v before the close frame", f)
		}
	}
	p.send(t, p.frame(true, 0, opClose, closeBody(StatusNormalClosure, "")))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_, werr := w.Write(make([]byte, 500))
	cerr := w.Close()
	if werr == nil && cerr == nil {
		t.Fatal("writer went on after the close frame")
	}
	if !errors.Is(cerr, net.ErrClosed) && !errors.Is(werr, net.ErrClosed) {
		t.Fatalf("writer errors %v / %v, want net.ErrClosed", werr, cerr)
	}
}
