package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/proxy"
	"github.com/realtime-go/realtime/websocket"
)

// h2Dialer dials s directly over HTTP/2.
func h2Dialer(s *wsServer) *Dialer {
	return &Dialer{HTTP2: true, Proxy: proxy.Direct, TLSConfig: &tls.Config{RootCAs: s.rootCAs()}}
}

// eventually waits for cond, failing with what after opTimeout.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(opTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dialProto dials rawURL with d and checks the response's protocol.
func dialProto(t *testing.T, d *Dialer, rawURL string, major int) *websocket.Conn {
	t.Helper()
	c, resp, err := d.Dial(testCtx(t), rawURL)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	if resp.ProtoMajor != major {
		t.Fatalf("WebSocket over %s, want HTTP/%d", resp.Proto, major)
	}
	if resp.Request.URL.String() != rawURL {
		t.Fatalf("response URL %s, want %s", resp.Request.URL, rawURL)
	}
	return c
}

// TestDialHTTP2SharesConnection: WebSockets dialed by one Dialer share
// one HTTP/2 connection, which lasts as long as one of them is open.
func TestDialHTTP2SharesConnection(t *testing.T) {
	noProxyEnv(t)
	s := startWSServerOn(t, true, serveHTTP2, nil, nil)
	d := h2Dialer(s)
	var conns []*websocket.Conn
	for range 3 {
		conns = append(conns, dialProto(t, d, s.URL, 2))
	}
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			for j := range 5 {
				echo(t, c, fmt.Sprintf("socket %d message %d", i, j))
			}
		})
	}
	wg.Wait()
	if n := s.accepted.Load(); n != 1 {
		t.Fatalf("%d TCP connections for 3 WebSockets, want 1", n)
	}
	if got := <-s.alpn; got != "h2,http/1.1" {
		t.Fatalf("ALPN offered %q, want h2,http/1.1", got)
	}
	for _, c := range conns[:2] {
		if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	echo(t, conns[2], "the connection stays while a WebSocket uses it")
	if n := s.ended.Load(); n != 0 {
		t.Fatalf("%d connections ended with a WebSocket open", n)
	}
	if err := conns[2].Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("Close: %v", err)
	}
	eventually(t, "the HTTP/2 connection outlived its last WebSocket", func() bool { return s.ended.Load() == 1 })
	// The next Dial opens another.
	echo(t, dialProto(t, d, s.URL, 2), "again")
	if n := s.accepted.Load(); n != 2 {
		t.Fatalf("%d TCP connections, want 2", n)
	}
}

// TestDialHTTP2Fallback: a server that chooses http/1.1 by ALPN gets
// the handshake on that connection; one that speaks HTTP/2 without
// extended CONNECT gets it on a new connection. Either way the next Dial
// goes straight to HTTP/1.1, offering nothing else by ALPN.
func TestDialHTTP2Fallback(t *testing.T) {
	for _, tc := range []struct {
		name        string
		server      serverHTTP2
		conns       int32    // TCP connections after the first Dial
		http2Closed bool     // whether one of them, the HTTP/2 one, was closed
		alpn        []string // what each connection offered
	}{
		{"ALPN", serveHTTP1, 1, false, []string{"h2,http/1.1", "http/1.1"}},
		{"no extended CONNECT", serveHTTP2NoConnect, 2, true, []string{"h2,http/1.1", "http/1.1", "http/1.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noProxyEnv(t)
			s := startWSServerOn(t, true, tc.server, nil, nil)
			d := h2Dialer(s)
			echo(t, dialProto(t, d, s.URL, 1), "over HTTP/1.1")
			if n := s.accepted.Load(); n != tc.conns {
				t.Fatalf("%d TCP connections, want %d", n, tc.conns)
			}
			if tc.http2Closed {
				eventually(t, "the HTTP/2 connection was left open", func() bool { return s.ended.Load() == 1 })
			}
			echo(t, dialProto(t, d, s.URL, 1), "over HTTP/1.1 again")
			if n := s.accepted.Load(); n != tc.conns+1 {
				t.Fatalf("%d TCP connections, want %d", n, tc.conns+1)
			}
			var offered []string
			for range tc.alpn {
				offered = append(offered, <-s.alpn)
			}
			if fmt.Sprint(offered) != fmt.Sprint(tc.alpn) {
				t.Fatalf("ALPN offered %q, want %q", offered, tc.alpn)
			}
		})
	}
}

// TestDialHTTP2ThroughProxy: WebSockets over HTTP/2 through a CONNECT
// proxy share one tunnel.
func TestDialHTTP2ThroughProxy(t *testing.T) {
	noProxyEnv(t)
	s := startWSServerOn(t, true, serveHTTP2, nil, nil)
	p := startProxy(t, nil, "", nil)
	d := h2Dialer(s)
	d.Proxy = http.ProxyURL(mustParse(t, "http://"+p.addr))
	a := dialProto(t, d, s.URL, 2)
	b := dialProto(t, d, s.URL, 2)
	echo(t, a, "a")
	echo(t, b, "b")
	if r := p.request(t); r.Method != http.MethodConnect || r.RequestURI != s.Addr {
		t.Fatalf("proxy saw %s %s, want CONNECT %s", r.Method, r.RequestURI, s.Addr)
	}
	p.noRequest(t)
	if n := s.accepted.Load(); n != 1 {
		t.Fatalf("%d TCP connections, want 1", n)
	}
}

// TestDialHTTP2Redirect: a redirect over HTTP/2 is followed, to a
// WebSocket over HTTP/2.
func TestDialHTTP2Redirect(t *testing.T) {
	noProxyEnv(t)
	s := startWSServerOn(t, true, serveHTTP2, nil, map[string]http.HandlerFunc{
		"/old": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "/ws")
			w.WriteHeader(http.StatusFound)
		},
	})
	d := h2Dialer(s)
	d.MaxRedirects = 1
	old := strings.TrimSuffix(s.URL, "/ws") + "/old"
	c, resp, err := d.Dial(testCtx(t), old)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.CloseNow()
	if resp.ProtoMajor != 2 || resp.Request.URL.String() != s.URL {
		t.Fatalf("%s to %s, want HTTP/2.0 to %s", resp.Proto, resp.Request.URL, s.URL)
	}
	echo(t, c, "moved")
}

// TestSocketHTTP2: Sockets made by one Dialer open their WebSockets over
// one HTTP/2 connection.
func TestSocketHTTP2(t *testing.T) {
	rs := startRT(t, rtConfig{h2: true, serve: func(ctx context.Context, s *realtime.Socket) {
		s.Send("over " + s.Transport().String())
		<-ctx.Done()
	}})
	pool := x509.NewCertPool()
	pool.AddCert(rs.srv.Certificate())
	d := &Dialer{HTTP2: true, Proxy: proxy.Direct, TLSConfig: &tls.Config{RootCAs: pool}}
	var socks []*Socket
	for i := range 2 {
		s, rec := newSocket(t, d, rs.URL, &SocketOptions{Transport: TransportWebSocket})
		info := rec.open(t)
		if info.Transport != TransportWebSocket || info.Response == nil || info.Response.ProtoMajor != 2 {
			t.Fatalf("socket %d opened %+v, want a WebSocket over HTTP/2", i, info)
		}
		if m := nextMsg(t, s); m.Data != "over websocket" {
			t.Fatalf("first message %+v", m)
		}
		socks = append(socks, s)
	}
	for i, s := range socks {
		text := fmt.Sprint("hello ", i)
		send(t, s, text)
		if got := rs.received(t); got != "websocket:"+text {
			t.Fatalf("server received %q", got)
		}
	}
	if n := rs.conns.Load(); n != 1 {
		t.Fatalf("%d TCP connections for 2 Sockets, want 1", n)
	}
	for _, s := range socks {
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
}

// dialMany makes n Dials with d, one after the other or at once, each
// of which must give a WebSocket over HTTP/2.
func dialMany(t *testing.T, d *Dialer, rawURL string, n int, atOnce bool) []*websocket.Conn {
	t.Helper()
	conns := make([]*websocket.Conn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range conns {
		dial := func() {
			var resp *http.Response
			conns[i], resp, errs[i] = d.Dial(testCtx(t), rawURL)
			if errs[i] == nil && resp.ProtoMajor != 2 {
				errs[i] = fmt.Errorf("WebSocket over %s", resp.Proto)
			}
		}
		if atOnce {
			wg.Go(dial)
		} else {
			dial()
		}
	}
	wg.Wait()
	for i, c := range conns {
		if c != nil {
			t.Cleanup(func() { c.CloseNow() })
		}
		if errs[i] != nil {
			t.Fatalf("Dial %d: %v", i, errs[i])
		}
	}
	return conns
}

// TestDialHTTP2Concurrent: Dials made at once wait for the connection
// the first one opens, rather than open one each.
func TestDialHTTP2Concurrent(t *testing.T) {
	noProxyEnv(t)
	s := startWSServerOn(t, true, serveHTTP2, nil, nil)
	const n = 8
	for _, c := range dialMany(t, h2Dialer(s), s.URL, n, true) {
		echo(t, c, "at once")
	}
	if got := s.accepted.Load(); got != 1 {
		t.Fatalf("%d TCP connections for %d WebSockets dialed at once, want 1", got, n)
	}
}

// TestDialHTTP2StreamLimit: a WebSocket past the server's limit of
// concurrent streams gets a connection of its own rather than wait for a
// stream that another WebSocket holds, also when the Dials are made at
// once, before the server has told its limit.
func TestDialHTTP2StreamLimit(t *testing.T) {
	for _, concurrent := range []bool{false, true} {
		t.Run(fmt.Sprint("concurrent=", concurrent), func(t *testing.T) {
			noProxyEnv(t)
			s := startWSServerOn(t, true, serveHTTP2TwoStreams, nil, nil)
			const n = 5
			for i, c := range dialMany(t, h2Dialer(s), s.URL, n, concurrent) {
				echo(t, c, fmt.Sprint("stream ", i))
			}
			if got := s.accepted.Load(); got != 3 {
				t.Fatalf("%d TCP connections for %d WebSockets, 2 per connection, want 3", got, n)
			}
		})
	}
}

// TestDialHTTP2GoAway: a handshake that a shared connection's GOAWAY
// stopped before the server saw it is made again on a new connection.
func TestDialHTTP2GoAway(t *testing.T) {
	noProxyEnv(t)
	s := startWSServerOn(t, true, serveHTTP2GoAwayFirst, nil, nil)
	echo(t, dialProto(t, h2Dialer(s), s.URL, 2), "after a GOAWAY")
	if n := s.accepted.Load(); n != 2 {
		t.Fatalf("%d TCP connections, want 2", n)
	}
}
