// Command chat serves chat rooms that work over WebSocket or, when a
// proxy blocks WebSockets, over EventSource and POSTs. The page shows the
// recent lines of a room on entry, who is in it and over which transport,
// and the state of its own connection: the transport, the round-trip
// time, reconnecting or offline with the lines waiting to be sent, and
// whether it resumed without a gap.
//
//	go run ./examples/chat            # then open http://localhost:8080
//	go run ./examples/chat -addr 127.0.0.1:9000 -rooms lobby,go,music
//
// The flags:
//
//	-addr HOST:PORT  where to listen (localhost:8080; ":8080" for every
//	                 interface, to be reached from other machines)
//	-rooms A,B,C     the rooms the room list offers; the first is where a
//	                 page starts (lobby,go,random)
//	-redis URL       share the rooms with other processes through Redis
//	-nats URL        share the rooms with other processes through NATS
//	-node NAME       this process's name among those sharing the rooms
//
// Open http://localhost:8080/?room=go to enter the room go (or use the
// room list and the join box), ?name=alice to choose a name (the page
// remembers the name it was given last), and ?transport=eventsource to
// force the fallback (the page's "EventSource" switch does the same).
// Each room is a channel: a participant may be in several at once, and
// one whose connection drops gets what it missed in each of them when it
// comes back.
//
// http://localhost:8080/dashboard is a live dashboard for the operator:
// sockets by transport, messages per second, fallbacks, reconnects,
// drawn from the same metrics as http://localhost:8080/metrics, which
// Prometheus scrapes (module promobserver). Both are this process's.
//
// Ctrl-C (SIGINT) or SIGTERM shuts the process down gracefully: every
// page is told 1001 (going away) and reconnects, to the next process
// started on the address or to another behind the same load balancer.
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
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/examples/chat/brokers"
)

// static is the page: its HTML, script and style, served from this
// origin only (no fonts or scripts from elsewhere).
//
//go:embed index.html chat.js chat.css dashboard.html dashboard.js dashboard.css
var static embed.FS

// csp is the page's Content-Security-Policy: everything from this
// origin, nothing inline, so that a line that slipped into the page as
// HTML could run nothing and fetch nothing.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// maxText bounds a chat line.
const maxText = 2000

// historyLines is how many of a room's recent lines a page gets when it
// enters the room.
const historyLines = 50

// shutdownGrace bounds the graceful shutdown: the time the pages have to
// take their close (1001) before their connections are cut.
const shutdownGrace = 10 * time.Second

// event is what a room's channel carries, as JSON: a line someone said.
type event struct {
	Kind      string `json:"kind"`           // "say"
	ID        string `json:"id"`             // unique: pages tell repeats by it
	At        int64  `json:"at"`             // when the server took it, in ms since 1970
	From      string `json:"from"`           // the name
	Transport string `json:"transport"`      // over which it came
	Text      string `json:"text"`           // what was said
	Nonce     string `json:"nonce,omitzero"` // the sender's own mark, to tell its line when it comes back
}

// request is what a participant sends (a plain message, to OnMessage).
// Type "" or "say": a line for one of the rooms it is in (the server adds
// who said it); "history": the recent lines of one of its rooms, which
// the server answers to this socket only; "ping": answered at once to
// this socket only, so the page can show its round-trip time.
type request struct {
	Type  string  `json:"type,omitzero"`
	Room  string  `json:"room,omitzero"`
	Text  string  `json:"text,omitzero"`
	Nonce string  `json:"nonce,omitzero"`
	T     float64 `json:"t,omitzero"` // a ping's mark, sent back as it came
}

// history answers a "history" request: the room's recent lines, oldest
// first.
type history struct {
	Kind  string  `json:"kind"` // "history"
	Room  string  `json:"room"`
	Lines []event `json:"lines"`
}

// pong answers a "ping": its mark, and who the socket is.
type pong struct {
	Kind   string  `json:"kind"` // "pong"
	T      float64 `json:"t"`
	Name   string  `json:"name"`
	Socket string  `json:"socket"`
	Node   string  `json:"node"`
}

// roomInfo is an entry of GET /rooms.
type roomInfo struct {
	Name   string `json:"name"`
	People int    `json:"people"`
}

// roomName is what a room may be called: its channel's name.
var roomName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// nonceRE is what a line's nonce may be.
var nonceRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// errRoomName refuses to subscribe a participant to a channel that is
// not a room.
var errRoomName = errors.New("a room's name is 1 to 32 of a-z, 0-9 and -, starting with a letter or digit")

func main() {
	flag.Usage = func() {
		out := flag.CommandLine.Output()
		fmt.Fprint(out, "usage: chat [flags]\n\nServes chat rooms over WebSocket, or EventSource where WebSockets are blocked.\n"+
			"Ctrl-C shuts down gracefully: pages are told 1001 and reconnect.\n\n")
		flag.PrintDefaults()
	}
	addr := flag.String("addr", "localhost:8080", "listen address: HOST:PORT (\":8080\" listens on every interface)")
	rooms := flag.String("rooms", "lobby,go,random", "the rooms the room list offers (comma-separated); the first is where a page starts")
	node := flag.String("node", "", "this process's name among those sharing the rooms (empty: random)")
	redisURL := flag.String("redis", "", "share the rooms with other processes through Redis (redis://HOST:PORT)")
	natsURL := flag.String("nats", "", "share the rooms with other processes through NATS JetStream (nats://HOST:PORT)")
	flag.Parse()
	if err := run(*addr, *rooms, *node, *redisURL, *natsURL); err != nil {
		log.Print("chat: ", err)
		os.Exit(1)
	}
}

// run serves the chat as the flags say until SIGINT or SIGTERM.
func run(addr, rooms, node, redisURL, natsURL string) error {
	list := strings.Split(rooms, ",")
	for _, r := range list {
		if !roomName.MatchString(r) {
			return fmt.Errorf("-rooms: %q: %w", r, errRoomName)
		}
	}
	broker, err := brokers.Open(redisURL, natsURL, "chat "+node)
	if err != nil {
		return err
	}
	if broker != nil {
		defer broker.Close()
	}
	c := newChat(&realtime.HubOptions{Broker: broker, Node: node}, list)
	defer c.close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		// A second Ctrl-C ends the process at once.
		stop()
		log.Print("chat: shutting down (Ctrl-C again to quit at once)")
	}()
	log.Printf("chat: serving http://%s", ln.Addr())
	return c.serve(ctx, ln, defaultTimeouts)
}

// serve serves the chat on ln until ctx ends, then shuts down
// gracefully: it stops listening, tells every page 1001 (going away) so
// that it reconnects elsewhere, and waits for the pages and requests in
// flight, shutdownGrace at most.
func (c *chat) serve(ctx context.Context, ln net.Listener, t timeouts) error {
	srv := newServer(c.handler(), t)
	// Once the listener is closed: streams and WebSockets are not idle
	// connections that srv.Shutdown would wait for, the hub closes them.
	hubDone := make(chan struct{})
	srv.RegisterOnShutdown(func() {
		defer close(hubDone)
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if err := c.hub.Shutdown(sctx); err != nil {
			log.Print("chat: some pages did not take their close in time: ", err)
		}
	})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-hubDone
	<-served
	return err
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
	hub    *realtime.Hub
	broker realtime.Broker // the hub's: the rooms' recent lines come from its history
	own    bool            // broker was made here: close it after the hub
	rooms  []string        // the room list
	stats  *metrics        // the hub's metrics: /metrics, /stats, /dashboard
}

// newChat makes the chat's hub on opts.Broker, or on a memory broker of
// its own when that is nil (one process): the chat reads the recent lines
// of a room from the broker's history, so it needs the broker in hand.
func newChat(opts *realtime.HubOptions, rooms []string) *chat {
	o := *opts
	c := &chat{broker: o.Broker, rooms: slices.Clone(rooms), stats: newMetrics()}
	o.Observer = c.stats.m.Observer()
	if c.broker == nil {
		c.broker = realtime.NewMemoryBroker(&realtime.MemoryBrokerOptions{
			MaxHistory: o.MaxHistory, MaxHistoryBytes: o.MaxHistoryBytes, MaxHistoryAge: o.MaxHistoryAge,
		})
		c.own = true
		o.Broker = c.broker
	}
	o.OnPresence = func(e realtime.PresenceEvent) {
		verb := "left"
		if e.Join {
			verb = "joined"
		}
		log.Printf("chat: %s %s %s over %s", e.Entry.User, verb, e.Channel, e.Entry.Info)
	}
	c.hub = realtime.NewHub(&o)
	return c
}

// close ends the hub, and the broker when it is the chat's own.
func (c *chat) close() {
	c.hub.Close()
	if c.own {
		c.broker.Close()
	}
}

// handler serves the page, the browser client, the room list and the
// participants' socket.
func (c *chat) handler() http.Handler {
	mux := http.NewServeMux()
	for path, name := range map[string]string{"/{$}": "index.html", "/chat.js": "chat.js", "/chat.css": "chat.css",
		"/dashboard": "dashboard.html", "/dashboard.js": "dashboard.js", "/dashboard.css": "dashboard.css"} {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", csp)
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.Header().Set("Cache-Control", "no-cache")
			http.ServeFileFS(w, r, static, name)
		})
	}
	mux.Handle("/realtime.js", realtime.ClientJS())
	mux.HandleFunc("GET /rooms", c.list)
	c.stats.handle(mux)
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
		OnMessage: c.receive,
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

// receive handles a participant's request. Malformed ones, and those for
// a room the socket is not in, are dropped: only a broken or hostile page
// sends them.
func (c *chat) receive(ctx context.Context, s *realtime.Socket, text string) {
	var m request
	if json.Unmarshal([]byte(text), &m) != nil {
		return
	}
	switch m.Type {
	case "", "say":
		c.say(ctx, s, m)
	case "history":
		c.history(ctx, s, m.Room)
	case "ping":
		send(s, pong{Kind: "pong", T: m.T, Name: name(s), Socket: s.ID(), Node: c.hub.Node()})
	}
}

// say publishes a participant's line to a room it is in, stamped with
// who said it, when, and an id.
func (c *chat) say(ctx context.Context, s *realtime.Socket, m request) {
	if !slices.Contains(s.Channels(), m.Room) {
		return
	}
	m.Text = strings.TrimSpace(m.Text)
	if m.Text == "" || utf8.RuneCountInString(m.Text) > maxText {
		return
	}
	if !nonceRE.MatchString(m.Nonce) {
		m.Nonce = ""
	}
	var id [9]byte
	rand.Read(id[:])
	b, _ := json.Marshal(event{
		Kind: "say", ID: hex.EncodeToString(id[:]), At: time.Now().UnixMilli(),
		From: name(s), Transport: s.Transport().String(), Text: m.Text, Nonce: m.Nonce,
	})
	if _, err := c.hub.Publish(ctx, m.Room, string(b)); err != nil {
		log.Printf("chat: %s in %s: %v", name(s), m.Room, err)
	}
}

// history sends the socket the recent lines of a room it is in, from the
// broker's history: every process sharing the broker has the same, and
// the lines are those the channel carried, so a page tells the ones it
// also got live by their ids. A page asks after "subscribed": the lines
// then reach at least to where its live ones start, so nothing falls in
// between.
func (c *chat) history(ctx context.Context, s *realtime.Socket, room string) {
	if !slices.Contains(s.Channels(), room) {
		return
	}
	lines, err := c.recent(ctx, room, historyLines)
	if err != nil {
		log.Printf("chat: history of %s: %v", room, err)
		return
	}
	send(s, history{Kind: "history", Room: room, Lines: lines})
}

// recent returns up to n of the room's latest lines, oldest first. When
// the broker no longer keeps n (its history is bounded by count, bytes
// and age), it returns fewer.
func (c *chat) recent(ctx context.Context, room string, n uint64) ([]event, error) {
	_, latest, err := c.broker.Since(ctx, room, realtime.Position{})
	if err != nil {
		return nil, err
	}
	for {
		n = min(n, latest.Offset)
		if n == 0 {
			return []event{}, nil
		}
		entries, at, err := c.broker.Since(ctx, room, realtime.Position{Epoch: latest.Epoch, Offset: latest.Offset - n})
		if errors.Is(err, realtime.ErrPositionLost) {
			// Evicted from the start, or a new epoch: ask for fewer from
			// the latest the broker now reports.
			latest, n = at, n/2
			continue
		}
		if err != nil {
			return nil, err
		}
		lines := make([]event, 0, len(entries))
		for _, e := range entries {
			var ev event
			if json.Unmarshal([]byte(e.Text), &ev) == nil && ev.Kind == "say" {
				lines = append(lines, ev)
			}
		}
		// Lines published since the first call are after the n asked
		// for: keep the n latest.
		return lines[max(0, len(lines)-int(n)):], nil
	}
}

// send sends v, as JSON, to the socket only. An error means the socket
// is closing, or its queue is full: the page has bigger problems then.
func send(s *realtime.Socket, v any) {
	b, _ := json.Marshal(v)
	s.Send(string(b))
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
