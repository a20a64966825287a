//go:build !norealtime

package main

import (
	"context"
	"net"

	"github.com/realtime-go/realtime/websocket"
)

func init() {
	register(server{
		name:  "realtime",
		pkg:   "github.com/realtime-go/realtime",
		notes: "raw net.Listener + websocket.AcceptConn, ReadAppend (reusing one buffer)/Write loop with context.Background()",
		serve: serveRealtime,
	})
}

func serveRealtime(ln net.Listener) error {
	opts := &websocket.AcceptOptions{InsecureSkipOriginCheck: true}
	for {
		nc, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			ctx := context.Background()
			c, _, err := websocket.AcceptConn(ctx, nc, opts)
			if err != nil {
				nc.Close()
				return
			}
			defer c.CloseNow()
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
		}()
	}
}
