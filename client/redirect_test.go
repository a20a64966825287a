package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strconv"
	"strings"
	"testing"

	"github.com/realtime-go/realtime/websocket"
)

// hopSeen is what a redirect test server saw of one request.
type hopSeen struct {
	path, method, upgrade, auth, cookie, other string
}

// hopRecorder returns a handler wrapper that records every request in
// order on the returned channel.
func hopRecorder() (func(http.HandlerFunc) http.HandlerFunc, chan hopSeen) {
	ch := make(chan hopSeen, 64)
	return func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			ch <- hopSeen{r.URL.Path, r.Method, r.Header.Get("Upgrade"), r.Header.Get("Authorization"), r.Header.Get("Cookie"), r.Header.Get("X-Other")}
			h(w, r)
		}
	}, ch
}

func redirectTo(code int, loc string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", loc)
		w.WriteHeader(code)
	}
}

// echoOnce checks that c echoes a message.
func echoOnce(t *testing.T, c *websocket.Conn) {
	t.Helper()
	ctx := testCtx(t)
	if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := c.Read(ctx); err != nil || string(p) != "hi" {
		t.Fatalf("echo: %q, %v", p, err)
	}
}

// TestDialRedirectChain follows a chain that leaves the first origin and
// comes back to it: the credentials (Authorization, Cookie, from Header
// or from the URL's userinfo) go to the first origin only, on every hop
// there, and other fields everywhere; the final URL is reported.
func TestDialRedirectChain(t *testing.T) {
	noProxyEnv(t)
	for _, viaUserinfo := range []bool{false, true} {
		t.Run(fmt.Sprintf("userinfo=%v", viaUserinfo), func(t *testing.T) {
			rec, seenCh := hopRecorder()
			var a, b *wsServer
			// a/start -302 relative-> a/same -307 absolute http://-> b/moved
			// -308 absolute ws://-> a/back -301 relative-> a/ws
			b = startWSServer(t, false, nil, map[string]http.HandlerFunc{
				"/moved": rec(func(w http.ResponseWriter, r *http.Request) {
					redirectTo(http.StatusPermanentRedirect, "ws://"+a.Addr+"/back")(w, r)
				}),
			})
			a = startWSServer(t, false, nil, map[string]http.HandlerFunc{
				"/start": rec(redirectTo(http.StatusFound, "same")),
				"/same": rec(func(w http.ResponseWriter, r *http.Request) {
					redirectTo(http.StatusTemporaryRedirect, "http://"+b.Addr+"/moved")(w, r)
				}),
				"/back": rec(redirectTo(http.StatusMovedPermanently, "/ws?x=1")),
			})
			d := &Dialer{MaxRedirects: 4, Header: http.Header{"Cookie": {"c=1"}, "X-Other": {"o"}}}
			wantAuth := "Bearer secret"
			start := "ws://" + a.Addr + "/start"
			if viaUserinfo {
				start = "ws://u:p@" + a.Addr + "/start"
				wantAuth = "Basic dTpw"
			} else {
				d.Header.Set("Authorization", wantAuth)
			}
			c, resp, err := d.Dial(testCtx(t), start)
			if err != nil {
				t.Fatalf("Dial: %v (response %v)", err, resp)
			}
			defer c.CloseNow()
			if got, want := resp.Request.URL.String(), "ws://"+a.Addr+"/ws?x=1"; got != want || resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("final URL %s, status %d; want %s, 101", got, resp.StatusCode, want)
			}
			echoOnce(t, c)
			for _, want := range []struct {
				path  string
				creds bool
			}{{"/start", true}, {"/same", true}, {"/moved", false}, {"/back", true}} {
				h := within(t, seenCh, "no request for "+want.path)
				wantA, wantC := "", ""
				if want.creds {
					wantA, wantC = wantAuth, "c=1"
				}
				if h.path != want.path || h.auth != wantA || h.cookie != wantC || h.other != "o" || !strings.EqualFold(h.upgrade, "websocket") {
					t.Fatalf("hop %+v; want path %s, Authorization %q, Cookie %q, X-Other o, Upgrade websocket", h, want.path, wantA, wantC)
				}
			}
		})
	}
}

// TestDialRedirectCrossOriginFinal ends on another origin: neither the
// credentials nor the userinfo reach it, nor the reported URL.
func TestDialRedirectCrossOriginFinal(t *testing.T) {
	noProxyEnv(t)
	b := startWSServer(t, false, nil, nil)
	// Another host name, so that the jar, which tells hosts and not
	// ports apart, has no cookie for it.
	other := "other.test:" + b.Addr[strings.LastIndex(b.Addr, ":")+1:]
	a := startWSServer(t, false, nil, map[string]http.HandlerFunc{
		"/go": redirectTo(http.StatusFound, "http://"+other+"/ws"),
	})
	jar, _ := cookiejar.New(nil)
	jar.SetCookies(mustParse(t, "http://"+a.Addr+"/"), []*http.Cookie{{Name: "jarred", Value: "1"}})
	d := &Dialer{
		MaxRedirects: 1, Jar: jar, Header: http.Header{"Cookie": {"c=1"}, "Proxy-Authorization": {"x"}},
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr == other {
				addr = b.Addr
			}
			var nd net.Dialer
			return nd.DialContext(ctx, network, addr)
		},
	}
	c, resp, err := d.Dial(testCtx(t), "ws://u:p@"+a.Addr+"/go")
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if r := waitSeen(t, a.reqs).r; r.Header.Get("Cookie") != "c=1; jarred=1" || r.Header.Get("Authorization") != "Basic dTpw" {
		t.Fatalf("first origin got Cookie %q, Authorization %q", r.Header.Get("Cookie"), r.Header.Get("Authorization"))
	}
	if got, want := resp.Request.URL.String(), "ws://"+other+"/ws"; got != want {
		t.Fatalf("final URL %s, want %s", got, want)
	}
	got := waitSeen(t, b.reqs).r.Header
	for _, k := range []string{"Authorization", "Cookie", "Proxy-Authorization"} {
		if v := got.Get(k); v != "" {
			t.Errorf("%s: %q reached the other origin", k, v)
		}
	}
}

// TestDialRedirect303 follows a 303 with a GET handshake, as every hop.
func TestDialRedirect303(t *testing.T) {
	noProxyEnv(t)
	rec, seenCh := hopRecorder()
	srv := startWSServer(t, false, nil, map[string]http.HandlerFunc{
		"/see":   rec(redirectTo(http.StatusSeeOther, "/final")),
		"/final": rec(http.NotFound),
	})
	srv2 := startWSServer(t, false, nil, map[string]http.HandlerFunc{
		"/see": rec(redirectTo(http.StatusSeeOther, srv.URL)),
	})
	c, resp, err := (&Dialer{MaxRedirects: 2}).Dial(testCtx(t), "ws://"+srv2.Addr+"/see")
	if err != nil {
		t.Fatalf("%v, %v", err, resp)
	}
	defer c.CloseNow()
	echoOnce(t, c)
	h := within(t, seenCh, "no request")
	if h.method != http.MethodGet || !strings.EqualFold(h.upgrade, "websocket") {
		t.Fatalf("first request %+v", h)
	}
	if r := waitSeen(t, srv.reqs).r; r.Method != http.MethodGet || r.URL.Path != "/ws" {
		t.Fatalf("after the 303: %s %s", r.Method, r.URL.Path)
	}
	// A 303 to a path that refuses stays a refusal of that path.
	_, resp, err = (&Dialer{MaxRedirects: 2}).Dial(testCtx(t), "ws://"+srv.Addr+"/see")
	if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != 404 || resp.Request.URL.Path != "/final" {
		t.Fatalf("error %v, response %v", err, resp)
	}
}

func TestDialRedirectTooMany(t *testing.T) {
	noProxyEnv(t)
	srv := startWSServer(t, false, nil, map[string]http.HandlerFunc{
		"/r/": func(w http.ResponseWriter, r *http.Request) {
			n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/r/"))
			redirectTo(http.StatusFound, "/r/"+strconv.Itoa(n+1))(w, r)
		},
	})
	_, resp, err := (&Dialer{MaxRedirects: 3}).Dial(testCtx(t), "ws://"+srv.Addr+"/r/0")
	var re *RedirectError
	if !errors.Is(err, ErrTooManyRedirects) || !errors.As(err, &re) || errors.Is(err, ErrRedirectLoop) {
		t.Fatalf("error %v", err)
	}
	var he *websocket.HandshakeError
	if !errors.Is(err, websocket.ErrBadHandshake) || !errors.As(err, &he) {
		t.Fatalf("error %v does not match the handshake refusal", err)
	}
	if len(re.URLs) != 4 || re.URLs[3] != "ws://"+srv.Addr+"/r/3" || resp == nil || resp.StatusCode != 302 || re.Response != resp {
		t.Fatalf("URLs %q, response %v", re.URLs, resp)
	}
	if !strings.Contains(err.Error(), "too many redirects") {
		t.Fatalf("message %q", err)
	}

}

func TestDialRedirectUnbounded(t *testing.T) {
	noProxyEnv(t)
	srv := startWSServer(t, false, nil, map[string]http.HandlerFunc{
		"/r/": func(w http.ResponseWriter, r *http.Request) {
			n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/r/"))
			if n == 20 {
				redirectTo(http.StatusFound, "/ws")(w, r)
				return
			}
			redirectTo(http.StatusFound, "/r/"+strconv.Itoa(n+1))(w, r)
		},
	})
	c, resp, err := (&Dialer{MaxRedirects: -1}).Dial(testCtx(t), "ws://"+srv.Addr+"/r/0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if resp.Request.URL.Path != "/ws" {
		t.Fatalf("final URL %s", resp.Request.URL)
	}
	// The default follows none.
	_, resp, err = (&Dialer{}).Dial(testCtx(t), "ws://"+srv.Addr+"/r/0")
	var re *RedirectError
	if !errors.Is(err, websocket.ErrBadHandshake) || errors.As(err, &re) || resp == nil || resp.StatusCode != 302 {
		t.Fatalf("default: error %v, response %v", err, resp)
	}
}

func TestDialRedirectLoop(t *testing.T) {
	noProxyEnv(t)
	srv := startWSServer(t, false, nil, map[string]http.HandlerFunc{
		"/a": redirectTo(http.StatusTemporaryRedirect, "/b"),
		"/b": redirectTo(http.StatusFound, "/a"),
	})
	_, resp, err := (&Dialer{MaxRedirects: 10}).Dial(testCtx(t), "ws://"+srv.Addr+"/a")
	var re *RedirectError
	if !errors.Is(err, ErrRedirectLoop) || !errors.As(err, &re) || errors.Is(err, ErrTooManyRedirects) {
		t.Fatalf("error %v", err)
	}
	base := "ws://" + srv.Addr
	if want := []string{base + "/a", base + "/b", base + "/a"}; fmt.Sprint(re.URLs) != fmt.Sprint(want) || resp == nil || resp.StatusCode != 302 {
		t.Fatalf("URLs %q, want %q; response %v", re.URLs, want, resp)
	}
}

// TestDialRedirectBadLocation: a Location that is no ws, wss, http or
// https URL is not followed: the 3xx is a refusal.
func TestDialRedirectBadLocation(t *testing.T) {
	noProxyEnv(t)
	srv := startWSServer(t, false, nil, map[string]http.HandlerFunc{
		"/ftp":  redirectTo(http.StatusFound, "ftp://example.com/"),
		"/none": redirectTo(http.StatusFound, ""),
	})
	for _, p := range []string{"/ftp", "/none"} {
		_, resp, err := (&Dialer{MaxRedirects: 3}).Dial(testCtx(t), "ws://"+srv.Addr+p)
		var re *RedirectError
		if !errors.Is(err, websocket.ErrBadHandshake) || errors.As(err, &re) || resp == nil || resp.StatusCode != 302 {
			t.Fatalf("%s: error %v, response %v", p, err, resp)
		}
	}
}

// TestSocketWebSocketRedirect: a Socket whose Dialer follows redirects
// opens its WebSocket on the URL the server redirects to, reports it in
// OpenInfo.Response, and sends and receives there; with the default it
// falls back to EventSource, the redirect being a refused handshake.
func TestSocketWebSocketRedirect(t *testing.T) {
	rs := startRT(t, rtConfig{wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") != "" && r.URL.Query().Get("moved") == "" {
				q := r.URL.Query()
				q.Set("moved", "1")
				http.Redirect(w, r, "/rt?"+q.Encode(), http.StatusTemporaryRedirect)
				return
			}
			h.ServeHTTP(w, r)
		})
	}})
	s, rec := newSocket(t, &Dialer{MaxRedirects: 1}, rs.URL, nil)
	info := rec.open(t)
	if info.Transport != TransportWebSocket || info.Response.Request.URL.Query().Get("moved") != "1" || info.Response.Request.URL.Host != rs.srv.Listener.Addr().String() {
		t.Fatalf("open: %v at %v", info.Transport, info.Response.Request.URL)
	}
	send(t, s, "hi")
	if got := rs.received(t); got != "websocket:hi" {
		t.Fatalf("server received %q", got)
	}

	_, rec = newSocket(t, nil, rs.URL, nil)
	info = rec.open(t)
	if info.Transport != TransportEventSource || !errors.Is(info.WebSocketErr, websocket.ErrBadHandshake) {
		t.Fatalf("default: %v, WebSocketErr %v", info.Transport, info.WebSocketErr)
	}
}
