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
// within WriteTimeout, on both transports.
func TestWriteTimeout(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.String(), func(t *testing.T) {
			hub := newHub(t, &HubOptions{MaxHistory: 1})
			opts := &Options{Hub: hub, Channels: []string{chat}, WriteTimeout: 200 * time.Millisecond, QueuePolicy: QueueDropOldest, Heartbeat: -1}
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
		})
	}
}
