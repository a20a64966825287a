package main

import (
	"net"
	"strings"

	coder "github.com/coder/websocket"
	"github.com/lxzan/gws"
)

// Echo servers with permessage-deflate, for the compressed scenarios
// (-deflate). Their names end in pmdSuffix, which keeps them out of the
// uncompressed scenarios. Each is its library's plain echo with
// compression switched on as its documentation shows; where a library
// makes context takeover a server option, both settings are registered.

const pmdSuffix = "+pmd"

func isPMD(name string) bool { return strings.Contains(name, pmdSuffix) }

// pmdOrder is the row order of the compressed table.
var pmdOrder = []string{"realtime+pmd", "gorilla+pmd", "coder+pmd", "coder+pmd-ctx", "gws+pmd", "gws+pmd-ctx"}

func init() {
	register(server{
		name:  "gorilla+pmd",
		pkg:   "github.com/gorilla/websocket",
		notes: "Upgrader{EnableCompression: true} (no context takeover, the only mode gorilla has; level 1), ReadMessage/WriteMessage loop",
		serve: func(ln net.Listener) error { return serveGorilla(ln, true) },
	})
	register(server{
		name:  "coder+pmd",
		pkg:   "github.com/coder/websocket",
		notes: "AcceptOptions{CompressionMode: CompressionNoContextTakeover}, Read/Write loop",
		serve: func(ln net.Listener) error { return serveCoder(ln, coder.CompressionNoContextTakeover) },
	})
	register(server{
		name:  "coder+pmd-ctx",
		pkg:   "github.com/coder/websocket",
		notes: "AcceptOptions{CompressionMode: CompressionContextTakeover} (context takeover when the client allows it), Read/Write loop",
		serve: func(ln net.Listener) error { return serveCoder(ln, coder.CompressionContextTakeover) },
	})
	register(server{
		name:  "gws+pmd",
		pkg:   "github.com/lxzan/gws",
		notes: "ServerOption{PermessageDeflate: {Enabled: true}} (defaults: no context takeover, level 1, threshold 512), ReadLoop + OnMessage echo",
		serve: func(ln net.Listener) error {
			return serveGWS(ln, gws.PermessageDeflate{Enabled: true})
		},
	})
	register(server{
		name:  "gws+pmd-ctx",
		pkg:   "github.com/lxzan/gws",
		notes: "ServerOption{PermessageDeflate: {Enabled, ServerContextTakeover, ClientContextTakeover: true, Server/ClientMaxWindowBits: 15}}, ReadLoop + OnMessage echo",
		serve: func(ln net.Listener) error {
			return serveGWS(ln, gws.PermessageDeflate{
				Enabled:               true,
				ServerContextTakeover: true,
				ClientContextTakeover: true,
				ServerMaxWindowBits:   15,
				ClientMaxWindowBits:   15,
			})
		},
	})
}
