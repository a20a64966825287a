// Command chat serves chat rooms that work over WebSocket or, when a
// proxy blocks WebSockets, over EventSource and POSTs, and shows who is
// in each room and which transport each participant uses:
//
//	go run ./examples/chat            # then open http://localhost:8080
//	go run ./examples/chat -addr 127.0.0.1:9000 -rooms lobby,go,music
//
// Open http://localhost:8080/?room=go to enter the room go (or use the
// room list and the join box), ?name=alice to choose a name, and
// ?transport=eventsource to force the fallback. Each room is a channel:
// a participant may be in several at once, and one whose connection
// drops gets what it missed in each of them when it comes back.
//
// Alone, a chat process keeps its rooms in memory. With -redis or -nats
// several processes share the rooms and who is in them, so they can sit
// behind any load balancer, with no sticky sessions:
//
//	redis-server --port 6379 --appendonly yes &
//	go run ./examples/chat -addr :8080 -redis redis://127.0.0.1:6379 &
//	go run ./examples/chat -addr :8081 -redis redis://127.0.0.1:6379 &
//
//	nats-server -js -sd /tmp/nats &
//	go run ./examples/chat -addr :8080 -nats nats://127.0.0.1:4222 &
//	go run ./examples/chat -addr :8081 -nats nats://127.0.0.1:4222 &
//
// A line said on :8080 reaches the room's participants on :8081, and each
// page lists the participants of both.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/examples/chat/brokers"
)

//go:embed index.html
var page []byte

// maxText bounds a chat line.
const maxText = 2000

// event is what a room's channel carries, as JSON: a line someone said.
type event struct {
	Kind      string `json:"kind"` // "say"
	From      string `json:"from"`
	Transport string `json:"transport"`
	Text      string `json:"text"`
}

// say is what a participant sends (a plain message, to OnMessage): a
// line for one of the rooms it is in. The server adds who said it.
type say struct {
	Room string `json:"room"`
	Text string `json:"text"`
}

// roomInfo is an entry of GET /rooms.
type roomInfo struct {
	Name   string `json:"name"`
	People int    `json:"people"`
}

// roomName is what a room may be called: its channel's name.
var roomName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// errRoomName refuses to subscribe a participant to a channel that is
// not a room.
var errRoomName = errors.New("a room's name is 1 to 32 of a-z, 0-9 and -, starting with a letter or digit")

func main() {
	addr := flag.String("addr", "localhost:8080", "listen address")
	rooms := flag.String("rooms", "lobby,go,random", "the rooms the room list offers (comma-separated); the first is where a page starts")
	node := flag.String("node", "", "this process's name among those sharing the rooms (empty: random)")
	redisURL := flag.String("redis", "", "share the rooms with other processes through Redis (redis://HOST:PORT)")
	natsURL := flag.String("nats", "", "share the rooms with other processes through NATS JetStream (nats://HOST:PORT)")
	flag.Parse()
	list := strings.Split(*rooms, ",")
	for _, r := range list {
		if !roomName.MatchString(r) {
			log.Fatalf("chat: -rooms: %q: %v", r, errRoomName)
		}
	}
	broker, err := brokers.Open(*redisURL, *natsURL, "chat "+*node)
	if err != nil {
		log.Fatal("chat: ", err)
	}
	c := newChat(&realtime.HubOptions{Broker: broker, Node: *node}, list)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("chat: serving http://%s", ln.Addr())
	log.Fatal(newServer(c.handler(), defaultTimeouts).Serve(ln))
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

// chat is one process's share of the rooms.
type chat struct {
	hub   *realtime.Hub
	rooms []string // the room list
}

func newChat(opts *realtime.HubOptions, rooms []string) *chat {
	o := *opts
	o.OnPresence = func(e realtime.PresenceEvent) {
		verb := "left"
		if e.Join {
			verb = "joined"
		}
		log.Printf("chat: %s %s %s over %s", e.Entry.User, verb, e.Channel, e.Entry.Info)
	}
	return &chat{hub: realtime.NewHub(&o), rooms: slices.Clone(rooms)}
}

// handler serves the page, the browser client, the room list and the
// participants' socket.
func (c *chat) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	mux.Handle("/realtime.js", realtime.ClientJS())
	mux.HandleFunc("GET /rooms", c.list)
	mux.Handle("/chat", realtime.Handler(&realtime.Options{
		Hub: c.hub,
		// Presence is what the room lists show: the name, and the
		// transport as the entry's info.
		OnConnect: func(_ context.Context, s *realtime.Socket) error {
			s.SetPresence(name(s), s.Transport().String())
			return nil
		},
		OnSubscribe: func(_ context.Context, _ *realtime.Socket, room string) error {
			if !roomName.MatchString(room) {
				return errRoomName
			}
			return nil
		},
		OnMessage: c.say,
	}, nil))
	return mux
}

// list answers the room list, with how many are in each room on every
// process.
func (c *chat) list(w http.ResponseWriter, r *http.Request) {
	rooms := make([]roomInfo, len(c.rooms))
	for i, name := range c.rooms {
		rooms[i].Name = name
		people, err := c.hub.Presence(r.Context(), name)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		rooms[i].People = len(people)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(rooms)
}

// say publishes a participant's line to a room it is in, stamped with
// who said it.
func (c *chat) say(ctx context.Context, s *realtime.Socket, text string) {
	var m say
	if json.Unmarshal([]byte(text), &m) != nil || !slices.Contains(s.Channels(), m.Room) {
		return
	}
	m.Text = strings.TrimSpace(m.Text)
	if m.Text == "" || utf8.RuneCountInString(m.Text) > maxText {
		return
	}
	b, _ := json.Marshal(event{Kind: "say", From: name(s), Transport: s.Transport().String(), Text: m.Text})
	if _, err := c.hub.Publish(ctx, m.Room, string(b)); err != nil {
		log.Printf("chat: %s in %s: %v", name(s), m.Room, err)
	}
}

// name is the participant's chosen name, or one made from the socket id
// (NODE.RANDOM).
func name(s *realtime.Socket) string {
	n := strings.TrimSpace(s.Request().URL.Query().Get("name"))
	if n == "" || utf8.RuneCountInString(n) > 32 || !utf8.ValidString(n) {
		id := s.ID()
		id = id[strings.LastIndexByte(id, '.')+1:]
		return "guest-" + id[:min(4, len(id))]
	}
	return n
}
