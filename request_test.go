package realtime

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"weak"

	"github.com/realtime-go/realtime/websocket"
)

type ctxKey struct{}

// TestRequestAfterOpen checks what Socket.Request returns once a
// WebSocket socket is open: a copy of the request's method, URL,
// headers, host, remote address and path values, with no context of
// net/http's, while the socket's context keeps the request context's
// values; and that the socket no longer holds the *http.Request.
func TestRequestAfterOpen(t *testing.T) {
	type seen struct {
		r    weak.Pointer[http.Request]
		user any
	}
	connected := make(chan seen, 1)
	opened := make(chan *Socket, 1)
	h := Handler(&Options{OnConnect: func(ctx context.Context, s *Socket) error {
		connected <- seen{weak.Make(s.Request()), ctx.Value(ctxKey{})}
		return nil
	}}, func(ctx context.Context, s *Socket) {
		if ctx.Value(ctxKey{}) != "ann" {
			t.Errorf("serve's context lost the request's value: %v", ctx.Value(ctxKey{}))
		}
		opened <- s
		<-ctx.Done()
	})
	mux := http.NewServeMux()
	mux.Handle("GET /rooms/{room}/rt", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, "ann")))
	}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	u, _ := url.Parse(srv.URL + "/rooms/a%2Fb/rt?x=1&y=%20")
	u.Scheme = "ws"
	nc, err := new(net.Dialer).DialContext(testCtx(t), "tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	hd := http.Header{"X-Two": {"1", "2"}, "X-Odd": {"a: b\tc"}}
	c, _, err := websocket.NewClient(testCtx(t), nc, u, &websocket.ClientOptions{Subprotocols: []string{Subprotocol}, Header: hd})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	sn := <-connected
	if sn.user != "ann" {
		t.Fatalf("OnConnect's context: value %v", sn.user)
	}
	s := <-opened
	defer s.abort()
	r := s.Request()
	if r.Method != http.MethodGet || r.URL.Path != "/rooms/a/b/rt" || r.URL.RawPath != "/rooms/a%2Fb/rt" || r.URL.Query().Get("y") != " " ||
		r.Host != u.Host || r.RequestURI != "/rooms/a%2Fb/rt?x=1&y=%20" || r.Proto != "HTTP/1.1" || r.ProtoMajor != 1 || r.ProtoMinor != 1 ||
		r.RemoteAddr != c.LocalAddr().String() || r.Pattern != "GET /rooms/{room}/rt" || r.PathValue("room") != "a/b" {
		t.Fatalf("Request() = %+v %+v", r, r.URL)
	}
	if got := r.Header.Values("X-Two"); strings.Join(got, ",") != "1,2" || r.Header.Get("X-Odd") != "a: b\tc" || r.Header.Get("Sec-WebSocket-Protocol") != Subprotocol {
		t.Fatalf("headers %v", r.Header)
	}
	if r.Context() != context.Background() {
		t.Fatal("Request().Context() is not context.Background()")
	}
	// A copy: changing it changes nothing of the next.
	r.URL.Path, r.Header["X-Two"][0] = "/changed", "changed"
	if r2 := s.Request(); r2.URL.Path != "/rooms/a/b/rt" || r2.Header.Get("X-Two") != "1" {
		t.Fatalf("a change of Request()'s result stayed: %v %v", r2.URL.Path, r2.Header)
	}
	// The request itself is garbage once the handler returned.
	eventually(t, "the request to be collected", func() bool {
		runtime.GC()
		return sn.r.Value() == nil
	})
}

// A socket's context keeps the values net/http gives a request (its
// server and local address) and not the request's chain of contexts,
// which every socket kept for its life: net/http's contexts of the
// connection and of the request, about 0.4 KiB of an idle socket. The
// sockets of one server and address share one context of those values.
// (TestRequestAfterOpen covers a request with values of its own.)
func TestSocketKeepsNetHTTPValuesOnly(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	for range 2 {
		c := dialWS(t, ts, wsDial{})
		defer c.c.CloseNow()
	}
	s1, s2 := ts.next(t), ts.next(t)
	for _, s := range []*Socket{s1, s2} {
		ctx := s.context()
		if srv := ctx.Value(http.ServerContextKey); srv != ts.srv.Config {
			t.Errorf("the socket's context has server %v, want %v", srv, ts.srv.Config)
		}
		addr, _ := ctx.Value(http.LocalAddrContextKey).(net.Addr)
		if addr == nil || addr.String() != ts.srv.Listener.Addr().String() {
			t.Errorf("the socket's context has local address %v, want %v", addr, ts.srv.Listener.Addr())
		}
		if d := fmt.Sprint(s.vals); strings.Contains(d, "WithCancel") {
			t.Errorf("the socket keeps net/http's contexts: %s", d)
		}
	}
	if s1.vals != s2.vals {
		t.Error("two sockets of one server and address keep a context each")
	}
}

// browserUpgrade is a WebSocket upgrade as Chrome sends it.
func browserUpgrade() *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/rt?lastEventId=", nil)
	r.RemoteAddr = "203.0.113.7:51234"
	r.Host = "chat.example.com"
	for k, v := range map[string]string{
		"Connection": "Upgrade", "Pragma": "no-cache", "Cache-Control": "no-cache",
		"User-Agent":            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Upgrade":               "websocket",
		"Origin":                "https://chat.example.com",
		"Sec-Websocket-Version": "13", "Accept-Encoding": "gzip, deflate, br, zstd", "Accept-Language": "en-US,en;q=0.9",
		"Sec-Websocket-Key":        "dGhlIHNhbXBsZSBub25jZQ==",
		"Sec-Websocket-Extensions": "permessage-deflate; client_max_window_bits",
		"Sec-Websocket-Protocol":   "realtime.v2, realtime.v1",
	} {
		r.Header.Set(k, v)
	}
	return r
}

// What a WebSocket socket keeps of a browser's request for Request():
// 560 bytes before the names of its headers, and the values of a
// handshake, took one byte each.
func TestRequestCopySize(t *testing.T) {
	r := browserUpgrade()
	c := copyRequest(r)
	if n := len(c.blob); n > 320 {
		t.Errorf("a browser's upgrade request is kept in %d bytes, want at most 320", n)
	}
	got := c.request()
	if !reflect.DeepEqual(got.Header, r.Header) || got.Method != r.Method || got.Host != r.Host || got.RemoteAddr != r.RemoteAddr || *got.URL != *r.URL {
		t.Fatalf("Request() = %+v, want %+v", got, r)
	}
}

// commonFields are each kept as one byte, once.
func TestCommonFields(t *testing.T) {
	if len(commonFields) > 128 {
		t.Errorf("%d common fields: the index of the last takes more than a byte", len(commonFields))
	}
	if len(commonIndex) != len(commonFields) {
		t.Errorf("commonFields has duplicates: %d distinct of %d", len(commonIndex), len(commonFields))
	}
}

// FuzzRequestCopy: what Request returns once a WebSocket socket is open
// is the request that opened it, whatever its fields and headers.
func FuzzRequestCopy(f *testing.F) {
	f.Add("GET", "/rt?x=1", "example.com", "127.0.0.1:5", "Upgrade", "websocket", "a/b")
	f.Add("POST", "/rooms/%2F/rt", "", "", "X-Odd", "a: b\tc", "")
	f.Add("GET", "*", "h", "r", "", "", "\x00")
	f.Fuzz(func(t *testing.T, method, target, host, remote, name, value, room string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		r := &http.Request{Method: method, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Host: host, RemoteAddr: remote,
			RequestURI: target, URL: u, Pattern: "GET /rooms/{room}/rt",
			Header: http.Header{name: {value, value + "2"}, "Upgrade": {"websocket"}}}
		r.SetPathValue("room", room)
		got := copyRequest(r).request()
		if got.Method != method || got.Proto != r.Proto || got.ProtoMajor != 1 || got.Host != host || got.RemoteAddr != remote ||
			got.RequestURI != target || got.Pattern != r.Pattern || got.PathValue("room") != room || *got.URL != *u {
			t.Fatalf("Request() = %+v %+v, want %+v %+v", got, got.URL, r, u)
		}
		if !reflect.DeepEqual(got.Header, r.Header) {
			t.Fatalf("Request().Header = %q, want %q", got.Header, r.Header)
		}
	})
}

// netHTTPValues recognizes the context net/http gives a request by its
// String, which package context does not promise: this test fails, rather
// than every socket silently keeping net/http's context chain again, if a
// Go release changes that form.
func TestNetHTTPValuesRecognizesNetHTTP(t *testing.T) {
	h := Handler(nil, func(context.Context, *Socket) {}).(*handler)
	type key struct{}
	got := make(chan [3]bool, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plain := h.netHTTPValues(r.Context())
		again := h.netHTTPValues(r.Context())
		added := h.netHTTPValues(context.WithValue(r.Context(), key{}, 1))
		got <- [3]bool{plain != nil && plain.Value(http.ServerContextKey) != nil && plain.Value(http.LocalAddrContextKey) != nil,
			again == plain, added == nil}
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if g := <-got; g != [3]bool{true, true, true} {
		t.Errorf("net/http's context recognized and its values kept: %v; the same context for the same server: %v; one with a value added refused: %v", g[0], g[1], g[2])
	}
}
