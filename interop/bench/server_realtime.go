//go:build !norealtime

package main

import (
	"context"
	"fmt"
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
	for _, way := range []struct {
		read, readAppend string // the servers' names
		how              string // the notes, around the loop
		serve            func(ln net.Listener, newReader func() wsecho.Reader) error
	}{
		{"realtime-read", "realtime", "raw net.Listener + websocket.Serve, %s/Write loop with context.Background()",
			func(ln net.Listener, newReader func() wsecho.Reader) error { return serveRealtime(ln, nil, newReader) }},
		{"realtime-http", "realtime-http-append", "net/http + websocket.Accept, %s/Write loop with context.Background() in the handler",
			serveRealtimeHTTP},
		{"realtime-http-go", "realtime-http-go-append", "net/http + websocket.Accept, then the %s/Write loop on a fresh goroutine and the handler returns",
			func(ln net.Listener, newReader func() wsecho.Reader) error {
				return serveHTTP(ln, wsecho.HandlerGo(realtimeHTTPOptions, newReader))
			}},
		{"realtime-conn", "realtime-conn-append", "raw net.Listener, a goroutine per connection runs websocket.AcceptConn, then the %s/Write loop (the conformance testee's shape)",
			serveRealtimeConn},
	} {
		for _, r := range []struct {
			name, what string
			newReader  func() wsecho.Reader
		}{
			{way.read, "Read (a new slice per message)", wsecho.Read},
			{way.readAppend, "ReadAppend (reusing one buffer)", wsecho.ReadAppend},
		} {
			register(server{
				name:  r.name,
				pkg:   "github.com/realtime-go/realtime",
				notes: fmt.Sprintf(way.how, r.what),
				serve: func(ln net.Listener) error { return way.serve(ln, r.newReader) },
			})
		}
	}
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
