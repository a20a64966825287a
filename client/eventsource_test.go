package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realtime-go/realtime/eventsource"
	"github.com/realtime-go/realtime/proxy"
)

// sseHandler streams three events numbered after the request's
// Last-Event-ID, then ends the response, so a client has to reconnect.
func sseHandler(retry time.Duration) http.HandlerFunc {
	return sseHandlerWith(&eventsource.Options{Retry: retry})
}

// sseHandlerWith is sseHandler with the stream options opts.
func sseHandlerWith(opts *eventsource.Options) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := eventsource.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer s.Close()
		n, _ := strconv.Atoi(s.LastEventID())
		for i := n + 1; i <= n+3; i++ {
			if err := s.Send(r.Context(), eventsource.Event{ID: strconv.Itoa(i), Data: fmt.Sprintf("event %d\nline 2", i)}); err != nil {
				return
			}
		}
	}
}

// rawHandler writes a fixed response.
func rawHandler(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// esServer starts an httptest server with the given handlers.
func esServer(t *testing.T, secure bool, handlers map[string]http.HandlerFunc) *wsServer {
	return startWSServer(t, secure, nil, handlers)
}

func newES(t *testing.T, d *Dialer, url string, opts *EventSourceOptions) *EventSource {
	t.Helper()
	es, err := d.EventSource(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { es.Close() })
	return es
}

func nextEvent(t *testing.T, es *EventSource) eventsource.Event {
	t.Helper()
	ev, err := es.Next(testCtx(t))
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return ev
}

// finalErr waits for the EventSource to stop and returns why.
func finalErr(t *testing.T, es *EventSource) error {
	t.Helper()
	_, err := es.Next(testCtx(t))
	if err == nil {
		t.Fatal("Next returned an event, want the EventSource to stop")
	}
	select {
	case <-es.Done():
	case <-time.After(opTimeout):
		t.Fatal("Done not closed")
	}
	if es.Err() != err {
		t.Fatalf("Err() = %v, Next returned %v", es.Err(), err)
	}
	return err
}

func TestEventSourceReconnectsAndResumes(t *testing.T) {
	noProxyEnv(t)
	srv := esServer(t, false, map[string]http.HandlerFunc{"/sse": sseHandler(20 * time.Millisecond)})
	var mu sync.Mutex
	var opens int
	var retries []error
	es := newES(t, &Dialer{}, "http://"+srv.Addr+"/sse", &EventSourceOptions{
		MinDelay: -1, // the server's retry, below the default floor
		OnOpen: func(resp *http.Response) {
			mu.Lock()
			opens++
			mu.Unlock()
		},
		OnRetry: func(err error, delay time.Duration) {
			mu.Lock()
			retries = append(retries, err)
			mu.Unlock()
			if !inJitter(delay, 20*time.Millisecond) {
				t.Errorf("delay %v, want the server's retry of 20ms plus jitter", delay)
			}
		},
	})
	for i := 1; i <= 7; i++ {
		ev := nextEvent(t, es)
		if ev.ID != strconv.Itoa(i) || ev.Data != fmt.Sprintf("event %d\nline 2", i) || ev.Type != "message" {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}
	if es.LastEventID() != "7" {
		t.Fatalf("LastEventID %q", es.LastEventID())
	}
	var ids []string
	for range 3 {
		r := waitSeen(t, srv.reqs).r
		ids = append(ids, r.Header.Get("Last-Event-ID"))
		if r.Header.Get("Accept") != "text/event-stream" || r.Method != "GET" {
			t.Fatalf("request %s Accept %q", r.Method, r.Header.Get("Accept"))
		}
	}
	if strings.Join(ids, ",") != ",3,6" {
		t.Fatalf("Last-Event-ID sent: %q, want \"\", 3, 6", ids)
	}
	es.Close()
	if _, err := es.Next(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if opens < 3 || len(retries) < 2 || retries[0] != io.EOF {
		t.Fatalf("opens %d, retries %v", opens, retries)
	}
}

func TestEventSourceStopsForGood(t *testing.T) {
	noProxyEnv(t)
	long := strings.Repeat("b", 3000)
	srv := esServer(t, false, map[string]http.HandlerFunc{
		"/204":      rawHandler(204, "", ""),
		"/500":      rawHandler(500, "text/plain", "broken"),
		"/404-long": rawHandler(404, "text/plain", long),
		"/html":     rawHandler(200, "text/html", "<p>"),
		"/no-type":  rawHandler(200, "", "data: x\n\n"),
		"/loop":     func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) },
		"/bad-loc":  func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "ftp://x/", http.StatusFound) },
	})
	for _, tc := range []struct {
		path   string
		status int
		reason string
		body   string
	}{
		{"/204", 204, "asked the client to stop", ""},
		{"/500", 500, "status 500", "broken"},
		{"/404-long", 404, "status 404", long[:1024]},
		{"/html", 200, "content type \"text/html\"", "<p>"},
		{"/no-type", 200, "content type", ""},
		{"/loop", 302, "redirects", ""},
		{"/bad-loc", 302, "bad redirect", ""},
	} {
		t.Run(tc.path, func(t *testing.T) {
			retried := make(chan error, 1)
			es := newES(t, &Dialer{}, "http://"+srv.Addr+tc.path, &EventSourceOptions{
				Retry:   time.Millisecond,
				OnRetry: func(err error, _ time.Duration) { retried <- err },
			})
			err := finalErr(t, es)
			var re *ResponseError
			if !errors.As(err, &re) || re.StatusCode != tc.status || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("error %v, want a *ResponseError with %d mentioning %q", err, tc.status, tc.reason)
			}
			if tc.body != "" {
				b, _ := io.ReadAll(re.Response.Body)
				if string(b) != tc.body {
					t.Fatalf("body %d bytes, want %d", len(b), len(tc.body))
				}
			}
			select {
			case err := <-retried:
				t.Fatalf("reconnected after %v", err)
			default:
			}
		})
	}
}

func TestEventSourceEventTooLarge(t *testing.T) {
	noProxyEnv(t)
	srv := esServer(t, false, map[string]http.HandlerFunc{
		"/big": rawHandler(200, "text/event-stream", "data: small\n\ndata: "+strings.Repeat("x", 5000)+"\n\n"),
	})
	es := newES(t, &Dialer{}, "http://"+srv.Addr+"/big", &EventSourceOptions{MaxEventSize: 1000})
	if ev := nextEvent(t, es); ev.Data != "small" {
		t.Fatalf("first event %+v", ev)
	}
	if err := finalErr(t, es); !errors.Is(err, eventsource.ErrEventTooLarge) {
		t.Fatalf("error %v, want ErrEventTooLarge", err)
	}
}

// stallHandler sends an event, then nothing until the client leaves.
func stallHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	io.WriteString(w, "id: a\ndata: first\n\n")
	w.(http.Flusher).Flush()
	<-r.Context().Done()
}

func TestEventSourceIdleWatchdog(t *testing.T) {
	noProxyEnv(t)
	srv := esServer(t, false, map[string]http.HandlerFunc{"/stall": stallHandler})
	retried := make(chan error, 8)
	es := newES(t, &Dialer{}, "http://"+srv.Addr+"/stall", &EventSourceOptions{
		Retry:       time.Millisecond,
		IdleTimeout: 300 * time.Millisecond,
		OnRetry:     func(err error, _ time.Duration) { retried <- err },
	})
	nextEvent(t, es)
	nextEvent(t, es) // from the second connection
	if err := <-retried; !errors.Is(err, ErrIdleTimeout) {
		t.Fatalf("reconnected after %v, want ErrIdleTimeout", err)
	}
	waitSeen(t, srv.reqs)
	if id := waitSeen(t, srv.reqs).r.Header.Get("Last-Event-ID"); id != "a" {
		t.Fatalf("second request's Last-Event-ID %q", id)
	}
}

// Comments count as life for the watchdog.
func TestEventSourceCommentsFeedWatchdog(t *testing.T) {
	noProxyEnv(t)
	srv := esServer(t, false, map[string]http.HandlerFunc{"/comments": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for range 16 {
			io.WriteString(w, ": keep-alive\n\n")
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
		io.WriteString(w, "data: done\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}})
	retried := make(chan error, 8)
	es := newES(t, &Dialer{}, "http://"+srv.Addr+"/comments", &EventSourceOptions{
		IdleTimeout: 3 * time.Second, // thirty comment intervals
		OnRetry:     func(err error, _ time.Duration) { retried <- err },
	})
	if ev := nextEvent(t, es); ev.Data != "done" {
		t.Fatalf("event %+v", ev)
	}
	select {
	case err := <-retried:
		t.Fatalf("watchdog fired although comments kept coming: %v", err)
	default:
	}
}

func TestEventSourceNextContext(t *testing.T) {
	noProxyEnv(t)
	release := make(chan struct{})
	srv := esServer(t, false, map[string]http.HandlerFunc{"/slow": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: late\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}})
	es := newES(t, &Dialer{}, "http://"+srv.Addr+"/slow", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := es.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next: %v, want DeadlineExceeded", err)
	}
	close(release)
	if ev := nextEvent(t, es); ev.Data != "late" {
		t.Fatalf("event %+v", ev)
	}
}

func TestEventSourceRequest(t *testing.T) {
	noProxyEnv(t)
	srv := esServer(t, false, map[string]http.HandlerFunc{
		"/post": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/echo", http.StatusTemporaryRedirect)
		},
		"/see-other": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/echo", http.StatusSeeOther)
		},
		"/echo": func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if c, err := r.Cookie("s"); err == nil {
				body = append(body, " cookie="+c.Value...)
			}
			http.SetCookie(w, &http.Cookie{Name: "s", Value: "v1"})
			w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
			fmt.Fprintf(w, "event: echo\ndata: %s %s %s\n\n", r.Method, body, r.Header.Get("X-Api-Key"))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		},
	})
	jar, _ := cookiejar.New(nil)
	d := &Dialer{Header: http.Header{"X-Api-Key": {"k1"}}, Jar: jar}
	es := newES(t, d, "http://bob:pw@"+srv.Addr+"/post", &EventSourceOptions{
		Method: "POST",
		Body:   []byte(`{"q":1}`),
		Header: http.Header{"Content-Type": {"application/json"}},
	})
	if ev := nextEvent(t, es); ev.Type != "echo" || ev.Data != `POST {"q":1} k1` {
		t.Fatalf("event %+v", ev)
	}
	r := waitSeen(t, srv.reqs).r
	if u, p, ok := r.BasicAuth(); !ok || u != "bob" || p != "pw" || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("first request header %v", r.Header)
	}
	es.Close()

	es = newES(t, d, "http://"+srv.Addr+"/see-other", &EventSourceOptions{Method: "POST", Body: []byte("x")})
	if ev := nextEvent(t, es); ev.Data != "GET  cookie=v1 k1" {
		t.Fatalf("after 303: %+v", ev)
	}

	if _, err := d.EventSource("http://"+srv.Addr+"/", &EventSourceOptions{Method: "BAD METHOD"}); err == nil {
		t.Fatal("invalid method accepted")
	}
	if _, err := d.EventSource("ws://"+srv.Addr+"/", nil); err == nil {
		t.Fatal("ws:// URL accepted for EventSource")
	}
}

// inJitter reports whether got is want plus the jitter: up to half of
// want.
func inJitter(got, want time.Duration) bool {
	return got >= want && got <= want+want/2
}

func TestEventSourceDelay(t *testing.T) {
	const ms = time.Millisecond
	for _, tc := range []struct {
		name                string
		retry, floor, limit time.Duration
		want                []time.Duration // for quiet = 1, 2, ...
	}{
		{"backoff", 10 * ms, 0, 80 * ms, []time.Duration{10 * ms, 20 * ms, 40 * ms, 80 * ms, 80 * ms, 80 * ms}},
		{"backoff-off", 10 * ms, 0, -1, []time.Duration{10 * ms, 10 * ms, 10 * ms, 10 * ms, 10 * ms}},
		{"never-below-retry", time.Second, 0, 100 * ms, []time.Duration{time.Second, time.Second, time.Second}},
		{"retry-0-no-floor", 0, 0, time.Second, []time.Duration{0, 100 * ms, 200 * ms}},
		{"retry-0-floor", 0, DefaultMinDelay, DefaultMaxDelay, []time.Duration{DefaultMinDelay, 2 * DefaultMinDelay}},
		{"retry-above-floor", 2 * time.Second, DefaultMinDelay, -1, []time.Duration{2 * time.Second, 2 * time.Second}},
		{"huge", 1 << 62, 0, -1, []time.Duration{1 << 62}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es := &EventSource{retry: tc.retry, opts: EventSourceOptions{MinDelay: tc.floor, MaxDelay: tc.limit}}
			for i, want := range tc.want {
				jittered := false
				for range 50 {
					got := es.delay(i + 1)
					if !inJitter(got, want) {
						t.Fatalf("delay(%d) = %v, want %v plus up to half", i+1, got, want)
					}
					jittered = jittered || got != want
				}
				if !jittered && want >= 10*ms && want < 1<<62 {
					t.Fatalf("delay(%d) always %v: no jitter", i+1, want)
				}
			}
		})
	}

	// End to end: a server that ends every stream at once.
	noProxyEnv(t)
	srv := esServer(t, false, map[string]http.HandlerFunc{"/empty": rawHandler(200, "text/event-stream", ": nothing\n\n")})
	delays := make(chan time.Duration, 16)
	live := newES(t, &Dialer{}, "http://"+srv.Addr+"/empty", &EventSourceOptions{
		Retry:    5 * time.Millisecond,
		MinDelay: -1,
		MaxDelay: 20 * time.Millisecond,
		OnRetry:  func(_ error, d time.Duration) { delays <- d },
	})
	var seenDelays []time.Duration
	for range 4 {
		select {
		case d := <-delays:
			seenDelays = append(seenDelays, d)
		case <-time.After(opTimeout):
			t.Fatal("no reconnection")
		}
	}
	live.Close()
	for i, want := range []time.Duration{5 * ms, 10 * ms, 20 * ms, 20 * ms} {
		if !inJitter(seenDelays[i], want) {
			t.Fatalf("delays %v, want about 5ms 10ms 20ms 20ms", seenDelays)
		}
	}
}

// countingHandler counts the requests it answers with body.
func countingHandler(n *atomic.Int64, body string) http.HandlerFunc {
	h := rawHandler(200, "text/event-stream", body)
	return func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}
}

// A server that asks for "retry: 0" and ends every stream gets at most a
// few connections a second from a default EventSource: the wait has a
// floor (issue 11: 28,300 reconnections in 3 s).
func TestEventSourceRetryZeroHasFloor(t *testing.T) {
	noProxyEnv(t)
	for _, tc := range []struct {
		name string
		body string
	}{
		{"no-event", "retry: 0\n\n"},
		{"event", "retry: 0\ndata: x\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int64
			srv := esServer(t, false, map[string]http.HandlerFunc{"/": countingHandler(&n, tc.body)})
			es := newES(t, &Dialer{}, "http://"+srv.Addr+"/", nil)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			for {
				if _, err := es.Next(ctx); err != nil {
					break // keeps taking events until the second is over
				}
			}
			es.Close()
			// Connections at 0 s, after at least 0.5 s and after at
			// least 1 s: a slow machine can only see fewer.
			if got := n.Load(); got > 3 {
				t.Fatalf("%d connections in 1 s with a %v floor", got, DefaultMinDelay)
			}
		})
	}
}

// A POST is not sent again when its stream ends, unless the caller opts
// in (issue 11: 3 POSTs for 3 events).
func TestEventSourceNonGetNotRepeated(t *testing.T) {
	noProxyEnv(t)
	var n atomic.Int64
	srv := esServer(t, false, map[string]http.HandlerFunc{"/": func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "want POST", http.StatusMethodNotAllowed)
			return
		}
		countingHandler(&n, "retry: 1\ndata: answer\n\n")(w, r)
	}})
	opts := &EventSourceOptions{Method: "POST", Body: []byte("question"), MinDelay: -1}
	es := newES(t, &Dialer{}, "http://"+srv.Addr+"/", opts)
	if ev := nextEvent(t, es); ev.Data != "answer" {
		t.Fatalf("event %+v", ev)
	}
	if err := finalErr(t, es); err != io.EOF {
		t.Fatalf("after the stream of a POST ended: %v, want io.EOF", err)
	}
	if got := n.Load(); got != 1 {
		t.Fatalf("%d POSTs, want 1", got)
	}

	opts.RepeatNonGet = true
	es = newES(t, &Dialer{}, "http://"+srv.Addr+"/", opts)
	for range 3 {
		if ev := nextEvent(t, es); ev.Data != "answer" {
			t.Fatalf("event %+v", ev)
		}
	}
	es.Close()
	if got := n.Load(); got < 4 {
		t.Fatalf("%d POSTs in all, want 1 + at least 3 with RepeatNonGet", got)
	}

	// A POST that could not be sent is tried again.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	retried := make(chan error, 1)
	es = newES(t, &Dialer{}, "http://"+addr+"/", &EventSourceOptions{
		Method: "POST", Body: []byte("question"), MinDelay: -1,
		OnRetry: func(err error, _ time.Duration) {
			select {
			case retried <- err:
			default:
			}
		},
	})
	select {
	case err := <-retried:
		var de *DialError
		if !errors.As(err, &de) {
			t.Fatalf("retried after %v, want a *DialError", err)
		}
	case <-time.After(opTimeout):
		t.Fatal("a POST that could not be sent was not retried")
	}
	es.Close()
}

func TestEventSourceClose(t *testing.T) {
	noProxyEnv(t)
	srv := esServer(t, false, map[string]http.HandlerFunc{
		"/once":  rawHandler(200, "text/event-stream", "data: one\n\n"),
		"/stall": stallHandler,
	})
	stall := stallServer(t, 0)
	for _, tc := range []struct {
		name string
		url  string
		read bool
	}{
		{"waiting-to-reconnect", "http://" + srv.Addr + "/once", true},
		{"reading", "http://" + srv.Addr + "/stall", true},
		{"connecting", "http://" + stall + "/", false},
		{"never-read", "http://" + srv.Addr + "/stall", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es := newES(t, &Dialer{}, tc.url, &EventSourceOptions{Retry: time.Hour})
			if tc.read {
				nextEvent(t, es)
			}
			done := make(chan struct{})
			go func() { es.Close(); close(done) }()
			select {
			case <-done:
			case <-time.After(opTimeout):
				t.Fatal("Close did not return")
			}
			if err := finalErr(t, es); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("after Close: %v", err)
			}
			es.Close() // twice is fine
		})
	}
}

func TestEventSourceThroughProxy(t *testing.T) {
	noProxyEnv(t)
	plain := esServer(t, false, map[string]http.HandlerFunc{"/sse": sseHandler(10 * time.Millisecond)})
	secure := esServer(t, true, map[string]http.HandlerFunc{"/sse": sseHandler(10 * time.Millisecond)})
	p := startProxy(t, nil, "", map[string]string{"example.com:443": secure.Addr})

	t.Run("connect", func(t *testing.T) {
		d := &Dialer{Proxy: http.ProxyURL(mustParse(t, "http://u:p@"+p.addr))}
		es := newES(t, d, "http://"+plain.Addr+"/sse", nil)
		if ev := nextEvent(t, es); ev.ID != "1" {
			t.Fatalf("event %+v", ev)
		}
		if r := p.request(t); r.Method != "CONNECT" || r.Header.Get("Proxy-Authorization") != "Basic dTpw" {
			t.Fatalf("proxy saw %s %v", r.Method, r.Header)
		}
	})

	t.Run("forward", func(t *testing.T) {
		d := &Dialer{Proxy: http.ProxyURL(mustParse(t, "http://u:p@"+p.addr)), ForwardProxy: true}
		es := newES(t, d, "http://"+plain.Addr+"/sse", &EventSourceOptions{Retry: time.Millisecond})
		for i := 1; i <= 4; i++ {
			if ev := nextEvent(t, es); ev.ID != strconv.Itoa(i) {
				t.Fatalf("event %+v, want id %d", ev, i)
			}
		}
		r := p.request(t)
		if r.Method != "GET" || r.RequestURI != "http://"+plain.Addr+"/sse" || r.Header.Get("Proxy-Authorization") != "Basic dTpw" {
			t.Fatalf("proxy saw %s %s %v", r.Method, r.RequestURI, r.Header)
		}
		if r := p.request(t); r.Header.Get("Last-Event-ID") != "3" {
			t.Fatalf("reconnection through the proxy sent Last-Event-ID %q", r.Header.Get("Last-Event-ID"))
		}
	})

	t.Run("https-origin", func(t *testing.T) {
		d := &Dialer{
			Proxy:        http.ProxyURL(mustParse(t, "http://"+p.addr)),
			TLSConfig:    &tls.Config{RootCAs: secure.rootCAs()},
			ForwardProxy: true, // has no effect on https
		}
		es := newES(t, d, "https://example.com/sse", nil)
		if ev := nextEvent(t, es); ev.ID != "1" {
			t.Fatalf("event %+v", ev)
		}
		if r := p.request(t); r.Method != "CONNECT" {
			t.Fatalf("proxy saw %s", r.Method)
		}
		if s := waitSeen(t, secure.reqs); s.sni != "example.com" {
			t.Fatalf("SNI %q", s.sni)
		}
	})

	// A proxy that tunnels to port 443 only: the EventSource sends its
	// http:// requests in forward mode, as a browser's EventSource does,
	// and keeps to it when it reconnects.
	t.Run("connect-refused", func(t *testing.T) {
		cp := startCorporateProxy(t)
		d := &Dialer{Proxy: http.ProxyURL(mustParse(t, "http://u:p@"+cp.addr))}
		es := newES(t, d, "http://"+plain.Addr+"/sse", &EventSourceOptions{Retry: time.Millisecond})
		for i := 1; i <= 4; i++ {
			if ev := nextEvent(t, es); ev.ID != strconv.Itoa(i) {
				t.Fatalf("event %+v, want id %d", ev, i)
			}
		}
		if r := cp.request(t); r.Method != "CONNECT" {
			t.Fatalf("proxy saw %s first, want the refused CONNECT", r.Method)
		}
		for range 2 {
			if r := cp.request(t); r.Method != "GET" || r.RequestURI != "http://"+plain.Addr+"/sse" || r.Header.Get("Proxy-Authorization") != "Basic dTpw" {
				t.Fatalf("proxy saw %s %s %v, want forward mode", r.Method, r.RequestURI, r.Header)
			}
		}
	})

	t.Run("auth-refused", func(t *testing.T) {
		ap := startProxy(t, nil, "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n", nil)
		d := &Dialer{Proxy: http.ProxyURL(mustParse(t, "http://u:bad@"+ap.addr))}
		es := newES(t, d, "http://"+plain.Addr+"/sse", &EventSourceOptions{Retry: time.Millisecond})
		if err := finalErr(t, es); !errors.Is(err, proxy.ErrAuth) {
			t.Fatalf("error %v, want ErrAuth", err)
		}
	})

	t.Run("proxy-down-retries", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		retried := make(chan error, 4)
		d := &Dialer{Proxy: http.ProxyURL(mustParse(t, "http://"+addr))}
		es := newES(t, d, "http://"+plain.Addr+"/sse", &EventSourceOptions{
			Retry:   time.Millisecond,
			OnRetry: func(err error, _ time.Duration) { retried <- err },
		})
		var de *DialError
		if err := <-retried; !errors.As(err, &de) {
			t.Fatalf("retry after %v, want a *DialError", err)
		}
		es.Close()
	})
}

func TestEventSourceUntrustedCertificateStops(t *testing.T) {
	noProxyEnv(t)
	srv := esServer(t, true, map[string]http.HandlerFunc{"/sse": sseHandler(0)})
	es := newES(t, &Dialer{}, "https://"+srv.Addr+"/sse", &EventSourceOptions{Retry: time.Millisecond})
	var cve *tls.CertificateVerificationError
	if err := finalErr(t, es); !errors.As(err, &cve) {
		t.Fatalf("error %v, want a certificate verification error", err)
	}
}

func TestEventSourceAll(t *testing.T) {
	noProxyEnv(t)
	srv := esServer(t, false, map[string]http.HandlerFunc{
		"/three": rawHandler(200, "text/event-stream", "id: 1\ndata: a\n\nid: 2\ndata: b\n\nid\n\n: the empty id resets it\n\ndata: c\n\n"),
	})
	es := newES(t, &Dialer{}, "http://"+srv.Addr+"/three", &EventSourceOptions{LastEventID: "0", Retry: time.Hour})
	if es.LastEventID() != "0" {
		t.Fatalf("initial LastEventID %q", es.LastEventID())
	}
	if id := waitSeen(t, srv.reqs).r.Header.Get("Last-Event-ID"); id != "0" {
		t.Fatalf("first request's Last-Event-ID %q", id)
	}
	var got []string
	for ev, err := range es.All(testCtx(t)) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.ID+":"+ev.Data)
		if len(got) == 3 {
			break
		}
	}
	if strings.Join(got, ",") != "1:a,2:b,:c" {
		t.Fatalf("events %q", got)
	}
	if es.LastEventID() != "" {
		t.Fatalf("LastEventID %q after an empty id", es.LastEventID())
	}
	es.Close()
	for _, err := range es.All(context.Background()) {
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("All after Close yielded %v", err)
		}
	}
}
