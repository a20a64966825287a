package realtime

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
	"testing"
)

// v2Client reads realtime.v2 frames and sends requests, on either
// transport.
type v2Client struct {
	ws *wsClient
	es *esClient
}

func dialV2(t *testing.T, ts *testServer, k Transport, lastID string) *v2Client {
	t.Helper()
	if k == TransportWebSocket {
		return &v2Client{ws: dialWS(t, ts, wsDial{v2: true, lastEventID: lastID})}
	}
	return &v2Client{es: dialES(t, ts, esDial{v2: true, lastEventID: lastID})}
}

func (c *v2Client) position() string {
	if c.ws != nil {
		return c.ws.pos
	}
	return c.es.pos
}

// frame reads the next frame: its id, header and data.
func (c *v2Client) frame(t *testing.T) (id, header, data string) {
	t.Helper()
	var rest string
	if c.ws != nil {
		var ok bool
		id, rest, ok = strings.Cut(c.ws.readRaw(t), "\n")
		if !ok {
			t.Fatalf("v2 frame %q without a header", id)
		}
	} else {
		ev := c.es.next(t)
		if ev.Type != "message" {
			t.Fatalf("v2 event %+v, want a message", ev)
		}
		id, rest = ev.ID, ev.Data
	}
	header, data, _ = strings.Cut(rest, "\n")
	return id, header, data
}

// expect reads a frame and checks its header and data.
func (c *v2Client) expect(t *testing.T, header, data string) (id string) {
	t.Helper()
	id, h, d := c.frame(t)
	if h != header || d != data {
		t.Fatalf("frame %q %q, want %q %q", h, d, header, data)
	}
	return id
}

// request sends a v2 request; on EventSource its POST must be accepted.
func (c *v2Client) request(t *testing.T, text string) {
	t.Helper()
	if c.ws != nil {
		c.ws.send(t, text)
		return
	}
	if status := c.es.post(t, text); status != http.StatusNoContent {
		t.Fatalf("POST %q: %d", text, status)
	}
}

func (c *v2Client) close() {
	if c.ws != nil {
		c.ws.c.CloseNow()
	} else {
		c.es.close()
	}
}

// joinOnConnect is an OnConnect that joins channels.
func joinOnConnect(channels ...string) func(context.Context, *Socket) error {
	return func(ctx context.Context, s *Socket) error {
		for _, ch := range channels {
			if err := s.Join(ctx, ch); err != nil {
				return err
			}
		}
		return nil
	}
}

// positions decodes an id into the positions of channels.
func positions(t *testing.T, id string, channels ...string) []Position {
	t.Helper()
	c, ok := decodeCursor(id)
	if !ok {
		t.Fatalf("id %q is not a cursor", id)
	}
	out := make([]Position, len(channels))
	for i, ch := range channels {
		out[i], _ = c.get(ch)
	}
	return out
}

// A socket in two channels gets the messages of both, on both transports
// and both protocol versions, each with the socket's cursor after it as
// its id; reconnecting with that id, it gets what it missed in each
// channel exactly once and in order, then the live ones.
func TestChannelsResume(t *testing.T) {
	for _, k := range kinds {
		for _, v2 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/v2=%v", k, v2), func(t *testing.T) {
				hub := newHub(t, nil)
				ts := newTestServer(t, &Options{Hub: hub, OnConnect: joinOnConnect("a", "b")}, nil)
				type msg struct{ id, channel, data string }
				var resumed []string
				var c1 client
				var c2 *v2Client
				read := func() msg {
					if !v2 {
						id, data := c1.message(t)
						return msg{id, data[:1], data}
					}
					for {
						id, h, data := c2.frame(t)
						if ch, ok := strings.CutPrefix(h, "subscribed "); ok {
							// After the replay of the channel.
							if data != "resumed" {
								t.Fatalf("%s: %s, want resumed", h, data)
							}
							resumed = append(resumed, ch)
							continue
						}
						ch, _ := strings.CutPrefix(h, "message ")
						return msg{id, ch, data}
					}
				}
				dial := func(from string) string {
					if !v2 {
						c1 = dialTransport(t, ts, k, from)
						ts.next(t)
						return c1.position()
					}
					c2 = dialV2(t, ts, k, from)
					s := ts.next(t)
					for ch := range 2 {
						if from != "" {
							if s.ResumeFailed(string(rune('a' + ch))) {
								t.Fatalf("%c: ResumeFailed", 'a'+ch)
							}
							continue // the subscribed frames follow the replays
						}
						_, h, d := c2.frame(t)
						if !strings.HasPrefix(h, "subscribed ") {
							t.Fatalf("frame %q %q, want subscribed", h, d)
						}
						if want := map[bool]string{true: "resumed", false: "fresh"}[from != ""]; d != want {
							t.Fatalf("%s: %s, want %s", h, d, want)
						}
						if s.ResumeFailed(h[len("subscribed "):]) {
							t.Fatalf("%s: ResumeFailed", h)
						}
					}
					return c2.position()
				}
				pos := dial("")
				if got := positions(t, pos, "a", "b"); got[0].Epoch == 0 || got[1].Epoch == 0 {
					t.Fatalf("position %q has no entry for a or b: %v", pos, got)
				}
				pa1, _ := hub.Publish(testCtx(t), "a", "a1")
				if m := read(); m.channel != "a" || m.data != "a1" || positions(t, m.id, "a")[0] != pa1 {
					t.Fatalf("got %+v, want a1 at %v", m, pa1)
				}
				pb1, _ := hub.Publish(testCtx(t), "b", "b1")
				m := read()
				if m.data != "b1" || !slices.Equal(positions(t, m.id, "a", "b"), []Position{pa1, pb1}) {
					t.Fatalf("got %+v, want b1 with a at %v and b at %v", m, pa1, pb1)
				}
				seen := m.id
				if c1 != nil {
					c1.close()
				} else {
					c2.close()
				}
				for _, p := range []struct{ ch, text string }{{"a", "a2"}, {"b", "b2"}, {"a", "a3"}} {
					publish(t, hub, p.ch, p.text)
				}
				if got := dial(seen); got != seen {
					t.Fatalf("resumed at %q, want %q", got, seen)
				}
				for _, p := range []struct{ ch, text string }{{"b", "b3"}, {"a", "a4"}} {
					publish(t, hub, p.ch, p.text)
				}
				got := map[string][]string{}
				for range 5 {
					m := read()
					got[m.channel] = append(got[m.channel], m.data)
				}
				if fmt.Sprint(got["a"]) != "[a2 a3 a4]" || fmt.Sprint(got["b"]) != "[b2 b3]" {
					t.Fatalf("got %v", got)
				}
				if slices.Sort(resumed); v2 && fmt.Sprint(resumed) != "[a b]" {
					t.Fatalf("resumed %v, want [a b]", resumed)
				}
			})
		}
	}
}

// A client whose position in one channel the history no longer holds is
// told for that channel only, and gets the others' missed messages.
func TestResumeFailedPerChannel(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.String(), func(t *testing.T) {
			hub := newHub(t, &HubOptions{MaxHistory: 2})
			ts := newTestServer(t, &Options{Hub: hub, OnConnect: joinOnConnect("a", "b")}, nil)
			c := dialV2(t, ts, k, "")
			ts.next(t)
			c.expect(t, "subscribed a", "fresh")
			c.expect(t, "subscribed b", "fresh")
			publishWait(t, hub, "a", "a1")
			c.expect(t, "message a", "a1")
			publishWait(t, hub, "b", "b1")
			seen := c.expect(t, "message b", "b1")
			c.close()
			for i := range 5 {
				publish(t, hub, "a", "old"+strconv.Itoa(i))
			}
			publish(t, hub, "b", "b2")
			c = dialV2(t, ts, k, seen)
			s := ts.next(t)
			if !s.ResumeFailed("a") || s.ResumeFailed("b") {
				t.Fatalf("ResumeFailed a %v b %v, want true false", s.ResumeFailed("a"), s.ResumeFailed("b"))
			}
			c.expect(t, "subscribed a", "failed")
			c.expect(t, "message b", "b2")
			c.expect(t, "subscribed b", "resumed")
			publishWait(t, hub, "a", "a-live")
			c.expect(t, "message a", "a-live")
		})
	}
}

// fakeSocket is a socket without a transport, whose queue tests read.
func fakeSocket(hub *Hub, presented cursor) *Socket {
	h := &handler{cfg: config{hub: hub, maxQueue: -1, maxQueueB: -1, maxChannels: DefaultMaxChannels}}
	h.reg = hub.reg
	s := newSocket(h, TransportWebSocket, httptest.NewRequest(http.MethodGet, "/", nil))
	s.proto = protoV1
	s.presented = presented
	return s
}

// queuedOffsets returns the offsets of the channel messages queued for s
// in channel, after its mark.
func queuedOffsets(s *Socket, channel string) (mark Position, offsets []uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range s.queue {
		switch {
		case q.m.kind == kindMark && q.m.channel == channel:
			mark = q.m.pos
		case q.m.kind == kindChannel && q.m.channel == channel:
			for m, i := q.m, uint32(0); i <= q.more; m, i = m.next, i+1 {
				offsets = append(offsets, m.pos.Offset)
			}
		}
	}
	return mark, offsets
}

// A client that comes from a node further ahead than this one presents
// a position this node has not delivered yet: it resumes from there, and
// gets none of the messages up to it again.
func TestClientAheadOfNode(t *testing.T) {
	hub := newHub(t, nil)
	c := testChannel(hub)
	c.hub.mu.Lock()
	c.refs = 1
	c.hub.mu.Unlock()
	deliverAll(c, "1")
	var presented cursor
	presented.set(chat, Position{Epoch: 1, Offset: 3})
	s := fakeSocket(hub, presented)
	defer s.discard()
	if status, err := c.join(testCtx(t), s); err != nil || status != statusResumed {
		t.Fatalf("join: %q, %v", status, err)
	}
	for i := 2; i <= 5; i++ {
		deliverAll(c, strconv.Itoa(i))
	}
	mark, got := queuedOffsets(s, chat)
	if mark.Offset != 3 || fmt.Sprint(got) != "[4 5]" {
		t.Fatalf("mark %v, queued %v; want 3 and [4 5]", mark, got)
	}
}

// Sockets that join while messages are published, resuming from the
// cache, from the broker behind it or not at all, each get every message
// after their position once and in order.
func TestJoinRacingPublish(t *testing.T) {
	broker := NewMemoryBroker(&MemoryBrokerOptions{MaxHistory: -1, MaxHistoryBytes: -1})
	defer broker.Close()
	hub := newHub(t, &HubOptions{Broker: broker, MaxHistory: 4})
	const publishers, each, joiners = 4, 100, 40
	anchor := fakeSocket(hub, nil) // keeps the channel followed
	defer anchor.discard()
	if err := anchor.Join(testCtx(t), chat); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var published []Position
	var wg sync.WaitGroup
	for range publishers {
		wg.Go(func() {
			for i := range each {
				p, err := hub.Publish(context.Background(), chat, strconv.Itoa(i))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				published = append(published, p)
				mu.Unlock()
			}
		})
	}
	socks := make([]*Socket, joiners)
	for i := range joiners {
		wg.Go(func() {
			var presented cursor
			mu.Lock()
			if n := len(published); n > 0 && i%4 != 0 {
				presented.set(chat, published[(n*(i%3))/3])
			}
			mu.Unlock()
			s := fakeSocket(hub, presented)
			socks[i] = s
			if err := s.Join(context.Background(), chat); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	last := slices.MaxFunc(published, func(a, b Position) int { return int(a.Offset) - int(b.Offset) })
	for i, s := range socks {
		eventually(t, "socket "+strconv.Itoa(i)+" to get the last message", func() bool {
			mark, got := queuedOffsets(s, chat)
			return mark.Offset == last.Offset || len(got) > 0 && got[len(got)-1] == last.Offset
		})
		mark, got := queuedOffsets(s, chat)
		for j, off := range got {
			if off != mark.Offset+uint64(j)+1 {
				t.Fatalf("socket %d from %v got %v", i, mark, got)
			}
		}
		if s.ResumeFailed(chat) {
			t.Fatalf("socket %d: ResumeFailed", i)
		}
		s.discard()
	}
}

// The v2 requests of a client, and the answers to each, on both
// transports.
func TestV2Requests(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.String(), func(t *testing.T) {
			hub := newHub(t, nil)
			said := make(chan string, 1)
			opts := &Options{
				Hub: hub,
				OnMessage: func(_ context.Context, _ *Socket, text string) {
					said <- text
				},
				OnSubscribe: func(_ context.Context, _ *Socket, ch string) error {
					if strings.HasPrefix(ch, "ok") {
						return nil
					}
					return errors.New("not for you")
				},
				OnPublish: func(_ context.Context, _ *Socket, ch, _ string) error {
					if ch == "ok1" {
						return nil
					}
					return errors.New("read only")
				},
			}
			ts := newTestServer(t, opts, nil)
			c := dialV2(t, ts, k, "")
			s := ts.next(t)
			if c.position() != "" {
				t.Fatalf("position %q in no channel", c.position())
			}
			c.request(t, "subscribe ok1")
			if id := c.expect(t, "subscribed ok1", "fresh"); id == "" {
				t.Fatal("subscribed frame without the new cursor")
			}
			if got := s.Channels(); !slices.Equal(got, []string{"ok1"}) {
				t.Fatalf("Channels() = %q", got)
			}
			c.request(t, "subscribe ok1") // in already: told again
			c.expect(t, "subscribed ok1", "fresh")
			c.request(t, "subscribe no")
			c.expect(t, "unsubscribed no", "not for you")
			c.request(t, "subscribe $presence:ok1")
			c.expect(t, "unsubscribed $presence:ok1", "invalid channel name")
			c.request(t, "publish ok1\nhello\nworld")
			c.expect(t, "message ok1", "hello\nworld")
			c.request(t, "publish ok2\nx")
			c.expect(t, "error", `publish "ok2": read only`)
			c.request(t, "message\nhi there")
			if got := <-said; got != "hi there" {
				t.Fatalf("OnMessage got %q", got)
			}
			c.request(t, "presence ok1")
			c.expect(t, "presence ok1", "[]")
			c.request(t, "presence ok2")
			c.expect(t, "error", `presence "ok2": not subscribed`)
			for _, bad := range []string{"bogus", "subscribe", "subscribe a\nb", "message x\ny", "", " "} {
				c.request(t, bad)
				if _, h, _ := c.frame(t); h != "error" {
					t.Fatalf("request %q: frame %q, want error", bad, h)
				}
			}
			c.request(t, "unsubscribe ok1")
			c.expect(t, "unsubscribed ok1", "left")
			c.request(t, "unsubscribe ok1")
			prev := c.expect(t, "unsubscribed ok1", "not subscribed")
			if len(s.Channels()) != 0 {
				t.Fatalf("Channels() = %q after unsubscribe", s.Channels())
			}
			s.Send("just you")
			// No id: on EventSource the last event id stays.
			if id := c.expect(t, "message", "just you"); (k == TransportWebSocket && id != "") || (k == TransportEventSource && id != prev) {
				t.Fatalf("a Send carries id %q", id)
			}
		})
	}
}

// Without OnSubscribe and OnPublish, clients may do neither.
func TestV2RequestsRefusedByDefault(t *testing.T) {
	hub := newHub(t, nil)
	ts := newTestServer(t, &Options{Hub: hub}, nil)
	c := dialV2(t, ts, TransportWebSocket, "")
	ts.next(t)
	c.request(t, "subscribe a")
	c.expect(t, "unsubscribed a", "refused")
	c.request(t, "publish a\nx")
	c.expect(t, "error", `publish "a": refused`)
}

// The positions a client presented for channels it has not joined again
// stay in its cursor, so a later join resumes from them; beyond
// MaxChannels the cursor drops such entries to make room.
func TestCursorCarriesPresentedEntries(t *testing.T) {
	hub := newHub(t, nil)
	ts := newTestServer(t, &Options{Hub: hub, MaxChannels: 3, OnConnect: joinOnConnect("a")}, nil)
	c := dialV2(t, ts, TransportWebSocket, "")
	ts.next(t)
	c.expect(t, "subscribed a", "fresh")
	pa := publishWait(t, hub, "a", "a1")
	c.expect(t, "message a", "a1")
	pb, _ := hub.Publish(testCtx(t), "b", "b1")
	pc, _ := hub.Publish(testCtx(t), "c", "c1")
	var presented cursor
	presented.set("a", positions(t, pa, "a")[0])
	presented.set("b", pb)
	presented.set("c", pc)
	c.close()
	publish(t, hub, "b", "b2")

	c = dialV2(t, ts, TransportWebSocket, presented.encode())
	s := ts.next(t)
	if c.position() != presented.encode() {
		t.Fatalf("position %q, want the presented cursor %q carried whole", c.position(), presented.encode())
	}
	c.expect(t, "subscribed a", "resumed")
	if err := s.Join(testCtx(t), "b"); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "message b", "b2")
	c.expect(t, "subscribed b", "resumed")
	// A third channel not presented: the cursor is full (a, b joined, c
	// carried), so c's entry goes.
	if err := s.Join(testCtx(t), "d"); err != nil {
		t.Fatal(err)
	}
	id := c.expect(t, "subscribed d", "fresh")
	got, _ := decodeCursor(id)
	if _, ok := got.get("c"); ok || len(got) != 3 {
		t.Fatalf("cursor %v after joining d, want a, b and d", got)
	}
}
