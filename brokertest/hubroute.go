package brokertest

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/client"
)

// The Hub tests of what goes between nodes through Broker.Call and the
// presence of a broker.

func (r *reader) directTexts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.direct)
}

// testHubSendTo: Hub.SendTo reaches a socket of another node, on either
// transport, through the broker; a socket that is not there is told.
func (s *suite) testHubSendTo(t *testing.T) {
	ch := s.name("hub-sendto")
	ns := s.nodes(t, 3, realtime.Options{Channels: []string{ch}})
	var rs []*reader
	for _, tr := range transports {
		r := dial(t, ns[0].url, tr, "")
		r.waitSubscribed(t, ch)
		rs = append(rs, r)
	}
	socks := ns[0].hub.Sockets(ch)
	if len(socks) != len(rs) {
		t.Fatalf("node 0 has %d sockets in %s, want %d", len(socks), ch, len(rs))
	}
	want := make(map[string]bool)
	for _, sock := range socks {
		text := "to " + sock.ID()
		want[text] = true
		if err := ns[2].hub.SendTo(testCtx(t), sock.ID(), text); err != nil {
			t.Fatalf("SendTo(%s) from another node: %v", sock.ID(), err)
		}
	}
	for _, r := range rs {
		var got []string
		waitFor(t, r.name+" to get its message", func() bool {
			got = r.directTexts()
			return len(got) > 0
		})
		if len(got) != 1 || !want[got[0]] {
			t.Fatalf("%s got %q", r.name, got)
		}
		delete(want, got[0])
	}
	for _, id := range []string{ns[0].name + ".nosuch", s.name("nonode") + ".x"} {
		if err := ns[1].hub.SendTo(testCtx(t), id, "x"); !errors.Is(err, realtime.ErrNoSocket) {
			t.Errorf("SendTo(%s): %v, want ErrNoSocket", id, err)
		}
	}
}

// testHubPost: the POSTs of an EventSource socket behind a load
// balancer without stickiness reach the node of the socket, through
// the broker when they land on another: every message once, in order.
func (s *suite) testHubPost(t *testing.T) {
	ch := s.name("hub-post")
	type got struct {
		socket, text string
	}
	var mu sync.Mutex
	var gots []got
	opts := realtime.Options{
		Channels: []string{ch},
		OnMessage: func(ctx context.Context, sock *realtime.Socket, text string) {
			mu.Lock()
			gots = append(gots, got{sock.ID(), text})
			mu.Unlock()
		},
	}
	ns := s.nodes(t, 3, opts)
	var addrs []string
	for _, n := range ns {
		addrs = append(addrs, n.addr)
	}
	front := newLB(t, addrs)
	r := dial(t, front.url(), client.TransportEventSource, "")
	r.waitSubscribed(t, ch)
	var owner *node
	for _, n := range ns {
		if len(n.hub.Sockets(ch)) == 1 {
			owner = n
		}
	}
	if owner == nil {
		t.Fatal("no node has the socket")
	}
	const count = 10
	var want []got
	for i := range count {
		text := "post " + strconv.Itoa(i)
		if err := r.sock.Send(testCtx(t), text); err != nil {
			t.Fatalf("Send(%q): %v", text, err)
		}
		want = append(want, got{owner.hub.Sockets(ch)[0].ID(), text})
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(gots, want) {
		t.Fatalf("OnMessage got %q, want %q", gots, want)
	}
	elsewhere := 0
	for _, n := range ns {
		if n != owner {
			elsewhere += int(n.posts.Load())
		}
	}
	if elsewhere == 0 {
		t.Fatal("every POST reached the socket's own node: the load balancer did not spread them")
	}
}

// presenceLog records the presence events of a node.
type presenceLog struct {
	mu     sync.Mutex
	events []realtime.PresenceEvent
}

func (l *presenceLog) add(e realtime.PresenceEvent) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

// count returns how many events of channel are of user joining (join)
// or leaving.
func (l *presenceLog) count(channel, user string, join bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if e.Channel == channel && e.Entry.User == user && e.Join == join {
			n++
		}
	}
	return n
}

// users returns the users of entries, sorted.
func users(entries []realtime.PresenceEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.User)
	}
	slices.Sort(out)
	return out
}

// testHubPresence: presence across nodes; a node that dies without
// removing its entries (its broker client gone first) leaves no ghost:
// its users are gone within the presence TTL, and every other node
// hears one leave for each.
func (s *suite) testHubPresence(t *testing.T) {
	ch := s.name("hub-presence")
	const ttl = time.Second
	opts := realtime.Options{
		Channels: []string{ch},
		OnConnect: func(ctx context.Context, sock *realtime.Socket) error {
			sock.SetPresence(sock.Request().URL.Query().Get("user"), "")
			return nil
		},
	}
	var logs [3]presenceLog
	var ns []*node
	var closers []func() error
	for i := range 3 {
		b, closeB := s.closable(t)
		closers = append(closers, closeB)
		ns = append(ns, startHub(t, realtime.HubOptions{
			Broker: b, Node: s.name("node"), PresenceTTL: ttl, OnPresence: logs[i].add,
		}, opts))
	}
	for i, n := range ns {
		r := dial(t, n.url+"?user=u"+strconv.Itoa(i), transports[i%2], "")
		r.waitSubscribed(t, ch)
	}
	all := []string{"u0", "u1", "u2"}
	for i, n := range ns {
		waitFor(t, "node "+strconv.Itoa(i)+" to list every user", func() bool {
			live, err := n.hub.Presence(testCtx(t), ch)
			if err != nil {
				t.Fatalf("Presence: %v", err)
			}
			return slices.Equal(users(live), all)
		})
	}
	waitFor(t, "node 1 to hear u2 join", func() bool { return logs[1].count(ch, "u2", true) > 0 })
	// Node 0 dies: its broker client first, so it cannot remove its
	// entries.
	closers[0]()
	ns[0].kill()
	for i := 1; i < 3; i++ {
		waitFor(t, "node "+strconv.Itoa(i)+" to hear u0 leave", func() bool { return logs[i].count(ch, "u0", false) > 0 })
	}
	live, err := ns[1].hub.Presence(testCtx(t), ch)
	if err != nil || !slices.Equal(users(live), all[1:]) {
		t.Fatalf("Presence after node 0 died: %v, %v; want %v", users(live), err, all[1:])
	}
	// A join after the leave: the events come in order, so a second
	// leave of u0 published by another node would have come by then.
	r := dial(t, ns[2].url+"?user=u3", client.TransportWebSocket, "")
	r.waitSubscribed(t, ch)
	for i := 1; i < 3; i++ {
		waitFor(t, "node "+strconv.Itoa(i)+" to hear u3 join", func() bool { return logs[i].count(ch, "u3", true) > 0 })
		if n := logs[i].count(ch, "u0", false); n != 1 {
			t.Errorf("node %d heard u0 leave %d times", i, n)
		}
		if n := logs[i].count(ch, "u1", false) + logs[i].count(ch, "u2", false); n != 0 {
			t.Errorf("node %d heard a live user leave", i)
		}
	}
}
