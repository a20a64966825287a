//go:build !norealtime

package main

import (
	"net"

	"github.com/realtime-go/realtime/extensions"
	"github.com/realtime-go/realtime/extensions/deflate"
	"github.com/realtime-go/realtime/interop/internal/wsecho"
)

func init() {
	register(server{
		name:  "realtime+pmd",
		pkg:   "github.com/realtime-go/realtime",
		notes: "websocket.Serve with AcceptOptions.Extensions = deflate.New(nil) (defaults: grants what the client offers, context takeover included; threshold 128), ReadAppend/Write loop",
		serve: func(ln net.Listener) error {
			return serveRealtime(ln, []extensions.Extension{deflate.New(nil)}, wsecho.ReadAppend)
		},
	})
}
