// Command h2echo is the HTTP/2 server of the browser tests of WebSocket
// over HTTP/2 (RFC 8441, interop/websocket_h2_browser_test.go): a TLS
// server that negotiates h2 by ALPN and serves WebSockets over extended
// CONNECT, in a process of its own because Go's net/http server offers
// extended CONNECT only when GODEBUG=http2xconnect=1 is in the process's
// environment at start-up. Run without it, h2echo runs itself again with
// it (execve, same process id).
//
//	h2echo -addr 127.0.0.1:0 -cert cert.pem -key key.pem
//
// The first line it writes to stdout is the address it listens on
// (HOST:PORT). It logs to stderr, one line each:
//
//	conn N                                     the server accepted TCP connection N (from 1)
//	request conn=N proto=HTTP/2.0 method=GET path=/   every request, with the connection it came on
//	ws ID conn=N proto=HTTP/2.0 method=CONNECT path=/ws extensions="..." subprotocol="..."
//	                                           every WebSocket it accepted on /ws
//	ws ID closed by peer: CODE REASON          the browser closed it
//	ws ID closed: <nil>                        the server closed it, as asked
//	ws ID pong: <nil>                          the browser answered the server's ping
//	ws ID read: ERROR                          it ended otherwise (a reset stream)
//	ws ID handler returned                     its handler returned: the stream ended
//
// What it serves:
//
//	/             an empty page that loads /realtime.js; the tests drive it
//	/realtime.js  the browser client
//	/rt           realtime.Handler, echoing each message to its socket
//	/ws?id=ID[&deflate]
//	              websocket.Accept (with permessage-deflate if asked, the
//	              subprotocol h2echo.v1 if offered): echoes every message,
//	              text or binary, as it came, except the text commands
//	              "send-invalid-utf8" (answered by a text message that is
//	              not UTF-8, which the browser must fail), "ping" (the
//	              server pings; once the browser's pong arrives it sends
//	              "pong ✓") and "close CODE REASON" (the server closes with
//	              that code and reason)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/extensions"
	"github.com/realtime-go/realtime/extensions/deflate"
	"github.com/realtime-go/realtime/websocket"
)

// xconnect is the GODEBUG setting under which net/http's HTTP/2 server
// accepts extended CONNECT.
const xconnect = "http2xconnect=1"

const page = `<!doctype html>
<meta charset="utf-8"><title>h2echo</title>
<script src="/realtime.js"></script>
`

type connKey struct{}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address; port 0 picks a free one (printed on stdout)")
	certFile := flag.String("cert", "", "TLS certificate (PEM)")
	keyFile := flag.String("key", "", "TLS key (PEM)")
	flag.Parse()
	log.SetFlags(log.Lmicroseconds)
	log.SetPrefix("h2echo: ")
	if *certFile == "" || *keyFile == "" {
		log.Fatal("-cert and -key are required")
	}
	reexecWithXConnect()

	var conns atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprint(w, page)
	})
	mux.Handle("/realtime.js", realtime.ClientJS())
	mux.Handle("/rt", realtime.Handler(&realtime.Options{
		OnMessage: func(_ context.Context, s *realtime.Socket, text string) { s.Send(text) },
	}, nil))
	mux.HandleFunc("/ws", serveEcho)

	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			log.Printf("request %s", describe(r))
			mux.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		// Called by the accept loop, one connection after the other.
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			n := conns.Add(1)
			log.Printf("conn %d", n)
			return context.WithValue(ctx, connKey{}, n)
		},
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	// The address first, alone on its line: the tests read it.
	fmt.Println(ln.Addr().String())
	// ServeTLS with files configures h2 by ALPN.
	log.Fatal(srv.ServeTLS(ln, *certFile, *keyFile))
}

// reexecWithXConnect replaces the process with itself run with the
// setting in GODEBUG, unless it has it: net/http reads it once, at
// start-up.
func reexecWithXConnect() {
	godebug := os.Getenv("GODEBUG")
	if strings.Contains(godebug, xconnect) {
		return
	}
	if godebug != "" {
		godebug += ","
	}
	exe, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	// Without the old GODEBUG: the new process would read the first.
	env := []string{"GODEBUG=" + godebug + xconnect}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			env = append(env, kv)
		}
	}
	log.Fatal(syscall.Exec(exe, os.Args, env))
}

// describe names a request and the connection it came on.
func describe(r *http.Request) string {
	n, _ := r.Context().Value(connKey{}).(int64)
	return fmt.Sprintf("conn=%d proto=%s method=%s path=%s", n, r.Proto, r.Method, r.URL.Path)
}

// serveEcho is the /ws endpoint. Its log lines name the socket by the
// query parameter id; with the parameter deflate it negotiates
// permessage-deflate (compressing every message); it accepts the
// subprotocol h2echo.v1.
func serveEcho(w http.ResponseWriter, r *http.Request) {
	opts := &websocket.AcceptOptions{Subprotocols: []string{"h2echo.v1"}}
	if r.URL.Query().Has("deflate") {
		opts.Extensions = []extensions.Extension{deflate.New(&deflate.Options{Threshold: -1})}
	}
	c, err := websocket.Accept(w, r, opts)
	if err != nil {
		log.Printf("ws refused: %v", err)
		return
	}
	id := r.URL.Query().Get("id")
	log.Printf("ws %s %s extensions=%q subprotocol=%q", id, describe(r), c.Extensions(), c.Subprotocol())
	defer log.Printf("ws %s handler returned", id)
	// Over HTTP/2 the stream ends when the handler returns.
	defer func() { <-c.Done() }()
	defer c.CloseNow()
	// Not the request's context: a stream the browser resets ends the
	// read with the reset, which the log then shows.
	ctx := context.Background()
	for {
		typ, p, err := c.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				log.Printf("ws %s closed by peer: %d %s", id, ce.Code, ce.Reason)
			} else {
				log.Printf("ws %s read: %v", id, err)
			}
			return
		}
		if typ == websocket.MessageText {
			cmd := string(p)
			if cmd == "send-invalid-utf8" {
				p = []byte{'o', 'k', 0xff, 0xfe}
			} else if cmd == "ping" {
				// The browser answers by itself; the answer arrives
				// through this loop's next Read.
				err := c.PingFunc([]byte("h2echo ping ✓"), func(rtt time.Duration, err error) {
					log.Printf("ws %s pong: %v", id, err)
					if err == nil {
						go c.Write(ctx, websocket.MessageText, []byte("pong ✓"))
					}
				})
				if err != nil {
					log.Printf("ws %s ping: %v", id, err)
					return
				}
				continue
			} else if rest, ok := strings.CutPrefix(cmd, "close "); ok {
				code, reason, _ := strings.Cut(rest, " ")
				n, err := strconv.Atoi(code)
				if err != nil {
					log.Printf("ws %s: bad command %q", id, cmd)
					return
				}
				log.Printf("ws %s closed: %v", id, c.Close(websocket.StatusCode(n), reason))
				return
			}
		}
		if err := c.Write(ctx, typ, p); err != nil {
			log.Printf("ws %s write: %v", id, err)
			return
		}
	}
}
