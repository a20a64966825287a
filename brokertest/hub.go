package brokertest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/client"
)

// The Hub tests: nodes (Hubs over clients of the broker, each behind an
// HTTP server with realtime.Handler) and sockets of package client on
// both transports.

// node is one Hub over a client of the engine, behind an HTTP server.
type node struct {
	name   string
	hub    *realtime.Hub
	srv    *httptest.Server
	url    string // of the handler
	addr   string // host:port of the server
	killed sync.Once
	posts  atomic.Int32 // POST requests that reached the node
}

// startNode starts a node named name over b, serving opts (whose Hub it
// sets) at /rt. It is killed at cleanup.
func startNode(t *testing.T, name string, b realtime.Broker, opts realtime.Options) *node {
	t.Helper()
	return startHub(t, realtime.HubOptions{Broker: b, Node: name}, opts)
}

// startHub starts a node of hopts (Broker and Node set), serving opts
// (whose Hub it sets) at /rt. It is killed at cleanup.
func startHub(t *testing.T, hopts realtime.HubOptions, opts realtime.Options) *node {
	t.Helper()
	hub := realtime.NewHub(&hopts)
	opts.Hub = hub
	n := &node{name: hopts.Node, hub: hub}
	mux := http.NewServeMux()
	rt := realtime.Handler(&opts, func(ctx context.Context, s *realtime.Socket) { <-ctx.Done() })
	mux.Handle("/rt", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			n.posts.Add(1)
		}
		rt.ServeHTTP(w, r)
	}))
	n.srv = httptest.NewServer(mux)
	n.url, n.addr = n.srv.URL+"/rt", n.srv.Listener.Addr().String()
	t.Cleanup(n.kill)
	return n
}

// kill stops the node as a crash would for its clients: their
// connections are cut, and the node no longer answers.
func (n *node) kill() {
	n.killed.Do(func() {
		n.srv.CloseClientConnections()
		n.hub.Close()
		n.srv.Close()
	})
}

// nodes starts count nodes, each over a client of its own, all serving
// opts.
func (s *suite) nodes(t *testing.T, count int, opts realtime.Options) []*node {
	t.Helper()
	var ns []*node
	for range count {
		ns = append(ns, startNode(t, s.name("node"), s.client(t), opts))
	}
	return ns
}

// reader is a client.Socket and what it received.
type reader struct {
	name string
	v1   bool // the socket speaks realtime.v1
	sock *client.Socket
	done chan struct{}

	mu         sync.Mutex
	msgs       []client.Message // channel messages
	direct     []string         // the texts of messages to this socket only
	subscribed []client.Message // KindSubscribed
	lost       []client.Message // KindLost
	toldAt     []int            // len(msgs) at each KindLost and failed KindSubscribed
	opens      []client.OpenInfo
}

var transports = []client.Transport{client.TransportWebSocket, client.TransportEventSource}

// dial opens a socket to url over tr, from lastID when it is not empty,
// closed at cleanup.
func dial(t *testing.T, url string, tr client.Transport, lastID string) *reader {
	t.Helper()
	return dialProtocol(t, url, tr, lastID, "")
}

// dialProtocol is dial with the wire protocol to ask for
// (client.SocketOptions.Protocol). A realtime.v1 socket is in the
// channels of Options.Channels, without word of them: its messages
// with an id are theirs.
func dialProtocol(t *testing.T, url string, tr client.Transport, lastID, protocol string) *reader {
	t.Helper()
	r := &reader{name: fmt.Sprintf("%v socket to %s", tr, url), done: make(chan struct{}), v1: protocol == realtime.Subprotocol}
	if r.v1 {
		r.name = "realtime.v1 " + r.name
	}
	var d client.Dialer
	sock, err := d.Socket(url, &client.SocketOptions{
		Protocol:       protocol,
		Transport:      tr,
		LastEventID:    lastID,
		ConnectTimeout: 5 * time.Second,
		MinDelay:       5 * time.Millisecond,
		MaxDelay:       100 * time.Millisecond,
		OnOpen: func(o client.OpenInfo) {
			r.mu.Lock()
			r.opens = append(r.opens, o)
			r.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.sock = sock
	go func() {
		defer close(r.done)
		for {
			m, err := sock.Next(context.Background())
			if err != nil {
				return
			}
			r.mu.Lock()
			switch m.Kind {
			case client.KindMessage:
				if m.Channel != "" || r.v1 && m.ID != "" {
					r.msgs = append(r.msgs, m)
				} else {
					r.direct = append(r.direct, m.Data)
				}
			case client.KindSubscribed:
				r.subscribed = append(r.subscribed, m)
				if m.Status == client.SubscribeFailed {
					r.toldAt = append(r.toldAt, len(r.msgs))
				}
			case client.KindLost:
				r.lost = append(r.lost, m)
				r.toldAt = append(r.toldAt, len(r.msgs))
			}
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		sock.Close()
		<-r.done
	})
	return r
}

func (r *reader) texts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.msgs))
	for i, m := range r.msgs {
		out[i] = m.Data
	}
	return out
}

// told returns the texts of the channel messages, and how many of them
// had come each time the socket was told of a loss.
func (r *reader) told() (texts []string, at []int) {
	r.mu.Lock()
	at = slices.Clone(r.toldAt)
	r.mu.Unlock()
	// Messages only grow: those counted by at are among texts.
	return r.texts(), at
}

func (r *reader) message(i int) client.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msgs[i]
}

func (r *reader) status() (subscribed []client.Message, lost, opens int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.subscribed), len(r.lost), len(r.opens)
}

// waitSubscribed waits until the socket is in channel (for a
// realtime.v1 socket, in the channels of Options.Channels: until it
// is open).
func (r *reader) waitSubscribed(t *testing.T, channel string) client.Message {
	t.Helper()
	var m client.Message
	if r.v1 {
		waitFor(t, r.name+" to open", func() bool {
			_, _, opens := r.status()
			return opens > 0
		})
		return m
	}
	waitFor(t, r.name+" to be subscribed to "+channel, func() bool {
		subs, _, _ := r.status()
		for _, s := range subs {
			if s.Channel == channel {
				m = s
				return true
			}
		}
		return false
	})
	return m
}

// readers dials a socket to each node, the transports in turn, and
// waits until each is in channel.
func readers(t *testing.T, ns []*node, channel string) []*reader {
	t.Helper()
	var rs []*reader
	for i, n := range ns {
		rs = append(rs, dial(t, n.url, transports[i%2], ""))
	}
	for _, r := range rs {
		r.waitSubscribed(t, channel)
	}
	return rs
}

// waitTexts waits until the socket has n messages, and returns their
// texts.
func (r *reader) waitTexts(t *testing.T, n int) []string {
	t.Helper()
	var got []string
	waitFor(t, fmt.Sprintf("%s to get %d messages", r.name, n), func() bool {
		got = r.texts()
		return len(got) >= n
	})
	return got
}

// channelTexts returns the texts of channel after from, in the broker's
// order.
func channelTexts(t *testing.T, b realtime.Broker, channel string, from realtime.Position) []string {
	t.Helper()
	var entries []realtime.Entry
	var err error
	// After the engine's restart, b may reconnect later than the nodes.
	waitFor(t, "Since to reach the engine", func() bool {
		entries, _, err = b.Since(testCtx(t), channel, from)
		return !errors.Is(err, realtime.ErrBrokerUnavailable)
	})
	if err != nil {
		t.Fatalf("Since(%q, %v): %v", channel, from, err)
	}
	return texts(entries)
}

// hubPublish publishes n messages through hub, as name-0, name-1...,
// pausing pace between them (to spread them over what the test does
// meanwhile).
func hubPublish(t *testing.T, hub *realtime.Hub, channel, name string, n int, pace time.Duration) {
	for i := range n {
		if i > 0 && pace > 0 {
			time.Sleep(pace)
		}
		if _, err := hub.Publish(testCtx(t), channel, name+"-"+strconv.Itoa(i)); err != nil {
			t.Errorf("%s: Hub.Publish: %v", name, err)
			return
		}
	}
}

// checkOnce fails the test unless got is want: every message once, in
// the broker's order.
func checkOnce(t *testing.T, who string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	seen := make(map[string]int)
	for _, g := range got {
		seen[g]++
	}
	for g, n := range seen {
		if n > 1 {
			t.Fatalf("%s got %q %d times", who, g, n)
		}
	}
	for _, w := range want {
		if seen[w] == 0 {
			t.Fatalf("%s never got %q (%d of %d messages)", who, w, len(got), len(want))
		}
		delete(seen, w)
	}
	for g := range seen {
		t.Fatalf("%s got %q, which it should not have: it had it before, or it came before its start\n got %q\nwant %q", who, g, got, want)
	}
	t.Fatalf("%s got the messages in another order than the broker's:\n got %q\nwant %q", who, got, want)
}

// testHubOrder: publishes from 3 nodes at once reach every socket, on
// every node and transport, each once and in the broker's order.
func (s *suite) testHubOrder(t *testing.T) {
	ch := s.name("hub-order")
	ns := s.nodes(t, 3, realtime.Options{Channels: []string{ch}})
	probe := s.client(t)
	start := latest(t, probe, ch)
	var rs []*reader
	for _, n := range ns {
		for _, tr := range transports {
			r := dial(t, n.url, tr, "")
			rs = append(rs, r)
		}
	}
	for _, r := range rs {
		r.waitSubscribed(t, ch)
	}
	per := min(30, s.h.MaxHistory/3)
	var wg sync.WaitGroup
	for i, n := range ns {
		wg.Go(func() { hubPublish(t, n.hub, ch, "n"+strconv.Itoa(i), per, 0) })
	}
	wg.Wait()
	want := channelTexts(t, probe, ch, start)
	if len(want) != 3*per {
		t.Fatalf("the broker holds %d messages, want %d", len(want), 3*per)
	}
	for _, r := range rs {
		checkOnce(t, r.name, r.waitTexts(t, len(want)), want)
	}
}

// testHubJoinRace: sockets join, fresh or resuming from the id of a
// message another socket got, on any node and transport, while
// messages are published: each gets the messages after its start, each
// once, in order.
func (s *suite) testHubJoinRace(t *testing.T) {
	ch := s.name("hub-join")
	ns := s.nodes(t, 3, realtime.Options{Channels: []string{ch}})
	probe := s.client(t)
	start := latest(t, probe, ch)
	first := dial(t, ns[0].url, client.TransportWebSocket, "")
	first.waitSubscribed(t, ch)
	total := min(120, s.h.MaxHistory-1) // and a final one
	published := make(chan struct{})
	go func() {
		defer close(published)
		hubPublish(t, ns[1].hub, ch, "m", total, time.Millisecond)
	}()
	type joiner struct {
		r    *reader
		from int // index in the channel of its first message; -1: fresh
	}
	var js []joiner
	for i := 0; ; i++ {
		select {
		case <-published:
		default:
			if len(js) == 30 {
				<-published
				break
			}
			n := ns[i%3]
			tr := transports[i%2]
			got := first.texts()
			if i%3 == 2 && len(got) > 0 {
				// Resume from the id of a message first got.
				k := len(got) - 1 - i%min(len(got), 5)
				js = append(js, joiner{dial(t, n.url, tr, first.message(k).ID), k + 1})
			} else {
				js = append(js, joiner{dial(t, n.url, tr, ""), -1})
			}
			time.Sleep(2 * time.Millisecond)
			continue
		}
		break
	}
	if t.Failed() {
		return
	}
	subs := make([]client.Message, len(js))
	for i, j := range js {
		subs[i] = j.r.waitSubscribed(t, ch)
	}
	// Every socket is in; one more message reaches them all.
	hubPublish(t, ns[2].hub, ch, "final", 1, 0)
	want := channelTexts(t, probe, ch, start)
	checkOnce(t, first.name, first.waitTexts(t, len(want)), want)
	for i, j := range js {
		sub := subs[i]
		if j.from < 0 {
			// Fresh: from wherever its node was when it joined.
			var got []string
			waitFor(t, j.r.name+" to get the final message", func() bool {
				got = j.r.texts()
				return len(got) > 0 && got[len(got)-1] == "final-0"
			})
			checkOnce(t, j.r.name, got, want[len(want)-len(got):])
			continue
		}
		if sub.Status != client.SubscribeResumed {
			t.Fatalf("%s resuming from message %d: subscribed %q", j.r.name, j.from, sub.Status)
		}
		checkOnce(t, j.r.name, j.r.waitTexts(t, len(want)-j.from), want[j.from:])
	}
}

// gated is a broker whose Follow deliveries wait while its gate is
// shut: a node that lags behind the others.
type gated struct {
	realtime.Broker
	mu   sync.Mutex
	open chan struct{} // closed while the gate is open
}

func newGated(b realtime.Broker) *gated {
	g := &gated{Broker: b, open: make(chan struct{})}
	close(g.open)
	return g
}

func (g *gated) shut() {
	g.mu.Lock()
	g.open = make(chan struct{})
	g.mu.Unlock()
}

func (g *gated) release() {
	g.mu.Lock()
	close(g.open)
	g.mu.Unlock()
}

func (g *gated) Follow(ctx context.Context, channel string, pos realtime.Position, deliver func(realtime.Entry)) error {
	return g.Broker.Follow(ctx, channel, pos, func(e realtime.Entry) {
		g.mu.Lock()
		open := g.open
		g.mu.Unlock()
		select {
		case <-open:
		case <-ctx.Done():
		}
		deliver(e)
	})
}

// testHubAhead: a socket resumes on a node that has not yet delivered
// the last message the socket got (from a faster node): it is resumed,
// gets nothing twice, and gets what follows.
func (s *suite) testHubAhead(t *testing.T) {
	ch := s.name("hub-ahead")
	opts := realtime.Options{Channels: []string{ch}}
	fast := startNode(t, s.name("fast"), s.client(t), opts)
	g := newGated(s.client(t))
	slow := startNode(t, s.name("slow"), g, opts)
	for _, tr := range transports {
		t.Run(tr.String(), func(t *testing.T) {
			a := dial(t, fast.url, tr, "")
			c := dial(t, slow.url, tr, "") // so the slow node follows ch
			a.waitSubscribed(t, ch)
			c.waitSubscribed(t, ch)
			if _, err := fast.hub.Publish(testCtx(t), ch, "m0"); err != nil {
				t.Fatal(err)
			}
			a.waitTexts(t, 1)
			c.waitTexts(t, 1)
			g.shut()
			if _, err := fast.hub.Publish(testCtx(t), ch, "m1"); err != nil {
				g.release()
				t.Fatal(err)
			}
			a.waitTexts(t, 2)
			b := dial(t, slow.url, tr, a.message(1).ID)
			sub := b.waitSubscribed(t, ch)
			g.release()
			if sub.Status != client.SubscribeResumed {
				t.Fatalf("resuming ahead of the node: subscribed %q", sub.Status)
			}
			if _, err := fast.hub.Publish(testCtx(t), ch, "m2"); err != nil {
				t.Fatal(err)
			}
			if _, err := fast.hub.Publish(testCtx(t), ch, "m3"); err != nil {
				t.Fatal(err)
			}
			// A duplicate would come before m3.
			checkOnce(t, "the socket ahead of its node", b.waitTexts(t, 2), []string{"m2", "m3"})
			checkOnce(t, "the lagging node's old socket", c.waitTexts(t, 4), []string{"m0", "m1", "m2", "m3"})

			a.sock.Close()
			b.sock.Close()
			c.sock.Close()
		})
	}
}

// testHubNodeKilled: a node dies during a burst of publishes; its
// sockets, behind a load balancer without stickiness, resume on the
// others: every socket gets every message once, in order.
func (s *suite) testHubNodeKilled(t *testing.T) {
	ch := s.name("hub-kill")
	ns := s.nodes(t, 3, realtime.Options{Channels: []string{ch}})
	probe := s.client(t)
	start := latest(t, probe, ch)
	var addrs []string
	for _, n := range ns {
		addrs = append(addrs, n.addr)
	}
	front := newLB(t, addrs)
	var rs []*reader
	for i := range 8 {
		protocol := ""
		if i >= 6 {
			protocol = realtime.Subprotocol // clients of before channels
		}
		rs = append(rs, dialProtocol(t, front.url(), transports[i%2], "", protocol))
	}
	for _, r := range rs {
		r.waitSubscribed(t, ch)
	}
	if len(ns[0].hub.Sockets(ch)) == 0 {
		t.Fatal("no socket on the node to kill: the load balancer did not spread them")
	}
	per := min(100, s.h.MaxHistory/2)
	var wg sync.WaitGroup
	for i, n := range ns[1:] {
		wg.Go(func() { hubPublish(t, n.hub, ch, "n"+strconv.Itoa(i+1), per, time.Millisecond) })
	}
	// Kill the first node once the burst is under way.
	waitFor(t, "the burst to start", func() bool { return len(rs[0].texts()) > per/4 })
	front.remove(ns[0].addr)
	ns[0].kill()
	wg.Wait()
	want := channelTexts(t, probe, ch, start)
	moved := 0
	for _, r := range rs {
		checkOnce(t, r.name, r.waitTexts(t, len(want)), want)
		subs, lost, opens := r.status()
		if lost != 0 {
			t.Errorf("%s was told of %d lost positions", r.name, lost)
		}
		for _, sub := range subs[min(1, len(subs)):] {
			if sub.Status != client.SubscribeResumed {
				t.Errorf("%s subscribed again with status %q", r.name, sub.Status)
			}
		}
		r.mu.Lock()
		for _, o := range r.opens[1:] {
			if o.ResumeFailed {
				t.Errorf("%s reconnected with a failed resume", r.name)
			}
		}
		r.mu.Unlock()
		if opens > 1 {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("no socket reconnected after its node was killed")
	}
}

// testHubBrokerKilled: while the engine is down, Hub.Publish fails
// within its context and sockets stay up; once it is back, every socket
// gets what is published, each once, with nothing lost.
func (s *suite) testHubBrokerKilled(t *testing.T) {
	ch := s.name("hub-engine")
	ns := s.nodes(t, 3, realtime.Options{Channels: []string{ch}})
	probe := s.client(t)
	start := latest(t, probe, ch)
	rs := readers(t, ns, ch)
	hubPublish(t, ns[0].hub, ch, "before", 5, 0)
	for _, r := range rs {
		r.waitTexts(t, 5)
	}
	s.kill(t)
	ctx, cancel := context.WithTimeout(context.Background(), unavailCtx)
	_, err := ns[1].hub.Publish(ctx, ch, "during")
	cancel()
	if !errors.Is(err, realtime.ErrBrokerUnavailable) {
		t.Errorf("Hub.Publish while the engine is down: %v, want ErrBrokerUnavailable", err)
	}
	s.start(t)
	// Hub.Publish retries until the engine is back.
	for i, n := range ns {
		hubPublish(t, n.hub, ch, "after"+strconv.Itoa(i), 5, 0)
	}
	want := channelTexts(t, probe, ch, start)
	for _, r := range rs {
		checkOnce(t, r.name, r.waitTexts(t, len(want)), want)
		if _, _, opens := r.status(); opens != 1 {
			t.Errorf("%s connected %d times: the engine's restart cut it", r.name, opens)
		}
	}
}

// testHubWipe: when the engine comes back empty, every socket is told
// its channel's position was lost (a "lost" message, or a failed resume
// if it reconnected), never a silent gap, and then gets the new
// messages; a socket that resumes from an id of before is told its
// resume failed.
func (s *suite) testHubWipe(t *testing.T) {
	ch := s.name("hub-wipe")
	ns := s.nodes(t, 2, realtime.Options{Channels: []string{ch}})
	rs := readers(t, ns, ch)
	hubPublish(t, ns[0].hub, ch, "old", 3, 0)
	for _, r := range rs {
		r.waitTexts(t, 3)
	}
	oldID := rs[0].message(2).ID
	s.h.Wipe(t)
	// Publish until every socket gets new messages: those published
	// before a node has followed the new epoch may be missed (the
	// socket is told so), so one is not enough.
	stop := make(chan struct{})
	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := 0; ; i++ {
			if _, err := ns[i%2].hub.Publish(testCtx(t), ch, "new-"+strconv.Itoa(i)); err != nil {
				t.Errorf("Hub.Publish after the wipe: %v", err)
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	for _, r := range rs {
		waitFor(t, r.name+" to get new messages", func() bool { return len(r.texts()) > 4 })
	}
	close(stop)
	<-published
	for _, r := range rs {
		got, told := r.told()
		if !slices.Equal(got[:3], []string{"old-0", "old-1", "old-2"}) {
			t.Fatalf("%s got %q", r.name, got)
		}
		if len(told) == 0 || told[0] != 3 {
			t.Fatalf("%s got %q, told of a loss after %v messages; want after 3", r.name, got, told)
		}
		// The new ones follow each other.
		first, err := strconv.Atoi(strings.TrimPrefix(got[3], "new-"))
		if err != nil {
			t.Fatalf("%s got %q", r.name, got)
		}
		for i, g := range got[3:] {
			if g != "new-"+strconv.Itoa(first+i) {
				t.Fatalf("%s got %q after the wipe: a gap or a duplicate", r.name, got[3:])
			}
		}
	}
	for i, n := range ns {
		r := dial(t, n.url, transports[i%2], oldID)
		if sub := r.waitSubscribed(t, ch); sub.Status != client.SubscribeFailed {
			t.Errorf("%s resuming from before the wipe: subscribed %q", r.name, sub.Status)
		}
	}
}
