package realtime

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/realtime-go/realtime/websocket"
)

// client is a protocol client on either transport, for tests that do not
// care which.
type client interface {
	position() string
	message(t *testing.T) (id, data string)
	// tryMessage reports ok false when the server closed the connection.
	tryMessage(t *testing.T) (id, data string, ok bool)
	close()
}

func (wc *wsClient) tryMessage(t *testing.T) (string, string, bool) {
	t.Helper()
	_, p, err := wc.c.Read(testCtx(t))
	if err != nil {
		if websocket.CloseStatus(err) == websocket.StatusTryAgainLater {
			return "", "", false
		}
		t.Fatalf("websocket: %v", err)
	}
	id, data, _ := strings.Cut(string(p), "\n")
	return id, data, true
}

func (ec *esClient) tryMessage(t *testing.T) (string, string, bool) {
	t.Helper()
	ev := ec.next(t)
	if ev.Type == CloseEvent {
		return "", "", false
	}
	return ev.ID, ev.Data, true
}

func (wc *wsClient) position() string { return wc.pos }
func (wc *wsClient) close()           { wc.c.CloseNow() }
func (wc *wsClient) message(t *testing.T) (string, string) {
	t.Helper()
	id, data, ok := wc.read(t)
	if !ok {
		t.Fatalf("websocket: message %q without data", id)
	}
	return id, data
}

func (ec *esClient) position() string { return ec.pos }
func (ec *esClient) message(t *testing.T) (string, string) {
	t.Helper()
	ev := ec.next(t)
	if ev.Type != "message" {
		t.Fatalf("eventsource: %+v", ev)
	}
	return ev.ID, ev.Data
}

func dialTransport(t *testing.T, ts *testServer, k Transport, lastID string) client {
	t.Helper()
	if k == TransportWebSocket {
		return dialWS(t, ts, wsDial{lastEventID: lastID})
	}
	return dialES(t, ts, esDial{lastEventID: lastID})
}

var kinds = []Transport{TransportWebSocket, TransportEventSource}

func TestResume(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.String(), func(t *testing.T) {
			hub := newHub(t, nil)
			ts := newTestServer(t, chatOptions(hub), nil)
			c := dialTransport(t, ts, k, "")
			ts.next(t)
			if last := lastID(t, hub, chat); c.position() != last {
				t.Fatalf("position %q, want %q", c.position(), last)
			}
			publish(t, hub, chat, "m1")
			id2 := publish(t, hub, chat, "m2")
			c.message(t)
			if id, data := c.message(t); id != id2 || data != "m2" {
				t.Fatalf("got %q %q", id, data)
			}
			c.close()
			id3 := publish(t, hub, chat, "m3")
			id4 := publish(t, hub, chat, "m4")

			c = dialTransport(t, ts, k, id2)
			s := ts.next(t)
			if c.position() != id2 || s.LastEventID() != id2 || s.ResumeFailed(chat) {
				t.Fatalf("position %q, LastEventID %q, ResumeFailed %v; want %q resumed",
					c.position(), s.LastEventID(), s.ResumeFailed(chat), id2)
			}
			id5 := publish(t, hub, chat, "m5")
			for _, want := range [][2]string{{id3, "m3"}, {id4, "m4"}, {id5, "m5"}} {
				if id, data := c.message(t); id != want[0] || data != want[1] {
					t.Fatalf("got %q %q, want %q %q", id, data, want[0], want[1])
				}
			}
		})
	}
}

func TestResumeFailed(t *testing.T) {
	other := newHub(t, nil)
	publish(t, other, chat, "x")
	for _, k := range kinds {
		t.Run(k.String(), func(t *testing.T) {
			hub := newHub(t, &HubOptions{MaxHistory: 2})
			ts := newTestServer(t, chatOptions(hub), nil)
			first := publish(t, hub, chat, "m1")
			second := publish(t, hub, chat, "m2")
			for range 3 {
				publish(t, hub, chat, "old")
			}
			// Evicted, of another broker's epoch, not a cursor, a cursor
			// of more channels than MaxChannels, a version-1 id.
			var many cursor
			for i := range DefaultMaxChannels + 1 {
				many.set(strconv.Itoa(i), Position{1, 1})
			}
			for _, from := range []string{first, second, lastID(t, other, chat), "garbage", many.encode(), "0a1b2c3d-1"} {
				c := dialTransport(t, ts, k, from)
				s := ts.next(t)
				if last := lastID(t, hub, chat); c.position() != last || !s.ResumeFailed(chat) {
					t.Fatalf("resuming from %q: position %q, ResumeFailed %v; want %q and true",
						from, c.position(), s.ResumeFailed(chat), last)
				}
				id := publish(t, hub, chat, "new")
				if got, data := c.message(t); got != id || data != "new" {
					t.Fatalf("resuming from %q: got %q %q, want only the new message", from, got, data)
				}
				c.close()
			}
			// The newest evicted id is still fine: nothing after it is lost.
			ids := make([]string, 0, 2)
			for i := range 3 {
				ids = append(ids, publish(t, hub, chat, "n"+strconv.Itoa(i)))
			}
			c := dialTransport(t, ts, k, ids[0])
			if s := ts.next(t); s.ResumeFailed(chat) {
				t.Fatalf("resuming from %q just before the history failed", ids[0])
			}
			for _, want := range ids[1:] {
				if got, _ := c.message(t); got != want {
					t.Fatalf("got %q, want %q", got, want)
				}
			}
		})
	}
}

// A client that keeps dropping its connection, switching transports each
// time, while broadcasts go on faster than its small queue takes (so the
// server also closes it now and then with 1013), gets every message
// exactly once.
func TestResumeExactlyOnceUnderLoad(t *testing.T) {
	const total = 300
	hub := newHub(t, nil)
	ts := newTestServer(t, &Options{Hub: hub, Channels: []string{chat}, MaxQueue: 16}, nil)
	var wg sync.WaitGroup
	start := make(chan struct{})
	wg.Go(func() {
		<-start
		for i := 1; i <= total; i++ {
			publish(t, hub, chat, strconv.Itoa(i))
			if i%7 == 0 {
				// Let connections come and go between broadcasts.
				for range 50 {
					hub.Len()
				}
			}
		}
	})
	var got []int
	lastID, overflows := "", 0
	for round := 0; len(got) < total; round++ {
		c := dialTransport(t, ts, kinds[round%2], lastID)
		if s := ts.next(t); s.ResumeFailed(chat) {
			t.Fatalf("round %d: could not resume from %q", round, lastID)
		}
		lastID = c.position() // the position is where the client stands
		if round == 0 {
			close(start)
		}
		for n := 0; n < 3+round%11 && len(got) < total; n++ {
			id, data, ok := c.tryMessage(t)
			if !ok {
				overflows++
				break
			}
			v, err := strconv.Atoi(data)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, v)
			lastID = id
		}
		c.close()
	}
	wg.Wait()
	t.Logf("%d messages, %d overflows", len(got), overflows)
	for i, v := range got {
		if v != i+1 {
			t.Fatalf("message %d was %d (received %v)", i+1, v, fmt.Sprint(got[max(0, i-3):min(len(got), i+3)]))
		}
	}
}

// Messages older than MaxHistoryAge are not served from the cache.
func TestHistoryMaxAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := NewHub(&HubOptions{MaxHistoryAge: time.Minute})
		defer hub.Close()
		c := testChannel(hub)
		start := c.last
		old := deliverAll(c, "old").pos
		time.Sleep(30 * time.Second)
		mid := deliverAll(c, "mid").pos
		time.Sleep(45 * time.Second) // "old" is now 75 s old, "mid" 45 s
		deliverAll(c, "last")

		c.mu.Lock()
		defer c.mu.Unlock()
		// A client that has not seen "old" must ask the broker.
		if replay, ok := c.since(start); ok {
			t.Fatalf("from %v: replay of %d from the cache", start, len(replay))
		}
		// One that saw it misses only what is kept.
		for _, tc := range []struct {
			from Position
			want []string
		}{{old, []string{"mid", "last"}}, {mid, []string{"last"}}} {
			replay, ok := c.since(tc.from)
			var texts []string
			for _, m := range replay {
				texts = append(texts, m.text)
			}
			if !ok || fmt.Sprint(texts) != fmt.Sprint(tc.want) {
				t.Fatalf("from %v: replay %q, ok %v", tc.from, texts, ok)
			}
		}
	})
}
