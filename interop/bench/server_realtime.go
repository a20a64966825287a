//go:build !norealtime

package main

import (
	"context"
	"net"
	"net/http"

	"github.com/realtime-go/realtime/extensions"
	"github.com/realtime-go/realtime/interop/internal/wsecho"
	"github.com/realtime-go/realtime/websocket"
)

func init() {
	register(server{
		name:  "realtime",
		pkg:   "github.com/realtime-go/realtime",
		notes: "raw net.Listener + websocket.Serve, ReadAppend (reusing one buffer)/Write loop with context.Background()",
		serve: func(ln net.Listener) error { return serveRealtime(ln, nil) },
	})
	register(server{
		name:  "realtime-http",
		pkg:   "github.com/realtime-go/realtime",
		notes: "net/http + websocket.Accept, Read/Write loop with context.Background() in the handler",
		serve: serveRealtimeHTTP,
	})
}

// serveRealtimeHTTP is our echo server as most programs write it: Accept
// inside a net/http handler, then Read (a new slice per message) and Write.
func serveRealtimeHTTP(ln net.Listener) error {
	return serveHTTP(ln, wsecho.Handler(&websocket.AcceptOptions{InsecureSkipOriginCheck: true}))
}

// serveRealtime is our echo server, with the extensions exts (none, or
// see deflate_realtime.go).
func serveRealtime(ln net.Listener, exts []extensions.Extension) error {
	opts := &websocket.AcceptOptions{InsecureSkipOriginCheck: true, Extensions: exts}
	return websocket.Serve(ln, opts, func(c *websocket.Conn, _ *http.Request) {
		ctx := context.Background()
		var buf []byte // reused: ReadAppend is the allocation-free Read
		for {
			typ, p, err := c.ReadAppend(ctx, buf[:0])
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, p); err != nil {
				return
			}
			buf = p
		}
	})
}
