package main

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"sort"

	coder "github.com/coder/websocket"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	gorilla "github.com/gorilla/websocket"
	"github.com/lxzan/gws"

	"github.com/realtime-go/realtime/interop/internal/benchproc"
)

// A server listens on ln and echoes every message back, as the library's
// documentation shows, until the peer goes away. It returns when ln is
// closed.
type server struct {
	name  string
	pkg   string // module path, for the version line
	notes string
	serve func(ln net.Listener) error
}

var servers = map[string]server{}

func register(s server) { servers[s.name] = s }

// serverOrder is the row order of the table; names not registered (the
// realtime server when built with -tags norealtime) are skipped.
var serverOrder = []string{"tcp", "realtime", "realtime-read", "realtime-http", "realtime-http-append", "realtime-http-go", "realtime-http-go-append", "realtime-conn", "realtime-conn-append", "gorilla", "coder", "gobwas", "gws"}

func registeredServers() []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range serverOrder {
		if _, ok := servers[n]; ok {
			out = append(out, n)
			seen[n] = true
		}
	}
	var rest []string
	for n := range servers {
		if !seen[n] {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

func init() {
	register(server{
		name:  "tcp",
		notes: "plain TCP echo of the same wire bytes (32 KiB read buffer per connection, goroutine per connection): the upper limit",
		serve: serveTCP,
	})
	register(server{
		name:  "gorilla",
		pkg:   "github.com/gorilla/websocket",
		notes: "net/http + Upgrader.Upgrade, ReadMessage/WriteMessage loop in the handler",
		serve: func(ln net.Listener) error { return serveGorilla(ln, false) },
	})
	register(server{
		name:  "coder",
		pkg:   "github.com/coder/websocket",
		notes: "net/http + websocket.Accept, Read/Write loop with context.Background(), SetReadLimit(64 MiB)",
		serve: func(ln net.Listener) error { return serveCoder(ln, coder.CompressionDisabled) },
	})
	register(server{
		name:  "gobwas",
		pkg:   "github.com/gobwas/ws",
		notes: "raw net.Listener + ws.Upgrade, wsutil.ReadClientData/WriteServerMessage loop on the bare net.Conn",
		serve: serveGobwas,
	})
	register(server{
		name:  "gws",
		pkg:   "github.com/lxzan/gws",
		notes: "net/http + gws.NewUpgrader(handler, default ServerOption), go ReadLoop(); OnMessage writes the message back",
		serve: func(ln net.Listener) error { return serveGWS(ln, gws.PermessageDeflate{}) },
	})
}

func serveTCP(ln net.Listener) error {
	return benchproc.AcceptEach(ln, func(nc net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := nc.Read(buf)
			if n > 0 {
				if _, werr := nc.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
}

func serveHTTP(ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// serveGorilla, serveCoder and serveGWS are the libraries' echo servers,
// with permessage-deflate as the argument sets it (off, or see
// deflate_servers.go).
func serveGorilla(ln net.Listener, compress bool) error {
	up := gorilla.Upgrader{
		CheckOrigin:       func(*http.Request) bool { return true },
		EnableCompression: compress,
	}
	return serveHTTP(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			typ, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(typ, p); err != nil {
				return
			}
		}
	}))
}

func serveCoder(ln net.Listener, mode coder.CompressionMode) error {
	return serveHTTP(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := coder.Accept(w, r, &coder.AcceptOptions{
			InsecureSkipVerify: true,
			CompressionMode:    mode,
		})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(64 << 20)
		ctx := context.Background()
		for {
			typ, p, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, p); err != nil {
				return
			}
		}
	}))
}

func serveGobwas(ln net.Listener) error {
	return benchproc.AcceptEach(ln, func(nc net.Conn) {
		if _, err := ws.Upgrade(nc); err != nil {
			return
		}
		for {
			msg, op, err := wsutil.ReadClientData(nc)
			if err != nil {
				return
			}
			if err := wsutil.WriteServerMessage(nc, op, msg); err != nil {
				return
			}
		}
	})
}

type gwsEcho struct{ gws.BuiltinEventHandler }

func (gwsEcho) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	_ = c.WriteMessage(m.Opcode, m.Bytes())
}

func serveGWS(ln net.Listener, pd gws.PermessageDeflate) error {
	up := gws.NewUpgrader(gwsEcho{}, &gws.ServerOption{PermessageDeflate: pd})
	return serveHTTP(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		go c.ReadLoop()
	}))
}
