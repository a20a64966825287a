package realtime

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/realtime-go/realtime/eventsource"
	"github.com/realtime-go/realtime/websocket"
)

// A WebSocket client that stops answering pings is let go.
func TestHeartbeatWebSocketDeadPeer(t *testing.T) {
	ts := newTestServer(t, &Options{Heartbeat: 50 * time.Millisecond}, nil)
	dialWS(t, ts, wsDial{}) // reads the position, then nothing: no pongs
	s := ts.next(t)
	waitDone(t, s)
	if !errors.Is(s.Err(), websocket.ErrPongTimeout) {
		t.Fatalf("Err = %v, want ErrPongTimeout", s.Err())
	}
}

// A client that reads answers the pings and stays.
func TestHeartbeatWebSocketLivePeer(t *testing.T) {
	ts := newTestServer(t, &Options{Heartbeat: 20 * time.Millisecond}, nil)
	wc := dialWS(t, ts, wsDial{})
	s := ts.next(t)
	go func() {
		time.Sleep(300 * time.Millisecond) // many heartbeats
		s.Send("still here")
	}()
	if _, data, _ := wc.read(t); data != "still here" {
		t.Fatalf("got %q", data)
	}
	if s.Err() != nil {
		t.Fatalf("socket ended: %v", s.Err())
	}
}

// An idle event stream sends comment lines.
func TestHeartbeatEventSource(t *testing.T) {
	ts := newTestServer(t, &Options{Heartbeat: 20 * time.Millisecond}, nil)
	br := rawStream(t, ts)
	comments := 0
	for comments < 3 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, ":") {
			comments++
		}
	}
}

// A client that stops reading is disconnected once a write cannot finish
// within WriteTimeout, on both transports, which Observer.OnHeartbeatMissed
// reports.
func TestWriteTimeout(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.String(), func(t *testing.T) {
			hub := newHub(t, &HubOptions{MaxHistory: 1})
			missed := make(chan HeartbeatEvent, 1)
			opts := &Options{Hub: hub, Channels: []string{chat}, WriteTimeout: 200 * time.Millisecond, QueuePolicy: QueueDropOldest, Heartbeat: -1,
				Observer: &Observer{OnHeartbeatMissed: func(e HeartbeatEvent) { missed <- e }}}
			ts := newTestServer(t, opts, nil)
			if k == TransportWebSocket {
				dialWS(t, ts, wsDial{})
			} else {
				dialES(t, ts, esDial{noRead: true})
			}
			s := ts.next(t)
			big := strings.Repeat("x", 256<<10)
			deadline := time.Now().Add(waitLong)
			for {
				select {
				case <-s.Done():
				default:
					if time.Now().After(deadline) {
						t.Fatal("the socket did not end")
					}
					hub.Publish(testCtx(t), chat, big)
					time.Sleep(time.Millisecond)
					continue
				}
				break
			}
			if err := s.Err(); !errors.Is(err, eventsource.ErrWriteTimeout) {
				t.Fatalf("Err = %v, want ErrWriteTimeout", err)
			}
			select {
			case e := <-missed:
				if e.Pong || e.Transport != k || e.Socket != s {
					t.Fatalf("OnHeartbeatMissed %+v, want a write on %v", e, k)
				}
			case <-time.After(waitLong):
				t.Fatal("OnHeartbeatMissed was not called")
			}
		})
	}
}

// A realtime.v2 WebSocket gets the heartbeat announcement right after
// the position ("\nheartbeat\nMS"), then a heartbeat whenever nothing was
// written for one Heartbeat. Before, it got pings only, which page
// JavaScript never sees.
func TestHeartbeatMessageWebSocket(t *testing.T) {
	t.Run("announcement", func(t *testing.T) {
		ts := newTestServer(t, &Options{Heartbeat: time.Hour}, nil)
		wc := dialWS(t, ts, wsDial{v2: true, noRead: true})
		wc.raw = true
		s := ts.next(t)
		if p := wc.readRaw(t); p != "" {
			t.Fatalf("position %q", p)
		}
		if p := wc.readRaw(t); p != "\nheartbeat\n3600000" {
			t.Fatalf("after the position: %q, want the heartbeat announcement", p)
		}
		s.Send("hi")
		if p := wc.readRaw(t); p != "\nmessage\nhi" {
			t.Fatalf("got %q", p)
		}
	})
	t.Run("idle", func(t *testing.T) {
		ts := newTestServer(t, &Options{Heartbeat: 20 * time.Millisecond}, nil)
		wc := dialWS(t, ts, wsDial{v2: true})
		wc.raw = true
		for range 3 {
			if p := wc.readRaw(t); p != "\nheartbeat\n20" {
				t.Fatalf("got %q, want a heartbeat", p)
			}
		}
	})
}

// A realtime.v2 event stream gets the announcement after realtime.hello,
// an event without an id field, then heartbeat events instead of
// comment lines.
func TestHeartbeatMessageEventSource(t *testing.T) {
	ts := newTestServer(t, &Options{Heartbeat: 20 * time.Millisecond}, nil)
	br := rawStreamURL(t, ts.URL+"?"+ProtocolParam+"="+SubprotocolV2)
	var events []string
	var ev strings.Builder
	for len(events) < 4 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(line, ":"):
			t.Fatalf("comment line %q on a v2 stream", line)
		case line == "\n":
			events = append(events, ev.String())
			ev.Reset()
		case strings.HasPrefix(line, "retry:"):
		default:
			ev.WriteString(line)
		}
	}
	if !strings.HasPrefix(events[0], "event: "+HelloEvent+"\n") {
		t.Fatalf("first event %q", events[0])
	}
	for _, e := range events[1:] {
		if e != "data: heartbeat\ndata: 20\n" {
			t.Fatalf("event %q, want a heartbeat without id", e)
		}
	}
}

// realtime.v1 sockets get no heartbeat messages (a v1 client would take
// one for a message), nor does any socket with a negative Heartbeat.
func TestHeartbeatMessageV1AndOff(t *testing.T) {
	ts := newTestServer(t, &Options{Heartbeat: 10 * time.Millisecond}, nil)
	wc := dialWS(t, ts, wsDial{})
	s := ts.next(t)
	go func() {
		time.Sleep(100 * time.Millisecond) // heartbeats would be due; the read answers the pings
		s.Send("only")
	}()
	if _, data, _ := wc.read(t); data != "only" {
		t.Fatalf("v1 got %q", data)
	}

	off := newTestServer(t, &Options{Heartbeat: -1}, nil)
	wc = dialWS(t, off, wsDial{v2: true})
	wc.raw = true
	off.next(t).Send("only")
	if p := wc.readRaw(t); p != "\nmessage\nonly" {
		t.Fatalf("with Heartbeat -1 got %q", p)
	}
}
