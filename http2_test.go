//lint:file-ignore SA1019 net/http's Transport cannot send an extended CONNECT (Go 1.26); x/net/http2.Transport can.

package realtime

import (
	"context"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/realtime-go/realtime/internal/h2test"
	"github.com/realtime-go/realtime/websocket"
)

// TestWebSocketOverHTTP2: the Handler serves a WebSocket carried by an
// HTTP/2 stream (RFC 8441), whose handler must not return before the
// socket ends, and the socket closes as on HTTP/1.1.
func TestWebSocketOverHTTP2(t *testing.T) {
	sockets := make(chan *Socket, 1)
	var running atomic.Int32
	h := Handler(&Options{OnMessage: echo}, func(ctx context.Context, s *Socket) {
		sockets <- s
		<-ctx.Done()
	})
	srv, rt := h2test.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		running.Add(1)
		defer running.Add(-1)
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	defer rt.CloseIdleConnections()
	u, _ := url.Parse(srv.URL)
	u.Scheme = "wss"
	c, resp, err := websocket.NewClientHTTP2(testCtx(t), rt, u, &websocket.ClientOptions{Subprotocols: []string{Subprotocol}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()
	if resp.ProtoMajor != 2 || c.Subprotocol() != Subprotocol {
		t.Fatalf("%s, subprotocol %q", resp.Proto, c.Subprotocol())
	}
	wc := &wsClient{c: c}
	if id, data, hasData := wc.read(t); hasData {
		t.Fatalf("first message %q\n%q carries data", id, data)
	}
	s := <-sockets
	wc.send(t, "over h2")
	if _, data, _ := wc.read(t); data != "websocket: over h2" {
		t.Fatalf("got %q", data)
	}
	if n := running.Load(); n != 1 {
		t.Fatalf("%d handlers running while the socket is open, want 1", n)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	if code := wc.expectClose(t); code != websocket.StatusNormalClosure {
		t.Fatalf("close code %d, want 1000", code)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
}
