package obstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/client"
	"github.com/realtime-go/realtime/websocket"
)

// The size of the scripted session.
const (
	PerTransport = 3 // clients on each transport, besides the special ones
	Messages     = 5 // messages published to the channel
)

// Want is what the scripted session did, for an adapter to compare with
// its metrics.
type Want struct {
	Connections map[realtime.Transport]int // sockets opened
	Open        map[realtime.Transport]int // sockets open when check runs
	Reconnects  int                        // sockets whose client presented a last event id
	Refusals    int                        // WebSocket handshakes refused (the fallback's)
	Fallbacks   int
	Failed      int // resumes that failed
	MessagesIn  int
	BytesIn     int64
	MessagesOut int
	BytesOut    int64
	Drops       int // messages dropped by the overflow
	Closed1013  int // WebSocket sockets closed for overflow
	Publishes   int
}

// Session runs the scripted session on a hub observed by obs: Go clients
// on each transport, one that falls back to EventSource through a proxy
// that drops the Upgrade header, one whose resume fails, messages both
// ways, and one socket whose queue overflows. Then check runs with what
// the session did, while the sockets are still open (it should poll its
// metrics until they match: a count may land just after a client saw its
// message). Session closes everything before it returns.
func Session(t *testing.T, obs *realtime.Observer, check func(Want)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const channel = "chat"
	hub := realtime.NewHub(&realtime.HubOptions{Observer: obs})
	defer hub.Close()
	in := make(chan string, 64)
	rt := realtime.Handler(&realtime.Options{Hub: hub, Channels: []string{channel},
		OnMessage: func(ctx context.Context, s *realtime.Socket, text string) { in <- text },
	}, nil)
	overflow := realtime.Handler(&realtime.Options{Hub: hub, MaxQueue: 1,
		OnConnect: func(ctx context.Context, s *realtime.Socket) error {
			// The writer has not started: the second message overflows.
			s.Send("a")
			s.Send("b")
			return nil
		},
	}, nil)
	mux := http.NewServeMux()
	mux.Handle("/rt", rt)
	mux.Handle("/overflow", overflow)
	mux.Handle("/strip", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A proxy that drops the Upgrade header, as nginx does by default.
		r.Header.Del("Upgrade")
		r.Header.Del("Connection")
		rt.ServeHTTP(w, r)
	}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	var w Want
	w.Connections = map[realtime.Transport]int{}
	w.Open = map[realtime.Transport]int{}
	var socks []*client.Socket
	defer func() {
		for _, s := range socks {
			s.Close()
		}
	}()
	open := func(path string, o client.SocketOptions) *client.Socket {
		t.Helper()
		opened := make(chan client.OpenInfo, 1)
		o.OnOpen = func(info client.OpenInfo) {
			select {
			case opened <- info:
			default:
			}
		}
		s, err := new(client.Dialer).Socket(srv.URL+path, &o)
		if err != nil {
			t.Fatal(err)
		}
		socks = append(socks, s)
		select {
		case info := <-opened:
			tr := realtime.TransportWebSocket
			if info.Transport == client.TransportEventSource {
				tr = realtime.TransportEventSource
			}
			w.Connections[tr]++
			w.Open[tr]++
		case <-ctx.Done():
			t.Fatalf("%s did not open", path)
		}
		return s
	}
	for range PerTransport {
		open("/rt", client.SocketOptions{Transport: client.TransportWebSocket})
		open("/rt", client.SocketOptions{Transport: client.TransportEventSource})
	}
	open("/strip", client.SocketOptions{})
	w.Fallbacks, w.Refusals = 1, 1
	open("/rt", client.SocketOptions{Transport: client.TransportWebSocket, LastEventID: "not-a-cursor"})
	w.Failed, w.Reconnects = 1, 1

	// Messages in: every WebSocket client of /rt says hello.
	for _, s := range socks {
		if s.Transport() != client.TransportWebSocket {
			continue
		}
		if err := s.Send(ctx, "hello"); err != nil {
			t.Fatal(err)
		}
		w.MessagesIn++
		w.BytesIn += int64(len("message\nhello")) // the v2 request
	}
	for range w.MessagesIn {
		select {
		case <-in:
		case <-ctx.Done():
			t.Fatal("OnMessage did not get every message")
		}
	}

	// Messages out: every socket gets every message.
	for i := range Messages {
		text := "broadcast " + strconv.Itoa(i)
		if _, err := hub.Publish(ctx, channel, text); err != nil {
			t.Fatal(err)
		}
		w.Publishes++
		w.MessagesOut += len(socks)
		w.BytesOut += int64(len(socks) * len(text))
	}
	for _, s := range socks {
		for got := 0; got < Messages; {
			m, err := s.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if m.Kind == client.KindMessage && m.Channel == channel {
				got++
			}
		}
	}

	// The overflow: the socket opens, and closes with 1013 at once.
	if code, err := overflowed(ctx, srv.URL+"/overflow"); code != websocket.StatusTryAgainLater {
		t.Fatalf("overflow: close %d (%v), want 1013", code, err)
	}
	w.Connections[realtime.TransportWebSocket]++
	w.Drops, w.Closed1013 = 2, 1

	check(w)
}

// overflowed opens a realtime.v1 WebSocket and reads until it closes.
func overflowed(ctx context.Context, httpURL string) (websocket.StatusCode, error) {
	u, _ := url.Parse(httpURL)
	u.Scheme = "ws"
	nc, err := new(net.Dialer).DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return 0, err
	}
	c, _, err := websocket.NewClient(ctx, nc, u, &websocket.ClientOptions{Subprotocols: []string{realtime.Subprotocol}})
	if err != nil {
		return 0, err
	}
	defer c.CloseNow()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			if !errors.Is(err, net.ErrClosed) {
				return 0, fmt.Errorf("not a close: %w", err)
			}
			return websocket.CloseStatus(err), err
		}
	}
}

// Eventually calls f until it returns nil, and fails t with its last
// error if it does not within 10 s.
func Eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
