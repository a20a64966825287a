package client

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realtime-go/realtime/eventsource"
	"github.com/realtime-go/realtime/proxy"
)

// The EventSource speaks HTTP/2 with an origin that offers it by ALPN
// (before, it forced http/1.1 and had no HTTP/2 at all).
func TestEventSourceHTTP2(t *testing.T) {
	noProxyEnv(t)
	protos := make(chan int, 8)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protos <- r.ProtoMajor
		sseHandler(time.Millisecond)(w, r)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	var opened atomic.Int64
	es := newES(t, &Dialer{TLSConfig: &tls.Config{RootCAs: pool}}, srv.URL+"/sse", &EventSourceOptions{
		MinDelay: -1,
		OnOpen: func(resp *http.Response) {
			if resp.ProtoMajor == 2 {
				opened.Add(1)
			}
		},
	})
	for i := 1; i <= 4; i++ { // across a reconnection
		if ev := nextEvent(t, es); ev.ID != strconv.Itoa(i) {
			t.Fatalf("event %+v, want id %d", ev, i)
		}
	}
	for range 2 {
		if p := <-protos; p != 2 {
			t.Fatalf("the server saw HTTP/%d, want HTTP/2", p)
		}
	}
	if opened.Load() < 2 {
		t.Fatalf("OnOpen saw %d HTTP/2 responses, want 2", opened.Load())
	}
	es.Close()
}

// connCounter counts the connections an httptest server accepted.
func connCounter(srv *httptest.Server) *atomic.Int64 {
	var n atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}
	return &n
}

// Reconnections after a clean end of stream reuse the connection over
// HTTP/1.1 (before, every request dialed anew).
func TestEventSourceReusesConnection(t *testing.T) {
	noProxyEnv(t)
	// A stream that stays with net/http: one that Accept hijacks ends
	// with its connection.
	srv := httptest.NewUnstartedServer(sseHandlerWith(&eventsource.Options{Retry: time.Millisecond, Hijack: eventsource.HijackNever}))
	conns := connCounter(srv)
	srv.Start()
	t.Cleanup(srv.Close)
	es := newES(t, &Dialer{}, srv.URL+"/sse", &EventSourceOptions{MinDelay: -1})
	for i := 1; i <= 9; i++ { // two reconnections
		if ev := nextEvent(t, es); ev.ID != strconv.Itoa(i) {
			t.Fatalf("event %+v, want id %d", ev, i)
		}
	}
	es.Close()
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for three requests, want 1", n)
	}
}

// roundTripFunc is an http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Dialer.HTTPClient makes the requests when set; the Dialer's header
// and the EventSource's fields still go with them, and its Jar is the
// client's when the client has none.
func TestEventSourceHTTPClient(t *testing.T) {
	noProxyEnv(t)
	srv := esServer(t, false, map[string]http.HandlerFunc{"/sse": sseHandler(time.Millisecond)})
	var used atomic.Int64
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		used.Add(1)
		r = r.Clone(r.Context())
		r.Header.Set("X-Client", "mine")
		return http.DefaultTransport.RoundTrip(r)
	})}
	d := &Dialer{HTTPClient: hc, Header: http.Header{"X-D": {"d"}}, Proxy: func(*http.Request) (*url.URL, error) {
		return nil, errors.New("the Dialer's Proxy must not be asked")
	}}
	es := newES(t, d, "http://"+srv.Addr+"/sse", nil)
	if ev := nextEvent(t, es); ev.ID != "1" {
		t.Fatalf("event %+v", ev)
	}
	r := waitSeen(t, srv.reqs).r
	if r.Header.Get("X-Client") != "mine" || r.Header.Get("X-D") != "d" || r.Header.Get("Accept") != "text/event-stream" {
		t.Fatalf("request header %v", r.Header)
	}
	if used.Load() == 0 {
		t.Fatal("the caller's client was not used")
	}
	es.Close()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
}

// postRedirectRecorder is a server at another origin that records what a
// redirected POST brought.
type postRedirectRecorder struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []postSeen
}

type postSeen struct{ method, auth, cookie, token, body string }

func (p *postRedirectRecorder) got() []postSeen {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]postSeen(nil), p.seen...)
}

func newPostRedirectRecorder(t *testing.T, next http.Handler) *postRedirectRecorder {
	p := &postRedirectRecorder{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.seen = append(p.seen, postSeen{r.Method, r.Header.Get("Authorization"), r.Header.Get("Cookie"), r.Header.Get(tokenHeader), string(b)})
		p.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		next.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// A POST answered 307 goes to the new URL with its body, and without
// the credentials when that is another origin: an EventSource's POST,
// and a Socket's (before, the Socket's POST failed on any 3xx).
func TestPostRedirect307(t *testing.T) {
	noProxyEnv(t)
	t.Run("eventsource", func(t *testing.T) {
		other := newPostRedirectRecorder(t, rawHandler(200, "text/event-stream", "data: moved\n\n"))
		first := esServer(t, false, map[string]http.HandlerFunc{"/sse": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.srv.URL+"/there", http.StatusTemporaryRedirect)
		}})
		d := &Dialer{Header: http.Header{"Cookie": {"c=1"}, "Authorization": {"Bearer secret"}}}
		es := newES(t, d, "http://"+first.Addr+"/sse", &EventSourceOptions{Method: http.MethodPost, Body: []byte("payload")})
		if ev := nextEvent(t, es); ev.Data != "moved" {
			t.Fatalf("event %+v", ev)
		}
		if r := waitSeen(t, first.reqs).r; r.Header.Get("Authorization") != "Bearer secret" {
			t.Fatalf("the first origin got Authorization %q", r.Header.Get("Authorization"))
		}
		got := other.got()
		if len(got) == 0 || got[0] != (postSeen{method: "POST", body: "payload"}) {
			t.Fatalf("the other origin got %+v, want the POST with its body and no credentials", got)
		}
	})
	t.Run("socket", func(t *testing.T) {
		var other *postRedirectRecorder
		rs := startRT(t, rtConfig{wrap: func(h http.Handler) http.Handler {
			other = newPostRedirectRecorder(t, h)
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost {
					http.Redirect(w, r, other.srv.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
					return
				}
				h.ServeHTTP(w, r)
			})
		}})
		d := &Dialer{Proxy: proxy.Direct, Header: http.Header{"Cookie": {"c=1"}}}
		s, rec := newSocket(t, d, strings.Replace(rs.URL, "://", "://u:p@", 1), &SocketOptions{Transport: TransportEventSource})
		rec.open(t)
		inChat(t, s)
		send(t, s, "one")
		if got := <-rs.got; got != "eventsource:one" {
			t.Fatalf("delivered %q", got)
		}
		got := other.got()
		if len(got) == 0 || got[len(got)-1].method != "POST" || got[len(got)-1].body == "" || got[len(got)-1].token == "" ||
			got[len(got)-1].auth != "" || got[len(got)-1].cookie != "" {
			t.Fatalf("the other origin got %+v, want the POST with its body and token, without credentials", got)
		}
	})
}

// Through an https:// proxy the EventSource speaks TLS with the proxy by
// ProxyTLSConfig (net/http alone would use the origin's configuration),
// tunnels by default, and in forward mode sends ProxyConnectHeader with
// each request, with the proxy URL's userinfo winning over its
// Proxy-Authorization, as with CONNECT.
func TestEventSourceThroughHTTPSProxy(t *testing.T) {
	noProxyEnv(t)
	plain := esServer(t, false, map[string]http.HandlerFunc{"/sse": sseHandler(time.Millisecond)})
	cert, pool := testCert(t)
	for _, forward := range []bool{false, true} {
		t.Run(map[bool]string{false: "tunnel", true: "forward"}[forward], func(t *testing.T) {
			// A proxy of its own: the server ends each stream with its
			// connection, so the tunnel case leaves a CONNECT per request.
			p := startProxy(t, cert, "", nil)
			d := &Dialer{
				Proxy:              http.ProxyURL(mustParse(t, "https://u:p@"+p.addr)),
				ProxyTLSConfig:     &tls.Config{RootCAs: pool},
				TLSConfig:          &tls.Config{RootCAs: x509.NewCertPool()}, // trusts nothing
				ProxyConnectHeader: http.Header{"X-P": {"p"}, "Proxy-Authorization": {"Other x"}},
				ForwardProxy:       forward,
			}
			es := newES(t, d, "http://"+plain.Addr+"/sse", &EventSourceOptions{MinDelay: -1})
			for i := 1; i <= 4; i++ {
				if ev := nextEvent(t, es); ev.ID != strconv.Itoa(i) {
					t.Fatalf("event %+v, want id %d", ev, i)
				}
			}
			es.Close()
			r := p.request(t)
			wantMethod, wantURI := "CONNECT", plain.Addr
			if forward {
				wantMethod, wantURI = "GET", "http://"+plain.Addr+"/sse"
			}
			if r.Method != wantMethod || r.RequestURI != wantURI || r.Header.Get("X-P") != "p" ||
				len(r.Header["Proxy-Authorization"]) != 1 || r.Header.Get("Proxy-Authorization") != "Basic dTpw" {
				t.Fatalf("proxy saw %s %s %v", r.Method, r.RequestURI, r.Header)
			}
			if forward {
				if r := p.request(t); r.Method != "GET" || r.Header.Get("Last-Event-ID") != "3" || r.Header.Get("X-P") != "p" {
					t.Fatalf("the reconnection: proxy saw %s %s %v", r.Method, r.RequestURI, r.Header)
				}
			}
		})
	}
}

// Over HTTP/2 a Socket's event stream and its POSTs share one
// connection (before, HTTP/1.1 only: the stream held one connection and
// the POSTs another).
func TestSocketEventSourceHTTP2(t *testing.T) {
	protos := make(chan int, 64)
	rs := startRT(t, rtConfig{h2: true, wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			protos <- r.ProtoMajor
			h.ServeHTTP(w, r)
		})
	}})
	pool := x509.NewCertPool()
	pool.AddCert(rs.srv.Certificate())
	d := &Dialer{Proxy: proxy.Direct, TLSConfig: &tls.Config{RootCAs: pool}}
	s, rec := newSocket(t, d, rs.URL, &SocketOptions{Transport: TransportEventSource})
	if info := rec.open(t); info.Response.ProtoMajor != 2 {
		t.Fatalf("the stream opened over HTTP/%d", info.Response.ProtoMajor)
	}
	inChat(t, s)
	for _, m := range []string{"one", "two", "three"} {
		send(t, s, m)
		if got := rs.received(t); got != "eventsource:"+m {
			t.Fatalf("delivered %q, want %q", got, "eventsource:"+m)
		}
	}
	s.Close()
	for len(protos) > 0 {
		if p := <-protos; p != 2 {
			t.Fatalf("a request over HTTP/%d", p)
		}
	}
	if n := rs.conns.Load(); n != 1 {
		t.Fatalf("%d connections for the stream and its POSTs, want 1", n)
	}
}
