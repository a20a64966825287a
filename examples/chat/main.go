// Command chat serves a chat room that works over WebSocket or, when a
// proxy blocks WebSockets, over EventSource and POSTs, and shows which
// transport each participant uses:
//
//	go run ./examples/chat            # then open http://localhost:8080
//	go run ./examples/chat -addr 127.0.0.1:9000
//
// Open http://localhost:8080/?transport=eventsource to force the
// fallback, and ?name=alice to choose a name. One room, kept in memory:
// every message goes to everyone, and a participant whose connection
// drops gets what it missed when it comes back.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"flag"
	"log"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/realtime-go/realtime"
)

//go:embed index.html
var page []byte

// maxText bounds a chat line.
const maxText = 2000

// event is what the room broadcasts, as JSON.
type event struct {
	Kind      string   `json:"kind"` // "say" or "who"
	From      string   `json:"from,omitempty"`
	Transport string   `json:"transport,omitempty"`
	Text      string   `json:"text,omitempty"`
	People    []person `json:"people,omitempty"`
}

type person struct {
	Name      string `json:"name"`
	Transport string `json:"transport"`
}

type room struct{ hub *realtime.Hub }

// channel is the one channel of the chat.
const channel = "chat"

func main() {
	addr := flag.String("addr", "localhost:8080", "listen address")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("chat: serving http://%s", ln.Addr())
	log.Fatal(newServer(newRoom().handler(), defaultTimeouts).Serve(ln))
}

// timeouts are the bounds newServer sets.
type timeouts struct {
	header time.Duration // to send a request's header
	write  time.Duration // to take a response
	idle   time.Duration // between two requests on one connection
}

var defaultTimeouts = timeouts{header: 10 * time.Second, write: 30 * time.Second, idle: 2 * time.Minute}

// newServer is the HTTP server for h, with the bounds a server on the
// open internet needs so that clients that stall cannot hold connections
// for ever. WebSocket handshakes are requests, so the header timeout
// bounds them. The write timeout bounds pages and POST answers only:
// WebSocket connections are taken over, and EventSource streams set a
// deadline of their own for each write (realtime.Options.WriteTimeout).
// There is no ReadTimeout: once it passed, net/http would cancel the
// context of every request still running, EventSource streams included.
func newServer(h http.Handler, t timeouts) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.header,
		WriteTimeout:      t.write,
		IdleTimeout:       t.idle,
		MaxHeaderBytes:    16 << 10,
	}
}

func newRoom() *room { return &room{hub: realtime.NewHub(nil)} }

// handler serves the page, the browser client and the room's socket.
func (r *room) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	mux.Handle("/realtime.js", realtime.ClientJS())
	mux.Handle("/chat", realtime.Handler(&realtime.Options{Hub: r.hub, Channels: []string{channel}, OnMessage: r.say}, r.serve))
	return mux
}

// serve announces who is here when a participant arrives and leaves.
func (r *room) serve(ctx context.Context, s *realtime.Socket) {
	log.Printf("chat: %s joined over %s", name(s), s.Transport())
	r.who()
	<-ctx.Done()
	r.who() // the socket has left the hub by now
	log.Printf("chat: %s left (%v)", name(s), s.Err())
}

// say broadcasts a participant's line to the room.
func (r *room) say(ctx context.Context, s *realtime.Socket, text string) {
	text = strings.TrimSpace(text)
	if text == "" || utf8.RuneCountInString(text) > maxText {
		return
	}
	r.broadcast(event{Kind: "say", From: name(s), Transport: s.Transport().String(), Text: text})
}

// who broadcasts the list of participants. Broadcasts are kept for
// resuming clients, and a list is a full snapshot, so replaying an old
// one is harmless.
func (r *room) who() {
	var people []person
	for _, s := range r.hub.Sockets(channel) {
		people = append(people, person{Name: name(s), Transport: s.Transport().String()})
	}
	slices.SortFunc(people, func(a, b person) int { return strings.Compare(a.Name, b.Name) })
	r.broadcast(event{Kind: "who", People: people})
}

func (r *room) broadcast(e event) {
	b, _ := json.Marshal(e)
	r.hub.Publish(context.Background(), channel, string(b))
}

// name is the participant's chosen name, or one made from the socket id.
func name(s *realtime.Socket) string {
	n := strings.TrimSpace(s.Request().URL.Query().Get("name"))
	if n == "" || utf8.RuneCountInString(n) > 32 || !utf8.ValidString(n) {
		return "guest-" + s.ID()[len(s.ID())-4:] // the end: ids start with the node's name
	}
	return n
}
