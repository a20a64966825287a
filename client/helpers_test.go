package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realtime-go/realtime/internal/testcert"
	"github.com/realtime-go/realtime/websocket"
	"golang.org/x/net/http2"
)

// opTimeout bounds one step of a test; it is generous because the tests
// share two cores with other builds.
const opTimeout = 30 * time.Second

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	t.Cleanup(cancel)
	return ctx
}

// seen is what a test server records of a request.
type seen struct {
	r   *http.Request
	sni string
}

func waitSeen(t *testing.T, ch <-chan seen) seen {
	t.Helper()
	return within(t, ch, "server saw no request")
}

// within receives from ch, failing with what after opTimeout.
func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(opTimeout):
		t.Fatal(what)
		var zero T
		return zero
	}
}

// wsServer is an httptest server whose /ws endpoint echoes messages with
// our websocket package; extra handlers may be added.
type wsServer struct {
	srv  *httptest.Server
	Addr string // 127.0.0.1:port
	URL  string // ws://127.0.0.1:port/ws or wss://...
	reqs chan seen

	alpn     chan string  // the ALPN protocols each TLS client offered, comma-separated
	accepted atomic.Int32 // TCP connections accepted
	ended    atomic.Int32 // TCP connections closed (not those an HTTP/1.1 WebSocket hijacked)

	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []*websocket.Conn
	closed bool
}

func startWSServer(t *testing.T, secure bool, opts *websocket.AcceptOptions, extra map[string]http.HandlerFunc) *wsServer {
	t.Helper()
	return startWSServerOn(t, secure, serveHTTP1, opts, extra)
}

// serverHTTP2 says whether a secure test server speaks HTTP/2.
type serverHTTP2 int

const (
	serveHTTP1            serverHTTP2 = iota // ALPN chooses http/1.1
	serveHTTP2                               // net/http's HTTP/2, with extended CONNECT (see TestMain)
	serveHTTP2NoConnect                      // an HTTP/2 server without extended CONNECT
	serveHTTP2TwoStreams                     // serveHTTP2, at most two streams per connection
	serveHTTP2GoAwayFirst                    // serveHTTP2, but the first connection goes away before its first request
)

// startWSServerOn is startWSServer, serving HTTP/2 too as h2 says when
// secure.
func startWSServerOn(t *testing.T, secure bool, h2 serverHTTP2, opts *websocket.AcceptOptions, extra map[string]http.HandlerFunc) *wsServer {
	t.Helper()
	s := &wsServer{reqs: make(chan seen, 64), alpn: make(chan string, 64)}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		s.record(r)
		c, err := websocket.Accept(w, r, opts)
		if err != nil {
			return
		}
		if !s.track(c) {
			return
		}
		defer s.wg.Done()
		ctx := context.Background()
		for {
			typ, p, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, p); err != nil {
				return
			}
		}
	})
	for p, h := range extra {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			s.record(r)
			h(w, r)
		})
	}
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			s.accepted.Add(1)
		case http.StateClosed:
			s.ended.Add(1)
		}
	}
	if secure {
		s.srv.TLS = &tls.Config{GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			select {
			case s.alpn <- strings.Join(hello.SupportedProtos, ","):
			default:
			}
			return nil, nil
		}}
		switch h2 {
		case serveHTTP2:
			s.srv.EnableHTTP2 = true
		case serveHTTP2TwoStreams:
			s.srv.EnableHTTP2 = true
			s.srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: 2}
		case serveHTTP2NoConnect:
			s.srv.TLS.NextProtos = []string{"h2", "http/1.1"}
			s.srv.Config.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){"h2": func(_ *http.Server, c *tls.Conn, _ http.Handler) {
				serveFakeH2(c, false)
			}}
		case serveHTTP2GoAwayFirst:
			var first atomic.Bool
			s.srv.TLS.NextProtos = []string{"h2"}
			s.srv.Config.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){"h2": func(hs *http.Server, c *tls.Conn, h http.Handler) {
				if first.CompareAndSwap(false, true) {
					serveFakeH2(c, true)
					return
				}
				// With TLSNextProto set, net/http serves no HTTP/2 itself;
				// x/net's server (deprecated for net/http's) is the one that
				// serves a single connection.
				//lint:ignore SA1019 see above
				(&http2.Server{}).ServeConn(c, &http2.ServeConnOpts{BaseConfig: hs, Handler: h})
			}}
		}
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	t.Cleanup(s.srv.Close)
	t.Cleanup(s.close)
	s.Addr = s.srv.Listener.Addr().String()
	if secure {
		s.URL = "wss://" + s.Addr + "/ws"
	} else {
		s.URL = "ws://" + s.Addr + "/ws"
	}
	return s
}

// serveFakeH2 plays an HTTP/2 server that serves no request. Without
// extendedConnect its SETTINGS lack SETTINGS_ENABLE_CONNECT_PROTOCOL, as
// net/http's without GODEBUG=http2xconnect=1, so a client that wants a
// WebSocket gives up before it sends a request; with it, the server goes
// away (GOAWAY, last stream 0) when the first request comes, as a server
// shutting down does, so that the request never reaches it. It ends when
// the client closes.
func serveFakeH2(c *tls.Conn, extendedConnect bool) {
	defer c.Close()
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(c, preface); err != nil || string(preface) != http2.ClientPreface {
		return
	}
	fr := http2.NewFramer(c, c)
	var settings []http2.Setting
	if extendedConnect {
		settings = append(settings, http2.Setting{ID: http2.SettingEnableConnectProtocol, Val: 1})
	}
	if fr.WriteSettings(settings...) != nil {
		return
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() && fr.WriteSettingsAck() != nil {
				return
			}
		case *http2.HeadersFrame:
			if fr.WriteGoAway(0, http2.ErrCodeNo, nil) != nil {
				return
			}
		}
	}
}

func (s *wsServer) record(r *http.Request) {
	sv := seen{r: r}
	if r.TLS != nil {
		sv.sni = r.TLS.ServerName
	}
	select {
	case s.reqs <- sv:
	default:
	}
}

// track registers a connection whose handler is running, so that
// cleanup closes it and waits for the handler.
func (s *wsServer) track(c *websocket.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.CloseNow()
		return false
	}
	s.conns = append(s.conns, c)
	s.wg.Add(1)
	return true
}

func (s *wsServer) close() {
	s.mu.Lock()
	s.closed = true
	for _, c := range s.conns {
		c.CloseNow()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// rootCAs returns a pool trusting the server's certificate, which is
// valid for 127.0.0.1 and example.com.
func (s *wsServer) rootCAs() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.srv.Certificate())
	return p
}

// testProxy is a small HTTP proxy on loopback: CONNECT tunnels, and
// forward mode that strips Upgrade as squid does by default.
type testProxy struct {
	ln     net.Listener
	addr   string
	reqs   chan *http.Request
	answer string            // when set, the reply to every request
	refuse string            // when set, the reply to a CONNECT to a port other than 443
	remap  map[string]string // CONNECT target rewrites, such as example.com:443 -> 127.0.0.1:port

	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
}

// startProxy starts a test proxy; with cert it speaks TLS (an https://
// proxy).
func startProxy(t *testing.T, cert *tls.Certificate, answer string, remap map[string]string) *testProxy {
	t.Helper()
	return startProxyWith(t, cert, &testProxy{answer: answer, remap: remap})
}

// startCorporateProxy starts a test proxy configured as corporate
// proxies usually are: CONNECT to port 443 only (others get 403), and
// forward mode without Upgrade.
func startCorporateProxy(t *testing.T) *testProxy {
	t.Helper()
	return startProxyWith(t, nil, &testProxy{refuse: "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"})
}

// startProxyWith starts the test proxy p, whose answer, refuse and remap
// are set.
func startProxyWith(t *testing.T, cert *tls.Certificate, p *testProxy) *testProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cert != nil {
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*cert}})
	}
	p.ln, p.addr, p.reqs, p.conns = ln, ln.Addr().String(), make(chan *http.Request, 64), map[net.Conn]bool{}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !p.track(c) {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer c.Close()
				p.handle(c)
			}()
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *testProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = true
	return true
}

func (p *testProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *testProxy) handle(c net.Conn) {
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	select {
	case p.reqs <- req.Clone(context.Background()):
	default:
	}
	if p.answer != "" {
		io.WriteString(c, p.answer)
		return
	}
	if p.refuse != "" && req.Method == http.MethodConnect && !strings.HasSuffix(req.RequestURI, ":443") {
		io.WriteString(c, p.refuse)
		return
	}
	if req.Method != http.MethodConnect {
		p.forward(c, br, req)
		return
	}
	up := p.dialUpstream(c, req.RequestURI)
	if up == nil {
		return
	}
	defer up.Close()
	io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		up.Write(b)
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); up.Close(); done <- struct{}{} }()
	go func() { io.Copy(c, up); c.Close(); done <- struct{}{} }()
	<-done
	<-done
}

// dialUpstream connects to target, or where remap sends it; when that
// fails it answers c with 502 and returns nil.
func (p *testProxy) dialUpstream(c net.Conn, target string) net.Conn {
	if r, ok := p.remap[target]; ok {
		target = r
	}
	up, err := net.Dial("tcp", target)
	if err != nil {
		io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		return nil
	}
	if !p.track(up) {
		return nil
	}
	return up
}

// forward serves requests in forward mode, as squid does it by default:
// each request on the client's connection, recorded, goes to its origin
// on a connection of its own, without the hop-by-hop fields (Upgrade
// among them), and its response comes back.
func (p *testProxy) forward(c net.Conn, br *bufio.Reader, req *http.Request) {
	for {
		target := req.Host
		if !strings.Contains(target, ":") {
			target += ":80"
		}
		up := p.dialUpstream(c, target)
		if up == nil {
			return
		}
		for _, h := range []string{"Upgrade", "Connection", "Proxy-Authorization", "Proxy-Connection"} {
			req.Header.Del(h)
		}
		req.URL.Scheme, req.URL.Host = "", ""
		req.RequestURI = ""
		if err := req.Write(up); err != nil {
			up.Close()
			return
		}
		resp, err := http.ReadResponse(bufio.NewReader(up), req)
		if err != nil {
			up.Close()
			return
		}
		err = resp.Write(c)
		up.Close()
		if err != nil || resp.Close {
			return
		}
		if req, err = http.ReadRequest(br); err != nil {
			return
		}
		select {
		case p.reqs <- req.Clone(context.Background()):
		default:
		}
	}
}

func (p *testProxy) request(t *testing.T) *http.Request {
	t.Helper()
	select {
	case r := <-p.reqs:
		return r
	case <-time.After(opTimeout):
		t.Fatal("proxy saw no request")
		return nil
	}
}

// noRequest checks that the proxy saw nothing.
func (p *testProxy) noRequest(t *testing.T) {
	t.Helper()
	select {
	case r := <-p.reqs:
		t.Fatalf("proxy saw %s %s", r.Method, r.RequestURI)
	default:
	}
}

// testCert returns a self-signed certificate for 127.0.0.1 and
// localhost, and a pool that trusts it.
func testCert(t *testing.T) (*tls.Certificate, *x509.CertPool) {
	t.Helper()
	c, err := testcert.New()
	if err != nil {
		t.Fatal(err)
	}
	return &c.TLS, c.Pool
}

// echo checks a round trip over c.
func echo(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	ctx := testCtx(t)
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	typ, p, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.MessageText || string(p) != msg {
		t.Fatalf("echo: %v %q, want text %q", typ, p, msg)
	}
}

// noProxyEnv clears the proxy variables for the test, so that a
// developer's own settings do not change its outcome.
func noProxyEnv(t *testing.T) {
	for _, k := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy", "REQUEST_METHOD"} {
		t.Setenv(k, "")
	}
}
