package eventsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realtime-go/realtime/internal/batchtest"
	"go.uber.org/goleak"
)

// protos are the ways a stream is served: over HTTP/1.1 on the
// hijacked connection (HijackAuto), over HTTP/1.1 through net/http
// (HijackNever, see viaNetHTTP), and over HTTP/2.
var protos = []string{"HTTP/1.1", "HTTP/1.1" + viaNetHTTP, "HTTP/2.0"}

// viaNetHTTP, after a protocol, serves the stream with HijackNever.
const viaNetHTTP = "+net/http"

// startServer serves EventSource requests with Accept(opts), hands each
// stream to fn on the handler's goroutine, and keeps the handler until
// the stream is done. It returns a server speaking proto.
func startServer(t testing.TB, proto string, opts *Options, fn func(*Stream)) *httptest.Server {
	t.Helper()
	return startCountedServer(t, proto, opts, fn, nil)
}

// startCountedServer is startServer counting the writes of the server's
// connections into writes, unless it is nil.
func startCountedServer(t testing.TB, proto string, opts *Options, fn func(*Stream), writes *atomic.Int64) *httptest.Server {
	t.Helper()
	if strings.HasSuffix(proto, viaNetHTTP) {
		var o Options
		if opts != nil {
			o = *opts
		}
		o.Hijack = HijackNever
		opts = &o
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := Accept(w, r, opts)
		if err != nil {
			return
		}
		defer s.Close()
		fn(s)
		<-s.Done()
	})
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if writes != nil {
		srv.Listener = batchtest.Listener{Listener: srv.Listener, Writes: writes}
	}
	if proto == "HTTP/2.0" {
		srv.EnableHTTP2 = true
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv
}

// open makes an EventSource request and checks that the stream opened
// with the protocol wanted.
func open(t testing.TB, ctx context.Context, srv *httptest.Server, proto, target string, header http.Header) *http.Response {
	t.Helper()
	resp, err := tryOpen(ctx, srv, proto, target, header)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func tryOpen(ctx context.Context, srv *httptest.Server, proto, target string, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+target, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := srv.Client().Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || resp.Proto != strings.TrimSuffix(proto, viaNetHTTP) {
		resp.Body.Close()
		return nil, fmt.Errorf("got %s %s, want %s 200", resp.Proto, resp.Status, proto)
	}
	return resp, nil
}

type decoded struct {
	ev  Event
	err error
}

// readEvents decodes body on a goroutine that ends with the body.
func readEvents(body io.Reader, opts *DecoderOptions) <-chan decoded {
	ch := make(chan decoded, 16)
	go func() {
		defer close(ch)
		d := NewDecoder(body, opts)
		for {
			ev, err := d.Next()
			ch <- decoded{ev, err}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

func next(t testing.TB, ch <-chan decoded) Event {
	t.Helper()
	select {
	case d, ok := <-ch:
		if !ok || d.err != nil {
			t.Fatalf("no event: %v", d.err)
		}
		return d.ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return Event{}
}

func waitDone(t testing.TB, s *Stream) {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("stream not done within 5s")
	}
}

func TestHeaders(t *testing.T) {
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			opts := &Options{Header: http.Header{
				"X-Custom":      {"a", "b"},
				"Cache-Control": {"no-store"},
				"Content-Type":  {"text/plain"}, // ignored
			}}
			srv := startServer(t, proto, opts, func(s *Stream) { s.Close() })
			resp := open(t, context.Background(), srv, proto, "/", nil)
			defer resp.Body.Close()
			h := resp.Header
			want := map[string]string{
				"Content-Type":      "text/event-stream; charset=utf-8",
				"Cache-Control":     "no-store",
				"X-Accel-Buffering": "no",
				"Connection":        "keep-alive",
			}
			switch proto {
			case "HTTP/2.0":
				want["Connection"] = ""
			case "HTTP/1.1":
				// The hijacked connection is not given back to net/http:
				// Connection: close, which the client takes out of the header.
				want["Connection"] = ""
				if !resp.Close {
					t.Error("Connection: close missing")
				}
			}
			for k, v := range want {
				if got := h.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if got := h.Values("X-Custom"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
				t.Errorf("X-Custom = %q", got)
			}
			if h.Get("Content-Length") != "" {
				t.Errorf("Content-Length = %q", h.Get("Content-Length"))
			}
			if b, err := io.ReadAll(resp.Body); err != nil || len(b) != 0 {
				t.Errorf("body %q, %v", b, err)
			}
		})
	}
}

func TestDefaultCacheControl(t *testing.T) {
	srv := startServer(t, "HTTP/1.1", nil, func(s *Stream) { s.Close() })
	resp := open(t, context.Background(), srv, "HTTP/1.1", "/", nil)
	resp.Body.Close()
	if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
		t.Errorf("Cache-Control = %q", got)
	}
}

func TestInitialBytes(t *testing.T) {
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			ready := make(chan *Stream, 1)
			srv := startServer(t, proto, &Options{Retry: 1500 * time.Millisecond, Padding: true, Heartbeat: -1},
				func(s *Stream) { ready <- s })
			resp := open(t, context.Background(), srv, proto, "/", nil)
			defer resp.Body.Close()
			s := <-ready
			// The head arrives at once, before any event is sent.
			want := ":" + strings.Repeat(" ", 2048) + "\n\nretry: 1500\n\n"
			got := make([]byte, len(want))
			if _, err := io.ReadFull(resp.Body, got); err != nil || string(got) != want {
				t.Fatalf("head %q, %v", got, err)
			}
			s.Close()
			d := NewDecoder(resp.Body, nil)
			if _, err := d.Next(); err != io.EOF {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func TestRetryDecoded(t *testing.T) {
	srv := startServer(t, "HTTP/1.1", &Options{Retry: 2 * time.Second},
		func(s *Stream) { s.SendData(context.Background(), "x"); s.Close() })
	resp := open(t, context.Background(), srv, "HTTP/1.1", "/", nil)
	defer resp.Body.Close()
	d := NewDecoder(resp.Body, nil)
	ev, err := d.Next()
	if r, ok := d.Retry(); err != nil || ev.Data != "x" || ev.Retry != 0 || !ok || r != 2*time.Second {
		t.Errorf("event %q, %v; retry %v %v", ev, err, r, ok)
	}
}

func TestEventsArriveImmediately(t *testing.T) {
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			send := make(chan Event)
			defer close(send)
			srv := startServer(t, proto, &Options{Heartbeat: -1}, func(s *Stream) {
				go func() {
					for ev := range send {
						if err := s.Send(context.Background(), ev); err != nil {
							t.Error(err)
						}
					}
				}()
			})
			resp := open(t, context.Background(), srv, proto, "/", nil)
			defer resp.Body.Close()
			events := readEvents(resp.Body, nil)
			// Each event must arrive while the server is idle: nothing
			// later would push a buffered one out.
			for i := range 3 {
				want := Event{Type: "tick", ID: fmt.Sprint(i), Data: fmt.Sprintf("n=%d\nsecond line", i)}
				send <- want
				if got := next(t, events); got != want {
					t.Fatalf("got %q, want %q", got, want)
				}
			}
		})
	}
}

func TestKeepAlive(t *testing.T) {
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			ready := make(chan *Stream, 1)
			srv := startServer(t, proto, &Options{Heartbeat: 20 * time.Millisecond}, func(s *Stream) { ready <- s })
			resp := open(t, context.Background(), srv, proto, "/", nil)
			defer resp.Body.Close()
			var comments atomic.Int32
			events := readEvents(resp.Body, &DecoderOptions{OnComment: func(c string) {
				if c == "" {
					comments.Add(1)
				}
			}})
			s := <-ready
			deadline := time.Now().Add(5 * time.Second)
			for comments.Load() < 3 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if n := comments.Load(); n < 3 {
				t.Fatalf("%d keep-alive comments", n)
			}
			// Keep-alives do not disturb events.
			s.SendData(context.Background(), "after")
			if ev := next(t, events); ev.Data != "after" {
				t.Errorf("got %q", ev)
			}
			if err := s.Ping(context.Background()); err != nil {
				t.Error(err)
			}
			s.Close()
			for range events {
			}
		})
	}
}

func TestNoKeepAlive(t *testing.T) {
	ready := make(chan *Stream, 1)
	srv := startServer(t, "HTTP/1.1", &Options{Heartbeat: -1}, func(s *Stream) { ready <- s })
	resp := open(t, context.Background(), srv, "HTTP/1.1", "/", nil)
	defer resp.Body.Close()
	var comments atomic.Int32
	events := readEvents(resp.Body, &DecoderOptions{OnComment: func(string) { comments.Add(1) }})
	s := <-ready
	time.Sleep(100 * time.Millisecond)
	s.SendData(context.Background(), "x")
	next(t, events)
	if n := comments.Load(); n != 0 {
		t.Errorf("%d comments with keep-alive off", n)
	}
	if s.kaTimer != nil {
		t.Error("keep-alive timer armed")
	}
	s.Close()
}

// stalledClient opens an EventSource request over raw TCP and never
// reads the response.
func stalledClient(t *testing.T, srv *httptest.Server) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n")
	return conn
}

func TestWriteTimeout(t *testing.T) {
	big := strings.Repeat("x", 64<<10)
	check := func(t *testing.T, s *Stream) {
		var err error
		for range 10000 {
			if err = s.SendData(context.Background(), big); err != nil {
				break
			}
		}
		if !errors.Is(err, ErrWriteTimeout) {
			t.Fatalf("send err = %v, want ErrWriteTimeout", err)
		}
		waitDone(t, s)
		if !errors.Is(s.Err(), ErrWriteTimeout) {
			t.Errorf("Err = %v", s.Err())
		}
		if err := s.SendData(context.Background(), "x"); !errors.Is(err, net.ErrClosed) || !errors.Is(err, ErrWriteTimeout) {
			t.Errorf("send after end = %v", err)
		}
	}
	opts := &Options{WriteTimeout: 100 * time.Millisecond, Heartbeat: -1}

	t.Run("HTTP/1.1", func(t *testing.T) {
		ready := make(chan *Stream, 1)
		srv := startServer(t, "HTTP/1.1", opts, func(s *Stream) { ready <- s })
		conn := stalledClient(t, srv)
		defer conn.Close()
		check(t, <-ready)
	})
	t.Run("HTTP/2.0", func(t *testing.T) {
		ready := make(chan *Stream, 1)
		srv := startServer(t, "HTTP/2.0", opts, func(s *Stream) { ready <- s })
		resp := open(t, context.Background(), srv, "HTTP/2.0", "/", nil) // never read
		defer resp.Body.Close()
		check(t, <-ready)
	})
}

func TestIdleStreamOutlivesWriteTimeout(t *testing.T) {
	// The per-write deadline must be lifted after each write: an idle
	// stream lives on past it (over HTTP/2 a stale deadline would reset
	// the stream).
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			ready := make(chan *Stream, 1)
			srv := startServer(t, proto, &Options{WriteTimeout: 30 * time.Millisecond, Heartbeat: -1, Retry: time.Second},
				func(s *Stream) { ready <- s })
			resp := open(t, context.Background(), srv, proto, "/", nil)
			defer resp.Body.Close()
			events := readEvents(resp.Body, nil)
			s := <-ready
			s.SendData(context.Background(), "1")
			next(t, events)
			time.Sleep(150 * time.Millisecond)
			if err := s.SendData(context.Background(), "2"); err != nil {
				t.Fatal(err)
			}
			if ev := next(t, events); ev.Data != "2" {
				t.Errorf("got %q", ev)
			}
			s.Close()
		})
	}
}

func TestSendContextEndsMidWrite(t *testing.T) {
	ready := make(chan *Stream, 1)
	srv := startServer(t, "HTTP/1.1", &Options{WriteTimeout: -1, Heartbeat: -1}, func(s *Stream) { ready <- s })
	conn := stalledClient(t, srv)
	defer conn.Close()
	s := <-ready
	// Far more than the socket buffers hold, so ctx ends mid-write.
	e, _ := Encode(Event{Data: strings.Repeat("y", 32<<20)})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := s.SendEncoded(ctx, e)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	waitDone(t, s)
	if !errors.Is(s.Err(), context.DeadlineExceeded) {
		t.Errorf("Err = %v", s.Err())
	}
}

func TestSendContextAlreadyDone(t *testing.T) {
	ready := make(chan *Stream, 1)
	srv := startServer(t, "HTTP/1.1", nil, func(s *Stream) { ready <- s })
	resp := open(t, context.Background(), srv, "HTTP/1.1", "/", nil)
	defer resp.Body.Close()
	events := readEvents(resp.Body, nil)
	s := <-ready
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.SendData(ctx, "x"); err != context.Canceled {
		t.Errorf("err = %v", err)
	}
	// Nothing was written, so the stream lives on.
	if err := s.SendData(context.Background(), "y"); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events); ev.Data != "y" {
		t.Errorf("got %q", ev)
	}
	s.Close()
}

func TestSendInvalidKeepsStream(t *testing.T) {
	ready := make(chan *Stream, 1)
	srv := startServer(t, "HTTP/1.1", nil, func(s *Stream) { ready <- s })
	resp := open(t, context.Background(), srv, "HTTP/1.1", "/", nil)
	defer resp.Body.Close()
	events := readEvents(resp.Body, nil)
	s := <-ready
	if err := s.Send(context.Background(), Event{ID: "a\nevent: evil", Data: "x"}); !errors.Is(err, ErrInvalidField) {
		t.Errorf("err = %v", err)
	}
	if err := s.SendEncoded(context.Background(), nil); err == nil {
		t.Error("SendEncoded(nil) succeeded")
	}
	e, _ := Encode(Event{Type: "ok", Data: "fine"})
	if err := s.SendEncoded(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events); ev != (Event{Type: "ok", Data: "fine"}) {
		t.Errorf("got %q", ev)
	}
	s.Close()
}

func TestClose(t *testing.T) {
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			ready := make(chan *Stream, 1)
			srv := startServer(t, proto, nil, func(s *Stream) { ready <- s })
			resp := open(t, context.Background(), srv, proto, "/", nil)
			defer resp.Body.Close()
			events := readEvents(resp.Body, nil)
			s := <-ready
			s.SendData(context.Background(), "last")
			if err := s.Close(); err != nil {
				t.Errorf("Close = %v", err)
			}
			waitDone(t, s)
			if s.Err() != nil {
				t.Errorf("Err after Close = %v", s.Err())
			}
			if err := s.SendData(context.Background(), "x"); !errors.Is(err, net.ErrClosed) {
				t.Errorf("send after Close = %v", err)
			}
			if err := s.Ping(context.Background()); !errors.Is(err, net.ErrClosed) {
				t.Errorf("ping after Close = %v", err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("second Close = %v", err)
			}
			if ev := next(t, events); ev.Data != "last" {
				t.Errorf("got %q", ev)
			}
			// The response ends once the handler returns.
			if d := <-events; d.err != io.EOF {
				t.Errorf("end of response: %v", d.err)
			}
		})
	}
}

func TestClientGone(t *testing.T) {
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			ready := make(chan *Stream, 1)
			srv := startServer(t, proto, nil, func(s *Stream) { ready <- s })
			ctx, cancel := context.WithCancel(context.Background())
			resp := open(t, ctx, srv, proto, "/", nil)
			s := <-ready
			cancel()
			resp.Body.Close()
			waitDone(t, s)
			// The request's context ends with the client, or on a hijacked
			// connection the read watching it does.
			if !errors.Is(s.Err(), ErrClientGone) || !errors.Is(s.Err(), context.Canceled) && !errors.Is(s.Err(), io.EOF) {
				t.Errorf("Err = %v", s.Err())
			}
			if err := s.Close(); !errors.Is(err, ErrClientGone) {
				t.Errorf("Close = %v", err)
			}
		})
	}
}

func TestManyStreamsNoLeak(t *testing.T) {
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			var served sync.WaitGroup
			const n = 1000
			served.Add(n)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer served.Done()
				s, err := Accept(w, r, &Options{Heartbeat: 10 * time.Millisecond})
				if err != nil {
					// The client may reset the stream while Accept
					// flushes the head it has already seen.
					return
				}
				defer s.Close()
				<-s.Done()
			})
			srv := httptest.NewUnstartedServer(h)
			srv.Config.ErrorLog = log.New(io.Discard, "", 0)
			if proto == "HTTP/2.0" {
				srv.EnableHTTP2 = true
				srv.StartTLS()
			} else {
				srv.Start()
			}
			var wg sync.WaitGroup
			work := make(chan int)
			for range 32 {
				wg.Go(func() {
					for range work {
						ctx, cancel := context.WithCancel(context.Background())
						resp, err := tryOpen(ctx, srv, proto, "/", nil)
						cancel()
						if err != nil {
							t.Error(err)
							served.Done()
							continue
						}
						resp.Body.Close()
					}
				})
			}
			for i := range n {
				work <- i
			}
			close(work)
			wg.Wait()
			served.Wait()
			srv.Close()
			goleak.VerifyNone(t)
		})
	}
}

func TestLastEventID(t *testing.T) {
	tests := []struct {
		name   string
		target string
		header string
		opts   *Options
		want   string
	}{
		{"none", "/", "", nil, ""},
		{"header", "/", "42", nil, "42"},
		{"query", "/?lastEventId=7", "", nil, "7"},
		{"header wins", "/?lastEventId=7", "42", nil, "42"},
		{"opaque", "/?lastEventId=a%20b%3Ac", "", nil, "a b:c"},
		{"opaque header", "/", " x y ", nil, "x y"}, // net/http trims header whitespace
		{"custom param", "/?since=9&lastEventId=1", "", &Options{LastEventIDParam: "since"}, "9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan string, 1)
			srv := startServer(t, "HTTP/1.1", tc.opts, func(s *Stream) {
				got <- s.LastEventID()
				if s.URL().String() != tc.target || s.Request().URL != s.URL() {
					t.Errorf("URL = %v", s.URL())
				}
				s.Close()
			})
			h := http.Header{}
			if tc.header != "" {
				h.Set("Last-Event-ID", tc.header)
			}
			resp := open(t, context.Background(), srv, "HTTP/1.1", tc.target, h)
			resp.Body.Close()
			if id := <-got; id != tc.want {
				t.Errorf("LastEventID = %q, want %q", id, tc.want)
			}
		})
	}
}

func TestConcurrentSend(t *testing.T) {
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			const senders, each = 16, 100
			ready := make(chan *Stream, 1)
			srv := startServer(t, proto, &Options{Heartbeat: time.Millisecond}, func(s *Stream) { ready <- s })
			resp := open(t, context.Background(), srv, proto, "/", nil)
			defer resp.Body.Close()
			events := readEvents(resp.Body, nil)
			s := <-ready
			var wg sync.WaitGroup
			for g := range senders {
				wg.Go(func() {
					for i := range each {
						ev := Event{
							Type: fmt.Sprintf("g%d", g),
							ID:   fmt.Sprintf("%d-%d", g, i),
							Data: fmt.Sprintf("first %d %d\nsecond\r\nthird %d", g, i, i),
						}
						var err error
						if i%2 == 0 {
							err = s.Send(context.Background(), ev)
						} else {
							var e *EncodedEvent
							if e, err = Encode(ev); err == nil {
								err = s.SendEncoded(context.Background(), e)
							}
						}
						if err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			seen := make(map[string]bool)
			for range senders * each {
				ev := next(t, events)
				var g, i int
				if _, err := fmt.Sscanf(ev.ID, "%d-%d", &g, &i); err != nil {
					t.Fatalf("bad id in %q", ev)
				}
				want := Event{Type: fmt.Sprintf("g%d", g), ID: ev.ID, Data: fmt.Sprintf("first %d %d\nsecond\nthird %d", g, i, i)}
				if ev != want || seen[ev.ID] {
					t.Fatalf("got %q, want %q (seen %v)", ev, want, seen[ev.ID])
				}
				seen[ev.ID] = true
			}
			wg.Wait()
			s.Close()
		})
	}
}

func TestCloseRacesSends(t *testing.T) {
	// Close must wait for a send in progress; afterwards nothing writes.
	ready := make(chan *Stream, 1)
	srv := startServer(t, "HTTP/2.0", &Options{Heartbeat: time.Millisecond}, func(s *Stream) { ready <- s })
	resp := open(t, context.Background(), srv, "HTTP/2.0", "/", nil)
	defer resp.Body.Close()
	go io.Copy(io.Discard, resp.Body)
	s := <-ready
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for s.SendData(context.Background(), "spam") == nil {
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Error(err)
	}
	wg.Wait()
}

func TestAcceptRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		method string
		accept string
		w      http.ResponseWriter
		status int
		err    error
	}{
		{"POST", http.MethodPost, "text/event-stream", nil, http.StatusMethodNotAllowed, ErrNotEventSource},
		{"no Accept", http.MethodGet, "", nil, http.StatusNotAcceptable, ErrNotEventSource},
		{"HTML", http.MethodGet, "text/html,*/*", nil, http.StatusNotAcceptable, ErrNotEventSource},
		{"q=0", http.MethodGet, "text/event-stream;q=0", nil, http.StatusNotAcceptable, ErrNotEventSource},
		{"no flush", http.MethodGet, "text/event-stream", noFlush{}, http.StatusInternalServerError, ErrFlushUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			w := tc.w
			if w == nil {
				w = rec
			} else {
				w = noFlush{rec}
			}
			r := httptest.NewRequest(tc.method, "/", nil)
			if tc.accept != "" {
				r.Header.Set("Accept", tc.accept)
			}
			s, err := Accept(w, r, nil)
			if s != nil || !errors.Is(err, tc.err) {
				t.Fatalf("Accept = %v, %v", s, err)
			}
			if rec.Code != tc.status || rec.Body.Len() == 0 {
				t.Errorf("response %d %q", rec.Code, rec.Body)
			}
			if tc.status == http.StatusMethodNotAllowed && rec.Header().Get("Allow") != "GET" {
				t.Errorf("Allow = %q", rec.Header().Get("Allow"))
			}
		})
	}
}

// noFlush hides the Flusher of the ResponseWriter it wraps.
type noFlush struct{ w http.ResponseWriter }

func (n noFlush) Header() http.Header         { return n.w.Header() }
func (n noFlush) Write(p []byte) (int, error) { return n.w.Write(p) }
func (n noFlush) WriteHeader(code int)        { n.w.WriteHeader(code) }

// unwrapper hides its ResponseWriter's methods behind Unwrap, as
// middleware does.
type unwrapper struct{ noFlush }

func (u unwrapper) Unwrap() http.ResponseWriter { return u.w }

func TestAcceptThroughMiddleware(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Accept", "text/event-stream")
	s, err := Accept(unwrapper{noFlush{rec}}, r, &Options{Retry: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s.SendData(context.Background(), "hi")
	s.Close()
	if got := rec.Body.String(); got != "retry: 1000\n\ndata: hi\n\n" || !rec.Flushed {
		t.Errorf("body %q, flushed %v", got, rec.Flushed)
	}
}

func TestIsEventSource(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method string
		accept []string
		want   bool
	}{
		{"GET", []string{"text/event-stream"}, true},
		{"GET", []string{"Text/Event-Stream"}, true},
		{"GET", []string{"text/html, text/event-stream;q=0.5"}, true},
		{"GET", []string{"text/html", "text/event-stream"}, true},
		{"GET", []string{" text/event-stream ; charset=utf-8"}, true},
		{"GET", []string{"text/event-stream;q=0"}, false},
		{"GET", []string{"text/event-stream; q=0.000"}, false},
		{"GET", []string{"text/event-stream;q=0.001"}, true},
		{"GET", []string{"*/*"}, false},
		{"GET", []string{"text/event-streams"}, false},
		{"GET", nil, false},
		{"POST", []string{"text/event-stream"}, false},
		{"HEAD", []string{"text/event-stream"}, false},
	}
	for _, tc := range tests {
		r := httptest.NewRequest(tc.method, "/", nil)
		for _, a := range tc.accept {
			r.Header.Add("Accept", a)
		}
		if got := IsEventSource(r); got != tc.want {
			t.Errorf("%s %q: got %v", tc.method, tc.accept, got)
		}
	}
}

// A stream outlives the server's own timeouts: each write sets its own
// deadline in place of WriteTimeout's, and ReadTimeout bounds only the
// reading of the request.
func TestServerTimeoutsDoNotEndStream(t *testing.T) {
	for _, tc := range []struct {
		name   string
		set    func(*http.Server)
		before time.Duration // how long the stream stays idle first
	}{
		{"ReadTimeout", func(s *http.Server) { s.ReadTimeout = 50 * time.Millisecond }, 150 * time.Millisecond},
		{"WriteTimeout", func(s *http.Server) { s.WriteTimeout = 50 * time.Millisecond }, 120 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ready := make(chan *Stream, 1)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s, err := Accept(w, r, &Options{Heartbeat: -1})
				if err != nil {
					return
				}
				defer s.Close()
				ready <- s
				<-s.Done()
			})
			srv := httptest.NewUnstartedServer(h)
			tc.set(srv.Config)
			srv.Start()
			defer srv.Close()
			resp := open(t, context.Background(), srv, "HTTP/1.1", "/", nil)
			defer resp.Body.Close()
			events := readEvents(resp.Body, nil)
			s := <-ready
			time.Sleep(tc.before)
			if err := s.SendData(context.Background(), "late"); err != nil {
				t.Fatal(err)
			}
			if ev := next(t, events); ev.Data != "late" {
				t.Errorf("got %q", ev)
			}
			s.Close()
		})
	}
}

// ctxWriter is a ResponseWriter whose Write, once armed, ends a context
// and lets the abort callback run before the write completes: the
// context ends just as the write finishes.
type ctxWriter struct {
	http.ResponseWriter
	mu       sync.Mutex
	cancel   func()
	deadline time.Time
	aborted  chan struct{}
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	cancel, aborted := c.cancel, c.aborted
	c.cancel = nil
	c.mu.Unlock()
	if cancel != nil {
		cancel()
		<-aborted
	}
	return c.ResponseWriter.Write(p)
}

func (c *ctxWriter) FlushError() error { return nil }

func (c *ctxWriter) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	if !t.IsZero() && time.Until(t) <= 0 && c.aborted != nil {
		close(c.aborted)
		c.aborted = nil
	}
	return nil
}

// A context that ends as a write completes neither fails that write nor
// leaves a deadline in the past that would fail the next one.
func TestSendContextEndsAsWriteCompletes(t *testing.T) {
	for range 100 {
		w := &ctxWriter{ResponseWriter: httptest.NewRecorder()}
		s := acceptOn(t, w)
		ctx, cancel := context.WithCancel(context.Background())
		w.mu.Lock()
		w.cancel, w.aborted = cancel, make(chan struct{})
		w.mu.Unlock()
		if err := s.SendData(ctx, "x"); err != nil {
			t.Fatalf("Send: %v", err)
		}
		w.mu.Lock()
		d := w.deadline
		w.mu.Unlock()
		if !d.IsZero() {
			t.Fatalf("deadline left at %v", d)
		}
		if err := s.SendData(context.Background(), "y"); err != nil {
			t.Fatalf("next Send: %v", err)
		}
		s.Close()
	}
}

// acceptOn accepts an EventSource request on w, which need not be a
// server's ResponseWriter.
func acceptOn(t *testing.T, w http.ResponseWriter) *Stream {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Accept", "text/event-stream")
	s, err := Accept(w, r, &Options{Heartbeat: -1})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
