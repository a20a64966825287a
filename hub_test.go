package realtime

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/realtime-go/realtime/websocket"
)

func TestHubPublish(t *testing.T) {
	hub := newHub(t, nil)
	ts := newTestServer(t, chatOptions(hub), nil)
	wc := dialWS(t, ts, wsDial{})
	plain := dialWS(t, ts, wsDial{plain: true})
	ec := dialES(t, ts, esDial{})
	for range 3 {
		ts.next(t)
	}
	if hub.Len() != 3 || len(hub.Sockets(chat)) != 3 {
		t.Fatalf("hub has %d sockets, %d in %s", hub.Len(), len(hub.Sockets(chat)), chat)
	}
	if last := lastID(t, hub, chat); wc.pos != last || ec.pos != last {
		t.Fatalf("positions %q %q, want %q", wc.pos, ec.pos, last)
	}
	var ids []string
	for _, text := range []string{"one", "two\nlines", ""} {
		ids = append(ids, publish(t, hub, chat, text))
	}
	if _, err := hub.Publish(testCtx(t), chat, "\xff"); !errors.Is(err, websocket.ErrInvalidUTF8) {
		t.Fatalf("Publish of invalid UTF-8: %v", err)
	}
	for i, text := range []string{"one", "two\nlines", ""} {
		if id, data, ok := wc.read(t); id != ids[i] || data != text || !ok {
			t.Fatalf("websocket got %q %q, want %q %q", id, data, ids[i], text)
		}
		if got := plain.readRaw(t); got != text {
			t.Fatalf("plain websocket got %q, want %q", got, text)
		}
		if ev := ec.next(t); ev.ID != ids[i] || ev.Data != text || ev.Type != "message" {
			t.Fatalf("eventsource got %+v, want id %q data %q", ev, ids[i], text)
		}
	}
	if last := lastID(t, hub, chat); last != ids[2] {
		t.Fatalf("latest id %q, want %q", last, ids[2])
	}
}

func TestHubShutdown(t *testing.T) {
	hub := newHub(t, nil)
	ts := newTestServer(t, chatOptions(hub), nil)
	wc := dialWS(t, ts, wsDial{})
	ws := ts.next(t)
	ec := dialES(t, ts, esDial{})
	es := ts.next(t)
	publishWait(t, hub, chat, "before")

	// The clients read while the hub shuts down, as browsers do.
	wsCode := make(chan websocket.StatusCode, 1)
	go func() {
		for {
			_, _, err := wc.c.Read(context.Background())
			if err != nil {
				wsCode <- websocket.CloseStatus(err)
				return
			}
		}
	}()
	if err := hub.Shutdown(testCtx(t)); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if code := <-wsCode; code != websocket.StatusGoingAway {
		t.Fatalf("websocket closed with %d, want 1001", code)
	}
	if ev := ec.next(t); ev.Data != "before" {
		t.Fatalf("got %+v, want the queued message first", ev)
	}
	if ev := ec.next(t); ev.Type != CloseEvent || ev.Data != "1001 going away" {
		t.Fatalf("got %+v, want the close event", ev)
	}
	ec.end(t)
	for _, s := range []*Socket{ws, es} {
		waitDone(t, s)
		if s.Err() != nil {
			t.Fatalf("%v socket Err = %v after Shutdown", s.Transport(), s.Err())
		}
	}
	if hub.Len() != 0 {
		t.Fatalf("%d sockets left", hub.Len())
	}
	// The hub goes on: history is kept and new sockets may join.
	id := publish(t, hub, chat, "while away")
	again := dialES(t, ts, esDial{lastEventID: ec.pos})
	if ev := again.next(t); ev.ID == "" || ev.Data != "before" {
		t.Fatalf("resumed client got %+v", ev)
	}
	if ev := again.next(t); ev.ID != id || ev.Data != "while away" {
		t.Fatalf("resumed client got %+v", ev)
	}
}

// While Shutdown waits for a client that does not answer the close,
// new sockets are refused; when ctx ends, Shutdown cuts the rest.
func TestHubShutdownDeadline(t *testing.T) {
	hub := newHub(t, nil)
	opts := &Options{Hub: hub, Channels: []string{chat}, WebSocket: websocket.AcceptOptions{ConnOptions: websocket.ConnOptions{CloseTimeout: time.Minute}}}
	ts := newTestServer(t, opts, nil)
	dialWS(t, ts, wsDial{}) // never reads: the close handshake cannot finish
	s := ts.next(t)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- hub.Shutdown(ctx) }()
	eventually(t, "Shutdown to start", hub.shuttingDown)
	for _, accept := range []string{"", "text/event-stream"} {
		req, _ := http.NewRequest(http.MethodGet, ts.URL, nil)
		if accept == "" {
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Connection", "Upgrade")
		} else {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("new socket during Shutdown: %d, want 503", resp.StatusCode)
		}
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v while a socket was open", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown = %v, want context.Canceled", err)
	}
	waitDone(t, s)
}
