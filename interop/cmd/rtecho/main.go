// Command rtecho is a realtime server for the browser tests of the
// browser client (interop/realtime_browser_test.go): one process, so that
// a test can stop it with SIGSTOP (a dead link: no FIN, no RST) or kill
// it and start it again on the same port.
//
//	rtecho -addr 127.0.0.1:0 -heartbeat 1s -origin 'http://127.0.0.1:*'
//
// The first line it writes to stdout is the address it listens on
// (HOST:PORT); each message a client sends is echoed back to that socket
// and logged to stderr as "message N TEXT" (N counts from 1 in this
// process), so a test sees what was delivered, how often and in which
// order.
//
// What it serves:
//
//	/rt            realtime.Handler (both transports) with the flags'
//	               Heartbeat and OriginPatterns; every socket is in the
//	               channel chat (so it has a position to resume from).
//	/realtime.js   the browser client.
//	/              a test page (page.html); its query parameter rt is the
//	               socket's URL (default /rt, another origin allowed).
package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/realtime-go/realtime"
)

//go:embed page.html
var page []byte

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address; port 0 picks a free one (printed on stdout)")
	heartbeat := flag.Duration("heartbeat", 0, "Options.Heartbeat (0: realtime.DefaultHeartbeat)")
	origins := flag.String("origin", "", "comma-separated Options.OriginPatterns: foreign origins allowed to connect")
	flag.Parse()
	log.SetFlags(log.Lmicroseconds)
	log.SetPrefix("rtecho: ")

	hub := realtime.NewHub(nil)
	defer hub.Close()
	var n atomic.Int64
	opts := &realtime.Options{
		Hub:       hub,
		Channels:  []string{"chat"}, // a position to resume from
		Heartbeat: *heartbeat,
		OnMessage: func(_ context.Context, s *realtime.Socket, text string) {
			log.Printf("message %d %s", n.Add(1), text)
			s.Send(text)
		},
	}
	if *origins != "" {
		opts.OriginPatterns = strings.Split(*origins, ",")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	mux.Handle("/realtime.js", realtime.ClientJS())
	mux.Handle("/rt", realtime.Handler(opts, nil))

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	// The address first, alone on its line: the tests read it.
	fmt.Println(ln.Addr().String())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}
