// Command echo serves a WebSocket echo endpoint and a page that talks to
// it: go run ./examples/echo, then open http://localhost:8080.
package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/realtime-go/realtime/websocket"
)

const page = `<!doctype html>
<meta charset="utf-8">
<title>realtime echo</title>
<input id="msg" value="hello" autofocus> <button id="send">send</button>
<pre id="log"></pre>
<script>
const log = (s) => document.getElementById("log").textContent += s + "\n";
const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws");
ws.onopen = () => log("open");
ws.onmessage = (e) => log("echo: " + e.data);
ws.onclose = (e) => log("closed " + e.code);
document.getElementById("send").onclick = () => ws.send(document.getElementById("msg").value);
</script>
`

func main() {
	addr := flag.String("addr", "localhost:8080", "listen address")
	flag.Parse()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(page))
	})
	http.HandleFunc("/ws", echo)
	log.Printf("echo: serving http://%s", *addr)
	// The bounds a server on the open internet needs, so that clients
	// that stall cannot hold connections (see examples/chat, whose test
	// shows a slowloris dropped). The header timeout bounds the
	// WebSocket handshake too; WebSocket connections are taken over, so
	// the write timeout bounds the page only.
	srv := &http.Server{
		Addr:              *addr,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	log.Fatal(srv.ListenAndServe())
}

// echoOptions find dead peers with a ping every 30 s.
var echoOptions = &websocket.AcceptOptions{ConnOptions: websocket.ConnOptions{Heartbeat: 30 * time.Second}}

// writeTimeout bounds each echo, so a peer that stops reading cannot hold
// the connection.
const writeTimeout = 10 * time.Second

// echo sends every message back as it arrived until the peer closes.
func echo(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, echoOptions)
	if err != nil {
		return
	}
	defer c.CloseNow()
	for {
		typ, p, err := c.Read(context.Background())
		if err != nil {
			if websocket.CloseStatus(err) == -1 {
				log.Printf("echo: %v", err)
			}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
		err = c.Write(ctx, typ, p)
		cancel()
		if err != nil {
			return
		}
	}
}
