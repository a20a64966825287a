// Package slowloris plays the slowloris attack against a server, to test
// that the server drops such clients: each connection sends an HTTP
// request's header one byte at a time and never finishes it.
package slowloris

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"
)

// header is what an attacking connection sends, a byte each interval;
// the field value then grows for ever.
const header = "GET / HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nX-Slow: "

// Attack opens n connections to addr, each sending one byte of a request
// header every interval, and returns nil once the server has closed
// every one of them. If ctx ends first, it returns an error telling how
// many the server still held. All connections are closed on return.
func Attack(ctx context.Context, addr string, n int, interval time.Duration) error {
	var d net.Dialer
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	for range n {
		nc, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("slowloris: %w", err)
		}
		conns = append(conns, nc)
	}
	var wg sync.WaitGroup
	dropped := make(chan struct{}, n)
	for _, nc := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if drip(ctx, nc, interval) {
				dropped <- struct{}{}
			}
		}()
	}
	wg.Wait()
	if held := n - len(dropped); held > 0 {
		return fmt.Errorf("slowloris: the server still held %d of %d connections when the attack ended: %w", held, n, ctx.Err())
	}
	return nil
}

// drip sends header byte by byte until the server closes nc, which it
// reports, or ctx ends.
func drip(ctx context.Context, nc net.Conn, interval time.Duration) bool {
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		buf := make([]byte, 512)
		for {
			if _, err := nc.Read(buf); err != nil {
				return
			}
		}
	}()
	defer func() {
		nc.Close()
		<-closed
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for i := 0; ; i++ {
		b := byte('a')
		if i < len(header) {
			b = header[i]
		}
		if _, err := nc.Write([]byte{b}); err != nil {
			return true // reset by the server
		}
		select {
		case <-closed:
			return true
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}
