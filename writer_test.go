package realtime

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/realtime-go/realtime/internal/batchtest"
)

// TestWriteBatchOneFlush: the messages a socket has queued go out
// together, not with a write system call each: here the replay of 100
// missed messages, on either transport, takes a few writes.
func TestWriteBatchOneFlush(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.String(), func(t *testing.T) {
			hub := newHub(t, nil)
			from := publish(t, hub, chat, "m0")
			const n = 100
			for i := 1; i <= n; i++ {
				publish(t, hub, chat, fmt.Sprint("m", i))
			}
			var writes atomic.Int64
			srv := httptest.NewUnstartedServer(Handler(chatOptions(hub), func(ctx context.Context, s *Socket) { <-ctx.Done() }))
			srv.Listener = batchtest.Listener{Listener: srv.Listener, Writes: &writes}
			srv.Start()
			t.Cleanup(srv.Close)
			c := dialTransport(t, &testServer{srv: srv, URL: srv.URL}, k, from)
			for i := 1; i <= n; i++ {
				if _, data := c.message(t); data != fmt.Sprint("m", i) {
					t.Fatalf("message %d: %q", i, data)
				}
			}
			// The handshake, the hello and the replay: a write per message
			// would be over 100.
			if w := writes.Load(); w > 10 {
				t.Fatalf("%d writes for the hello and %d replayed messages", w, n)
			}
			c.close()
		})
	}
}
