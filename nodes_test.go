package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// presenceServer serves sockets that join room with the presence of the
// user named by the query parameter user.
func presenceServer(t *testing.T, hub *Hub) *testServer {
	return newTestServer(t, &Options{Hub: hub, OnConnect: func(ctx context.Context, s *Socket) error {
		if u := s.Request().URL.Query().Get("user"); u != "" {
			s.SetPresence(u, "info of "+u)
		}
		return s.Join(ctx, "room")
	}}, nil)
}

// dialUser opens a v2 WebSocket of user to ts.
func dialUser(t *testing.T, ts *testServer, user string) *v2Client {
	t.Helper()
	u := *ts
	u.URL += "?user=" + user
	c := &v2Client{ws: dialWS(t, &u, wsDial{v2: true})}
	c.expect(t, "subscribed room", "fresh")
	return c
}

// expectPresence reads frames until a presence event of user, and
// returns whether it is a join.
func (c *v2Client) expectPresence(t *testing.T, user string) (join bool) {
	t.Helper()
	for {
		_, h, data := c.frame(t)
		if h != "join room" && h != "leave room" {
			continue
		}
		var e PresenceEntry
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			t.Fatalf("%s: %q: %v", h, data, err)
		}
		if e.User == user {
			if e.Info != "info of "+user || e.Socket == "" {
				t.Fatalf("%s: %+v", h, e)
			}
			return h == "join room"
		}
	}
}

func users(entries []PresenceEntry) string {
	var us []string
	for _, e := range entries {
		us = append(us, e.User)
	}
	return strings.Join(sortedCopy(us), ",")
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// eventRecorder records OnPresence calls.
type eventRecorder struct {
	mu  sync.Mutex
	evs []PresenceEvent
}

func (r *eventRecorder) record(ev PresenceEvent) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

func (r *eventRecorder) has(join bool, user string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range r.evs {
		if ev.Join == join && ev.Entry.User == user && ev.Channel == "room" {
			return true
		}
	}
	return false
}

// Two nodes on one broker share a channel's presence: each lists the
// users of both, and their sockets and OnPresence get the joins and the
// leaves of the other's.
func TestPresenceAcrossNodes(t *testing.T) {
	broker := NewMemoryBroker(nil)
	defer broker.Close()
	var rec eventRecorder
	hub1 := newHub(t, &HubOptions{Broker: broker, Node: "n1"})
	hub2 := newHub(t, &HubOptions{Broker: broker, Node: "n2", OnPresence: rec.record})
	ts1, ts2 := presenceServer(t, hub1), presenceServer(t, hub2)
	alice := dialUser(t, ts1, "alice")
	ts1.next(t)
	if !alice.expectPresence(t, "alice") {
		t.Fatal("alice saw her own leave")
	}
	bob := dialUser(t, ts2, "bob")
	ts2.next(t)
	if !bob.expectPresence(t, "bob") || !alice.expectPresence(t, "bob") {
		t.Fatal("bob's join came as a leave")
	}
	eventually(t, "OnPresence to get bob's join", func() bool { return rec.has(true, "bob") })
	for _, hub := range []*Hub{hub1, hub2} {
		live, err := hub.Presence(testCtx(t), "room")
		if err != nil || users(live) != "alice,bob" {
			t.Fatalf("%s: presence %v, %v; want alice and bob", hub.Node(), live, err)
		}
	}
	bob.request(t, "presence room")
	for {
		_, h, data := bob.frame(t)
		if h != "presence room" {
			continue
		}
		var live []PresenceEntry
		if err := json.Unmarshal([]byte(data), &live); err != nil || users(live) != "alice,bob" {
			t.Fatalf("presence answer %q: %v", data, err)
		}
		break
	}
	alice.close()
	if bob.expectPresence(t, "alice") {
		t.Fatal("alice's leave came as a join")
	}
	eventually(t, "OnPresence to get alice's leave", func() bool { return rec.has(false, "alice") })
	live, err := hub2.Presence(testCtx(t), "room")
	if err != nil || users(live) != "bob" {
		t.Fatalf("presence after alice left: %v, %v", live, err)
	}
}

// The entry of a node that died (nothing refreshes or removes it) goes
// within the TTL, and the nodes with sockets in the channel publish its
// leave.
func TestPresenceOfDeadNodeExpires(t *testing.T) {
	broker := NewMemoryBroker(nil)
	defer broker.Close()
	const ttl = 300 * time.Millisecond
	var rec eventRecorder
	hub := newHub(t, &HubOptions{Broker: broker, PresenceTTL: ttl, OnPresence: rec.record})
	ts := presenceServer(t, hub)
	bob := dialUser(t, ts, "bob")
	ts.next(t)
	// What a node that died left behind: an entry nobody refreshes.
	ghost := PresenceEntry{Socket: "dead.x", User: "ghost", Info: "info of ghost"}
	// The ghost lives long enough to be seen on a loaded machine: bob's
	// entry is added asynchronously, and a check right after both adds
	// failed once in CI.
	if _, err := broker.AddPresence(testCtx(t), "room", ghost, 4*ttl); err != nil {
		t.Fatal(err)
	}
	eventually(t, "presence of bob and the ghost", func() bool {
		live, err := hub.Presence(testCtx(t), "room")
		return err == nil && users(live) == "bob,ghost"
	})
	if bob.expectPresence(t, "ghost") {
		t.Fatal("the ghost's expiry came as a join")
	}
	eventually(t, "OnPresence to get the ghost's leave", func() bool { return rec.has(false, "ghost") })
	// Bob's own entry, refreshed by his node, lives on.
	live, err := hub.Presence(testCtx(t), "room")
	if err != nil || users(live) != "bob" {
		t.Fatalf("presence %v, %v; want bob alone", live, err)
	}
}

// routeServer records the messages its sockets receive.
func routeServer(t *testing.T, hub *Hub, got chan<- string) *testServer {
	return newTestServer(t, &Options{Hub: hub, OnMessage: func(_ context.Context, s *Socket, text string) {
		got <- s.ID() + " " + text
	}}, nil)
}

// A POST reaching another node than its socket's, and Hub.SendTo from
// another node, go through the broker: no sticky sessions.
func TestRoutingAcrossNodes(t *testing.T) {
	broker := NewMemoryBroker(nil)
	defer broker.Close()
	hub1 := newHub(t, &HubOptions{Broker: broker, Node: "n1"})
	hub2 := newHub(t, &HubOptions{Broker: broker, Node: "n2"})
	got := make(chan string, 4)
	ts1, ts2 := routeServer(t, hub1, got), routeServer(t, hub2, got)
	ec := dialES(t, ts1, esDial{})
	s := ts1.next(t)
	if !strings.HasPrefix(s.ID(), "n1.") || !strings.HasPrefix(ec.token, "n1.") {
		t.Fatalf("id %q and token %q do not name node n1", s.ID(), ec.token)
	}
	if status := postMessage(t, ts2.URL, ec.token, "via n2"); status != http.StatusNoContent {
		t.Fatalf("POST to the other node: %d", status)
	}
	if m := <-got; m != s.ID()+" via n2" {
		t.Fatalf("OnMessage got %q", m)
	}
	for _, tc := range []struct {
		token  string
		status int
	}{
		{"n3." + ec.token[3:], http.StatusGone}, // no such node
		{"n1.AAAA", http.StatusNotFound},        // n1 never issued it
		{"n1." + ec.token[3:] + "x", http.StatusNotFound},
	} {
		if status := postMessage(t, ts2.URL, tc.token, "x"); status != tc.status {
			t.Fatalf("POST with token %q: %d, want %d", tc.token, status, tc.status)
		}
	}
	if err := hub2.SendTo(testCtx(t), s.ID(), "from n2"); err != nil {
		t.Fatalf("SendTo: %v", err)
	}
	if ev := ec.next(t); ev.Data != "from n2" {
		t.Fatalf("got %+v", ev)
	}
	if err := hub1.SendTo(testCtx(t), s.ID(), "from n1"); err != nil {
		t.Fatalf("SendTo on the node itself: %v", err)
	}
	if ev := ec.next(t); ev.Data != "from n1" {
		t.Fatalf("got %+v", ev)
	}
	if err := hub2.SendTo(testCtx(t), s.ID(), "\xff"); !errors.Is(err, errInvalidUTF8) {
		t.Fatalf("SendTo of invalid UTF-8: %v", err)
	}
	ec.close()
	waitDone(t, s)
	if status := postMessage(t, ts2.URL, ec.token, "late"); status != http.StatusGone {
		t.Fatalf("POST for an ended socket through n2: %d, want 410", status)
	}
	for _, id := range []string{s.ID(), "n3.abc", "nodot"} {
		err := hub2.SendTo(testCtx(t), id, "x")
		if !errors.Is(err, ErrNoSocket) {
			t.Fatalf("SendTo %q: %v, want ErrNoSocket", id, err)
		}
		if id == "n3.abc" && !errors.Is(err, ErrNoNode) {
			t.Fatalf("SendTo %q: %v, want ErrNoNode too", id, err)
		}
	}
}

// Hostile or mistaken input gets the documented answer.
func TestHostileInput(t *testing.T) {
	hub := newHub(t, nil)
	t.Run("huge cursor", func(t *testing.T) {
		ts := newTestServer(t, chatOptions(hub), nil)
		for _, k := range kinds {
			c := dialTransport(t, ts, k, strings.Repeat("A", maxCursorLen+1))
			if s := ts.next(t); !s.ResumeFailed(chat) || c.position() != lastID(t, hub, chat) {
				t.Fatalf("%v: ResumeFailed %v at %q", k, s.ResumeFailed(chat), c.position())
			}
			c.close()
		}
	})
	t.Run("names", func(t *testing.T) {
		ts := newTestServer(t, &Options{Hub: hub}, nil)
		dialWS(t, ts, wsDial{})
		s := ts.next(t)
		for _, name := range []string{"", "$presence:chat", "$x", "a b", "a\nb", "a\x00", "\xff", strings.Repeat("x", 201)} {
			if err := s.Join(testCtx(t), name); !errors.Is(err, ErrInvalidChannel) {
				t.Errorf("Join(%q) = %v, want ErrInvalidChannel", name, err)
			}
			if _, err := hub.Publish(testCtx(t), name, "x"); !errors.Is(err, ErrInvalidChannel) {
				t.Errorf("Publish(%q) = %v, want ErrInvalidChannel", name, err)
			}
			if _, err := hub.Presence(testCtx(t), name); !errors.Is(err, ErrInvalidChannel) {
				t.Errorf("Presence(%q) = %v, want ErrInvalidChannel", name, err)
			}
		}
		if err := s.Join(testCtx(t), strings.Repeat("é", 100)); err != nil {
			t.Errorf("a 200-byte name: %v", err)
		}
	})
	t.Run("too many channels", func(t *testing.T) {
		ts := newTestServer(t, &Options{Hub: hub, MaxChannels: 2, OnSubscribe: func(context.Context, *Socket, string) error { return nil }}, nil)
		c := dialV2(t, ts, TransportWebSocket, "")
		s := ts.next(t)
		for _, ch := range []string{"a", "b"} {
			if err := s.Join(testCtx(t), ch); err != nil {
				t.Fatal(err)
			}
			c.expect(t, "subscribed "+ch, "fresh")
		}
		if err := s.Join(testCtx(t), "c"); !errors.Is(err, ErrTooManyChannels) {
			t.Fatalf("third Join: %v, want ErrTooManyChannels", err)
		}
		c.request(t, "subscribe c")
		c.expect(t, "unsubscribed c", ErrTooManyChannels.Error())
	})
	t.Run("OnConnect refuses", func(t *testing.T) {
		ts := newTestServer(t, &Options{Hub: hub, Channels: []string{chat}, OnConnect: func(context.Context, *Socket) error {
			return errors.New("no")
		}}, nil)
		for _, upgrade := range []bool{true, false} {
			req, _ := http.NewRequest(http.MethodGet, ts.URL, nil)
			if upgrade {
				req.Header.Set("Upgrade", "websocket")
				req.Header.Set("Connection", "Upgrade")
				req.Header.Set("Sec-WebSocket-Version", "13")
				req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			} else {
				req.Header.Set("Accept", "text/event-stream")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("upgrade %v: %d, want 403", upgrade, resp.StatusCode)
			}
		}
		if n := len(hub.Sockets(chat)); n != 0 {
			t.Fatalf("%d refused sockets left in the channel", n)
		}
	})
}
