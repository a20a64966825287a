package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/client"
	"github.com/realtime-go/realtime/internal/slowloris"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// shortTimeouts make the tests see the server's bounds at work.
var shortTimeouts = timeouts{header: 300 * time.Millisecond, write: 200 * time.Millisecond, idle: time.Second}

var testRooms = []string{"lobby", "go"}

// startServer serves a chat process as main does, with shortTimeouts,
// on broker (shared by the processes of a test), as node.
func startServer(t *testing.T, broker realtime.Broker, node string) *httptest.Server {
	t.Helper()
	c := newChat(&realtime.HubOptions{Broker: broker, Node: node}, testRooms)
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = newServer(c.handler(), shortTimeouts)
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		c.hub.Close()
	})
	return srv
}

// startProcesses starts two chat processes sharing one broker, as two
// processes share Redis or NATS with -redis or -nats.
func startProcesses(t *testing.T) (a, b *httptest.Server) {
	t.Helper()
	broker := realtime.NewMemoryBroker(nil)
	t.Cleanup(func() { broker.Close() })
	return startServer(t, broker, "a"), startServer(t, broker, "b")
}

// participant is a client.Socket in the chat, reading in the background.
type participant struct {
	t       *testing.T
	name    string
	s       *client.Socket
	msgs    chan client.Message
	skipped []client.Message // passed over by next
}

func join(t *testing.T, srv *httptest.Server, name string, tr client.Transport, rooms ...string) *participant {
	t.Helper()
	s, err := (&client.Dialer{}).Socket(srv.URL+"/chat?name="+name, &client.SocketOptions{Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	p := &participant{t: t, name: name, s: s, msgs: make(chan client.Message, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range s.All(ctx) {
			if err != nil {
				return
			}
			p.msgs <- m
		}
	}()
	t.Cleanup(func() {
		cancel()
		s.Close()
		<-done
	})
	for _, room := range rooms {
		if err := s.Subscribe(ctx, room); err != nil {
			t.Fatal(err)
		}
		p.next(func(m client.Message) bool { return m.Kind == client.KindSubscribed && m.Channel == room })
	}
	return p
}

// next returns the first message that match accepts; those it passes
// over are kept for later calls.
func (p *participant) next(match func(client.Message) bool) client.Message {
	p.t.Helper()
	for i, m := range p.skipped {
		if match(m) {
			p.skipped = slices.Delete(p.skipped, i, i+1)
			return m
		}
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-p.msgs:
			if match(m) {
				return m
			}
			p.skipped = append(p.skipped, m)
		case <-timeout:
			p.t.Fatalf("%s: no message came that was awaited; passed over: %+v", p.name, p.skipped)
			return client.Message{}
		}
	}
}

// line returns the next line said in room.
func (p *participant) line(room string) event {
	p.t.Helper()
	m := p.next(func(m client.Message) bool { return m.Kind == client.KindMessage && m.Channel == room })
	var e event
	if err := json.Unmarshal([]byte(m.Data), &e); err != nil {
		p.t.Fatalf("%s: %q: %v", p.name, m.Data, err)
	}
	return e
}

func (p *participant) say(room, text string) {
	p.t.Helper()
	b, _ := json.Marshal(say{Room: room, Text: text})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.s.Send(ctx, string(b)); err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
}

// who returns room's presence as sorted "name/transport" items.
func (p *participant) who(room string) []string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	entries, err := p.s.Presence(ctx, room)
	if err != nil {
		p.t.Fatalf("%s: presence of %s: %v", p.name, room, err)
	}
	var who []string
	for _, e := range entries {
		who = append(who, e.User+"/"+e.Info)
	}
	slices.Sort(who)
	return who
}

// Two chat processes share one broker. alice, on WebSocket, is on the
// first; bob, on EventSource with POSTs, on the second. They meet in the
// lobby: each sees the other in its presence list and hears the other's
// lines; a line in a room bob is not in does not reach him.
func TestChatTwoProcesses(t *testing.T) {
	srvA, srvB := startProcesses(t)
	alice := join(t, srvA, "alice", client.TransportWebSocket, "lobby", "go")
	bob := join(t, srvB, "bob", client.TransportEventSource, "lobby")

	// alice hears bob arrive, from the other process.
	j := alice.next(func(m client.Message) bool {
		return m.Kind == client.KindJoin && m.Channel == "lobby" && m.Entry.User == "bob"
	})
	if e := j.Entry; e.User != "bob" || e.Info != "eventsource" || !strings.HasPrefix(e.Socket, "b.") {
		t.Fatalf("alice saw %+v join", e)
	}
	want := []string{"alice/websocket", "bob/eventsource"}
	for _, p := range []*participant{alice, bob} {
		if who := p.who("lobby"); !slices.Equal(who, want) {
			t.Fatalf("%s sees %q in the lobby, want %q", p.name, who, want)
		}
	}
	if who := alice.who("go"); !slices.Equal(who, []string{"alice/websocket"}) {
		t.Fatalf("alice sees %q in go", who)
	}

	// The room list counts the people of both processes.
	resp, err := http.Get(srvB.URL + "/rooms")
	if err != nil {
		t.Fatal(err)
	}
	var rooms []roomInfo
	err = json.NewDecoder(resp.Body).Decode(&rooms)
	resp.Body.Close()
	if err != nil || !slices.Equal(rooms, []roomInfo{{"lobby", 2}, {"go", 1}}) {
		t.Fatalf("rooms %+v, %v", rooms, err)
	}

	// Both connections outlive the server's write timeout.
	time.Sleep(2 * shortTimeouts.write)
	everyoneHears := func(want event) {
		t.Helper()
		for _, p := range []*participant{alice, bob} {
			if e := p.line("lobby"); e != want {
				t.Fatalf("%s got %+v in the lobby, want %+v", p.name, e, want)
			}
		}
	}
	alice.say("go", "only alice is here")
	alice.say("lobby", "hi bob")
	everyoneHears(event{Kind: "say", From: "alice", Transport: "websocket", Text: "hi bob"})
	bob.say("go", "bob is not in go: dropped")
	bob.say("lobby", "  hi alice  ")
	everyoneHears(event{Kind: "say", From: "bob", Transport: "eventsource", Text: "hi alice"})
	// bob's line in go came before his line in the lobby, which alice
	// has: it was dropped.
	if e := alice.line("go"); e.Text != "only alice is here" {
		t.Fatalf("alice got %+v in go", e)
	}
	for _, m := range alice.skipped {
		if m.Kind == client.KindMessage && m.Channel == "go" {
			t.Fatalf("alice got %q in go", m.Data)
		}
	}

	// bob leaves: alice hears it, and the lists no longer show him.
	bob.s.Close()
	l := alice.next(func(m client.Message) bool { return m.Kind == client.KindLeave && m.Channel == "lobby" })
	if l.Entry.Socket != j.Entry.Socket {
		t.Fatalf("alice saw %+v leave, want bob's socket %s", l.Entry, j.Entry.Socket)
	}
	if who := alice.who("lobby"); !slices.Equal(who, []string{"alice/websocket"}) {
		t.Fatalf("alice sees %q in the lobby after bob left", who)
	}
}

// A channel that is not a room name is refused.
func TestChatRoomNames(t *testing.T) {
	srvA, _ := startProcesses(t)
	p := join(t, srvA, "carol", client.TransportWebSocket)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.s.Subscribe(ctx, "No-Capitals"); err != nil {
		t.Fatal(err)
	}
	m := p.next(func(m client.Message) bool { return m.Channel == "No-Capitals" })
	if m.Kind != client.KindUnsubscribed {
		t.Fatalf("subscribe to No-Capitals: %v %q", m.Kind, m.Data)
	}
}

// TestSlowloris: 200 connections that send their request a byte at a
// time are dropped once the header timeout passes, and the page is
// served meanwhile.
func TestSlowloris(t *testing.T) {
	srv, _ := startProcesses(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	attack := make(chan error, 1)
	go func() { attack <- slowloris.Attack(ctx, srv.Listener.Addr().String(), 200, 100*time.Millisecond) }()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("page during the attack: %s", resp.Status)
	}
	if err := <-attack; err != nil {
		t.Fatal(err)
	}
}
