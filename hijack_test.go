package realtime

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/realtime-go/realtime/eventsource"
)

// TestEventSourceHandlerReturns: over HTTP/1.1 an EventSource socket's
// connection leaves net/http, so its handler returns at once, as a
// WebSocket's does, and serve runs on a goroutine of its own; with
// eventsource.HijackNever the handler stays until the socket ends. The
// socket works the same either way, and Hub.Shutdown closes it.
func TestEventSourceHandlerReturns(t *testing.T) {
	for _, mode := range []eventsource.HijackMode{eventsource.HijackAuto, eventsource.HijackNever} {
		t.Run(mode.String(), func(t *testing.T) {
			hub := newHub(t, nil)
			opts := chatOptions(hub)
			opts.EventSource.Hijack = mode
			sockets := make(chan *Socket, 1)
			returned := make(chan struct{}, 1)
			h := Handler(opts, func(ctx context.Context, s *Socket) {
				sockets <- s
				<-ctx.Done()
			})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h.ServeHTTP(w, r)
				returned <- struct{}{}
			}))
			t.Cleanup(srv.Close)
			c := dialES(t, &testServer{srv: srv, URL: srv.URL}, esDial{})
			s := <-sockets
			publish(t, hub, chat, "m")
			if _, data := c.message(t); data != "m" {
				t.Fatalf("got %q", data)
			}
			select {
			case <-returned:
				if mode == eventsource.HijackNever {
					t.Fatal("the handler returned while its stream was open")
				}
			default:
				if mode == eventsource.HijackAuto {
					eventually(t, "the handler to return", func() bool { return len(returned) > 0 })
				}
			}
			if err := hub.Shutdown(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			if ev := c.next(t); ev.Type != CloseEvent || ev.Data != "1001 going away" {
				t.Fatalf("got %+v, want the close", ev)
			}
			waitDone(t, s)
			if mode == eventsource.HijackNever {
				<-returned
			}
		})
	}
}
