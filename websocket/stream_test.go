//lint:file-ignore SA1019 net/http's Transport cannot send an extended CONNECT (Go 1.26); x/net/http2.Transport can.

package websocket

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
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
		// Long enough for the first bytes to go out on a loaded machine
		// (a context that ends before any does leaves the connection
		// usable, which 100 ms once did), far too short for 8 MiB that
		// the client does not read.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
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

// The overH2 transport of the test harness: a Conn over one stream of an
// HTTP/2 connection (RFC 8441), made by Accept or NewClientHTTP2, whose
// peer reads and writes the stream's bodies raw, so that the tests that
// run over TCP and net.Pipe run over HTTP/2 too.

// overH2 runs the Conn over an HTTP/2 stream; the peer sees the stream's
// end where it would see TCP's.
const overH2 transport = "h2"

// h2Pair is an HTTP/2 server, serving each stream with serve, and one
// client connection to it, which the test's cleanup closes with the
// server once every handler has returned.
type h2Pair struct {
	u  *url.URL
	cc *http2.ClientConn
}

func newH2Pair(t testing.TB, serve func(w http.ResponseWriter, r *http.Request)) *h2Pair {
	t.Helper()
	var handlers sync.WaitGroup
	srv, rt := h2test.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers.Add(1)
		defer handlers.Done()
		serve(w, r)
	}))
	tc, err := tls.Dial("tcp", srv.Listener.Addr().String(), rt.TLSClientConfig)
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	cc, err := rt.NewClientConn(tc)
	if err != nil {
		tc.Close()
		srv.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		handlers.Wait()
		cc.Close()
		srv.Close()
	})
	u, _ := url.Parse(srv.URL)
	u.Scheme, u.Path = "wss", "/chat"
	return &h2Pair{u: u, cc: cc}
}

// acceptH2 starts a pair whose handler accepts one connection with opts
// and keeps the stream until that connection is done.
func acceptH2(t testing.TB, opts *AcceptOptions) (*h2Pair, <-chan connResult) {
	ch := make(chan connResult, 1)
	p := newH2Pair(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, opts)
		ch <- connResult{c, err}
		if err == nil {
			<-c.Done()
		}
	})
	return p, ch
}

// dial makes a client Conn over the pair's connection, through rt when
// it is not nil.
func (p *h2Pair) dial(rt http.RoundTripper, opts *ClientOptions) (*Conn, error) {
	if rt == nil {
		rt = p.cc
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	c, _, err := NewClientHTTP2(ctx, rt, p.u, opts)
	return c, err
}

// h2PeerConn is the raw peer's side of a stream, as a net.Conn: reads
// come from one body, writes go to the other side.
type h2PeerConn struct {
	r     io.Reader
	write func(p []byte) (int, error)
	end   func() // ends the peer's side of the stream

	mu     sync.Mutex // held through a write, so that end waits for it
	closed bool
}

func (c *h2PeerConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *h2PeerConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.write(p)
}

func (c *h2PeerConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		c.end()
	}
	return nil
}

var errNoDeadline = errors.New("h2PeerConn: no deadlines")

func (c *h2PeerConn) LocalAddr() net.Addr                { return streamAddr("peer") }
func (c *h2PeerConn) RemoteAddr() net.Addr               { return streamAddr("conn") }
func (c *h2PeerConn) SetDeadline(t time.Time) error      { return errNoDeadline }
func (c *h2PeerConn) SetReadDeadline(t time.Time) error  { return errNoDeadline }
func (c *h2PeerConn) SetWriteDeadline(t time.Time) error { return errNoDeadline }

// h2ServerPeer opens a stream on p as the raw client peer of a server
// Conn: an extended CONNECT, with the fields of extra too, whose response
// must be 200.
func h2ServerPeer(t testing.TB, p *h2Pair, extra http.Header) net.Conn {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	req, _ := http.NewRequestWithContext(ctx, http.MethodConnect, "https://"+p.u.Host+p.u.Path, pr)
	req.Header = extra.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header[":protocol"] = []string{"websocket"}
	req.Header.Set("Sec-WebSocket-Version", "13")
	resp, err := p.cc.RoundTrip(req)
	if err != nil {
		cancel()
		t.Fatalf("peer's extended CONNECT: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		t.Fatalf("extended CONNECT answered %s", resp.Status)
	}
	return &h2PeerConn{r: resp.Body, write: pw.Write, end: func() {
		pw.Close()
		resp.Body.Close()
		cancel()
	}}
}

// h2ClientPeer starts a pair whose handler plays the raw server peer of
// a client Conn: it answers 200 and hands its side of the stream to the
// returned channel, and ends the stream when that is closed.
func h2ClientPeer(t testing.TB) (*h2Pair, <-chan net.Conn) {
	ch := make(chan net.Conn, 1)
	p := newH2Pair(t, func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		w.WriteHeader(http.StatusOK)
		if rc.Flush() != nil {
			return
		}
		ended := make(chan struct{})
		ch <- &h2PeerConn{r: r.Body,
			write: func(b []byte) (int, error) {
				n, err := w.Write(b)
				if err == nil {
					err = rc.Flush()
				}
				return n, err
			},
			end: func() { close(ended) }}
		<-ended
	})
	return p, ch
}

// newH2TestConn is newTestConn over HTTP/2: the Conn, a server one by
// Accept or a client one by NewClientHTTP2, and its raw peer.
func newH2TestConn(t testing.TB, client bool, opts ConnOptions) (*Conn, net.Conn) {
	t.Helper()
	if client {
		p, peers := h2ClientPeer(t)
		c, err := p.dial(nil, &ClientOptions{ConnOptions: opts})
		if err != nil {
			t.Fatalf("NewClientHTTP2: %v", err)
		}
		return c, <-peers
	}
	p, conns := acceptH2(t, &AcceptOptions{ConnOptions: opts})
	nc := h2ServerPeer(t, p, nil)
	r := <-conns
	if r.err != nil {
		nc.Close()
		t.Fatalf("Accept: %v", r.err)
	}
	return r.c, nc
}

// h2ConnPair is connPair over HTTP/2, with the whole options of both
// ends.
func h2ConnPair(t testing.TB, sopts *AcceptOptions, copts *ClientOptions) (server, client *Conn) {
	t.Helper()
	p, conns := acceptH2(t, sopts)
	c, err := p.dial(nil, copts)
	if err != nil {
		t.Fatalf("NewClientHTTP2: %v", err)
	}
	r := <-conns
	if r.err != nil {
		c.CloseNow()
		t.Fatalf("Accept: %v", r.err)
	}
	return r.c, c
}

// watchPeer makes nc the raw peer of c, closed with c at the end of the
// test, and checks what it saw of c then.
func watchPeer(t testing.TB, c *Conn, nc net.Conn, client bool) *peer {
	p := newPeer(overH2, nc, bufio.NewReader(nc), !client)
	t.Cleanup(func() {
		c.CloseNow()
		p.closePeer()
		p.checkViolations(t)
	})
	return p
}

// TestHTTP2DeflateBomb: a compressed message over HTTP/2 that inflates
// past MaxMessageSize fails with 1009, as over TCP.
func TestHTTP2DeflateBomb(t *testing.T) {
	const limit = 1 << 20
	p, conns := acceptH2(t, &AcceptOptions{
		Extensions:  []extensions.Extension{deflate.New(nil)},
		ConnOptions: ConnOptions{MaxMessageSize: limit},
	})
	nc := h2ServerPeer(t, p, http.Header{"Sec-Websocket-Extensions": {deflate.Name}})
	r := <-conns
	if r.err != nil {
		nc.Close()
		t.Fatalf("Accept: %v", r.err)
	}
	if !strings.HasPrefix(r.c.Extensions(), deflate.Name) {
		t.Fatalf("extensions %q, want %s", r.c.Extensions(), deflate.Name)
	}
	peer := watchPeer(t, r.c, nc, false)
	reads := startReader(t, r.c)
	frame := bombFrame(t, limit+4<<20)
	sent := peer.sendAsync(frame)
	peer.expectFail(t, StatusMessageTooBig)
	err := expectReadErr(t, reads)
	if !errors.Is(err, ErrMessageTooBig) {
		t.Fatalf("read %v, want ErrMessageTooBig", err)
	}
	expectProtocolError(t, err, StatusMessageTooBig)
	<-sent
}

// watchedBody records how a response body ended.
type watchedBody struct {
	io.ReadCloser
	eof, closed atomic.Bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof.Store(true)
	}
	return n, err
}

func (b *watchedBody) Close() error {
	b.closed.Store(true)
	return b.ReadCloser.Close()
}

// watchingTransport hands out its response's body watched.
type watchingTransport struct {
	rt   http.RoundTripper
	body *watchedBody
}

func (w *watchingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := w.rt.RoundTrip(req)
	if err == nil {
		w.body = &watchedBody{ReadCloser: resp.Body}
		resp.Body = w.body
	}
	return resp, err
}

// TestHTTP2CloseEndsStream: the closing handshake over HTTP/2, begun by
// either end, ends the stream cleanly: the server's handler returns, the
// client reads the end of the response body, not a reset, and closes it,
// and the HTTP/2 connection has no stream left.
func TestHTTP2CloseEndsStream(t *testing.T) {
	for _, client := range []bool{true, false} {
		t.Run(roleName(client), func(t *testing.T) {
			handlerDone := make(chan struct{})
			conns := make(chan *Conn, 1)
			p := newH2Pair(t, func(w http.ResponseWriter, r *http.Request) {
				defer close(handlerDone)
				c, err := Accept(w, r, nil)
				if err != nil {
					t.Errorf("Accept: %v", err)
					return
				}
				conns <- c
				<-c.Done()
			})
			rt := &watchingTransport{rt: p.cc}
			c, err := p.dial(rt, nil)
			if err != nil {
				t.Fatalf("NewClientHTTP2: %v", err)
			}
			defer c.CloseNow()
			s := <-conns
			defer s.CloseNow()
			closer, other := s, c
			if client {
				closer, other = c, s
			}
			reads := startReader(t, other)
			if err := closer.Close(StatusGoingAway, "bye"); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := expectReadErr(t, reads); CloseStatus(err) != StatusGoingAway {
				t.Fatalf("the other end read %v, want close 1001", err)
			}
			within(t, waitLong, "the handler returns", func() { <-handlerDone })
			within(t, waitLong, "the client Conn ends", func() { <-c.Done() })
			if !rt.body.eof.Load() || !rt.body.closed.Load() {
				t.Fatalf("response body: end read %v, closed %v; want both", rt.body.eof.Load(), rt.body.closed.Load())
			}
			deadline := time.Now().Add(waitLong)
			for p.cc.State().StreamsActive != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("%d streams active after the close", p.cc.State().StreamsActive)
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
}

// signalBody is a request or response body that reports its Close.
type signalBody struct {
	io.ReadCloser
	closed chan struct{}
}

func (b *signalBody) Close() error {
	close(b.closed)
	return b.ReadCloser.Close()
}

// streamWithWrite returns a streamConn whose writes call write and
// whose aborts call abort, and its body.
func streamWithWrite(write func([]byte) (int, error), abort func()) (*streamConn, *signalBody) {
	pr, _ := io.Pipe()
	body := &signalBody{ReadCloser: pr, closed: make(chan struct{})}
	return newStreamConn(body, write, abort, streamAddr("local"), streamAddr("remote")), body
}

// writeAsync writes p to s from a goroutine, and sends the error.
func writeAsync(s *streamConn, p []byte) <-chan error {
	ch := make(chan error, 1)
	go func() {
		_, err := s.Write(p)
		ch <- err
	}()
	return ch
}

// TestStreamCloseLetsWriteFinish: Close lets a write under way finish
// instead of aborting it at once. Aborting the flush of a close frame
// that had gone already reset the stream with INTERNAL_ERROR after a
// clean closing handshake (seen in TestPingAfterCloseSent over h2).
func TestStreamCloseLetsWriteFinish(t *testing.T) {
	writing, release := make(chan struct{}), make(chan struct{})
	var aborts atomic.Int32
	s, body := streamWithWrite(func(p []byte) (int, error) {
		close(writing)
		<-release
		return len(p), nil
	}, func() { aborts.Add(1) })
	s.closeGrace = time.Hour
	wrote := writeAsync(s, []byte("close frame"))
	<-writing
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	<-body.closed // Close has dealt with the write under way
	if n := aborts.Load(); n != 0 {
		t.Fatal("Close aborted the write under way at once")
	}
	close(release)
	if err := <-wrote; err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := aborts.Load(); n != 0 {
		t.Fatalf("%d aborts of a write that finished", n)
	}
}

// TestStreamCloseAbortsBlockedWrite: a write that does not finish within
// closeGrace, held by flow control, is aborted, so Close returns.
func TestStreamCloseAbortsBlockedWrite(t *testing.T) {
	writing, aborted := make(chan struct{}), make(chan struct{})
	s, _ := streamWithWrite(func(p []byte) (int, error) {
		close(writing)
		<-aborted
		return 0, errors.New("stream reset")
	}, func() { close(aborted) })
	s.closeGrace = time.Millisecond
	wrote := writeAsync(s, []byte("held"))
	<-writing
	within(t, waitLong, "Close with a blocked write", func() { s.Close() })
	if err := <-wrote; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write: %v, want it aborted", err)
	}
}
