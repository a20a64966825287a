package interop

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/realtime-go/realtime"
)

// A WebSocket upgrade that is never answered (a proxy that swallows it)
// makes the browser client fall back to EventSource after its connect
// timeout, and messages then flow both ways.
func TestRealtimeFallbackOnTimeout(t *testing.T) {
	hub := realtime.NewHub(nil)
	t.Cleanup(func() { hub.Close() })
	rt := realtime.Handler(&realtime.Options{
		Hub:      hub,
		Channels: []string{"chat"},
		OnMessage: func(ctx context.Context, s *realtime.Socket, text string) {
			hub.Publish(ctx, "chat", s.Transport().String()+" said "+text)
		},
	}, nil)
	var mu sync.Mutex
	var held []func()
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, rtPage)
	})
	mux.Handle("/realtime.js", realtime.ClientJS())
	mux.HandleFunc("/rt", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			rt.ServeHTTP(w, r)
			return
		}
		// Swallow the upgrade: hold the connection, answer nothing.
		nc, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		mu.Lock()
		held = append(held, func() { nc.Close() })
		mu.Unlock()
		<-release
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		close(release)
		mu.Lock()
		for _, f := range held {
			f()
		}
		mu.Unlock()
		srv.Close()
	})

	rtEachBrowser(t, func(t *testing.T, browser rtBrowser) {
		mu.Lock()
		before := len(held)
		mu.Unlock()
		tab := rtOpen(t, browser, srv.URL+"/?connectTimeout=1500")
		const state = `JSON.stringify(window.__rt)`
		rtWait(t, tab, "the page falls back", `__rt.opens.length === 1 && __rt.opens[0].transport === 'eventsource'`, state, 30*time.Second)
		mu.Lock()
		swallowed := len(held) - before
		mu.Unlock()
		if swallowed == 0 {
			t.Fatal("the page never tried a WebSocket")
		}
		text := "hello from " + browser.name()
		rtEval[bool](t, tab, fmt.Sprintf(`__sock.send(%q), true`, text))
		rtWait(t, tab, "the message comes back", fmt.Sprintf(`__rt.received.includes('eventsource said ' + %q)`, text), state, 30*time.Second)
	})
}
