package websocket

import (
	"context"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/realtime-go/realtime/extensions"
)

// TestPingsWhileBothSidesWrite: over an unbuffered transport both sides
// write without pause while pinging each other. A reader that waited for
// the write lock to answer a ping would stall behind its own writer,
// which waits for the peer's reader, which waits the same way: both
// connections would hang.
func TestPingsWhileBothSidesWrite(t *testing.T) {
	a, b := net.Pipe()
	conns := []*Conn{
		newConn(a, nil, false, 13, "", extensions.Negotiated{}, ConnOptions{}),
		newConn(b, nil, true, 13, "", extensions.Negotiated{}, ConnOptions{}),
	}
	ctx := context.Background()
	var readers, work sync.WaitGroup
	for _, c := range conns {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
			}
		}()
		work.Add(2)
		go func() {
			defer work.Done()
			msg := make([]byte, 2048)
			for i := 0; i < 300; i++ {
				if err := c.Write(ctx, MessageBinary, msg); err != nil {
					t.Errorf("write %d: %v", i, err)
					return
				}
			}
		}()
		go func() {
			defer work.Done()
			for i := 0; i < 20; i++ {
				if _, err := c.Ping(ctx, []byte{byte(i)}); err != nil {
					t.Errorf("ping %d: %v", i, err)
					return
				}
			}
		}()
	}
	finished := make(chan struct{})
	go func() { work.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(5 * time.Second):
		buf := make([]byte, 1<<20)
		t.Log(string(buf[:runtime.Stack(buf, true)]))
		t.Error("connections stalled: a pong waited behind a blocked writer")
	}
	for _, c := range conns {
		c.CloseNow()
	}
	<-finished
	readers.Wait()
}
