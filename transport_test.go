package realtime

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/realtime-go/realtime/websocket"
)

// echo is an OnMessage that sends every message back to its sender.
func echo(ctx context.Context, s *Socket, text string) {
	s.Send(s.Transport().String() + ": " + text)
}

func TestWebSocketSocket(t *testing.T) {
	ts := newTestServer(t, &Options{OnMessage: echo}, nil)
	wc := dialWS(t, ts, wsDial{})
	s := ts.next(t)
	if s.Transport() != TransportWebSocket || s.ID() == "" || s.Request().URL.Path != "/rt" {
		t.Fatalf("socket kind %v id %q path %q", s.Transport(), s.ID(), s.Request().URL.Path)
	}
	if c, ok := s.WebSocket(); !ok || c.Subprotocol() != Subprotocol {
		t.Fatalf("WebSocket() = %v, %v", c, ok)
	}
	if _, ok := s.EventSource(); ok {
		t.Fatal("EventSource() on a WebSocket socket")
	}
	if wc.pos != "" {
		t.Fatalf("position %q without a hub, want empty", wc.pos)
	}
	wc.send(t, "hello\nthere")
	id, data, _ := wc.read(t)
	if id != "" || data != "websocket: hello\nthere" {
		t.Fatalf("got id %q data %q", id, data)
	}
	// The client answers pings while it reads.
	read := make(chan string, 1)
	go func() {
		_, p, _ := wc.c.Read(context.Background())
		read <- string(p)
	}()
	if err := s.Ping(testCtx(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	s.Send("\nafter the ping")
	if got := <-read; got != "\n\nafter the ping" {
		t.Fatalf("got %q", got)
	}
	s.Send("bye")
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }() // Close waits for the client's close frame
	if _, data, _ := wc.read(t); data != "bye" {
		t.Fatalf("got %q before the close, want bye", data)
	}
	if code := wc.expectClose(t); code != websocket.StatusNormalClosure {
		t.Fatalf("close code %d, want 1000", code)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if s.Err() != nil {
		t.Fatalf("Err after Close = %v, want nil", s.Err())
	}
	if err := s.Send("late"); err == nil {
		t.Fatal("Send after Close succeeded")
	}
}

func TestEventSourceSocket(t *testing.T) {
	ts := newTestServer(t, &Options{OnMessage: echo}, nil)
	ec := dialES(t, ts, esDial{})
	s := ts.next(t)
	if s.Transport() != TransportEventSource {
		t.Fatalf("kind %v", s.Transport())
	}
	if _, ok := s.EventSource(); !ok {
		t.Fatal("EventSource() = false")
	}
	if ec.token == "" || ec.pos != "" {
		t.Fatalf("hello token %q position %q", ec.token, ec.pos)
	}
	if code := ec.post(t, "hello\nthere"); code != http.StatusNoContent {
		t.Fatalf("POST: %d", code)
	}
	ev := ec.next(t)
	if ev.Type != "message" || ev.Data != "eventsource: hello\nthere" || ev.ID != "" {
		t.Fatalf("got %+v", ev)
	}
	if err := s.Ping(testCtx(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	s.Send("bye")
	if err := s.CloseWith(4000, "done here"); err != nil {
		t.Fatalf("CloseWith: %v", err)
	}
	if ev := ec.next(t); ev.Data != "bye" {
		t.Fatalf("got %+v before the close, want bye", ev)
	}
	if ev := ec.next(t); ev.Type != CloseEvent || ev.Data != "4000 done here" {
		t.Fatalf("got %+v, want the close event", ev)
	}
	ec.end(t)
}

func TestPlainWebSocketClient(t *testing.T) {
	hub := newHub(t, nil)
	ts := newTestServer(t, &Options{Hub: hub, Channels: []string{chat}, OnMessage: echo}, nil)
	wc := dialWS(t, ts, wsDial{plain: true, lastEventID: "whatever"})
	s := ts.next(t)
	if s.LastEventID() != "" {
		t.Fatalf("a plain client resumes from %q", s.LastEventID())
	}
	wc.send(t, "hi")
	if got := wc.readRaw(t); got != "websocket: hi" {
		t.Fatalf("got %q", got)
	}
	publish(t, hub, chat, "all")
	if got := wc.readRaw(t); got != "all" {
		t.Fatalf("got %q, want the broadcast as plain text", got)
	}
}

func TestLineEndsNormalized(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	wc := dialWS(t, ts, wsDial{})
	ws := ts.next(t)
	ec := dialES(t, ts, esDial{})
	es := ts.next(t)
	for _, s := range []*Socket{ws, es} {
		if err := s.Send("a\r\nb\rc\nd"); err != nil {
			t.Fatal(err)
		}
		if err := s.Send("bad \xff"); !errors.Is(err, websocket.ErrInvalidUTF8) {
			t.Fatalf("Send of invalid UTF-8: %v", err)
		}
	}
	if _, data, _ := wc.read(t); data != "a\nb\nc\nd" {
		t.Fatalf("websocket got %q", data)
	}
	if ev := ec.next(t); ev.Data != "a\nb\nc\nd" {
		t.Fatalf("eventsource got %q", ev.Data)
	}
}

func TestBinaryMessageCloses1003(t *testing.T) {
	ts := newTestServer(t, &Options{OnMessage: echo}, nil)
	wc := dialWS(t, ts, wsDial{})
	s := ts.next(t)
	if err := wc.c.Write(testCtx(t), websocket.MessageBinary, []byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	if code := wc.expectClose(t); code != websocket.StatusUnsupportedData {
		t.Fatalf("close code %d, want 1003", code)
	}
	waitDone(t, s)
}

// OnMessage runs on the read goroutine, which Close waits for; calling
// Close from OnMessage must not deadlock.
func TestCloseFromOnMessage(t *testing.T) {
	closed := make(chan error, 2)
	opts := &Options{OnMessage: func(ctx context.Context, s *Socket, text string) {
		closed <- s.CloseWith(4001, text)
	}}
	ts := newTestServer(t, opts, nil)
	wc := dialWS(t, ts, wsDial{})
	wc.send(t, "kick")
	if code := wc.expectClose(t); code != 4001 {
		t.Fatalf("close code %d, want 4001", code)
	}
	ec := dialES(t, ts, esDial{})
	if code := ec.post(t, "kick"); code != http.StatusNoContent {
		t.Fatalf("POST: %d", code)
	}
	if ev := ec.next(t); ev.Type != CloseEvent || ev.Data != "4001 kick" {
		t.Fatalf("got %+v", ev)
	}
	for range 2 {
		if err := <-closed; err != nil {
			t.Fatalf("CloseWith from OnMessage: %v", err)
		}
	}
}

func TestServeReturnCloses(t *testing.T) {
	ts := newTestServer(t, nil, func(ctx context.Context, s *Socket) {
		s.Send("only this")
	})
	wc := dialWS(t, ts, wsDial{})
	if _, data, _ := wc.read(t); data != "only this" {
		t.Fatalf("got %q", data)
	}
	if code := wc.expectClose(t); code != websocket.StatusNormalClosure {
		t.Fatalf("close code %d", code)
	}
	ec := dialES(t, ts, esDial{})
	if ev := ec.next(t); ev.Data != "only this" {
		t.Fatalf("got %+v", ev)
	}
	if ev := ec.next(t); ev.Type != CloseEvent || ev.Data != "1000 " {
		t.Fatalf("got %+v", ev)
	}
}

func TestPeerCloseReported(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	wc := dialWS(t, ts, wsDial{})
	s := ts.next(t)
	wc.c.Close(4321, "leaving")
	waitDone(t, s)
	if websocket.CloseStatus(s.Err()) != 4321 {
		t.Fatalf("Err = %v, want the peer's close 4321", s.Err())
	}
	ec := dialES(t, ts, esDial{})
	s = ts.next(t)
	ec.close()
	waitDone(t, s)
	if s.Err() == nil {
		t.Fatal("Err = nil after the client left")
	}
}

func TestCloseWithInvalidCode(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	dialWS(t, ts, wsDial{})
	s := ts.next(t)
	for _, code := range []websocket.StatusCode{999, 1004, 1005, 1006, 1015, 2999, 5000} {
		if err := s.CloseWith(code, ""); err == nil {
			t.Fatalf("CloseWith(%d) succeeded", code)
		}
	}
	if err := s.CloseWith(1000, strings.Repeat("x", 124)); err == nil {
		t.Fatal("CloseWith with a 124-byte reason succeeded")
	}
	select {
	case <-s.Done():
		t.Fatal("an invalid CloseWith closed the socket")
	default:
	}
}

func TestOptionsCopied(t *testing.T) {
	subs := make([]string, 1, 4)
	subs[0] = "chat.v2"
	opts := &Options{WebSocket: websocket.AcceptOptions{Subprotocols: subs}}
	ts := newTestServer(t, opts, nil)
	if got := subs[:cap(subs)]; got[1] != "" {
		t.Fatalf("Handler wrote into the caller's slice: %q", got)
	}
	opts.OnMessage = func(context.Context, *Socket, string) { t.Error("a later change took effect") }
	wc := dialWS(t, ts, wsDial{plain: true, opts: websocket.ClientOptions{Subprotocols: []string{"chat.v2"}}})
	if wc.c.Subprotocol() != "chat.v2" {
		t.Fatalf("subprotocol %q, want the caller's chat.v2", wc.c.Subprotocol())
	}
	wc.send(t, "ignored")
	s := ts.next(t)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	wc.expectClose(t)
	<-closed
	if !slices.Equal(subs, []string{"chat.v2"}) {
		t.Fatalf("subprotocols changed: %q", subs)
	}
}

func TestOtherRequests(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	for _, tc := range []struct {
		method string
		status int
	}{
		{http.MethodGet, http.StatusUpgradeRequired}, // a proxy dropped Upgrade
		{http.MethodPut, http.StatusMethodNotAllowed},
		{http.MethodDelete, http.StatusMethodNotAllowed},
	} {
		req, _ := http.NewRequest(tc.method, ts.URL, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d", tc.method, resp.StatusCode, tc.status)
		}
	}
}

func TestClientJS(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	resp, err := http.Get(ts.srv.URL + "/realtime.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !strings.Contains(string(clientJS), "class RealtimeSocket") || !strings.Contains(string(clientJS), Subprotocol) {
		t.Fatal("the embedded script is not the client")
	}
	req, _ := http.NewRequest(http.MethodGet, ts.srv.URL+"/realtime.js", nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("revalidation: %d, want 304", resp.StatusCode)
	}
}
