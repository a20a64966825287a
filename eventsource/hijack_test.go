package eventsource

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// flushOnly is middleware that hides the connection: it flushes but
// neither hijacks nor unwraps.
type flushOnly struct{ w http.ResponseWriter }

func (f flushOnly) Header() http.Header         { return f.w.Header() }
func (f flushOnly) Write(p []byte) (int, error) { return f.w.Write(p) }
func (f flushOnly) WriteHeader(code int)        { f.w.WriteHeader(code) }
func (f flushOnly) Flush()                      { f.w.(http.Flusher).Flush() }

// TestHijacked: Accept hijacks an HTTP/1.1 connection unless told not
// to or unable to, and never one of HTTP/2.
func TestHijacked(t *testing.T) {
	for _, tc := range []struct {
		name   string
		proto  string
		opts   *Options
		wrap   bool
		hijack bool
	}{
		{"auto", "HTTP/1.1", nil, false, true},
		{"never", "HTTP/1.1", &Options{Hijack: HijackNever}, false, false},
		{"middleware", "HTTP/1.1", nil, true, false},
		{"HTTP/2", "HTTP/2.0", nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan bool, 1)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.wrap {
					w = flushOnly{w}
				}
				s, err := Accept(w, r, tc.opts)
				if err != nil {
					t.Error(err)
					return
				}
				got <- s.Hijacked()
				s.SendData(context.Background(), "x")
				s.Close()
			})
			srv := httptest.NewUnstartedServer(h)
			srv.Config.ErrorLog = log.New(io.Discard, "", 0)
			if tc.proto == "HTTP/2.0" {
				srv.EnableHTTP2 = true
				srv.StartTLS()
			} else {
				srv.Start()
			}
			t.Cleanup(srv.Close)
			resp := open(t, context.Background(), srv, tc.proto, "/", nil)
			defer resp.Body.Close()
			if h := <-got; h != tc.hijack {
				t.Fatalf("Hijacked = %v, want %v", h, tc.hijack)
			}
			events := readEvents(resp.Body, nil)
			if ev := next(t, events); ev.Data != "x" {
				t.Fatalf("got %+v", ev)
			}
			if d := <-events; d.err != io.EOF {
				t.Fatalf("end of response: %v", d.err)
			}
		})
	}
}

// TestHijackedHandlerReturns: a hijacked stream outlives its handler,
// and neither the server's ReadTimeout nor its WriteTimeout cuts it.
func TestHijackedHandlerReturns(t *testing.T) {
	streams := make(chan *Stream, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := Accept(w, r, &Options{Heartbeat: -1})
		if err != nil || !s.Hijacked() {
			t.Errorf("Accept: %v, hijacked %v", err, s != nil && s.Hijacked())
			return
		}
		streams <- s
	}))
	srv.Config.ReadTimeout = 50 * time.Millisecond
	srv.Config.WriteTimeout = 50 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	resp := open(t, context.Background(), srv, "HTTP/1.1", "/", nil)
	defer resp.Body.Close()
	s := <-streams
	events := readEvents(resp.Body, nil)
	for i := range 3 {
		time.Sleep(60 * time.Millisecond) // past both of the server's timeouts
		if err := s.SendData(context.Background(), "x"); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if ev := next(t, events); ev.Data != "x" {
			t.Fatalf("got %+v", ev)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := <-events; d.err != io.EOF {
		t.Fatalf("end of response: %v", d.err)
	}
}
