package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/eventsource"
	"github.com/realtime-go/realtime/internal/slowloris"
	"github.com/realtime-go/realtime/websocket"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// shortTimeouts make the tests see the server's bounds at work.
var shortTimeouts = timeouts{header: 300 * time.Millisecond, write: 200 * time.Millisecond, idle: time.Second}

// startServer serves the room as main does, with shortTimeouts.
func startServer(t *testing.T) *httptest.Server {
	r := newRoom()
	t.Cleanup(func() { r.hub.Close() })
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = newServer(r.handler(), shortTimeouts)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// One participant on WebSocket and one on EventSource chat, and each
// sees the other's transport. (interop/realtime_chat_test.go runs the
// page itself in Chromium.)
func TestChat(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// alice, on WebSocket.
	u, _ := url.Parse(strings.Replace(srv.URL, "http", "ws", 1) + "/chat?name=alice")
	nc, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.NewClient(ctx, nc, u, &websocket.ClientOptions{Subprotocols: []string{realtime.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	readWS := func() event {
		for {
			_, p, err := ws.Read(ctx)
			if err != nil {
				t.Fatalf("alice: %v", err)
			}
			if _, data, ok := strings.Cut(string(p), "\n"); ok {
				var e event
				if err := json.Unmarshal([]byte(data), &e); err != nil {
					t.Fatal(err)
				}
				return e
			}
		}
	}
	if e := readWS(); e.Kind != "who" || len(e.People) != 1 || e.People[0] != (person{"alice", "websocket"}) {
		t.Fatalf("alice got %+v", e)
	}

	// bob, on EventSource.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/chat?name=bob", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dec := eventsource.NewDecoder(resp.Body, nil)
	hello, err := dec.Next()
	if err != nil || hello.Type != "realtime.hello" {
		t.Fatalf("bob's first event %+v, %v", hello, err)
	}
	readES := func() event {
		ev, err := dec.Next()
		if err != nil {
			t.Fatalf("bob: %v", err)
		}
		var e event
		if err := json.Unmarshal([]byte(ev.Data), &e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	both := []person{{"alice", "websocket"}, {"bob", "eventsource"}}
	for _, read := range []func() event{readWS, readES} {
		if e := read(); e.Kind != "who" || len(e.People) != 2 || e.People[0] != both[0] || e.People[1] != both[1] {
			t.Fatalf("got %+v, want both", e)
		}
	}

	// Both connections outlive the server's write timeout.
	time.Sleep(2 * shortTimeouts.write)
	ws.Write(ctx, websocket.MessageText, []byte("hi bob"))
	post, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/chat", strings.NewReader("  hi alice  "))
	post.Header.Set(realtime.TokenHeader, hello.Data)
	presp, err := http.DefaultClient.Do(post)
	if err != nil {
		t.Fatal(err)
	}
	presp.Body.Close()
	if presp.StatusCode != http.StatusNoContent {
		t.Fatalf("bob's POST: %d", presp.StatusCode)
	}
	want := []event{
		{Kind: "say", From: "alice", Transport: "websocket", Text: "hi bob"},
		{Kind: "say", From: "bob", Transport: "eventsource", Text: "hi alice"},
	}
	for who, read := range map[string]func() event{"alice": readWS, "bob": readES} {
		for _, w := range want {
			if e := read(); e.Kind != w.Kind || e.From != w.From || e.Transport != w.Transport || e.Text != w.Text {
				t.Fatalf("%s got %+v, want %+v", who, e, w)
			}
		}
	}
	ws.Close(websocket.StatusNormalClosure, "")
}

// TestSlowloris: 200 connections that send their request a byte at a
// time are dropped once the header timeout passes, and the page is
// served meanwhile.
func TestSlowloris(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	attack := make(chan error, 1)
	go func() { attack <- slowloris.Attack(ctx, srv.Listener.Addr().String(), 200, 100*time.Millisecond) }()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("page during the attack: %s", resp.Status)
	}
	if err := <-attack; err != nil {
		t.Fatal(err)
	}
}
