package realtime

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
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
