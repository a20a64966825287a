package realtime

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/realtime-go/realtime/eventsource"
	"github.com/realtime-go/realtime/websocket"
)

// queueRounds broadcasts enough 64 KiB messages to fill the loopback
// socket buffers of a client that does not read (a few MiB), pacing
// them by a client that does read: each broadcast waits until the fast
// client has the previous one. So the fast client is never behind, and
// if the stalled client slowed the broadcast, the test would time out.
const (
	queueRounds = 400
	queueMsg    = 64 << 10
)

func bigMessage(i int) string {
	return strconv.Itoa(i) + " " + strings.Repeat("x", queueMsg)
}

func msgNumber(t *testing.T, data string) int {
	t.Helper()
	n, err := strconv.Atoi(data[:strings.IndexByte(data, ' ')])
	if err != nil {
		t.Fatalf("message %.20q has no number", data)
	}
	return n
}

// paceBroadcasts publishes queueRounds messages to chat, each after the
// fast WebSocket client got the one before, and returns their ids.
func paceBroadcasts(t *testing.T, hub *Hub, fast *wsClient) []string {
	t.Helper()
	ids := make([]string, 0, queueRounds)
	for i := range queueRounds {
		ids = append(ids, publish(t, hub, chat, bigMessage(i)))
		_, data, _ := fast.read(t)
		if n := msgNumber(t, data); n != i {
			t.Fatalf("fast client got message %d, want %d", n, i)
		}
	}
	return ids
}

func TestQueueCloseWebSocket(t *testing.T) {
	hub := newHub(t, &HubOptions{MaxHistoryBytes: -1})
	ts := newTestServer(t, &Options{Hub: hub, Channels: []string{chat}, MaxQueue: 8}, nil)
	slow := dialWS(t, ts, wsDial{})
	slowSock := ts.next(t)
	fast := dialWS(t, ts, wsDial{})
	ts.next(t)

	ids := paceBroadcasts(t, hub, fast)

	// The stalled client now reads: what was in flight, then the close.
	got := 0
	for {
		_, p, err := slow.c.Read(testCtx(t))
		if err != nil {
			if code := websocket.CloseStatus(err); code != websocket.StatusTryAgainLater {
				t.Fatalf("slow client: %v (code %d), want close 1013", err, code)
			}
			break
		}
		_, data, _ := strings.Cut(string(p), "\n")
		if n := msgNumber(t, data); n != got {
			t.Fatalf("slow client got message %d, want %d", n, got)
		}
		got++
	}
	if got == queueRounds {
		t.Fatal("the slow client got every message: its queue never filled")
	}
	waitDone(t, slowSock)
	if !errors.Is(slowSock.Err(), eventsource.ErrQueueFull) {
		t.Fatalf("slow socket Err = %v, want ErrQueueFull", slowSock.Err())
	}
	if err := slowSock.Send("more"); err == nil {
		t.Fatal("Send to a socket closed for overflow succeeded")
	}
	// The client can resume what it missed from the history.
	from := slow.pos
	if got > 0 {
		from = ids[got-1]
	}
	again := dialWS(t, ts, wsDial{lastEventID: from})
	for i := got; i < queueRounds; i++ {
		_, data, _ := again.read(t)
		if n := msgNumber(t, data); n != i {
			t.Fatalf("resumed client got %d, want %d", n, i)
		}
	}
}

func TestQueueCloseEventSource(t *testing.T) {
	hub := newHub(t, nil)
	ts := newTestServer(t, &Options{Hub: hub, Channels: []string{chat}, MaxQueue: 8}, nil)
	slow := dialES(t, ts, esDial{noRead: true})
	slowSock := ts.next(t)
	fast := dialWS(t, ts, wsDial{})
	ts.next(t)

	paceBroadcasts(t, hub, fast)

	slow.dec = nil
	ec := &esClient{url: ts.URL, resp: slow.resp, evs: make(chan esEvent, 16)}
	ec.startDecoding()
	if ev := ec.next(t); ev.Type != HelloEvent {
		t.Fatalf("first event %+v", ev)
	}
	for i := 0; ; i++ {
		ev := ec.next(t)
		if ev.Type == CloseEvent {
			if ev.Data != "1013 send queue full" {
				t.Fatalf("close event %q", ev.Data)
			}
			if i == queueRounds {
				t.Fatal("the slow client got every message: its queue never filled")
			}
			break
		}
		if n := msgNumber(t, ev.Data); n != i {
			t.Fatalf("slow client got message %d, want %d", n, i)
		}
	}
	ec.end(t)
	waitDone(t, slowSock)
	if !errors.Is(slowSock.Err(), eventsource.ErrQueueFull) {
		t.Fatalf("slow socket Err = %v, want ErrQueueFull", slowSock.Err())
	}
}

func TestQueueDropOldest(t *testing.T) {
	hub := newHub(t, nil)
	ts := newTestServer(t, &Options{Hub: hub, Channels: []string{chat}, MaxQueue: 8, QueuePolicy: QueueDropOldest, WriteTimeout: -1}, nil)
	slow := dialWS(t, ts, wsDial{})
	slowSock := ts.next(t)
	fast := dialWS(t, ts, wsDial{})
	ts.next(t)

	paceBroadcasts(t, hub, fast)

	// The stalled client reads on: it gets messages in order, with the
	// dropped ones missing, and the last one for sure.
	got, last := 0, -1
	for last != queueRounds-1 {
		_, data, _ := slow.read(t)
		n := msgNumber(t, data)
		if n <= last {
			t.Fatalf("slow client got %d after %d", n, last)
		}
		last = n
		got++
	}
	dropped := slowSock.Dropped()
	if dropped == 0 {
		t.Fatal("nothing was dropped: the queue never filled")
	}
	if got+int(dropped) != queueRounds {
		t.Fatalf("received %d + dropped %d != %d broadcasts", got, dropped, queueRounds)
	}
	if slowSock.Err() != nil {
		t.Fatalf("the socket ended: %v", slowSock.Err())
	}
}

// queuedBytes reads the socket's count of payload bytes queued or being
// written.
func queuedBytes(s *Socket) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queued
}

const (
	mib        = 1 << 20
	bytesBound = 4 * mib
	// stallSends is more 1 MiB messages than the loopback buffers of a
	// stalled client and a 4 MiB queue hold together, and fewer than
	// DefaultMaxQueue: only the byte bound can be what fills the queue.
	stallSends = 128
)

// A client that stops reading pins at most MaxQueueBytes plus one
// message of queued data, however large the messages: under
// QueueDropOldest the byte bound drops messages long before the count
// bound would.
func TestQueueBytesDropOldest(t *testing.T) {
	ts := newTestServer(t, &Options{
		MaxQueue: -1, MaxQueueBytes: bytesBound, QueuePolicy: QueueDropOldest,
		WriteTimeout: -1, Heartbeat: -1,
	}, nil)
	dialWS(t, ts, wsDial{}) // never reads again
	s := ts.next(t)
	msg := strings.Repeat("x", mib)
	var peak int64
	for range stallSends {
		if err := s.Send(msg); err != nil {
			t.Fatal(err)
		}
		peak = max(peak, queuedBytes(s))
	}
	if peak > bytesBound+mib {
		t.Fatalf("the stalled socket held %d bytes of messages, want at most %d", peak, bytesBound+mib)
	}
	if s.Dropped() == 0 {
		t.Fatalf("%d MiB sent to a stalled client and nothing dropped", stallSends)
	}
}

// Under QueueClose the byte bound closes a stalled client's socket with
// eventsource.ErrQueueFull, without waiting for the count bound.
func TestQueueBytesClose(t *testing.T) {
	ts := newTestServer(t, &Options{MaxQueue: -1, MaxQueueBytes: bytesBound, WriteTimeout: -1, Heartbeat: -1}, nil)
	dialWS(t, ts, wsDial{})
	s := ts.next(t)
	msg := strings.Repeat("x", mib)
	for i := 0; ; i++ {
		if i == stallSends {
			t.Fatalf("%d MiB queued for a stalled client without eventsource.ErrQueueFull", stallSends)
		}
		err := s.Send(msg)
		if errors.Is(err, eventsource.ErrQueueFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if q := queuedBytes(s); q > bytesBound+mib {
			t.Fatalf("the stalled socket holds %d bytes of messages, want at most %d", q, bytesBound+mib)
		}
	}
	waitDone(t, s)
	if !errors.Is(s.Err(), eventsource.ErrQueueFull) {
		t.Fatalf("Err = %v, want ErrQueueFull", s.Err())
	}
}

// A message larger than MaxQueueBytes is delivered on its own, on both
// transports, and the count goes back to zero once it is written.
func TestQueueBytesLargeMessage(t *testing.T) {
	big := strings.Repeat("y", 64<<10)
	for _, k := range kinds {
		t.Run(k.String(), func(t *testing.T) {
			ts := newTestServer(t, &Options{MaxQueueBytes: 1 << 10}, nil)
			var recv func() string
			if k == TransportWebSocket {
				c := dialWS(t, ts, wsDial{})
				recv = func() string { _, data, _ := c.read(t); return data }
			} else {
				c := dialES(t, ts, esDial{})
				recv = func() string { return c.next(t).Data }
			}
			s := ts.next(t)
			for range 3 {
				if err := s.Send(big); err != nil {
					t.Fatal(err)
				}
				if got := recv(); got != big {
					t.Fatalf("got %d bytes, want %d", len(got), len(big))
				}
				eventually(t, "the queue's byte count to go back to 0", func() bool { return queuedBytes(s) == 0 })
			}
		})
	}
}

// runSocket is a socket of hub in channel c (made by testChannel) with
// the given queue bounds, and no transport: its queue is only filled.
func runSocket(t *testing.T, hub *Hub, c *channel, maxQueue int, policy QueuePolicy) *Socket {
	t.Helper()
	c.hub.mu.Lock()
	c.refs++
	c.hub.mu.Unlock()
	s := fakeSocket(hub, nil)
	s.hnd.cfg.maxQueue, s.hnd.cfg.policy = maxQueue, policy
	t.Cleanup(s.discard)
	if _, err := c.join(testCtx(t), s); err != nil {
		t.Fatal(err)
	}
	return s
}

// channelEntries counts the entries of s's queue that hold channel
// messages.
func channelEntries(s *Socket) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, q := range s.queue {
		if q.m.kind == kindChannel {
			n++
		}
	}
	return n
}

// A burst of a channel's messages costs a socket whose writer lags one
// queue entry, which each delivery extends, rather than one each; a
// message of another kind between them starts a new run. The messages
// come out whole and in order.
func TestQueueRuns(t *testing.T) {
	hub := newHub(t, nil)
	c := testChannel(hub)
	s := runSocket(t, hub, c, -1, QueueClose)
	for i := 1; i <= 20; i++ {
		deliverAll(c, strconv.Itoa(i))
	}
	if n := channelEntries(s); n != 1 {
		t.Fatalf("20 messages of one channel take %d queue entries, want 1", n)
	}
	if err := s.Send("direct"); err != nil {
		t.Fatal(err)
	}
	deliverAll(c, "21")
	deliverAll(c, "22")
	if n := channelEntries(s); n != 2 {
		t.Fatalf("a Send between runs: %d entries of channel messages, want 2", n)
	}
	_, got := queuedOffsets(s, chat)
	want := make([]uint64, 22)
	for i := range want {
		want[i] = uint64(i + 1)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("queued offsets %v, want %v", got, want)
	}
	if q, want := queuedBytes(s), int64(9+2*13+len("direct")); q != want {
		t.Fatalf("queued bytes %d, want %d", q, want)
	}
}

// QueueDropOldest drops the oldest messages of a run one by one: the
// newest MaxQueue stay, in order, and the bytes count follows.
func TestQueueRunsDropOldest(t *testing.T) {
	hub := newHub(t, nil)
	c := testChannel(hub)
	s := runSocket(t, hub, c, 8, QueueDropOldest)
	for i := 1; i <= 20; i++ {
		deliverAll(c, "m"+strconv.Itoa(i%10))
	}
	_, got := queuedOffsets(s, chat)
	if fmt.Sprint(got) != "[13 14 15 16 17 18 19 20]" {
		t.Fatalf("queued offsets %v, want the last 8", got)
	}
	if d := s.Dropped(); d != 12 {
		t.Fatalf("Dropped = %d, want 12", d)
	}
	if q := queuedBytes(s); q != 8*2 {
		t.Fatalf("queued bytes %d, want 16", q)
	}
}

// Under QueueClose the message that overflows a run closes the socket,
// counting every message the run held as dropped.
func TestQueueRunsClose(t *testing.T) {
	hub := newHub(t, nil)
	c := testChannel(hub)
	s := runSocket(t, hub, c, 8, QueueClose)
	for i := 1; i <= 8; i++ {
		deliverAll(c, "m")
	}
	// The join's entries (its mark) count as dropped too, as they did
	// when every message had an entry.
	s.mu.Lock()
	want := uint64(len(s.queue)-1) + 8 + 1
	s.mu.Unlock()
	deliverAll(c, "m")
	s.mu.Lock()
	closing, overflow, queued, entries := s.closing, s.x.overflow, s.queued, len(s.queue)
	s.mu.Unlock()
	if !closing || overflow != want || queued != 0 || entries != 0 {
		t.Fatalf("closing %v, overflow %d, queued bytes %d, %d entries; want true, %d, 0, 0", closing, overflow, queued, entries, want)
	}
}

// A delivery goes through the channel's array of members, which follows
// its map as members come and go.
func TestChannelMemberList(t *testing.T) {
	hub := newHub(t, nil)
	c := testChannel(hub)
	socks := make([]*Socket, 4)
	for i := range socks {
		socks[i] = runSocket(t, hub, c, -1, QueueClose)
	}
	c.mu.Lock()
	c.removeMember(socks[1])
	c.removeMember(socks[1]) // not a member any more: nothing
	c.removeMember(socks[0])
	n := len(c.list)
	for i, r := range c.list {
		if c.members[r.s] != r.mb || r.mb.idx != i {
			t.Errorf("list[%d] is not the map's member at its index", i)
		}
	}
	c.mu.Unlock()
	if n != 2 {
		t.Fatalf("%d members listed, want 2", n)
	}
	deliverAll(c, "m")
	for i, s := range socks {
		_, got := queuedOffsets(s, chat)
		if want := i >= 2; (len(got) == 1) != want {
			t.Errorf("socket %d got %v; a member: %v", i, got, want)
		}
	}
}
