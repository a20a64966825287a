// Package obstest holds the benchmarks and the scripted session of the cost of an Observer: the
// root package runs them without one, the adapter modules (prometheus,
// otel) with theirs, so that both measure the same code.
package obstest

import (
	"context"
	"net"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/websocket"
)

// EchoSize is the size of the messages of Echo: 1 KiB.
const EchoSize = 1024

// BroadcastSockets is the size of the broadcast the cost of observing
// is measured on.
const BroadcastSockets = 10000

// Echo measures a 1 KiB realtime.v1 WebSocket message sent by a client
// and echoed by OnMessage with Socket.Send, until the client read it:
// one op is one message each way. obs nil means no observer.
func Echo(b *testing.B, obs *realtime.Observer) {
	srv := httptest.NewServer(realtime.Handler(&realtime.Options{
		Observer: obs,
		OnMessage: func(ctx context.Context, s *realtime.Socket, text string) {
			s.Send(text)
		},
	}, nil))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := Dial(b, ctx, srv.URL)
	defer c.CloseNow()
	msg := []byte(strings.Repeat("x", EchoSize))
	buf := make([]byte, 0, 2*EchoSize)
	b.SetBytes(EchoSize)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
			b.Fatal(err)
		}
		_, p, err := c.ReadAppend(ctx, buf[:0])
		if err != nil {
			b.Fatal(err)
		}
		buf = p
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// Broadcast measures a 64-byte message published to a channel of n
// realtime.v1 WebSocket sockets (fewer when the descriptor limit is
// lower, two per socket: the metric "sockets" says how many), until
// every client read it: one op is one publish, and allocs/delivery the
// allocations per socket reached, in the whole process (the clients'
// reads allocate nothing). obs, nil for none, is the hub's observer.
func Broadcast(b *testing.B, obs *realtime.Observer, n int) {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < uint64(2*n+256) {
		n = int(lim.Cur-256) / 2
	}
	const channel = "bench"
	hub := realtime.NewHub(&realtime.HubOptions{Observer: obs})
	defer hub.Close()
	srv := httptest.NewServer(realtime.Handler(&realtime.Options{Hub: hub, Channels: []string{channel}}, nil))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got atomic.Int64
	done := make(chan struct{}, 1)
	var target atomic.Int64
	conns := make([]*websocket.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.CloseNow()
		}
	}()
	for range n {
		c := Dial(b, ctx, srv.URL)
		conns = append(conns, c)
		go ReadEach(ctx, c, func() {
			if got.Add(1) == target.Load() {
				done <- struct{}{}
			}
		})
	}
	for hub.Len() < n {
		runtime.Gosched()
	}
	text := strings.Repeat("x", 64)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	for b.Loop() {
		target.Add(int64(n))
		if _, err := hub.Publish(ctx, channel, text); err != nil {
			b.Fatal(err)
		}
		<-done
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N*n), "allocs/delivery")
	b.ReportMetric(float64(n), "sockets")
	b.ReportMetric(float64(b.N)*float64(n)/b.Elapsed().Seconds(), "msgs/s")
}

// ReadEach reads c's messages into one buffer (ReadAppend), calling f
// after each, until a read fails.
func ReadEach(ctx context.Context, c *websocket.Conn, f func()) {
	buf := make([]byte, 0, 256)
	for {
		_, p, err := c.ReadAppend(ctx, buf[:0])
		if err != nil {
			return
		}
		buf = p
		f()
	}
}

// Dial opens a realtime.v1 WebSocket client and reads its position.
func Dial(b *testing.B, ctx context.Context, httpURL string) *websocket.Conn {
	u, _ := url.Parse(httpURL)
	u.Scheme = "ws"
	nc, err := net.Dial("tcp", u.Host)
	if err != nil {
		b.Fatal(err)
	}
	c, _, err := websocket.NewClient(ctx, nc, u, &websocket.ClientOptions{Subprotocols: []string{realtime.Subprotocol}})
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := c.Read(ctx); err != nil { // the position
		b.Fatal(err)
	}
	return c
}
