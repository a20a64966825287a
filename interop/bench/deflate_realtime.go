//go:build !norealtime

package main

import (
	"context"
	"net"
	"net/http"

	"github.com/realtime-go/realtime/extensions"
	"github.com/realtime-go/realtime/extensions/deflate"
	"github.com/realtime-go/realtime/websocket"
)

func init() {
	register(server{
		name:  "realtime+pmd",
		pkg:   "github.com/realtime-go/realtime",
		notes: "websocket.Serve with AcceptOptions.Extensions = deflate.New(nil) (defaults: grants what the client offers, context takeover included; threshold 128), ReadAppend/Write loop",
		serve: serveRealtimePMD,
	})
}

func serveRealtimePMD(ln net.Listener) error {
	opts := &websocket.AcceptOptions{
		InsecureSkipOriginCheck: true,
		Extensions:              []extensions.Extension{deflate.New(nil)},
	}
	return websocket.Serve(ln, opts, func(c *websocket.Conn, _ *http.Request) {
		ctx := context.Background()
		var buf []byte
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
