//lint:file-ignore SA1019 net/http's Transport cannot send an extended CONNECT (Go 1.26); x/net/http2.Transport can.

package websocket

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/realtime-go/realtime/extensions"
	"github.com/realtime-go/realtime/extensions/deflate"
	"github.com/realtime-go/realtime/internal/h2test"
	"golang.org/x/net/http2"
)

// h2Server serves Accept over HTTP/2 with opts and hands each accepted
// connection, with its request, to serve; the handler returns once the
// connection is closed, as Accept requires over HTTP/2.
type h2Server struct {
	u  *url.URL
	rt *http2.Transport
}

func newH2Server(t *testing.T, opts *AcceptOptions, serve func(c *Conn, r *http.Request)) *h2Server {
	t.Helper()
	var handlers sync.WaitGroup
	srv, rt := h2test.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers.Add(1)
		defer handlers.Done()
		if !IsWebSocket(r) {
			t.Errorf("IsWebSocket false for %s %s %q", r.Method, r.Proto, r.Header.Get(":protocol"))
		}
		c, err := Accept(w, r, opts)
		if err != nil {
			return
		}
		serve(c, r)
		select {
		case <-c.Done():
		case <-time.After(waitLong):
			t.Error("the connection outlived its serve function")
			c.CloseNow()
		}
	}))
	t.Cleanup(func() {
		rt.CloseIdleConnections()
		srv.Close()
		handlers.Wait()
	})
	u, _ := url.Parse(srv.URL)
	u.Scheme = "wss"
	u.Path = "/ws"
	return &h2Server{u: u, rt: rt}
}

func (s *h2Server) dial(t *testing.T, opts *ClientOptions) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	c, resp, err := NewClientHTTP2(ctx, s.rt, s.u, opts)
	if err != nil {
		t.Fatalf("NewClientHTTP2: %v", err)
	}
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Fatalf("response %s %s, want HTTP/2.0 200", resp.Proto, resp.Status)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// h2Echo echoes messages until the connection ends, and reports how.
func h2Echo(errs chan<- error) func(c *Conn, r *http.Request) {
	return func(c *Conn, r *http.Request) {
		ctx := context.Background()
		for {
			typ, p, err := c.Read(ctx)
			if err != nil {
				if errs != nil {
					errs <- err
				}
				return
			}
			if err := c.Write(ctx, typ, p); err != nil {
				return
			}
		}
	}
}

func echoOnce(t *testing.T, c *Conn, typ MessageType, p []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := c.Write(ctx, typ, p); err != nil {
		t.Fatalf("write: %v", err)
	}
	gt, got, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if gt != typ || !bytes.Equal(got, p) {
		t.Fatalf("echo: %v of %d bytes, want %v of %d", gt, len(got), typ, len(p))
	}
}

func TestHTTP2Echo(t *testing.T) {
	errs := make(chan error, 1)
	s := newH2Server(t, &AcceptOptions{Subprotocols: []string{"chat"}}, h2Echo(errs))
	c := s.dial(t, &ClientOptions{Subprotocols: []string{"other", "chat"}})
	if c.Subprotocol() != "chat" {
		t.Fatalf("subprotocol %q, want chat", c.Subprotocol())
	}
	echoOnce(t, c, MessageText, []byte("hello over h2"))
	echoOnce(t, c, MessageBinary, []byte{0, 1, 2, 0xff})
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	echoOnce(t, c, MessageBinary, big)

	// Ping: the pong comes back while a read waits.
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	read := make(chan string, 1)
	go func() {
		_, p, _ := c.Read(ctx)
		read <- string(p)
	}()
	if _, err := c.Ping(ctx, []byte("p")); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := c.Write(ctx, MessageText, []byte("after the ping")); err != nil {
		t.Fatal(err)
	}
	if got := <-read; got != "after the ping" {
		t.Fatalf("got %q", got)
	}

	if err := c.Close(4000, "done here"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	err := <-errs
	var ce CloseError
	if !errors.As(err, &ce) || ce.Code != 4000 || ce.Reason != "done here" {
		t.Fatalf("server read %v, want close 4000 \"done here\"", err)
	}
}

// TestHTTP2ServerClose: the server's close code reaches the client, and
// the handler's return after Done ends the stream cleanly.
func TestHTTP2ServerClose(t *testing.T) {
	s := newH2Server(t, nil, func(c *Conn, r *http.Request) {
		c.Close(StatusPolicyViolation, "go away")
	})
	c := s.dial(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	_, _, err := c.Read(ctx)
	if CloseStatus(err) != StatusPolicyViolation {
		t.Fatalf("read %v, want close %d", err, StatusPolicyViolation)
	}
}

func TestHTTP2Deflate(t *testing.T) {
	s := newH2Server(t, &AcceptOptions{Extensions: []extensions.Extension{deflate.New(nil)}}, h2Echo(nil))
	c := s.dial(t, &ClientOptions{Extensions: []extensions.Extension{deflate.New(nil)}})
	if !strings.HasPrefix(c.Extensions(), deflate.Name) {
		t.Fatalf("extensions %q, want %s", c.Extensions(), deflate.Name)
	}
	for range 3 {
		echoOnce(t, c, MessageText, []byte(strings.Repeat("compress me ", 1000)))
	}
	c.Close(StatusNormalClosure, "")
}

// TestHTTP2SharedConnection opens several WebSockets through one
// transport: they share one TCP connection and work at once.
func TestHTTP2SharedConnection(t *testing.T) {
	var mu sync.Mutex
	remotes := map[string]int{}
	s := newH2Server(t, nil, func(c *Conn, r *http.Request) {
		mu.Lock()
		remotes[r.RemoteAddr]++
		mu.Unlock()
		h2Echo(nil)(c, r)
	})
	const n = 5
	conns := make([]*Conn, n)
	for i := range conns {
		conns[i] = s.dial(t, nil)
	}
	for round := range 3 {
		for i, c := range conns {
			echoOnce(t, c, MessageText, []byte(strings.Repeat("x", i+round)))
		}
	}
	for _, c := range conns {
		c.Close(StatusNormalClosure, "")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(remotes) != 1 {
		t.Fatalf("%d TCP connections for %d WebSockets (%v), want 1", len(remotes), n, remotes)
	}
}

func TestHTTP2RefusedOrigin(t *testing.T) {
	s := newH2Server(t, nil, func(c *Conn, r *http.Request) { t.Error("accepted a foreign origin") })
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	c, resp, err := NewClientHTTP2(ctx, s.rt, s.u, &ClientOptions{Origin: "https://evil.example"})
	var he *HandshakeError
	if c != nil || !errors.As(err, &he) || he.Status != http.StatusForbidden || !errors.Is(err, ErrBadHandshake) {
		t.Fatalf("NewClientHTTP2 = %v, %v; want a 403 HandshakeError", c, err)
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("response %v, want 403", resp)
	}
}

// TestHTTP2ContextInterrupt: a read cut short by its context leaves the
// connection usable, as on TCP, although HTTP/2's own read deadline
// would end the stream.
func TestHTTP2ContextInterrupt(t *testing.T) {
	s := newH2Server(t, nil, h2Echo(nil))
	c := s.dial(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := c.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read %v, want the context's deadline", err)
	}
	echoOnce(t, c, MessageText, []byte("still here"))
	c.Close(StatusNormalClosure, "")
}

func TestIsWebSocketExtendedConnect(t *testing.T) {
	r := &http.Request{Method: http.MethodConnect, ProtoMajor: 2, Header: http.Header{":protocol": {"websocket"}}}
	if !IsWebSocket(r) {
		t.Fatal("IsWebSocket false for an extended CONNECT")
	}
	r.Header.Set(":protocol", "webtransport")
	if IsWebSocket(r) {
		t.Fatal("IsWebSocket true for :protocol webtransport")
	}
	r = &http.Request{Method: http.MethodConnect, ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{":protocol": {"websocket"}}}
	if IsWebSocket(r) {
		t.Fatal("IsWebSocket true for an HTTP/1.1 CONNECT")
	}
}

// TestHTTP2ServerContextInterrupt: on the server, whose HTTP/2 read
// deadline would close the request body for good, a read cut short by
// its context leaves the connection usable.
func TestHTTP2ServerContextInterrupt(t *testing.T) {
	interrupted := make(chan error, 1)
	s := newH2Server(t, nil, func(c *Conn, r *http.Request) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, _, err := c.Read(ctx)
		cancel()
		interrupted <- err
		h2Echo(nil)(c, r)
	})
	c := s.dial(t, nil)
	if err := <-interrupted; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("server read %v, want the context's deadline", err)
	}
	echoOnce(t, c, MessageText, []byte("still here"))
	c.Close(StatusNormalClosure, "")
}

// TestHTTP2WriteInterrupted: a server write blocked by HTTP/2 flow
// control, because the client does not read, ends when its context does;
// the message was cut, so the connection closes, and the handler returns
// without touching the stream again.
func TestHTTP2WriteInterrupted(t *testing.T) {
	wrote := make(chan error, 1)
	s := newH2Server(t, nil, func(c *Conn, r *http.Request) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		wrote <- c.Write(ctx, MessageBinary, make([]byte, 8<<20))
	})
	c := s.dial(t, nil)
	var err error
	select {
	case err = <-wrote:
	case <-time.After(waitLong):
		t.Fatal("blocked write not interrupted")
	}
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write %v, want the context's deadline and a closed connection", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if _, _, err := c.Read(ctx); err == nil {
		t.Fatal("client read a message the server could not finish")
	}
}

// TestHTTP2Version8Refused: RFC 8441 carries version 13 only.
func TestHTTP2Version8Refused(t *testing.T) {
	r := &http.Request{Method: http.MethodConnect, ProtoMajor: 2, Header: http.Header{
		":protocol": {"websocket"}, "Sec-Websocket-Version": {"8"}}}
	if _, e := checkRequest(r); e == nil || e.Status != http.StatusBadRequest {
		t.Fatalf("checkRequest = %v, want 400", e)
	}
	r.Header.Set("Sec-WebSocket-Version", "13")
	if _, e := checkRequest(r); e != nil {
		t.Fatalf("checkRequest of version 13 = %v", e)
	}
}
