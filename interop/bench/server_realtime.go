//go:build !norealtime

package main

import (
	"context"
	"net"
	"net/http"

	"github.com/realtime-go/realtime/extensions"
	"github.com/realtime-go/realtime/interop/internal/benchproc"
	"github.com/realtime-go/realtime/websocket"
)

// The six ways users serve our WebSocket: websocket.Serve, Accept in a
// net/http handler, and AcceptConn on the goroutine that did the
// handshake, each with Read (a new slice per message) and ReadAppend
// (one buffer reused). "realtime" and "realtime-http" keep the names the
// README's rows have.
func init() {
	register(server{
		name:  "realtime",
		pkg:   "github.com/realtime-go/realtime",
		notes: "raw net.Listener + websocket.Serve, ReadAppend (reusing one buffer)/Write loop with context.Background()",
		serve: func(ln net.Listener) error { return serveRealtime(ln, nil, newReadAppend) },
	})
	register(server{
		name:  "realtime-read",
		pkg:   "github.com/realtime-go/realtime",
		notes: "raw net.Listener + websocket.Serve, Read (a new slice per message)/Write loop with context.Background()",
		serve: func(ln net.Listener) error { return serveRealtime(ln, nil, newRead) },
	})
	register(server{
		name:  "realtime-http",
		pkg:   "github.com/realtime-go/realtime",
		notes: "net/http + websocket.Accept, Read/Write loop with context.Background() in the handler",
		serve: func(ln net.Listener) error { return serveRealtimeHTTP(ln, newRead) },
	})
	register(server{
		name:  "realtime-http-append",
		pkg:   "github.com/realtime-go/realtime",
		notes: "net/http + websocket.Accept, ReadAppend (reusing one buffer)/Write loop with context.Background() in the handler",
		serve: func(ln net.Listener) error { return serveRealtimeHTTP(ln, newReadAppend) },
	})
	register(server{
		name:  "realtime-conn",
		pkg:   "github.com/realtime-go/realtime",
		notes: "raw net.Listener, a goroutine per connection runs websocket.AcceptConn, then the Read/Write loop (the conformance testee's shape)",
		serve: func(ln net.Listener) error { return serveRealtimeConn(ln, newRead) },
	})
	register(server{
		name:  "realtime-conn-append",
		pkg:   "github.com/realtime-go/realtime",
		notes: "raw net.Listener, a goroutine per connection runs websocket.AcceptConn, then the ReadAppend/Write loop",
		serve: func(ln net.Listener) error { return serveRealtimeConn(ln, newReadAppend) },
	})
}

// A reader is how one connection's echo loop reads a message.
type reader func(ctx context.Context, c *websocket.Conn) (websocket.MessageType, []byte, error)

// newRead returns the reader that calls Read: a new slice per message.
func newRead() reader {
	return func(ctx context.Context, c *websocket.Conn) (websocket.MessageType, []byte, error) {
		return c.Read(ctx)
	}
}

// newReadAppend returns a reader that calls ReadAppend into the buffer of
// the message before, which the loop has written back by then: the
// allocation-free Read.
func newReadAppend() reader {
	var buf []byte
	return func(ctx context.Context, c *websocket.Conn) (websocket.MessageType, []byte, error) {
		typ, p, err := c.ReadAppend(ctx, buf[:0])
		buf = p
		return typ, p, err
	}
}

// echo writes back every message read returns, until the peer goes away.
func echo(c *websocket.Conn, read reader) {
	ctx := context.Background()
	for {
		typ, p, err := read(ctx, c)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, p); err != nil {
			return
		}
	}
}

// serveRealtime is our echo server on websocket.Serve, with the
// extensions exts (none, or see deflate_realtime.go).
func serveRealtime(ln net.Listener, exts []extensions.Extension, newReader func() reader) error {
	opts := &websocket.AcceptOptions{InsecureSkipOriginCheck: true, Extensions: exts}
	return websocket.Serve(ln, opts, func(c *websocket.Conn, _ *http.Request) {
		echo(c, newReader())
	})
}

// serveRealtimeHTTP is our echo server as most programs write it: Accept
// inside a net/http handler, then the echo loop in the handler.
func serveRealtimeHTTP(ln net.Listener, newReader func() reader) error {
	opts := &websocket.AcceptOptions{InsecureSkipOriginCheck: true}
	return serveHTTP(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		echo(c, newReader())
	}))
}

// serveRealtimeConn is our echo server on AcceptConn: the goroutine that
// ran the handshake (and grew its stack doing so) runs the echo loop.
func serveRealtimeConn(ln net.Listener, newReader func() reader) error {
	opts := &websocket.AcceptOptions{InsecureSkipOriginCheck: true}
	return benchproc.AcceptEach(ln, func(nc net.Conn) {
		c, _, err := websocket.AcceptConn(context.Background(), nc, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		echo(c, newReader())
	})
}
