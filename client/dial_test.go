package client

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/realtime-go/realtime/proxy"
	"github.com/realtime-go/realtime/websocket"
)

func TestDialDirect(t *testing.T) {
	noProxyEnv(t)
	srv := startWSServer(t, false, &websocket.AcceptOptions{
		Subprotocols: []string{"chat.v2", "chat.v1"},
		OnHandshake: func(r *http.Request, h http.Header) *websocket.Rejection {
			h.Add("Set-Cookie", "session=abc; Path=/")
			return nil
		},
	}, nil)
	jar, _ := cookiejar.New(nil)
	hdr := http.Header{"X-Token": {"t1"}, "Cookie": {"pre=1"}}
	d := &Dialer{
		Header:       hdr,
		Jar:          jar,
		Subprotocols: []string{"chat.v1"},
		Origin:       "http://" + srv.Addr,
	}
	u := strings.Replace(srv.URL, "ws://", "ws://alice:pw@", 1)
	c, resp, err := d.Dial(testCtx(t), u+"?q=1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if resp.StatusCode != 101 || c.Subprotocol() != "chat.v1" {
		t.Fatalf("status %d, subprotocol %q", resp.StatusCode, c.Subprotocol())
	}
	r := waitSeen(t, srv.reqs).r
	if r.URL.RawQuery != "q=1" || r.Header.Get("X-Token") != "t1" || r.Header.Get("Origin") != "http://"+srv.Addr {
		t.Fatalf("server saw %s with header %v", r.URL, r.Header)
	}
	if user, pass, ok := r.BasicAuth(); !ok || user != "alice" || pass != "pw" {
		t.Fatalf("Authorization from userinfo: %q", r.Header.Get("Authorization"))
	}
	if got := r.Header.Get("Cookie"); got != "pre=1" {
		t.Fatalf("first Cookie %q, want the header's only", got)
	}
	echo(t, c, "hello")

	// The jar got the cookie from the 101 and sends it next time.
	c2, _, err := d.Dial(testCtx(t), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.CloseNow()
	if got := waitSeen(t, srv.reqs).r.Header.Get("Cookie"); got != "pre=1; session=abc" {
		t.Fatalf("second Cookie %q", got)
	}
	if len(hdr) != 2 || hdr.Get("Cookie") != "pre=1" {
		t.Fatalf("Dialer.Header was modified: %v", hdr)
	}
}

func TestDialPackageFunc(t *testing.T) {
	noProxyEnv(t)
	srv := startWSServer(t, false, nil, nil)
	c, _, err := Dial(testCtx(t), strings.Replace(srv.URL, "ws://", "http://", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	echo(t, c, "package-level Dial with an http:// URL")
	if c.Version() != 13 {
		t.Fatalf("version %d", c.Version())
	}
}

func TestDialVersion8(t *testing.T) {
	noProxyEnv(t)
	srv := startWSServer(t, false, nil, nil)
	c, _, err := (&Dialer{Version: 8}).Dial(testCtx(t), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if c.Version() != 8 || waitSeen(t, srv.reqs).r.Header.Get("Sec-WebSocket-Version") != "8" {
		t.Fatal("version 8 not used")
	}
	echo(t, c, "hybi-8")
	if _, _, err := (&Dialer{Version: 7}).Dial(testCtx(t), srv.URL); err == nil {
		t.Fatal("version 7 accepted")
	}
}

func TestDialTLS(t *testing.T) {
	noProxyEnv(t)
	srv := startWSServer(t, true, nil, nil)
	cfg := &tls.Config{RootCAs: srv.rootCAs(), NextProtos: []string{"h2"}}
	d := &Dialer{TLSConfig: cfg}
	c, _, err := d.Dial(testCtx(t), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	echo(t, c, "over TLS")
	if cfg.ServerName != "" || len(cfg.NextProtos) != 1 {
		t.Fatal("TLSConfig was modified")
	}
	if sni := waitSeen(t, srv.reqs).sni; sni != "" {
		// Go clients send no SNI for IP addresses.
		t.Fatalf("SNI %q for an IP address", sni)
	}

	// Without the test CA the certificate is refused.
	_, _, err = (&Dialer{}).Dial(testCtx(t), srv.URL)
	var de *DialError
	var cve *tls.CertificateVerificationError
	if !errors.As(err, &de) || !errors.As(err, &cve) {
		t.Fatalf("untrusted certificate: %v, want a *DialError with the verification error", err)
	}
}

// The proxy matrix: plain and TLS proxies, ws and wss origins, with the
// proxy's and the origin's TLS settings kept apart. The origin is named
// example.com, which only the proxy can resolve, so SNI and certificate
// checks use the origin's name through the tunnel.
func TestDialThroughProxy(t *testing.T) {
	noProxyEnv(t)
	proxyCert, proxyCAs := testCert(t)
	for _, originTLS := range []bool{false, true} {
		srv := startWSServer(t, originTLS, nil, nil)
		port := "80"
		scheme := "ws"
		if originTLS {
			port, scheme = "443", "wss"
		}
		remap := map[string]string{"example.com:" + port: srv.Addr}
		for _, proxyTLS := range []bool{false, true} {
			name := scheme + "-via-http"
			var cert *tls.Certificate
			if proxyTLS {
				name, cert = scheme+"-via-https", proxyCert
			}
			t.Run(name, func(t *testing.T) {
				p := startProxy(t, cert, "", remap)
				pu := "http://bob:s3cret@" + p.addr
				if proxyTLS {
					pu = "https://bob:s3cret@" + p.addr
				}
				d := &Dialer{
					Proxy:              http.ProxyURL(mustParse(t, pu)),
					ProxyTLSConfig:     &tls.Config{RootCAs: proxyCAs},
					ProxyConnectHeader: http.Header{"X-Proxy-Note": {"hi"}},
				}
				if originTLS {
					d.TLSConfig = &tls.Config{RootCAs: srv.rootCAs()}
				}
				c, resp, err := d.Dial(testCtx(t), scheme+"://example.com/ws")
				if err != nil {
					t.Fatal(err)
				}
				defer c.CloseNow()
				if resp.StatusCode != 101 {
					t.Fatalf("status %d", resp.StatusCode)
				}
				echo(t, c, "through "+name)
				r := p.request(t)
				if r.Method != "CONNECT" || r.RequestURI != "example.com:"+port || r.Header.Get("X-Proxy-Note") != "hi" {
					t.Fatalf("proxy saw %s %s %v", r.Method, r.RequestURI, r.Header)
				}
				if r.Header.Get("Proxy-Authorization") != "Basic Ym9iOnMzY3JldA==" {
					t.Fatalf("Proxy-Authorization %q", r.Header.Get("Proxy-Authorization"))
				}
				s := waitSeen(t, srv.reqs)
				if originTLS && s.sni != "example.com" {
					t.Fatalf("origin saw SNI %q, want example.com", s.sni)
				}
				if s.r.Host != "example.com" || s.r.Header.Get("Proxy-Authorization") != "" {
					t.Fatalf("origin saw Host %q, header %v", s.r.Host, s.r.Header)
				}
			})
		}
	}
}

func TestDialProxyRefuses(t *testing.T) {
	noProxyEnv(t)
	for _, tc := range []struct {
		name, answer string
		status       int
		auth         bool
	}{
		{"403", "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", 403, false},
		{"407", "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\n\r\n", 407, true},
		{"401", "HTTP/1.0 401 Unauthorized\r\n\r\n", 401, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, nil, tc.answer, nil)
			d := &Dialer{Proxy: http.ProxyURL(mustParse(t, "http://u:p@"+p.addr))}
			_, resp, err := d.Dial(testCtx(t), "ws://example.com/ws")
			if resp != nil {
				t.Fatalf("response %v from a refused tunnel", resp.Status)
			}
			var de *DialError
			var pe *proxy.Error
			if !errors.As(err, &de) || !errors.As(err, &pe) || pe.Status != tc.status {
				t.Fatalf("error %v, want a *DialError around a *proxy.Error with status %d", err, tc.status)
			}
			if errors.Is(err, proxy.ErrAuth) != tc.auth {
				t.Fatalf("errors.Is(ErrAuth) = %v, want %v", !tc.auth, tc.auth)
			}
			if errors.Is(err, websocket.ErrBadHandshake) {
				t.Fatal("a refused tunnel reported as a bad handshake")
			}
		})
	}
}

// In forward mode the proxy strips Upgrade, the server answers a plain
// GET, and the client reports the origin's answer.
func TestDialForwardProxyStripsUpgrade(t *testing.T) {
	noProxyEnv(t)
	srv := startWSServer(t, false, nil, nil)
	p := startProxy(t, nil, "", nil)
	d := &Dialer{Proxy: http.ProxyURL(mustParse(t, "http://u:p@"+p.addr)), ForwardProxy: true}
	_, resp, err := d.Dial(testCtx(t), srv.URL+"?x=1")
	if !errors.Is(err, websocket.ErrBadHandshake) {
		t.Fatalf("error %v, want ErrBadHandshake", err)
	}
	var he *websocket.HandshakeError
	if !errors.As(err, &he) || he.Status != http.StatusUpgradeRequired {
		t.Fatalf("error %v, want a HandshakeError with 426", err)
	}
	if resp == nil || resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("response %v, want the origin's 426", resp)
	}
	if resp.Request.URL.String() != srv.URL+"?x=1" {
		t.Fatalf("resp.Request.URL %v", resp.Request.URL)
	}
	body, _ := io.ReadAll(resp.Body)
	if len(body) == 0 || len(body) > 1024 {
		t.Fatalf("body of %d bytes", len(body))
	}
	r := p.request(t)
	if r.Method != "GET" || r.RequestURI != "http://"+srv.Addr+"/ws?x=1" || r.Header.Get("Proxy-Authorization") != "Basic dTpw" {
		t.Fatalf("proxy saw %s %s %v", r.Method, r.RequestURI, r.Header)
	}
	if got := waitSeen(t, srv.reqs).r; got.Header.Get("Upgrade") != "" {
		t.Fatal("the test proxy passed Upgrade on")
	}

	// wss:// always tunnels.
	tsrv := startWSServer(t, true, nil, nil)
	d.TLSConfig = &tls.Config{RootCAs: tsrv.rootCAs()}
	c, _, err := d.Dial(testCtx(t), tsrv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if r := p.request(t); r.Method != "CONNECT" {
		t.Fatalf("wss in forward mode sent %s", r.Method)
	}
}

func TestDialBadHandshake(t *testing.T) {
	noProxyEnv(t)
	long := strings.Repeat("z", 5000)
	srv := startWSServer(t, false, nil, map[string]http.HandlerFunc{
		"/denied": func(w http.ResponseWriter, r *http.Request) {
			http.SetCookie(w, &http.Cookie{Name: "seen", Value: "1"})
			w.Header().Set("X-Why", "nope")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, long)
		},
		"/moved": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/ws", http.StatusFound)
		},
	})
	jar, _ := cookiejar.New(nil)
	d := &Dialer{Jar: jar}
	_, resp, err := d.Dial(testCtx(t), "ws://"+srv.Addr+"/denied")
	if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != 403 || resp.Header.Get("X-Why") != "nope" {
		t.Fatalf("error %v, response %v", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != long[:1024] {
		t.Fatalf("body of %d bytes, want the first 1024", len(body))
	}
	if cs := jar.Cookies(mustParse(t, "http://"+srv.Addr+"/")); len(cs) != 1 || cs[0].Name != "seen" {
		t.Fatalf("jar has %v after a refused handshake", cs)
	}
	_, resp, err = d.Dial(testCtx(t), "ws://"+srv.Addr+"/moved")
	if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != 302 || resp.Header.Get("Location") != "/ws" {
		t.Fatalf("redirect: error %v, response %v", err, resp)
	}
}

// acceptLoop listens on a loopback port and runs handle on the accepting
// goroutine for every connection; at cleanup it closes the listener,
// waits for the loop and then runs atEnd.
func acceptLoop(t *testing.T, handle func(net.Conn), atEnd func()) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			handle(c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done; atEnd() })
	return ln.Addr().String()
}

// stallServer accepts connections and reads without answering; with
// closeAfter it closes a connection after reading that many bytes.
func stallServer(t *testing.T, closeAfter int) string {
	t.Helper()
	var conns []net.Conn
	return acceptLoop(t, func(c net.Conn) {
		conns = append(conns, c)
		if closeAfter > 0 {
			io.ReadFull(c, make([]byte, closeAfter))
			c.Close()
		}
	}, func() {
		for _, c := range conns {
			c.Close()
		}
	})
}

func TestDialContextBoundsHandshake(t *testing.T) {
	noProxyEnv(t)
	addr := stallServer(t, 0)
	for _, tc := range []struct {
		name string
		d    *Dialer
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"ctx-deadline", &Dialer{}, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 300*time.Millisecond)
		}},
		{"handshake-timeout", &Dialer{HandshakeTimeout: 300 * time.Millisecond}, func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				c, _, err := tc.d.Dial(ctx, "ws://"+addr+"/")
				if c != nil {
					c.CloseNow()
				}
				errc <- err
			}()
			select {
			case err := <-errc:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("error %v, want one matching context.DeadlineExceeded", err)
				}
			case <-time.After(opTimeout):
				t.Fatal("Dial did not return")
			}
		})
	}
}

func TestDialServerClosesMidHandshake(t *testing.T) {
	noProxyEnv(t)
	addr := stallServer(t, 10)
	_, resp, err := (&Dialer{}).Dial(testCtx(t), "ws://"+addr+"/")
	if err == nil || resp != nil {
		t.Fatalf("error %v, response %v", err, resp)
	}
}

// The context bounds the handshake only: cancelling it afterwards leaves
// the connection working.
func TestDialContextDoesNotBoundConn(t *testing.T) {
	noProxyEnv(t)
	srv := startWSServer(t, false, nil, nil)
	p := startProxy(t, nil, "", nil)
	ctx, cancel := context.WithCancel(context.Background())
	c, _, err := (&Dialer{Proxy: http.ProxyURL(mustParse(t, "http://"+p.addr))}).Dial(ctx, srv.URL)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	echo(t, c, "after cancel")
}

func TestDialEnvironment(t *testing.T) {
	noProxyEnv(t)
	srv := startWSServer(t, false, nil, nil)
	p := startProxy(t, nil, "", nil)
	t.Setenv("HTTP_PROXY", "http://"+p.addr)
	t.Setenv("NO_PROXY", "")

	c, _, err := (&Dialer{}).Dial(testCtx(t), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	c.CloseNow()
	if r := p.request(t); r.Method != "CONNECT" || r.RequestURI != srv.Addr {
		t.Fatalf("proxy saw %s %s", r.Method, r.RequestURI)
	}

	t.Setenv("NO_PROXY", "127.0.0.0/8")
	c, _, err = (&Dialer{}).Dial(testCtx(t), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	c.CloseNow()
	p.noRequest(t)

	// Direct ignores the environment; a malformed variable is an error.
	t.Setenv("NO_PROXY", "")
	c, _, err = (&Dialer{Proxy: proxy.Direct}).Dial(testCtx(t), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	c.CloseNow()
	p.noRequest(t)
	t.Setenv("HTTP_PROXY", "gopher://x:1")
	var de *DialError
	if _, _, err := (&Dialer{}).Dial(testCtx(t), srv.URL); !errors.As(err, &de) {
		t.Fatalf("malformed HTTP_PROXY: %v", err)
	}
}

func TestDialBadURL(t *testing.T) {
	for _, u := range []string{"ftp://x/", "ws://", "ws://u:secret@%zz/", "://nope"} {
		_, _, err := (&Dialer{Proxy: proxy.Direct}).Dial(context.Background(), u)
		if err == nil {
			t.Errorf("Dial(%q) succeeded", u)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("Dial(%q): error %q leaks the password", u, err)
		}
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Forward mode through an https:// proxy: TLS to the proxy with
// ProxyTLSConfig, then the absolute-form request inside it.
func TestDialForwardThroughHTTPSProxy(t *testing.T) {
	noProxyEnv(t)
	srv := startWSServer(t, false, nil, nil)
	cert, pool := testCert(t)
	p := startProxy(t, cert, "", nil)
	d := &Dialer{
		Proxy:          http.ProxyURL(mustParse(t, "https://u:p@"+p.addr)),
		ProxyTLSConfig: &tls.Config{RootCAs: pool},
		ForwardProxy:   true,
	}
	_, resp, err := d.Dial(testCtx(t), srv.URL)
	if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("error %v, response %v; want the origin's 426", err, resp)
	}
	if r := p.request(t); r.Method != "GET" || r.RequestURI != "http://"+srv.Addr+"/ws" || r.Header.Get("Proxy-Authorization") != "Basic dTpw" {
		t.Fatalf("proxy saw %s %s %v", r.Method, r.RequestURI, r.Header)
	}
}
