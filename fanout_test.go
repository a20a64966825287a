package realtime

import (
	"context"
	"net"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/realtime-go/realtime/websocket"
)

// fanoutSockets is how many realtime.v1 WebSocket clients
// BenchmarkPublishFanout connects.
const fanoutSockets = 1000

// BenchmarkPublishFanout measures a message published to a channel of
// 1,000 WebSocket sockets, until every client has read it: one op is one
// publish, and allocs/delivery the allocations per socket reached, in
// the whole process (the clients' reads allocate nothing).
func BenchmarkPublishFanout(b *testing.B) {
	hub := NewHub(nil)
	defer hub.Close()
	srv := httptest.NewServer(Handler(&Options{Hub: hub, Channels: []string{chat}}, nil))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	u.Scheme = "ws"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan struct{}, fanoutSockets)
	conns := make([]*websocket.Conn, 0, fanoutSockets)
	defer func() {
		for _, c := range conns {
			c.CloseNow()
		}
	}()
	for range fanoutSockets {
		nc, err := net.Dial("tcp", u.Host)
		if err != nil {
			b.Fatal(err)
		}
		c, _, err := websocket.NewClient(ctx, nc, u, &websocket.ClientOptions{Subprotocols: []string{Subprotocol}})
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		if _, _, err := c.Read(ctx); err != nil { // the position
			b.Fatal(err)
		}
		go func() {
			buf := make([]byte, 0, 256)
			for {
				_, p, err := c.ReadAppend(ctx, buf[:0])
				if err != nil {
					return
				}
				buf = p
				got <- struct{}{}
			}
		}()
	}
	for hub.Len() < fanoutSockets {
		runtime.Gosched()
	}
	text := strings.Repeat("x", 64)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := hub.Publish(ctx, chat, text); err != nil {
			b.Fatal(err)
		}
		for range fanoutSockets {
			<-got
		}
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N*fanoutSockets), "allocs/delivery")
}
