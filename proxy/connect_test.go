package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// fakeProxy is a hand-written CONNECT proxy whose answer the test picks.
type fakeProxy struct {
	*tcpServer
	reqs chan *http.Request
}

// answer writes the proxy's response to a CONNECT it read from br. It
// returns true to have the proxy open the tunnel afterwards.
type answer func(c net.Conn, req *http.Request) (tunnel bool)

func startFakeProxy(t *testing.T, ans answer) *fakeProxy {
	t.Helper()
	p := &fakeProxy{reqs: make(chan *http.Request, 16)}
	p.tcpServer = startTCP(t, func(s *tcpServer, c net.Conn) { p.handle(s, c, ans) })
	return p
}

func startFakeTLSProxy(t *testing.T, cert tls.Certificate, ans answer) *fakeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
	p := &fakeProxy{reqs: make(chan *http.Request, 16)}
	p.tcpServer = serve(t, ln, func(s *tcpServer, c net.Conn) { p.handle(s, c, ans) })
	return p
}

func (p *fakeProxy) handle(s *tcpServer, c net.Conn, ans answer) {
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	select {
	case p.reqs <- req:
	default:
	}
	if !ans(c, req) {
		return
	}
	target, err := net.Dial("tcp", req.RequestURI)
	if err != nil {
		return
	}
	if !s.track(target) {
		return
	}
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		target.Write(b)
	}
	pipe(c, target)
}

func (p *fakeProxy) request(t *testing.T) *http.Request {
	t.Helper()
	select {
	case r := <-p.reqs:
		return r
	case <-time.After(opTimeout):
		t.Fatal("proxy saw no request")
		return nil
	}
}

func reply(s string) answer {
	return func(c net.Conn, _ *http.Request) bool {
		io.WriteString(c, s)
		return false
	}
}

var established answer = func(c net.Conn, _ *http.Request) bool {
	io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	return true
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestConnectTunnel(t *testing.T) {
	echo := startEcho(t)
	p := startFakeProxy(t, established)

	for _, tc := range []struct {
		name     string
		proxyURL string
		header   http.Header
		wantAuth string
	}{
		{"no-credentials", "http://" + p.addr, nil, ""},
		{"credentials", "http://al%20ice:s3cr%3At@" + p.addr, nil, "Basic YWwgaWNlOnMzY3I6dA=="}, // "al ice:s3cr:t"
		{"header-auth", "http://" + p.addr, http.Header{"Proxy-Authorization": {"Bearer tok"}}, "Bearer tok"},
		{"url-wins", "http://u:p@" + p.addr, http.Header{"Proxy-Authorization": {"Bearer tok"}}, "Basic dTpw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"X-Trace": {"abc\r\nInjected: 1"}, "Bad Name": {"x"}, "Host": {"evil"}}
			for k, v := range tc.header {
				h[k] = v
			}
			d := &Dialer{URL: mustURL(t, tc.proxyURL), ConnectHeader: h}
			nc, err := d.DialContext(testCtx(t), "tcp", echo.addr)
			if err != nil {
				t.Fatalf("DialContext: %v", err)
			}
			defer nc.Close()
			req := p.request(t)
			if req.Method != "CONNECT" || req.RequestURI != echo.addr || req.Host != echo.addr {
				t.Fatalf("proxy saw %s %s Host %s, want CONNECT %s", req.Method, req.RequestURI, req.Host, echo.addr)
			}
			if got := req.Header.Get("Proxy-Authorization"); got != tc.wantAuth {
				t.Fatalf("Proxy-Authorization %q, want %q", got, tc.wantAuth)
			}
			if got := req.Header.Get("X-Trace"); got != "abc  Injected: 1" {
				t.Fatalf("X-Trace %q: CR/LF not neutralised", got)
			}
			if req.Header.Get("Injected") != "" || len(req.Header["Bad Name"]) != 0 {
				t.Fatalf("header injection reached the proxy: %v", req.Header)
			}
			if _, ok := nc.(*net.TCPConn); !ok {
				t.Fatalf("tunnel is %T, want the *net.TCPConn itself when the proxy sent nothing early", nc)
			}
			echoThrough(t, nc, "hello through the tunnel")
			if tc.header != nil && h.Get("Host") != "evil" {
				t.Fatal("ConnectHeader was modified")
			}
		})
	}
}

// A proxy may send tunnel bytes in the same segment as its 200; they
// must reach the caller first.
func TestConnectEarlyTunnelBytes(t *testing.T) {
	echo := startEcho(t)
	p := startFakeProxy(t, func(c net.Conn, _ *http.Request) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nEARLY BYTES|")
		return true
	})
	d := &Dialer{URL: mustURL(t, "http://"+p.addr)}
	nc, err := d.DialContext(testCtx(t), "tcp", echo.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	got := make([]byte, len("EARLY BYTES|"))
	nc.SetReadDeadline(time.Now().Add(opTimeout))
	// One byte at a time, so the prefix is drained over several reads.
	for i := range got {
		if _, err := io.ReadFull(nc, got[i:i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if string(got) != "EARLY BYTES|" {
		t.Fatalf("first tunnel bytes %q", got)
	}
	echoThrough(t, nc, "then the echo")
}

func TestConnectRefused(t *testing.T) {
	echo := startEcho(t)
	long := strings.Repeat("x", 5000)
	for _, tc := range []struct {
		name     string
		response string
		status   int
		auth     bool
		body     string
	}{
		{"407", "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"rt\"\r\nContent-Length: 6\r\n\r\ndenied", 407, true, "denied"},
		{"401-tinyproxy", "HTTP/1.0 401 Unauthorized\r\nContent-Type: text/html\r\n\r\nwrong password", 401, true, "wrong password"},
		{"403", "HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nforbidden", 403, false, "forbidden"},
		{"502-long-body", "HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(long), long), 502, false, long[:1024]},
		{"101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", 101, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startFakeProxy(t, reply(tc.response))
			d := &Dialer{URL: mustURL(t, "http://alice:wrong@"+p.addr)}
			nc, err := d.DialContext(testCtx(t), "tcp", echo.addr)
			if err == nil {
				nc.Close()
				t.Fatal("DialContext succeeded")
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v is not a *proxy.Error", err, err)
			}
			if pe.Status != tc.status || pe.Op != "connect" || pe.Addr != echo.addr {
				t.Fatalf("error %+v, want status %d op connect", pe, tc.status)
			}
			if errors.Is(err, ErrAuth) != tc.auth {
				t.Fatalf("errors.Is(%v, ErrAuth) = %v, want %v", err, !tc.auth, tc.auth)
			}
			if strings.Contains(err.Error(), "wrong") {
				t.Fatalf("error text %q leaks the password", err)
			}
			if pe.Response == nil || pe.Response.StatusCode != tc.status {
				t.Fatalf("Response = %v", pe.Response)
			}
			body, _ := io.ReadAll(pe.Response.Body)
			if string(body) != tc.body {
				t.Fatalf("response body %d bytes %.40q, want %d bytes %.40q", len(body), body, len(tc.body), tc.body)
			}
			if tc.status == 407 && pe.Response.Header.Get("Proxy-Authenticate") == "" {
				t.Fatal("Proxy-Authenticate not kept")
			}
		})
	}
}

func TestConnectMalformed(t *testing.T) {
	huge := "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 100)+"\r\n", 200) + "\r\n"
	for _, tc := range []struct {
		name, response string
		want           string
	}{
		{"garbage", "SSH-2.0-OpenSSH\r\n\r\n", "malformed response"},
		{"closed-mid-status", "HTTP/1.1 200 Conn", "malformed response"},
		{"closed-mid-header", "HTTP/1.1 200 OK\r\nX-A: b\r\n", "malformed response"},
		{"closed-at-once", "", "malformed response"},
		{"oversize-header", huge, "exceeds"},
		{"bad-version", "HTTP/9.9 200 OK\r\n\r\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startFakeProxy(t, reply(tc.response))
			d := &Dialer{URL: mustURL(t, "http://"+p.addr)}
			nc, err := d.DialContext(testCtx(t), "tcp", "127.0.0.1:9")
			if tc.want == "" {
				// Go accepts any HTTP/1.x-looking version; either outcome
				// is fine as long as nothing breaks.
				if err == nil {
					nc.Close()
				}
				return
			}
			if err == nil {
				nc.Close()
				t.Fatal("DialContext succeeded")
			}
			var pe *Error
			if !errors.As(err, &pe) || pe.Op != "connect" || pe.Status != 0 {
				t.Fatalf("error %v (%T), want a connect *Error without status", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// A proxy that never answers holds the dial only until the context ends.
func TestConnectStallEndsWithContext(t *testing.T) {
	p := startFakeProxy(t, func(c net.Conn, _ *http.Request) bool {
		io.Copy(io.Discard, c) // until the client gives up
		return false
	})
	d := &Dialer{URL: mustURL(t, "http://"+p.addr)}
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 300*time.Millisecond)
		}, context.DeadlineExceeded},
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(300*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			done := make(chan error, 1)
			go func() {
				nc, err := d.DialContext(ctx, "tcp", "127.0.0.1:9")
				if nc != nil {
					nc.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, tc.want) {
					t.Fatalf("error %v, want one matching %v", err, tc.want)
				}
			case <-time.After(opTimeout):
				t.Fatal("DialContext did not return after its context ended")
			}
		})
	}
}

// The context bounds the dial, not the tunnel.
func TestConnectContextDoesNotBoundTunnel(t *testing.T) {
	echo := startEcho(t)
	p := startFakeProxy(t, established)
	d := &Dialer{URL: mustURL(t, "http://"+p.addr)}
	ctx, cancel := context.WithCancel(context.Background())
	nc, err := d.DialContext(ctx, "tcp", echo.addr)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	echoThrough(t, nc, "after cancel")
}

func TestHTTPSProxy(t *testing.T) {
	echo := startEcho(t)
	cert, pool := testCert(t)
	p := startFakeTLSProxy(t, cert, established)
	_, port, _ := net.SplitHostPort(p.addr)

	t.Run("ok", func(t *testing.T) {
		cfg := &tls.Config{RootCAs: pool, NextProtos: []string{"h2", "http/1.1"}}
		d := &Dialer{URL: mustURL(t, "https://u:p@localhost:"+port), TLSConfig: cfg}
		nc, err := d.DialContext(testCtx(t), "tcp", echo.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if cfg.ServerName != "" || len(cfg.NextProtos) != 2 {
			t.Fatal("TLSConfig was modified")
		}
		tc, ok := nc.(*tls.Conn)
		if !ok {
			t.Fatalf("tunnel is %T, want *tls.Conn", nc)
		}
		if sn := tc.ConnectionState().ServerName; sn != "localhost" {
			t.Fatalf("SNI %q, want localhost", sn)
		}
		if req := p.request(t); req.Header.Get("Proxy-Authorization") != "Basic dTpw" {
			t.Fatalf("Proxy-Authorization %q", req.Header.Get("Proxy-Authorization"))
		}
		echoThrough(t, nc, "through TLS to the proxy")
	})

	t.Run("untrusted", func(t *testing.T) {
		d := &Dialer{URL: mustURL(t, "https://"+p.addr)}
		nc, err := d.DialContext(testCtx(t), "tcp", echo.addr)
		if err == nil {
			nc.Close()
			t.Fatal("DialContext trusted an unknown certificate")
		}
		var pe *Error
		var cve *tls.CertificateVerificationError
		if !errors.As(err, &pe) || pe.Op != "tls" || !errors.As(err, &cve) {
			t.Fatalf("error %v, want a tls *Error wrapping the verification error", err)
		}
	})

	t.Run("server-name", func(t *testing.T) {
		d := &Dialer{URL: mustURL(t, "https://"+p.addr), TLSConfig: &tls.Config{RootCAs: pool, ServerName: "proxy.test"}}
		nc, err := d.DialContext(testCtx(t), "tcp", echo.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if sn := nc.(*tls.Conn).ConnectionState().ServerName; sn != "proxy.test" {
			t.Fatalf("SNI %q, want the configured proxy.test", sn)
		}
	})
}

func TestDialErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()

	ctx := testCtx(t)
	for _, tc := range []struct {
		name    string
		d       *Dialer
		network string
		addr    string
		op      string
	}{
		{"no-url", &Dialer{}, "tcp", "x:1", "dial"},
		{"udp", &Dialer{URL: mustURL(t, "http://"+closedAddr)}, "udp", "x:1", "dial"},
		{"scheme", &Dialer{URL: mustURL(t, "ftp://"+closedAddr)}, "tcp", "x:1", "dial"},
		{"unreachable", &Dialer{URL: mustURL(t, "http://"+closedAddr)}, "tcp", "x:1", "dial"},
		{"unreachable-socks", &Dialer{URL: mustURL(t, "socks5h://"+closedAddr)}, "tcp", "x:1", "dial"},
		{"no-port", &Dialer{URL: mustURL(t, "http://"+closedAddr)}, "tcp", "x", "connect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := tc.d.DialContext(ctx, tc.network, tc.addr)
			if err == nil {
				nc.Close()
				t.Fatal("DialContext succeeded")
			}
			var pe *Error
			if !errors.As(err, &pe) || pe.Op != tc.op {
				t.Fatalf("error %v, want a *proxy.Error with Op %q", err, tc.op)
			}
		})
	}
}

func TestDialForward(t *testing.T) {
	p := startTCP(t, func(_ *tcpServer, c net.Conn) { io.Copy(io.Discard, c) })
	d := &Dialer{URL: mustURL(t, "http://bob:pw@"+p.addr), ConnectHeader: http.Header{"X-A": {"1"}, "Connection": {"close"}}}
	nc, h, err := d.DialForward(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if h.Get("Proxy-Authorization") != "Basic Ym9iOnB3" || h.Get("X-A") != "1" || h.Get("Connection") != "" {
		t.Fatalf("forward header %v", h)
	}
	d = &Dialer{URL: mustURL(t, "socks5://"+p.addr)}
	if _, _, err := d.DialForward(testCtx(t)); err == nil {
		t.Fatal("DialForward through SOCKS5 succeeded")
	}
}

// Contexts that end at random moments during the CONNECT exchange,
// plain and over TLS to the proxy, and with SOCKS5: every dial that
// succeeds gives a tunnel that works, and every failure is the
// context's (issue 11, point 1).
func TestDialRandomCancellation(t *testing.T) {
	echo := startEcho(t)
	cert, pool := testCert(t)
	plain := startFakeProxy(t, established)
	secure := startFakeTLSProxy(t, cert, established)
	socks := startSOCKS(t, "", "", false)
	for _, tc := range []struct {
		name string
		d    *Dialer
	}{
		{"connect", &Dialer{URL: mustURL(t, "http://"+plain.addr)}},
		{"connect-tls", &Dialer{URL: mustURL(t, "https://"+secure.addr), TLSConfig: &tls.Config{RootCAs: pool}}},
		{"socks5", &Dialer{URL: mustURL(t, "socks5h://"+socks.addr)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Contexts end within twice the time a dial takes, so that
			// they hit every step of it, whatever the machine's speed.
			start := time.Now()
			nc, err := tc.d.DialContext(testCtx(t), "tcp", echo.addr)
			if err != nil {
				t.Fatal(err)
			}
			nc.Close()
			span := 2 * time.Since(start)
			ok := 0
			for i := range 150 {
				ctx, cancel := context.WithCancel(context.Background())
				timer := time.AfterFunc(rand.N(span), cancel)
				nc, err := tc.d.DialContext(ctx, "tcp", echo.addr)
				timer.Stop()
				cancel()
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						t.Fatalf("dial %d: %v, want an error matching context.Canceled", i, err)
					}
					continue
				}
				ok++
				echoThrough(t, nc, "after a context that ended")
				nc.Close()
			}
			t.Logf("%d of 150 dials succeeded", ok)
		})
	}
}
