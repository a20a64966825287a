//go:build !norealtime

package main

import (
	"context"
	"net"
	"net/http"

	"github.com/realtime-go/realtime/extensions"
	"github.com/realtime-go/realtime/interop/internal/benchproc"
	"github.com/realtime-go/realtime/interop/internal/wsecho"
	"github.com/realtime-go/realtime/websocket"
)

// The ways users serve our WebSocket: websocket.Serve, Accept in a
// net/http handler (the loop in the handler, or on a fresh goroutine
// with the handler returning), and AcceptConn on the goroutine that did
// the handshake, each with Read (a new slice per message) and ReadAppend
// (one buffer reused). "realtime" and "realtime-http" keep the names the
// README's rows have.
func init() {
	register(server{
		name:  "realtime",
		pkg:   "github.com/realtime-go/realtime",
		notes: "raw net.Listener + websocket.Serve, ReadAppend (reusing one buffer)/Write loop with context.Background()",
		serve: func(ln net.Listener) error { return serveRealtime(ln, nil, wsecho.ReadAppend) },
	})
	register(server{
		name:  "realtime-read",
		pkg:   "github.com/realtime-go/realtime",
		notes: "raw net.Listener + websocket.Serve, Read (a new slice per message)/Write loop with context.Background()",
		serve: func(ln net.Listener) error { return serveRealtime(ln, nil, wsecho.Read) },
	})
	register(server{
		name:  "realtime-http",
		pkg:   "github.com/realtime-go/realtime",
		notes: "net/http + websocket.Accept, Read/Write loop with context.Background() in the handler",
		serve: func(ln net.Listener) error { return serveRealtimeHTTP(ln, wsecho.Read) },
	})
	register(server{
		name:  "realtime-http-append",
		pkg:   "github.com/realtime-go/realtime",
		notes: "net/http + websocket.Accept, ReadAppend (reusing one buffer)/Write loop with context.Background() in the handler",
		serve: func(ln net.Listener) error { return serveRealtimeHTTP(ln, wsecho.ReadAppend) },
	})
	register(server{
		name:  "realtime-http-go",
		pkg:   "github.com/realtime-go/realtime",
		notes: "net/http + websocket.Accept, then the Read/Write loop on a fresh goroutine and the handler returns",
		serve: func(ln net.Listener) error { return serveHTTP(ln, wsecho.HandlerGo(realtimeHTTPOptions, wsecho.Read)) },
	})
	register(server{
		name:  "realtime-http-go-append",
		pkg:   "github.com/realtime-go/realtime",
		notes: "net/http + websocket.Accept, then the ReadAppend/Write loop on a fresh goroutine and the handler returns",
		serve: func(ln net.Listener) error {
			return serveHTTP(ln, wsecho.HandlerGo(realtimeHTTPOptions, wsecho.ReadAppend))
		},
	})
	register(server{
		name:  "realtime-conn",
		pkg:   "github.com/realtime-go/realtime",
		notes: "raw net.Listener, a goroutine per connection runs websocket.AcceptConn, then the Read/Write loop (the conformance testee's shape)",
		serve: func(ln net.Listener) error { return serveRealtimeConn(ln, wsecho.Read) },
	})
	register(server{
		name:  "realtime-conn-append",
		pkg:   "github.com/realtime-go/realtime",
		notes: "raw net.Listener, a goroutine per connection runs websocket.AcceptConn, then the ReadAppend/Write loop",
		serve: func(ln net.Listener) error { return serveRealtimeConn(ln, wsecho.ReadAppend) },
	})
}

// serveRealtime is our echo server on websocket.Serve, with the
// extensions exts (none, or see deflate_realtime.go).
func serveRealtime(ln net.Listener, exts []extensions.Extension, newReader func() wsecho.Reader) error {
	opts := &websocket.AcceptOptions{InsecureSkipOriginCheck: true, Extensions: exts}
	return websocket.Serve(ln, opts, func(c *websocket.Conn, _ *http.Request) {
		wsecho.Echo(c, newReader())
	})
}

// serveRealtimeHTTP is our echo server as most programs write it: Accept
// inside a net/http handler, then the echo loop in the handler.
func serveRealtimeHTTP(ln net.Listener, newReader func() wsecho.Reader) error {
	return serveHTTP(ln, wsecho.Handler(realtimeHTTPOptions, newReader))
}

var realtimeHTTPOptions = &websocket.AcceptOptions{InsecureSkipOriginCheck: true}

// serveRealtimeConn is our echo server on AcceptConn: the goroutine that
// ran the handshake (and grew its stack doing so) runs the echo loop.
func serveRealtimeConn(ln net.Listener, newReader func() wsecho.Reader) error {
	opts := &websocket.AcceptOptions{InsecureSkipOriginCheck: true}
	return benchproc.AcceptEach(ln, func(nc net.Conn) {
		c, _, err := websocket.AcceptConn(context.Background(), nc, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		wsecho.Echo(c, newReader())
	})
}
