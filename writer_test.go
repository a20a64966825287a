package realtime

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// countingListener counts the writes of the connections it accepts,
// which hides their TCP type: the WebSocket writes through Write alone.
type countingListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.writes}, nil
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

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
			srv.Listener = countingListener{srv.Listener, &writes}
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
