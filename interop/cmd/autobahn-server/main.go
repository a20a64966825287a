// Command autobahn-server is the testee for the Autobahn|Testsuite
// fuzzingclient: a WebSocket server on this module's websocket package
// that echoes every message as received (same type, same bytes) until the
// peer closes.
//
//	autobahn-server -addr 127.0.0.1:9001 [-deflate]
//
// With -deflate the server accepts permessage-deflate (RFC 7692) with all
// its parameters, as cases 12.* and 13.* need, and compresses every
// message however small.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"

	"github.com/realtime-go/realtime/extensions"
	"github.com/realtime-go/realtime/extensions/deflate"
	"github.com/realtime-go/realtime/websocket"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9001", "listen address (HOST:PORT)")
	verbose := flag.Bool("v", false, "log how each connection ended")
	useDeflate := flag.Bool("deflate", false, "accept permessage-deflate (for cases 12.* and 13.*)")
	flag.Parse()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "autobahn-server:", err)
		os.Exit(1)
	}
	log.SetFlags(log.Lmicroseconds)
	log.SetPrefix("autobahn-server: ")
	log.Printf("listening on %s", ln.Addr())

	opts := &websocket.AcceptOptions{
		InsecureSkipOriginCheck: true,
		// Autobahn 9.* sends messages of up to 16 MiB; the default
		// MaxMessageSize (64 MiB - 1) and MaxFragments cover them.
	}
	if *useDeflate {
		opts.Extensions = []extensions.Extension{deflate.New(deflateOptions)}
	}
	for {
		nc, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			fmt.Fprintln(os.Stderr, "autobahn-server: accept:", err)
			os.Exit(1)
		}
		go serve(nc, opts, *verbose)
	}
}

func serve(nc net.Conn, opts *websocket.AcceptOptions, verbose bool) {
	ctx := context.Background()
	c, r, err := websocket.AcceptConn(ctx, nc, opts)
	if err != nil {
		nc.Close()
		log.Printf("%s: handshake: %v", nc.RemoteAddr(), err)
		return
	}
	defer c.CloseNow()
	n, err := echo(ctx, c)
	if verbose || !isNormalEnd(err) {
		log.Printf("%s %s: %d messages echoed, ended: %v", c.RemoteAddr(), r.URL.RequestURI(), n, err)
	}
}

// deflateOptions configures permessage-deflate under -deflate: the defaults, so
// that the server grants whatever window and context a client asks for,
// except that every message is compressed.
var deflateOptions = &deflate.Options{Threshold: -1}

// echo writes back every message read, with its type, until an error.
func echo(ctx context.Context, c *websocket.Conn) (int, error) {
	for n := 0; ; n++ {
		typ, p, err := c.Read(ctx)
		if err != nil {
			return n, err
		}
		if err := c.Write(ctx, typ, p); err != nil {
			return n, err
		}
	}
}

// isNormalEnd reports a peer's clean close (1000 or 1001).
func isNormalEnd(err error) bool {
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway:
		return true
	}
	return false
}
