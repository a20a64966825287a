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
//
// It serves as a production server should: a client gets
// -handshake-timeout to send its request, so a slowloris cannot hold
// descriptors, each echo must be taken within -write-timeout, running
// out of descriptors only delays accepting, and an interrupt shuts the
// server down with 1001 to every connection.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/realtime-go/realtime/extensions"
	"github.com/realtime-go/realtime/extensions/deflate"
	"github.com/realtime-go/realtime/websocket"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9001", "listen address (HOST:PORT)")
	verbose := flag.Bool("v", false, "log how each connection ended")
	useDeflate := flag.Bool("deflate", false, "accept permessage-deflate (for cases 12.* and 13.*)")
	handshakeTimeout := flag.Duration("handshake-timeout", 10*time.Second, "time a client has to complete the opening handshake")
	writeTimeout := flag.Duration("write-timeout", time.Minute, "time a client has to take one echoed message")
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
	srv := &websocket.Server{
		Options:          opts,
		HandshakeTimeout: *handshakeTimeout,
		Handler: func(c *websocket.Conn, r *http.Request) {
			n, err := echo(c, *writeTimeout)
			if *verbose || !isNormalEnd(err) {
				log.Printf("%s %s: %d messages echoed, ended: %v", c.RemoteAddr(), r.URL.RequestURI(), n, err)
			}
		},
		OnError: func(remote net.Addr, err error) {
			if remote != nil {
				log.Printf("%s: handshake: %v", remote, err)
			} else {
				log.Print(err)
			}
		},
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	interrupted, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	select {
	case err := <-served:
		fmt.Fprintln(os.Stderr, "autobahn-server:", err)
		os.Exit(1)
	case <-interrupted.Done():
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Printf("shutdown: %v", err)
	}
}

// deflateOptions configures permessage-deflate under -deflate: the defaults, so
// that the server grants whatever window and context a client asks for,
// except that every message is compressed.
var deflateOptions = &deflate.Options{Threshold: -1}

// echo writes back every message read, with its type, until an error.
// Each write must finish within writeTimeout, so a peer that stops
// reading cannot hold the connection.
func echo(c *websocket.Conn, writeTimeout time.Duration) (int, error) {
	for n := 0; ; n++ {
		typ, p, err := c.Read(context.Background())
		if err != nil {
			return n, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
		err = c.Write(ctx, typ, p)
		cancel()
		if err != nil {
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
