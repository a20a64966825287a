// Command echo serves a WebSocket echo endpoint and a page that talks to
// it: go run ./examples/echo, then open http://localhost:8080.
package main

import (
	"context"
	"flag"
	"log"
	"net/http"

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
	log.Fatal(http.ListenAndServe(*addr, nil))
}

// echo sends every message back as it arrived until the peer closes.
func echo(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := context.Background()
	for {
		typ, p, err := c.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) == -1 {
				log.Printf("echo: %v", err)
			}
			return
		}
		if err := c.Write(ctx, typ, p); err != nil {
			return
		}
	}
}
