package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/websocket"
)

// seqLog records the Realtime-Seq of each POST, and spoils the answers
// of the POSTs chosen by spoil: lost (delivered, then the connection
// closed without an answer) or 503 (not delivered).
type seqLog struct {
	mu    sync.Mutex
	seqs  []string
	spoil func(n int) string    // "lost", "503", "end" or ""
	ended chan *realtime.Socket // "end": the socket to end first
}

func (sl *seqLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			h.ServeHTTP(w, r)
			return
		}
		sl.mu.Lock()
		sl.seqs = append(sl.seqs, r.Header.Get(seqHeader))
		how := sl.spoil(len(sl.seqs))
		sl.mu.Unlock()
		switch how {
		case "lost":
			h.ServeHTTP(httptest.NewRecorder(), r)
			if nc, _, err := http.NewResponseController(w).Hijack(); err == nil {
				nc.Close()
			}
		case "503":
			http.Error(w, "busy", http.StatusServiceUnavailable)
		case "end":
			// The stream ends before the POST is served: 410.
			rs := <-sl.ended
			rs.CloseWith(websocket.StatusGoingAway, "")
			<-rs.Done()
			h.ServeHTTP(w, r)
		default:
			h.ServeHTTP(w, r)
		}
	})
}

func (sl *seqLog) got() []string {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return append([]string(nil), sl.seqs...)
}

// A POST whose answer is lost, or answered 503, is sent again with the
// same token and Realtime-Seq, and Send succeeds: the server delivers
// the message once. Before, Send failed with a *SendError and dropped
// the connection, though the lost one had been delivered.
func TestSocketPostRetry(t *testing.T) {
	sl := &seqLog{spoil: func(n int) string {
		switch n {
		case 1:
			return "lost"
		case 3, 4:
			return "503"
		}
		return ""
	}}
	rs := startRT(t, rtConfig{wrap: sl.wrap})
	s, rec := newSocket(t, nil, rs.URL, &SocketOptions{Transport: TransportEventSource, MinDelay: time.Millisecond})
	rec.open(t)
	inChat(t, s)
	send(t, s, "one")
	send(t, s, "two")
	send(t, s, "three")
	for _, want := range []string{"eventsource:one", "eventsource:two", "eventsource:three"} {
		if got := <-rs.got; got != want {
			t.Fatalf("delivered %q, want %q", got, want)
		}
	}
	select {
	case got := <-rs.got:
		t.Fatalf("delivered %q again", got)
	default:
	}
	if got, want := sl.got(), []string{"1", "1", "2", "2", "2", "3"}; !slicesEqual(got, want) {
		t.Fatalf("Realtime-Seq of the POSTs %q, want %q", got, want)
	}
	select {
	case err := <-rec.retries:
		t.Fatalf("the connection was dropped: %v", err)
	default:
	}
}

// A POST answered 410 (the stream ended before it was delivered) is sent
// again on the next connection, under its new token and numbering.
func TestSocketPostGoneResent(t *testing.T) {
	sl := &seqLog{ended: make(chan *realtime.Socket, 1), spoil: func(n int) string {
		if n == 2 {
			return "end"
		}
		return ""
	}}
	// OnMessage publishes nothing: the Socket, which nobody reads, must
	// not be kept from reading the stream's end.
	got := make(chan string, 4)
	rs := startRT(t, rtConfig{wrap: sl.wrap, opts: realtime.Options{OnMessage: func(_ context.Context, _ *realtime.Socket, text string) {
		got <- text
	}}})
	s, rec := newSocket(t, nil, rs.URL, &SocketOptions{Transport: TransportEventSource, MinDelay: time.Millisecond})
	rec.open(t)
	inChat(t, s)
	sl.ended <- <-rs.sockets
	send(t, s, "one")
	send(t, s, "two")
	for _, want := range []string{"one", "two"} {
		if got := <-got; got != want {
			t.Fatalf("delivered %q, want %q", got, want)
		}
	}
	if got, want := sl.got(), []string{"1", "2", "1"}; !slicesEqual(got, want) {
		t.Fatalf("Realtime-Seq of the POSTs %q, want %q: two, answered 410, is the first of the next stream", got, want)
	}
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A server that closes every connection at once with 1013 gets its
// client back after waits drawn from windows that start eight times
// MinDelay and keep growing, as the connections never stay healthy.
// Before, each open reset the backoff: every wait was MinDelay, less up
// to half, for ever.
func TestSocketBackoffAfter1013(t *testing.T) {
	backoffRand = windowOf // the longest wait of each window
	t.Cleanup(func() { backoffRand = randDuration })
	// No channels: nothing waits for Next, which nobody calls.
	rs := startRT(t, rtConfig{opts: realtime.Options{Channels: []string{}}, serve: func(_ context.Context, s *realtime.Socket) {
		s.CloseWith(websocket.StatusTryAgainLater, "busy")
	}})
	delays := make(chan time.Duration, 16)
	_, rec := newSocket(t, nil, rs.URL, &SocketOptions{MinDelay: time.Millisecond, MaxDelay: time.Second,
		OnRetry: func(_ error, d time.Duration) { delays <- d }})
	for _, window := range []time.Duration{8, 128, 1000} {
		rec.open(t)
		if err := rec.retry(t); websocket.CloseStatus(err) != websocket.StatusTryAgainLater {
			t.Fatalf("retry after %v, want 1013", err)
		}
		if d := <-delays; d != window*time.Millisecond-1 {
			t.Fatalf("wait %v, want the longest of a window of %v", d, window*time.Millisecond)
		}
	}
}
