package websocket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type pingResult struct {
	rtt time.Duration
	err error
}

func goPing(c *Conn, ctx context.Context, payload []byte) <-chan pingResult {
	ch := make(chan pingResult, 1)
	go func() {
		rtt, err := c.Ping(ctx, payload)
		ch <- pingResult{rtt, err}
	}()
	return ch
}

func waitPing(t *testing.T, ch <-chan pingResult) pingResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(waitLong):
		t.Fatal("Ping did not return")
	}
	panic("unreachable")
}

func pingPending(ch <-chan pingResult, d time.Duration) bool {
	select {
	case <-ch:
		return false
	case <-time.After(d):
		return true
	}
}

// TestPingMatchesItsPong: Ping returns when the pong with its payload
// arrives, not on any pong (RFC 6455 §5.5.3: a pong echoes its ping's
// application data).
func TestPingMatchesItsPong(t *testing.T) {
	for _, tr := range transports {
		for _, client := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/%s", tr, roleName(client)), func(t *testing.T) {
				c, p := newTestConn(t, tr, client, ConnOptions{})
				startReader(t, c)
				ctx := context.Background()
				a := goPing(c, ctx, []byte("a"))
				b := goPing(c, ctx, []byte("b"))
				got := map[string]bool{}
				for range 2 {
					f := p.next(t)
					if f.op != opPing {
						t.Fatalf("got %v, want a ping", f)
					}
					got[string(f.payload)] = true
				}
				if !got["a"] || !got["b"] {
					t.Fatalf("pings sent: %v", got)
				}
				p.send(t, p.frame(true, 0, opPong, []byte("other")))
				p.send(t, p.frame(true, 0, opPong, []byte("b")))
				if r := waitPing(t, b); r.err != nil || r.rtt <= 0 {
					t.Fatalf("Ping b = %v, %v", r.rtt, r.err)
				}
				if !pingPending(a, 30*time.Millisecond) {
					t.Fatal("Ping a returned on the pong of another ping")
				}
				p.send(t, p.frame(true, 0, opPong, []byte("a")))
				if r := waitPing(t, a); r.err != nil {
					t.Fatalf("Ping a = %v", r.err)
				}
			})
		}
	}
}

// TestPingSamePayload: pings with equal payloads are each matched by one
// pong; a ping whose pong never comes ends with its context.
func TestPingSamePayload(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			c, p := newTestConn(t, tr, false, ConnOptions{})
			startReader(t, c)
			ctx := context.Background()
			first := goPing(c, ctx, []byte("x"))
			second := goPing(c, ctx, []byte("x"))
			p.expectFrame(t, opPing, []byte("x"))
			p.expectFrame(t, opPing, []byte("x"))
			p.send(t, p.frame(true, 0, opPong, []byte("x")))
			// One pong completes one ping.
			var pending <-chan pingResult
			select {
			case r := <-first:
				pending = second
				if r.err != nil {
					t.Fatal(r.err)
				}
			case r := <-second:
				pending = first
				if r.err != nil {
					t.Fatal(r.err)
				}
			case <-time.After(waitLong):
				t.Fatal("no Ping returned on the first pong")
			}
			if !pingPending(pending, 30*time.Millisecond) {
				t.Fatal("one pong completed both pings")
			}
			p.send(t, p.frame(true, 0, opPong, []byte("x")))
			if r := waitPing(t, pending); r.err != nil {
				t.Fatal(r.err)
			}

			// A ping left unanswered ends with its context.
			tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			lost := goPing(c, tctx, []byte("x"))
			p.expectFrame(t, opPing, []byte("x"))
			r := waitPing(t, lost)
			if !errors.Is(r.err, context.DeadlineExceeded) {
				t.Fatalf("unanswered Ping = %v, want context.DeadlineExceeded", r.err)
			}
			// Its late pong harms nothing, and the connection works.
			p.send(t, p.frame(true, 0, opPong, []byte("x")))
			again := goPing(c, ctx, []byte("y"))
			p.expectFrame(t, opPing, []byte("y"))
			p.send(t, p.frame(true, 0, opPong, []byte("y")))
			if r := waitPing(t, again); r.err != nil {
				t.Fatal(r.err)
			}
		})
	}
}

// TestPingEndsWithConnection: a Ping waiting for its pong returns when the
// connection closes.
func TestPingEndsWithConnection(t *testing.T) {
	c, p := newTestConn(t, overTCP, false, ConnOptions{})
	startReader(t, c)
	ch := goPing(c, context.Background(), []byte("z"))
	p.expectFrame(t, opPing, []byte("z"))
	p.nc.Close()
	if r := waitPing(t, ch); !errors.Is(r.err, net.ErrClosed) {
		t.Fatalf("Ping = %v, want net.ErrClosed", r.err)
	}
}

// TestAutoPong: every ping is answered with a pong carrying exactly its
// payload (RFC 6455 §5.5.2, §5.5.3).
func TestAutoPong(t *testing.T) {
	payloads := [][]byte{nil, []byte("a"), []byte("Hello"), pattern(125, 0), {0, 0xff, 0x80, 0xc0, 0x00}, bytes.Repeat([]byte{0xff}, 124)}
	for _, tr := range transports {
		for _, client := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/%s", tr, roleName(client)), func(t *testing.T) {
				c, p := newTestConn(t, tr, client, ConnOptions{})
				reads := startReader(t, c)
				for _, pl := range payloads {
					p.send(t, p.frame(true, 0, opPing, pl))
					p.expectFrame(t, opPong, pl)
				}
				// Ten pings at once, as Autobahn 2.10 sends.
				var b []byte
				for i := range 10 {
					b = append(b, p.frame(true, 0, opPing, []byte(fmt.Sprint("ping ", i)))...)
				}
				b = append(b, p.frame(true, 0, opText, []byte("after"))...)
				p.send(t, b)
				expectMsg(t, reads, MessageText, []byte("after"))
				for i := range 10 {
					p.expectFrame(t, opPong, []byte(fmt.Sprint("ping ", i)))
				}
			})
		}
	}
}

// TestPingPongHooks: OnPing and OnPong see each control frame's payload,
// on the reading goroutine, before the message that follows is returned.
func TestPingPongHooks(t *testing.T) {
	var mu sync.Mutex
	var events []string
	opts := ConnOptions{
		OnPing: func(b []byte) { mu.Lock(); events = append(events, "ping:"+string(b)); mu.Unlock() },
		OnPong: func(b []byte) { mu.Lock(); events = append(events, "pong:"+string(b)); mu.Unlock() },
	}
	c, p := newTestConn(t, overTCP, false, opts)
	reads := startReader(t, c)
	b := p.frame(true, 0, opPing, []byte("p1"))
	b = append(b, p.frame(true, 0, opPong, []byte("q1"))...)
	b = append(b, p.frame(false, 0, opText, []byte("he"))...)
	b = append(b, p.frame(true, 0, opPing, nil)...)
	b = append(b, p.frame(true, 0, opContinuation, []byte("llo"))...)
	p.send(t, b)
	expectMsg(t, reads, MessageText, []byte("hello"))
	mu.Lock()
	got := fmt.Sprint(events)
	mu.Unlock()
	if want := "[ping:p1 pong:q1 ping:]"; got != want {
		t.Fatalf("hooks saw %s, want %s", got, want)
	}
	// OnPing set or not, the pong goes out.
	p.expectFrame(t, opPong, []byte("p1"))
	p.expectFrame(t, opPong, nil)
}

// TestPingFunc: the callback runs exactly once, with the round-trip time
// when the pong comes, or with an error when the connection ends first.
func TestPingFunc(t *testing.T) {
	c, p := newTestConn(t, overTCP, false, ConnOptions{})
	startReader(t, c)
	var answered, lost atomic.Int32
	answeredErr := make(chan error, 2)
	lostErr := make(chan error, 2)
	if err := c.PingFunc([]byte("one"), func(rtt time.Duration, err error) {
		answered.Add(1)
		if err == nil && rtt <= 0 {
			err = fmt.Errorf("rtt %v", rtt)
		}
		answeredErr <- err
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.PingFunc([]byte("two"), func(rtt time.Duration, err error) {
		lost.Add(1)
		lostErr <- err
	}); err != nil {
		t.Fatal(err)
	}
	p.expectFrame(t, opPing, []byte("one"))
	p.expectFrame(t, opPing, []byte("two"))
	p.send(t, p.frame(true, 0, opPong, []byte("one")))
	p.send(t, p.frame(true, 0, opPong, []byte("one"))) // a duplicate pong calls nothing
	select {
	case err := <-answeredErr:
		if err != nil {
			t.Fatalf("answered ping: %v", err)
		}
	case <-time.After(waitLong):
		t.Fatal("callback not called")
	}
	p.nc.Close()
	select {
	case err := <-lostErr:
		if err == nil {
			t.Fatal("callback of the unanswered ping got no error")
		}
	case <-time.After(waitLong):
		t.Fatal("callback of the unanswered ping not called when the connection ended")
	}
	c.CloseNow()
	time.Sleep(20 * time.Millisecond)
	if answered.Load() != 1 || lost.Load() != 1 {
		t.Fatalf("callbacks called %d and %d times, want once each", answered.Load(), lost.Load())
	}
}

// TestKeepAlivePongTimeout: with Heartbeat set, a peer that never
// answers has the connection closed, and Read fails with ErrPongTimeout.
func TestKeepAlivePongTimeout(t *testing.T) {
	for _, tr := range transports {
		for _, client := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/%s", tr, roleName(client)), func(t *testing.T) {
				c, p := newTestConn(t, tr, client, ConnOptions{Heartbeat: 30 * time.Millisecond, PongTimeout: 50 * time.Millisecond})
				reads := startReader(t, c)
				f := p.next(t)
				if f.op != opPing {
					t.Fatalf("got %v, want a keep-alive ping", f)
				}
				err := expectReadErr(t, reads)
				if !errors.Is(err, ErrPongTimeout) {
					t.Fatalf("Read = %v, want errors.Is(err, ErrPongTimeout)", err)
				}
				// The connection is gone: at most a close frame before its end.
				for {
					select {
					case f, ok := <-p.frames:
						if !ok {
							return
						}
						if f.op != opClose && f.op != opPing {
							t.Fatalf("got %v after the pong timeout", f)
						}
					case <-time.After(waitLong):
						t.Fatal("connection not closed after the pong timeout")
					}
				}
			})
		}
	}
}

// TestKeepAliveAnswered: a peer that answers keeps the connection up for
// many intervals.
func TestKeepAliveAnswered(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			c, p := newTestConn(t, tr, false, ConnOptions{Heartbeat: 20 * time.Millisecond, PongTimeout: time.Second})
			p.autoPong.Store(true)
			reads := startReader(t, c)
			pings := 0
			deadline := time.After(waitLong)
			for pings < 5 {
				select {
				case f := <-p.frames:
					if f.op != opPing {
						t.Fatalf("got %v", f)
					}
					pings++
				case r := <-reads:
					t.Fatalf("Read returned %v while the peer answered every ping", r.err)
				case <-deadline:
					t.Fatalf("only %d keep-alive pings", pings)
				}
			}
			if err := c.Write(context.Background(), MessageText, []byte("alive")); err != nil {
				t.Fatal(err)
			}
			for {
				f := p.next(t)
				if f.op == opText {
					break
				}
			}
		})
	}
}

// TestPingMisuse: a payload over 125 bytes is refused before anything is
// sent.
func TestPingMisuse(t *testing.T) {
	c, p := newTestConn(t, overTCP, false, ConnOptions{})
	if _, err := c.Ping(context.Background(), make([]byte, 126)); err == nil || errors.Is(err, net.ErrClosed) {
		t.Fatalf("Ping of 126 bytes = %v, want a usage error", err)
	}
	if err := c.PingFunc(make([]byte, 200), func(time.Duration, error) { t.Error("callback called") }); err == nil {
		t.Fatal("PingFunc of 200 bytes accepted")
	}
	p.expectNothing(t, 20*time.Millisecond)
	if err := c.Write(context.Background(), MessageText, []byte("ok")); err != nil {
		t.Fatal(err)
	}
	p.expectFrame(t, opText, []byte("ok"))
}
