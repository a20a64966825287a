package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/websocket"
)

// cluster is three nodes (Hubs) of the real server over one memory
// broker, behind a front that sends each request to the next node in
// turn: no stickiness, so reconnections and POSTs cross nodes.
type cluster struct {
	hubs []*realtime.Hub
	URL  string

	mu      sync.Mutex
	sockets map[string]*realtime.Socket // the latest socket of each user
}

// startCluster starts the cluster; opts is each node's Options, with Hub
// and OnConnect (which sets the presence user from the query parameter
// user) filled in.
func startCluster(t *testing.T, opts realtime.Options) *cluster {
	t.Helper()
	noProxyEnv(t)
	broker := realtime.NewMemoryBroker(nil)
	c := &cluster{sockets: map[string]*realtime.Socket{}}
	var handlers []http.Handler
	for i := range 3 {
		hub := realtime.NewHub(&realtime.HubOptions{Broker: broker, Node: fmt.Sprint("n", i)})
		c.hubs = append(c.hubs, hub)
		o := opts
		o.Hub = hub
		o.OnConnect = func(_ context.Context, s *realtime.Socket) error {
			user := s.Request().URL.Query().Get("user")
			s.SetPresence(user, "info of "+user)
			c.mu.Lock()
			c.sockets[user] = s
			c.mu.Unlock()
			return nil
		}
		handlers = append(handlers, realtime.Handler(&o, nil))
	}
	var turn atomic.Uint32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers[int(turn.Add(1))%len(handlers)].ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		for _, hub := range c.hubs {
			if err := hub.Shutdown(ctx); err != nil {
				t.Errorf("hub shutdown: %v", err)
			}
		}
		srv.Close()
		for _, hub := range c.hubs {
			hub.Close()
		}
		broker.Close()
	})
	c.URL = srv.URL + "/rt"
	return c
}

func (c *cluster) socket(user string) *realtime.Socket {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sockets[user]
}

// publish publishes each text to channel from the nodes in turn.
func (c *cluster) publish(t *testing.T, channel string, texts ...string) {
	t.Helper()
	for i, text := range texts {
		if _, err := c.hubs[i%len(c.hubs)].Publish(testCtx(t), channel, text); err != nil {
			t.Fatalf("publish %q to %s: %v", text, channel, err)
		}
	}
}

func seq(prefix string, from, to int) []string {
	var s []string
	for i := from; i <= to; i++ {
		s = append(s, fmt.Sprint(prefix, i))
	}
	return s
}

var allowAll = realtime.Options{
	OnSubscribe: func(_ context.Context, _ *realtime.Socket, channel string) error {
		if channel == "forbidden" {
			return errors.New("not for you")
		}
		return nil
	},
	OnPublish: func(context.Context, *realtime.Socket, string, string) error { return nil },
}

// received is what collect gathered: each channel's messages in order,
// subscription statuses and unsubscribe reasons, presence news.
type received struct {
	msgs     map[string][]string
	subs     map[string][]SubscribeStatus
	unsubs   map[string][]string
	presence []Message
	ids      []string
}

// collect reads messages until done says so; r, when not nil, goes on
// from an earlier collect.
func collect(t *testing.T, s *Socket, r *received, done func(*received) bool) *received {
	t.Helper()
	if r == nil {
		r = &received{msgs: map[string][]string{}, subs: map[string][]SubscribeStatus{}, unsubs: map[string][]string{}}
	}
	for !done(r) {
		r.record(t, nextAny(t, s))
	}
	return r
}

func (r *received) record(t *testing.T, m Message) {
	t.Helper()
	if m.ID != "" {
		r.ids = append(r.ids, m.ID)
	}
	switch m.Kind {
	case KindMessage:
		r.msgs[m.Channel] = append(r.msgs[m.Channel], m.Data)
	case KindSubscribed:
		r.subs[m.Channel] = append(r.subs[m.Channel], m.Status)
	case KindUnsubscribed:
		r.unsubs[m.Channel] = append(r.unsubs[m.Channel], m.Data)
	case KindJoin, KindLeave:
		r.presence = append(r.presence, m)
	default:
		t.Fatalf("unexpected %+v", m)
	}
}

// users asks who is in channel, reading messages into r meanwhile: the
// answer comes after them.
func users(t *testing.T, s *Socket, r *received, channel string) []string {
	t.Helper()
	es, err := presenceReading(t, s, r, channel)
	if err != nil {
		t.Fatalf("Presence(%s): %v", channel, err)
	}
	var u []string
	for _, e := range es {
		u = append(u, e.User)
	}
	slices.Sort(u)
	return u
}

// presenceReading calls Presence, reading messages into r meanwhile.
func presenceReading(t *testing.T, s *Socket, r *received, channel string) ([]PresenceEntry, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	type answer struct {
		es  []PresenceEntry
		err error
	}
	ans := make(chan answer, 1)
	go func() {
		es, err := s.Presence(testCtx(t), channel)
		cancel()
		ans <- answer{es, err}
	}()
	for {
		m, err := s.Next(ctx)
		if err != nil {
			break
		}
		r.record(t, m)
	}
	a := <-ans
	return a.es, a.err
}

// counts returns a done function for collect: n messages in each
// channel, and when subs is set a subscription status for each.
func counts(n int, subs bool, channels ...string) func(*received) bool {
	return func(r *received) bool {
		for _, ch := range channels {
			if len(r.msgs[ch]) < n || (subs && len(r.subs[ch]) < 1) {
				return false
			}
		}
		return true
	}
}

// saw returns a done function for collect: presence news of kind about
// user in channel.
func saw(kind Kind, channel, user string) func(*received) bool {
	return func(r *received) bool {
		return slices.ContainsFunc(r.presence, func(m Message) bool {
			return m.Kind == kind && m.Channel == channel && m.Entry.User == user
		})
	}
}

// Two Go clients on a cluster, on each transport: per-channel messages
// from every node, a client's own publish, a refused subscribe,
// presence, join and leave.
func TestSocketChannelsCluster(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.String(), func(t *testing.T) {
			c := startCluster(t, allowAll)
			ann, rec := newSocket(t, nil, c.URL+"?user=ann", &SocketOptions{Transport: tr})
			if info := rec.open(t); info.Protocol != "realtime.v2" || info.Transport != tr {
				t.Fatalf("open %+v", info)
			}
			ctx := testCtx(t)
			for _, ch := range []string{"a", "b", "forbidden"} {
				if err := ann.Subscribe(ctx, ch); err != nil {
					t.Fatal(err)
				}
			}
			r := collect(t, ann, nil, func(r *received) bool { return len(r.subs) == 2 && len(r.unsubs) == 1 })
			if !slices.Equal(r.subs["a"], []SubscribeStatus{SubscribeFresh}) || !slices.Equal(r.subs["b"], []SubscribeStatus{SubscribeFresh}) ||
				!slices.Equal(r.unsubs["forbidden"], []string{"not for you"}) {
				t.Fatalf("subscribed %q, unsubscribed %q", r.subs, r.unsubs)
			}
			if got := ann.Subscriptions(); !slices.Equal(got, []string{"a", "b"}) {
				t.Fatalf("subscriptions %q", got)
			}

			c.publish(t, "c", "c1") // not subscribed
			c.publish(t, "a", seq("a", 1, 3)...)
			c.publish(t, "b", seq("b", 1, 3)...)
			if err := ann.Publish(ctx, "b", "from ann"); err != nil {
				t.Fatal(err)
			}
			r = collect(t, ann, r, func(r *received) bool { return len(r.msgs["a"]) == 3 && len(r.msgs["b"]) == 4 })
			if !slices.Equal(r.msgs["a"], seq("a", 1, 3)) || !slices.Equal(r.msgs["b"], append(seq("b", 1, 3), "from ann")) || len(r.msgs) != 2 {
				t.Fatalf("messages %q", r.msgs)
			}

			bob, rec2 := newSocket(t, nil, c.URL+"?user=bob", &SocketOptions{Transport: tr})
			rec2.open(t)
			if err := bob.Subscribe(ctx, "b"); err != nil {
				t.Fatal(err)
			}
			rb := collect(t, bob, nil, func(r *received) bool { return len(r.subs["b"]) == 1 })
			r = collect(t, ann, r, saw(KindJoin, "b", "bob"))
			i := slices.IndexFunc(r.presence, func(m Message) bool { return m.Entry.User == "bob" })
			if e := r.presence[i].Entry; e.Info != "info of bob" || e.Socket != c.socket("bob").ID() {
				t.Fatalf("join: %+v", r.presence[i])
			}
			if u := users(t, ann, r, "b"); !slices.Equal(u, []string{"ann", "bob"}) {
				t.Fatalf("presence of b: %q", u)
			}
			if u := users(t, bob, rb, "b"); !slices.Equal(u, []string{"ann", "bob"}) {
				t.Fatalf("presence of b seen by bob: %q", u)
			}
			if err := bob.Unsubscribe(ctx, "b"); err != nil {
				t.Fatal(err)
			}
			collect(t, bob, rb, func(r *received) bool { return len(r.unsubs["b"]) == 1 })
			if len(bob.Subscriptions()) != 0 {
				t.Fatalf("bob's subscriptions %q", bob.Subscriptions())
			}
			// Out of the channel, bob may not ask; the refusal is an error.
			var re *RequestError
			if _, err := presenceReading(t, bob, rb, "b"); !errors.As(err, &re) {
				t.Fatalf("presence of a channel bob left: %v", err)
			}
			collect(t, ann, r, saw(KindLeave, "b", "bob"))
		})
	}
}

// A client in two channels resumes each after the server closed its
// connection (reconnecting to another node), and a new Socket resumes
// from a saved LastEventID: every message once, in order, and each
// channel says it resumed.
func TestSocketChannelsResume(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.String(), func(t *testing.T) {
			c := startCluster(t, allowAll)
			s, rec := newSocket(t, nil, c.URL+"?user=ann", &SocketOptions{Transport: tr})
			rec.open(t)
			ctx := testCtx(t)
			for _, ch := range []string{"a", "b"} {
				if err := s.Subscribe(ctx, ch); err != nil {
					t.Fatal(err)
				}
			}
			r := collect(t, s, nil, counts(0, true, "a", "b"))
			c.publish(t, "a", seq("a", 1, 3)...)
			c.publish(t, "b", seq("b", 1, 3)...)
			// ann's own joins come at the presence stream's choosing: read
			// them before the close, or the client, blocked delivering
			// one, never reads the close (it failed so about once in 50).
			r = collect(t, s, r, func(r *received) bool {
				return counts(3, true, "a", "b")(r) && saw(KindJoin, "a", "ann")(r) && saw(KindJoin, "b", "ann")(r)
			})
			for _, ch := range []string{"a", "b"} {
				if !slices.Equal(r.subs[ch], []SubscribeStatus{SubscribeFresh}) || !slices.Equal(r.msgs[ch], seq(ch, 1, 3)) {
					t.Fatalf("before the close: %q %q", r.subs, r.msgs)
				}
			}

			// The server closes with 1012; messages published before the
			// client is back come on the next connection, once.
			c.socket("ann").CloseWith(websocket.StatusServiceRestart, "restart")
			c.publish(t, "a", seq("a", 4, 6)...)
			c.publish(t, "b", seq("b", 4, 6)...)
			rec.open(t)
			c.publish(t, "a", "a7")
			c.publish(t, "b", "b7")
			r = collect(t, s, nil, counts(4, true, "a", "b"))
			for _, ch := range []string{"a", "b"} {
				if !slices.Equal(r.subs[ch], []SubscribeStatus{SubscribeResumed}) || !slices.Equal(r.msgs[ch], seq(ch, 4, 7)) {
					t.Fatalf("after the close: %q %q", r.subs, r.msgs)
				}
			}

			// A new Socket resumes from the saved id, when it subscribes.
			saved := s.LastEventID()
			if saved != r.ids[len(r.ids)-1] {
				t.Fatalf("last event id %q, want the last message's %q", saved, r.ids[len(r.ids)-1])
			}
			s.Close()
			c.publish(t, "a", "a8")
			c.publish(t, "b", "b8")
			s2, rec2 := newSocket(t, nil, c.URL+"?user=ann", &SocketOptions{Transport: tr, LastEventID: saved})
			rec2.open(t)
			for _, ch := range []string{"b", "a"} {
				if err := s2.Subscribe(ctx, ch); err != nil {
					t.Fatal(err)
				}
			}
			r = collect(t, s2, nil, counts(1, true, "a", "b"))
			for _, ch := range []string{"a", "b"} {
				if !slices.Equal(r.subs[ch], []SubscribeStatus{SubscribeResumed}) || !slices.Equal(r.msgs[ch], []string{ch + "8"}) {
					t.Fatalf("new socket: %q %q", r.subs, r.msgs)
				}
			}
		})
	}
}

// The server puts every socket in a channel (Options.Channels): a v2
// client is told, a v1 client gets its messages as before, with ids;
// both resume them; channel calls of the v1 client fail.
func TestSocketServerChannels(t *testing.T) {
	for _, proto := range []string{socketSubprotocolV2, socketSubprotocol} {
		for _, tr := range transports {
			t.Run(proto+"/"+tr.String(), func(t *testing.T) {
				opts := allowAll
				opts.Channels = []string{"chat"}
				c := startCluster(t, opts)
				s, rec := newSocket(t, nil, c.URL+"?user=ann", &SocketOptions{Transport: tr, Protocol: proto})
				if info := rec.open(t); info.Protocol != proto {
					t.Fatalf("open %+v", info)
				}
				v2 := proto == socketSubprotocolV2
				if !v2 {
					if err := s.Subscribe(testCtx(t), "a"); !errors.Is(err, ErrNoChannels) {
						t.Fatalf("v1 Subscribe: %v", err)
					}
				}
				// A v1 client's messages have no channel.
				ch := "chat"
				if !v2 {
					ch = ""
				}
				c.publish(t, "chat", "m1", "m2")
				// A v2 client also hears its own join, at a time of the
				// presence stream's choosing: read it before the close, or
				// the client, blocked delivering it, never reads the close.
				got := counts(2, v2, ch)
				if v2 {
					got = func(r *received) bool { return counts(2, v2, ch)(r) && saw(KindJoin, "chat", "ann")(r) }
				}
				r := collect(t, s, nil, got)
				if !slices.Equal(r.msgs[ch], []string{"m1", "m2"}) || (v2 && !slices.Equal(r.subs[ch], []SubscribeStatus{SubscribeFresh})) {
					t.Fatalf("subscribed %q, messages %q", r.subs, r.msgs)
				}
				c.socket("ann").CloseWith(websocket.StatusServiceRestart, "restart")
				c.publish(t, "chat", "m3")
				rec.open(t)
				c.publish(t, "chat", "m4")
				r = collect(t, s, nil, counts(2, v2, ch))
				if !slices.Equal(r.msgs[ch], []string{"m3", "m4"}) || (v2 && !slices.Equal(r.subs[ch], []SubscribeStatus{SubscribeResumed})) {
					t.Fatalf("after the close: subscribed %q, messages %q", r.subs, r.msgs)
				}
			})
		}
	}
}
