package realtime

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
)

func TestPostRejects(t *testing.T) {
	var mu sync.Mutex
	var got []string
	opts := &Options{
		MaxMessageSize: 16,
		OnMessage: func(ctx context.Context, s *Socket, text string) {
			mu.Lock()
			got = append(got, text)
			mu.Unlock()
		},
	}
	ts := newTestServer(t, opts, nil)
	ec := dialES(t, ts, esDial{})
	s := ts.next(t)

	// A token from another handler has a valid shape but not our MAC.
	foreign := newTokenKey().mint()
	for _, tc := range []struct {
		name, token, body string
		status            int
	}{
		{"no token (a cross-site form post)", "", "x", http.StatusBadRequest},
		{"unknown token", "bogus", "x", http.StatusNotFound},
		{"another handler's token", foreign, "x", http.StatusNotFound},
		{"too large", ec.token, strings.Repeat("x", 17), http.StatusRequestEntityTooLarge},
		{"invalid UTF-8", ec.token, "\xff\xfe", http.StatusBadRequest},
		{"at the limit", ec.token, strings.Repeat("é", 8), http.StatusNoContent},
	} {
		if code := postMessage(t, ts.URL, tc.token, tc.body); code != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, code, tc.status)
		}
	}
	mu.Lock()
	if len(got) != 1 || got[0] != strings.Repeat("é", 8) {
		t.Errorf("OnMessage got %q, want only the message at the limit", got)
	}
	mu.Unlock()

	// Once the socket has ended its token is gone, and the handler can
	// tell that it issued it.
	s.abort()
	waitDone(t, s)
	if code := ec.post(t, "late"); code != http.StatusGone {
		t.Errorf("POST after the socket ended: %d, want 410", code)
	}
}

// A token is only good for the socket it was issued with.
func TestPostTokensPerSocket(t *testing.T) {
	got := make(chan string, 8)
	opts := &Options{OnMessage: func(ctx context.Context, s *Socket, text string) {
		got <- s.ID() + " " + text
	}}
	ts := newTestServer(t, opts, nil)
	a := dialES(t, ts, esDial{})
	sa := ts.next(t)
	b := dialES(t, ts, esDial{})
	sb := ts.next(t)
	if a.token == b.token {
		t.Fatal("two sockets got the same token")
	}
	a.post(t, "from a")
	b.post(t, "from b")
	if g := <-got; g != sa.ID()+" from a" {
		t.Fatalf("got %q", g)
	}
	if g := <-got; g != sb.ID()+" from b" {
		t.Fatalf("got %q", g)
	}
}

// POSTs for one socket reach OnMessage one at a time, in the order each
// was answered, like messages on a WebSocket.
func TestPostSerialized(t *testing.T) {
	var inside, overlaps int
	var mu sync.Mutex
	opts := &Options{OnMessage: func(ctx context.Context, s *Socket, text string) {
		mu.Lock()
		inside++
		if inside > 1 {
			overlaps++
		}
		mu.Unlock()
		for range 1000 {
			_ = strings.Repeat(text, 2) // take a little time
		}
		mu.Lock()
		inside--
		mu.Unlock()
	}}
	ts := newTestServer(t, opts, nil)
	ec := dialES(t, ts, esDial{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10 {
				if code := ec.post(t, "m"); code != http.StatusNoContent {
					t.Errorf("POST: %d", code)
				}
			}
		})
	}
	wg.Wait()
	if overlaps != 0 {
		t.Fatalf("OnMessage calls overlapped %d times", overlaps)
	}
}
