package websocket

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// RFC 6455 §1.3's worked example.
func TestAcceptKeyRFCExample(t *testing.T) {
	if got := acceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("acceptKey = %q", got)
	}
	if got := wantAccept("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("the test's own computation is wrong: %q", got)
	}
}

var baseRequest = []string{
	"GET /chat HTTP/1.1",
	"Host: server.example.com",
	"Upgrade: websocket",
	"Connection: Upgrade",
	"Sec-WebSocket-Key: " + testKey,
	"Sec-WebSocket-Version: 13",
}

// rawRequest builds a request from baseRequest: lines whose field name is
// in drop are left out, and extra lines are added. A first line in extra
// that starts with a method replaces the request line.
func rawRequest(drop []string, extra ...string) string {
	lines := append([]string(nil), baseRequest...)
	if len(extra) > 0 && !strings.Contains(strings.SplitN(extra[0], " ", 2)[0], ":") && strings.Contains(extra[0], "HTTP/") {
		lines[0] = extra[0]
		extra = extra[1:]
	}
	var out []string
	for _, l := range lines {
		name, _, _ := strings.Cut(l, ":")
		if slices.Contains(drop, name) {
			continue
		}
		out = append(out, l)
	}
	out = append(out, extra...)
	return strings.Join(out, "\r\n") + "\r\n\r\n"
}

var (
	dropVersion = []string{"Sec-WebSocket-Version"}
	dropKey     = []string{"Sec-WebSocket-Key"}
)

type handshakeCase struct {
	name    string
	request string
	opts    *AcceptOptions
	status  int
	check   func(t *testing.T, resp *http.Response)
}

func versionsAdvertised(t *testing.T, resp *http.Response) {
	t.Helper()
	got := tokens(resp.Header, "Sec-WebSocket-Version")
	slices.Sort(got)
	if !slices.Equal(got, []string{"13", "8"}) {
		t.Fatalf("Sec-WebSocket-Version in the refusal: %q, want 13 and 8 (RFC 6455 §4.4)", resp.Header.Values("Sec-WebSocket-Version"))
	}
}

var handshakeCases = []handshakeCase{
	{name: "valid", request: rawRequest(nil), status: 101, check: func(t *testing.T, resp *http.Response) {
		if got := resp.Header.Get("Sec-WebSocket-Accept"); got != wantAccept(testKey) {
			t.Fatalf("Sec-WebSocket-Accept %q", got)
		}
		if !hasToken(resp.Header, "Upgrade", "websocket") || !hasToken(resp.Header, "Connection", "upgrade") {
			t.Fatalf("101 without Upgrade/Connection: %v", resp.Header)
		}
		if resp.Header.Get("Sec-WebSocket-Protocol") != "" || resp.Header.Get("Sec-WebSocket-Extensions") != "" {
			t.Fatalf("nothing was offered, yet the response selects: %v", resp.Header)
		}
	}},
	{name: "tokens in any case and in lists", request: rawRequest([]string{"Upgrade", "Connection"}, "Upgrade: WebSocket", "Connection: keep-alive, UPGRADE"), status: 101},
	{name: "upgrade among several protocols", request: rawRequest([]string{"Upgrade"}, "Upgrade: foo/2, websocket"), status: 101},
	{name: "POST", request: rawRequest(nil, "POST /chat HTTP/1.1", "Content-Length: 0"), status: 405, check: func(t *testing.T, resp *http.Response) {
		if !strings.Contains(resp.Header.Get("Allow"), "GET") {
			t.Fatalf("405 without Allow: GET (RFC 9110 §15.5.6): %v", resp.Header)
		}
	}},
	{name: "HEAD", request: rawRequest(nil, "HEAD /chat HTTP/1.1"), status: 405},
	{name: "HTTP/1.0", request: rawRequest(nil, "GET /chat HTTP/1.0"), status: 400},
	{name: "missing Upgrade", request: rawRequest([]string{"Upgrade"}), status: 426, check: func(t *testing.T, resp *http.Response) {
		if !hasToken(resp.Header, "Upgrade", "websocket") {
			t.Fatalf("426 without Upgrade: websocket (RFC 9110 §15.5.22): %v", resp.Header)
		}
	}},
	{name: "Upgrade h2c", request: rawRequest([]string{"Upgrade"}, "Upgrade: h2c"), status: 426},
	{name: "missing Connection", request: rawRequest([]string{"Connection"}), status: 400},
	{name: "Connection keep-alive only", request: rawRequest([]string{"Connection"}, "Connection: keep-alive"), status: 400},
	{name: "missing version", request: rawRequest(dropVersion), status: 400, check: versionsAdvertised},
	{name: "version 7", request: rawRequest(dropVersion, "Sec-WebSocket-Version: 7"), status: 400, check: versionsAdvertised},
	{name: "version 14", request: rawRequest(dropVersion, "Sec-WebSocket-Version: 14"), status: 400, check: versionsAdvertised},
	{name: "version list", request: rawRequest(dropVersion, "Sec-WebSocket-Version: 13, 8"), status: 400, check: versionsAdvertised},
	{name: "version garbage", request: rawRequest(dropVersion, "Sec-WebSocket-Version: thirteen"), status: 400, check: versionsAdvertised},
	{name: "version 8", request: rawRequest(dropVersion, "Sec-WebSocket-Version: 8"), status: 101},
	{name: "missing key", request: rawRequest(dropKey), status: 400},
	{name: "empty key", request: rawRequest(dropKey, "Sec-WebSocket-Key: "), status: 400},
	{name: "key of 15 bytes", request: rawRequest(dropKey, "Sec-WebSocket-Key: "+base64.StdEncoding.EncodeToString(make([]byte, 15))), status: 400},
	{name: "key of 17 bytes", request: rawRequest(dropKey, "Sec-WebSocket-Key: "+base64.StdEncoding.EncodeToString(make([]byte, 17))), status: 400},
	{name: "key not base64", request: rawRequest(dropKey, "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!=="), status: 400},
	{name: "key repeated", request: rawRequest(nil, "Sec-WebSocket-Key: "+testKey), status: 400},
	{name: "two keys in one field", request: rawRequest(dropKey, "Sec-WebSocket-Key: "+testKey+", "+testKey), status: 400},
	// Origins (RFC 6455 §10.2).
	{name: "same origin", request: rawRequest(nil, "Origin: http://server.example.com"), status: 101},
	{name: "same origin https", request: rawRequest(nil, "Origin: https://server.example.com"), status: 101},
	{name: "other origin", request: rawRequest(nil, "Origin: http://evil.example"), status: 403},
	{name: "origin null", request: rawRequest(nil, "Origin: null"), status: 403},
	{name: "origin that merely starts with the host", request: rawRequest(nil, "Origin: http://server.example.com.evil.example"), status: 403},
	{name: "origin allowed by pattern", request: rawRequest(nil, "Origin: https://app.trusted.org"),
		opts: &AcceptOptions{OriginPatterns: []string{"*.trusted.org"}}, status: 101},
	{name: "origin not matching pattern", request: rawRequest(nil, "Origin: https://trusted.org.evil.example"),
		opts: &AcceptOptions{OriginPatterns: []string{"*.trusted.org"}}, status: 403},
	{name: "any origin when skipping the check", request: rawRequest(nil, "Origin: http://evil.example"),
		opts: &AcceptOptions{InsecureSkipOriginCheck: true}, status: 101},
	{name: "version 8 Sec-WebSocket-Origin other", request: rawRequest(dropVersion, "Sec-WebSocket-Version: 8", "Sec-WebSocket-Origin: http://evil.example"), status: 403},
	{name: "version 8 Sec-WebSocket-Origin same", request: rawRequest(dropVersion, "Sec-WebSocket-Version: 8", "Sec-WebSocket-Origin: http://server.example.com"), status: 101},
	// Subprotocols (RFC 6455 §4.2.2: the server picks one the client offered).
	{name: "subprotocol: the client's first supported", request: rawRequest(nil, "Sec-WebSocket-Protocol: superchat, chat"),
		opts: &AcceptOptions{Subprotocols: []string{"chat", "superchat"}}, status: 101, check: wantProtocol("superchat")},
	{name: "subprotocol over several fields", request: rawRequest(nil, "Sec-WebSocket-Protocol: x", "Sec-WebSocket-Protocol: chat, superchat"),
		opts: &AcceptOptions{Subprotocols: []string{"superchat", "chat"}}, status: 101, check: wantProtocol("chat")},
	{name: "subprotocol: none in common", request: rawRequest(nil, "Sec-WebSocket-Protocol: a, b"),
		opts: &AcceptOptions{Subprotocols: []string{"chat"}}, status: 101, check: wantProtocol("")},
	{name: "subprotocol: not offered", request: rawRequest(nil),
		opts: &AcceptOptions{Subprotocols: []string{"chat"}}, status: 101, check: wantProtocol("")},
	// Response header fields.
	{name: "custom header", request: rawRequest(nil),
		opts:   &AcceptOptions{Header: http.Header{"X-Custom": {"v1"}, "Sec-Websocket-Accept": {"forged"}, "Upgrade": {"forged"}, "X-Bad": {"a\r\nInjected: yes"}}},
		status: 101, check: func(t *testing.T, resp *http.Response) {
			if resp.Header.Get("X-Custom") != "v1" {
				t.Fatalf("custom header missing: %v", resp.Header)
			}
			if got := resp.Header.Values("Sec-WebSocket-Accept"); len(got) != 1 || got[0] != wantAccept(testKey) {
				t.Fatalf("Sec-WebSocket-Accept %q: the handshake's own fields must win", got)
			}
			if got := resp.Header.Values("Upgrade"); len(got) != 1 || !strings.EqualFold(got[0], "websocket") {
				t.Fatalf("Upgrade %q", got)
			}
			if resp.Header.Get("Injected") != "" {
				t.Fatal("a CRLF in a header value injected a field")
			}
		}},
	{name: "OnHandshake adds a header", request: rawRequest(nil, "Cookie: s=1"),
		opts: &AcceptOptions{Header: http.Header{"X-Static": {"s"}}, OnHandshake: func(r *http.Request, h http.Header) *Rejection {
			if c, _ := r.Cookie("s"); c == nil || c.Value != "1" {
				return &Rejection{Status: 400, Body: "no cookie"}
			}
			h.Set("X-Session", "42")
			return nil
		}},
		status: 101, check: func(t *testing.T, resp *http.Response) {
			if resp.Header.Get("X-Session") != "42" || resp.Header.Get("X-Static") != "s" {
				t.Fatalf("headers %v", resp.Header)
			}
		}},
	{name: "OnHandshake rejects", request: rawRequest(nil),
		opts: &AcceptOptions{OnHandshake: func(r *http.Request, h http.Header) *Rejection {
			return &Rejection{Status: http.StatusUnauthorized, Header: http.Header{"Www-Authenticate": {`Basic realm="x"`}}, Body: "who are you?"}
		}},
		status: 401, check: func(t *testing.T, resp *http.Response) {
			if resp.Header.Get("WWW-Authenticate") != `Basic realm="x"` {
				t.Fatalf("headers %v", resp.Header)
			}
			if body, _ := io.ReadAll(resp.Body); string(body) != "who are you?" {
				t.Fatalf("body %q", body)
			}
		}},
	{name: "OnHandshake rejects with default status", request: rawRequest(nil),
		opts: &AcceptOptions{OnHandshake: func(*http.Request, http.Header) *Rejection { return &Rejection{} }}, status: 403},
	{name: "OnHandshake not called for an invalid request", request: rawRequest(dropKey),
		opts: &AcceptOptions{OnHandshake: func(*http.Request, http.Header) *Rejection { panic("called") }}, status: 400},
}

func wantProtocol(p string) func(t *testing.T, resp *http.Response) {
	return func(t *testing.T, resp *http.Response) {
		t.Helper()
		got := resp.Header.Values("Sec-WebSocket-Protocol")
		if p == "" && len(got) != 0 || p != "" && (len(got) != 1 || got[0] != p) {
			t.Fatalf("Sec-WebSocket-Protocol %q, want %q", got, p)
		}
	}
}

// TestCheckRequest runs the table through checkRequest alone.
func TestCheckRequest(t *testing.T) {
	for _, tc := range handshakeCases {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tc.request)))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		u, herr := checkRequest(r)
		switch {
		case tc.status == 101 || tc.status == 403 || tc.status == 401:
			// Valid requests; origin and OnHandshake decide later.
			if herr != nil {
				t.Errorf("%s: refused with %v", tc.name, herr)
			} else if u.key != testKey || (u.version != 13 && u.version != 8) {
				t.Errorf("%s: %+v", tc.name, u)
			}
		default:
			if herr == nil || herr.Status != tc.status {
				t.Errorf("%s: %v, want status %d", tc.name, herr, tc.status)
			} else if !errors.Is(herr, ErrBadHandshake) {
				t.Errorf("%s: %v does not wrap ErrBadHandshake", tc.name, herr)
			}
		}
	}
}

// handshakeServer serves Accept on loopback; each accepted Conn is passed
// to serve (closed right away when serve is nil).
func handshakeServer(t *testing.T, opts *AcceptOptions, serve func(c *Conn)) *httptest.Server {
	t.Helper()
	errs := make(chan error, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, opts)
		if err != nil {
			if !errors.Is(err, ErrBadHandshake) {
				errs <- err
			}
			return
		}
		defer c.CloseNow()
		if serve != nil {
			serve(c)
		}
	}))
	t.Cleanup(func() {
		srv.Close()
		close(errs)
		for err := range errs {
			t.Errorf("Accept error without ErrBadHandshake: %v", err)
		}
	})
	return srv
}

// roundTrip sends a raw request and reads the response.
func roundTrip(t *testing.T, addr, request string) (*http.Response, net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(waitLong))
	if _, err := io.WriteString(nc, request); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	return resp, nc, br
}

// TestHandshakeAccept runs the table through Accept behind net/http.
func TestHandshakeAccept(t *testing.T) {
	for _, tc := range handshakeCases {
		t.Run(tc.name, func(t *testing.T) {
			srv := handshakeServer(t, tc.opts, nil)
			resp, _, _ := roundTrip(t, srv.Listener.Addr().String(), tc.request)
			if resp.StatusCode != tc.status {
				body, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, body, tc.status)
			}
			if tc.check != nil {
				tc.check(t, resp)
			}
		})
	}
}

// TestHandshakeAcceptConn runs the table through AcceptConn on a raw
// connection.
func TestHandshakeAcceptConn(t *testing.T) {
	for _, tc := range handshakeCases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := netPair(t, overTCP)
			defer b.Close()
			type result struct {
				c   *Conn
				r   *http.Request
				err error
			}
			ch := make(chan result, 1)
			go func() {
				c, r, err := AcceptConn(context.Background(), a, tc.opts)
				ch <- result{c, r, err}
			}()
			if _, err := io.WriteString(b, tc.request); err != nil {
				t.Fatal(err)
			}
			b.SetDeadline(time.Now().Add(waitLong))
			resp, err := http.ReadResponse(bufio.NewReader(b), &http.Request{Method: http.MethodGet})
			if err != nil {
				t.Fatal(err)
			}
			res := <-ch
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (err %v)", resp.StatusCode, tc.status, res.err)
			}
			if tc.status == 101 {
				if res.err != nil || res.c == nil {
					t.Fatalf("AcceptConn: %v", res.err)
				}
				defer res.c.CloseNow()
				if res.r == nil || res.r.URL.Path != "/chat" {
					t.Fatalf("request %+v", res.r)
				}
				if got := res.c.Subprotocol(); got != resp.Header.Get("Sec-WebSocket-Protocol") {
					t.Fatalf("Subprotocol() = %q, response says %q", got, resp.Header.Get("Sec-WebSocket-Protocol"))
				}
			} else {
				if !errors.Is(res.err, ErrBadHandshake) {
					t.Fatalf("AcceptConn error %v, want ErrBadHandshake", res.err)
				}
				var he *HandshakeError
				if !errors.As(res.err, &he) || he.Status != tc.status {
					t.Fatalf("AcceptConn error %v, want a HandshakeError with %d", res.err, tc.status)
				}
				// A refused connection is closed.
				body, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body = io.NopCloser(bytes.NewReader(body))
				if n, err := b.Read(make([]byte, 1)); n != 0 || err == nil {
					t.Fatalf("connection still open after the refusal: %d, %v", n, err)
				}
			}
			if tc.check != nil {
				tc.check(t, resp)
			}
		})
	}
}

// TestAcceptPipelinedFrames: frames sent in the same packet as the request
// reach the Conn, through net/http and through AcceptConn.
func TestAcceptPipelinedFrames(t *testing.T) {
	frames := appendFrame(nil, true, 0, opText, true, [4]byte{9, 8, 7, 6}, []byte("first"))
	frames = appendFrame(frames, true, 0, opBinary, true, [4]byte{1, 2, 3, 4}, pattern(5000, 1))
	check := func(t *testing.T, c *Conn) {
		ctx := context.Background()
		typ, p, err := c.Read(ctx)
		if err != nil || typ != MessageText || string(p) != "first" {
			t.Errorf("first Read: %v %q %v", typ, p, err)
			return
		}
		typ, p, err = c.Read(ctx)
		if err != nil || typ != MessageBinary || !bytes.Equal(p, pattern(5000, 1)) {
			t.Errorf("second Read: %v %d %v", typ, len(p), err)
		}
	}
	t.Run("Accept", func(t *testing.T) {
		done := make(chan struct{})
		srv := handshakeServer(t, nil, func(c *Conn) {
			defer close(done)
			check(t, c)
		})
		resp, _, _ := roundTrip(t, srv.Listener.Addr().String(), rawRequest(nil)+string(frames))
		if resp.StatusCode != 101 {
			t.Fatal(resp.Status)
		}
		<-done
	})
	t.Run("AcceptConn", func(t *testing.T) {
		a, b := netPair(t, overTCP)
		defer b.Close()
		ch := acceptOn(a, ConnOptions{})
		if _, err := io.WriteString(b, rawRequest(nil)+string(frames)); err != nil {
			t.Fatal(err)
		}
		r := <-ch
		if r.err != nil {
			t.Fatal(r.err)
		}
		defer r.c.CloseNow()
		check(t, r.c)
	})
}

// TestAcceptConnContext: ctx bounds the wait for the request.
func TestAcceptConnContext(t *testing.T) {
	a, b := netPair(t, overTCP)
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var err error
	within(t, waitLong, "AcceptConn", func() { _, _, err = AcceptConn(ctx, a, nil) })
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("AcceptConn = %v, want context.DeadlineExceeded", err)
	}
	if n, rerr := b.Read(make([]byte, 1)); n != 0 || rerr == nil {
		t.Fatal("connection not closed")
	}
}

// fakeServer answers a client's handshake with whatever respond returns,
// given the request.
func fakeServer(t *testing.T, opts *ClientOptions, rawURL string, respond func(req *http.Request) string) (*Conn, *http.Response, *http.Request, net.Conn, error) {
	t.Helper()
	a, b := netPair(t, overTCP)
	t.Cleanup(func() { b.Close() })
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		c    *Conn
		resp *http.Response
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		c, resp, err := NewClient(context.Background(), a, u, opts)
		ch <- result{c, resp, err}
	}()
	b.SetDeadline(time.Now().Add(waitLong))
	req, err := http.ReadRequest(bufio.NewReader(b))
	if err != nil {
		t.Fatalf("reading the client's request: %v", err)
	}
	if _, err := io.WriteString(b, respond(req)); err != nil {
		t.Fatal(err)
	}
	b.SetDeadline(time.Time{})
	r := <-ch
	if r.c != nil {
		t.Cleanup(func() { r.c.CloseNow() })
	}
	return r.c, r.resp, req, b, r.err
}

func ok101(req *http.Request, extra ...string) string {
	s := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		wantAccept(req.Header.Get("Sec-WebSocket-Key")) + "\r\n"
	for _, e := range extra {
		s += e + "\r\n"
	}
	return s + "\r\n"
}

// TestClientRequest checks the opening request (RFC 6455 §4.1).
func TestClientRequest(t *testing.T) {
	opts := &ClientOptions{
		Origin:       "https://app.example.com",
		Subprotocols: []string{"chat", "superchat"},
		Header:       http.Header{"X-Token": {"t"}, "Sec-Websocket-Key": {"forged"}},
	}
	c, _, req, _, err := fakeServer(t, opts, "ws://user:pass@server.example.com:8080/chat?x=1", func(r *http.Request) string {
		return ok101(r, "Sec-WebSocket-Protocol: superchat")
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Subprotocol() != "superchat" {
		t.Fatalf("Subprotocol() = %q", c.Subprotocol())
	}
	if req.Method != "GET" || req.RequestURI != "/chat?x=1" || req.ProtoMajor != 1 || req.ProtoMinor != 1 {
		t.Fatalf("request line %s %s %s", req.Method, req.RequestURI, req.Proto)
	}
	if req.Host != "server.example.com:8080" {
		t.Fatalf("Host %q", req.Host)
	}
	if !hasToken(req.Header, "Upgrade", "websocket") || !hasToken(req.Header, "Connection", "upgrade") {
		t.Fatalf("Upgrade/Connection: %v", req.Header)
	}
	keys := req.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		t.Fatalf("keys %q", keys)
	}
	if k, err := base64.StdEncoding.DecodeString(keys[0]); err != nil || len(k) != 16 {
		t.Fatalf("key %q is not 16 bytes in base64", keys[0])
	}
	if req.Header.Get("Sec-WebSocket-Version") != "13" {
		t.Fatalf("version %q", req.Header.Get("Sec-WebSocket-Version"))
	}
	if req.Header.Get("Origin") != "https://app.example.com" {
		t.Fatalf("Origin %q", req.Header.Get("Origin"))
	}
	if got := tokens(req.Header, "Sec-WebSocket-Protocol"); !slices.Equal(got, []string{"chat", "superchat"}) {
		t.Fatalf("protocols %q", got)
	}
	if req.Header.Get("X-Token") != "t" {
		t.Fatal("custom header missing")
	}
	if user, pass, ok := req.BasicAuth(); !ok || user != "user" || pass != "pass" {
		t.Fatal("no Basic authorization from the URL's user info")
	}

	// A fresh key for every handshake; version 8 sends its origin as
	// Sec-WebSocket-Origin.
	_, _, req2, _, err := fakeServer(t, &ClientOptions{Version: 8, Origin: "http://o.example"}, "ws://h/", func(r *http.Request) string { return ok101(r) })
	if err != nil {
		t.Fatal(err)
	}
	if req2.Header.Get("Sec-WebSocket-Key") == keys[0] {
		t.Fatal("the same key twice")
	}
	if req2.Header.Get("Sec-WebSocket-Version") != "8" || req2.Header.Get("Sec-WebSocket-Origin") != "http://o.example" {
		t.Fatalf("version 8 request: %v", req2.Header)
	}
}

// TestClientRejectsResponse: the client fails the connection on any
// response RFC 6455 §4.1 says it must not accept.
func TestClientRejectsResponse(t *testing.T) {
	cases := []struct {
		name    string
		opts    *ClientOptions
		respond func(r *http.Request) string
	}{
		{"wrong accept", nil, func(r *http.Request) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + wantAccept("x") + "\r\n\r\n"
		}},
		{"missing accept", nil, func(r *http.Request) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
		}},
		{"missing Upgrade", nil, func(r *http.Request) string {
			return "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + wantAccept(r.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n"
		}},
		{"missing Connection", nil, func(r *http.Request) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: " + wantAccept(r.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n"
		}},
		{"200", nil, func(r *http.Request) string { return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi" }},
		{"subprotocol not offered", &ClientOptions{Subprotocols: []string{"chat"}}, func(r *http.Request) string {
			return ok101(r, "Sec-WebSocket-Protocol: evil")
		}},
		{"subprotocol when none offered", nil, func(r *http.Request) string {
			return ok101(r, "Sec-WebSocket-Protocol: chat")
		}},
		{"two subprotocols", &ClientOptions{Subprotocols: []string{"a", "b"}}, func(r *http.Request) string {
			return ok101(r, "Sec-WebSocket-Protocol: a", "Sec-WebSocket-Protocol: b")
		}},
		{"extension not offered", nil, func(r *http.Request) string {
			return ok101(r, "Sec-WebSocket-Extensions: permessage-deflate")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, resp, _, b, err := fakeServer(t, tc.opts, "ws://h/", tc.respond)
			if err == nil || c != nil {
				t.Fatalf("NewClient accepted it")
			}
			if !errors.Is(err, ErrBadHandshake) {
				t.Fatalf("error %v, want ErrBadHandshake", err)
			}
			if resp == nil {
				t.Fatal("no response returned")
			}
			b.SetReadDeadline(time.Now().Add(waitLong))
			if _, rerr := io.Copy(io.Discard, b); rerr != nil {
				t.Fatalf("connection not closed: %v", rerr)
			}
		})
	}
}

// TestClientRefusedBody: a refusal's response comes back with at most the
// first KiB of its body.
func TestClientRefusedBody(t *testing.T) {
	body := strings.Repeat("denied! ", 2000)
	_, resp, _, _, err := fakeServer(t, nil, "ws://h/", func(r *http.Request) string {
		return "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n" + body
	})
	if !errors.Is(err, ErrBadHandshake) {
		t.Fatalf("error %v, want ErrBadHandshake", err)
	}
	var he *HandshakeError
	if !errors.As(err, &he) || he.Status != 403 {
		t.Fatalf("error %v, want a HandshakeError with 403", err)
	}
	if resp == nil || resp.StatusCode != 403 {
		t.Fatalf("response %v", resp)
	}
	got, rerr := io.ReadAll(resp.Body)
	if rerr != nil || len(got) == 0 || len(got) > 1024 || !strings.HasPrefix(body, string(got)) {
		t.Fatalf("body of %d bytes (%v), want a prefix of at most 1024", len(got), rerr)
	}
}

func itoa(n int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}

// TestClientPipelinedFrame: a frame in the same packet as the 101 reaches
// the client.
func TestClientPipelinedFrame(t *testing.T) {
	c, _, _, _, err := fakeServer(t, nil, "ws://h/", func(r *http.Request) string {
		f := appendFrame(nil, true, 0, opText, false, [4]byte{}, []byte("welcome"))
		f = appendFrame(f, true, 0, opPing, false, [4]byte{}, []byte("p"))
		return ok101(r) + string(f)
	})
	if err != nil {
		t.Fatal(err)
	}
	typ, p, err := c.Read(context.Background())
	if err != nil || typ != MessageText || string(p) != "welcome" {
		t.Fatalf("Read: %v %q %v", typ, p, err)
	}
}

// TestClientHandshakeContext: ctx bounds a handshake the server never
// answers.
func TestClientHandshakeContext(t *testing.T) {
	a, b := netPair(t, overTCP)
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	u, _ := url.Parse("ws://h/")
	var err error
	within(t, waitLong, "NewClient", func() { _, _, err = NewClient(ctx, a, u, nil) })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("NewClient = %v, want context.DeadlineExceeded", err)
	}
}

// TestHandshakeEndToEnd: NewClient against Accept, with a subprotocol.
func TestHandshakeEndToEnd(t *testing.T) {
	srv := handshakeServer(t, &AcceptOptions{Subprotocols: []string{"v2", "v1"}}, func(c *Conn) {
		if c.Subprotocol() != "v1" {
			c.Close(StatusPolicyViolation, "wrong protocol")
			return
		}
		for {
			typ, p, err := c.Read(context.Background())
			if err != nil {
				return
			}
			if c.Write(context.Background(), typ, p) != nil {
				return
			}
		}
	})
	u, _ := url.Parse("ws://" + srv.Listener.Addr().String() + "/")
	nc, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	c, resp, err := NewClient(context.Background(), nc, u, &ClientOptions{Subprotocols: []string{"v1", "v2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if resp.StatusCode != 101 || c.Subprotocol() != "v1" {
		t.Fatalf("status %d subprotocol %q", resp.StatusCode, c.Subprotocol())
	}
	if err := c.Write(context.Background(), MessageText, []byte("echo")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := c.Read(context.Background()); err != nil || string(p) != "echo" {
		t.Fatalf("%q %v", p, err)
	}
	if err := c.Close(StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
}

// TestAcceptClearsServerDeadlines: an http.Server's read and write
// timeouts govern the HTTP exchange, not the WebSocket connection after it.
func TestAcceptClearsServerDeadlines(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.CloseNow()
		_, p, err := c.Read(context.Background())
		if err != nil {
			got <- err.Error()
			return
		}
		time.Sleep(150 * time.Millisecond)
		if err := c.Write(context.Background(), MessageText, p); err != nil {
			got <- err.Error()
			return
		}
		got <- string(p)
		c.Read(context.Background())
	}))
	srv.Config.ReadTimeout = 50 * time.Millisecond
	srv.Config.WriteTimeout = 50 * time.Millisecond
	srv.Start()
	defer srv.Close()
	resp, nc, br := roundTrip(t, srv.Listener.Addr().String(), rawRequest(nil))
	if resp.StatusCode != 101 {
		t.Fatal(resp.Status)
	}
	nc.SetDeadline(time.Time{})
	time.Sleep(150 * time.Millisecond) // past both timeouts
	if _, err := nc.Write(appendFrame(nil, true, 0, opText, true, [4]byte{1, 2, 3, 4}, []byte("late"))); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "late" {
		t.Fatalf("server: %s", s)
	}
	nc.SetReadDeadline(time.Now().Add(waitLong))
	f, err := readWireFrame(br)
	if err != nil || string(f.payload) != "late" {
		t.Fatalf("echo: %v %v", f, err)
	}
	nc.Close()
}

// TestAcceptVersion8: a version 8 handshake gives a Conn of version 8.
func TestAcceptVersion8(t *testing.T) {
	a, b := netPair(t, overTCP)
	defer b.Close()
	ch := make(chan connResult, 1)
	go func() {
		c, _, err := AcceptConn(context.Background(), a, nil)
		ch <- connResult{c, err}
	}()
	if _, err := io.WriteString(b, rawRequest(dropVersion, "Sec-WebSocket-Version: 8")); err != nil {
		t.Fatal(err)
	}
	readResponse(t, bufio.NewReader(b))
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.c.CloseNow()
	if r.c.Version() != 8 {
		t.Fatalf("Version() = %d", r.c.Version())
	}
}
