package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/client"
	"github.com/realtime-go/realtime/proxy"
	"github.com/realtime-go/realtime/websocket"
)

// A chat client: send a line, read what the room publishes. The server
// puts every socket in the channel "chat" and tells the client so.
func ExampleDialer_Socket() {
	hub := realtime.NewHub(nil)
	defer hub.Close()
	srv := httptest.NewServer(realtime.Handler(&realtime.Options{
		Hub:      hub,
		Channels: []string{"chat"},
		OnMessage: func(ctx context.Context, s *realtime.Socket, text string) {
			hub.Publish(ctx, "chat", text+" (via "+s.Transport().String()+")")
		},
	}, nil))
	defer srv.Close()
	defer hub.Shutdown(context.Background())

	d := &client.Dialer{Proxy: proxy.Direct} // ignore HTTP_PROXY and friends here
	s, err := d.Socket(srv.URL, &client.SocketOptions{
		OnOpen: func(o client.OpenInfo) { fmt.Println("open over", o.Transport) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Send(ctx, "hello"); err != nil { // waits for the connection
		log.Fatal(err)
	}
	for range 2 {
		m, err := s.Next(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(m.Kind, m.Channel, m.Data)
	}
	// Output:
	// open over websocket
	// subscribed chat fresh
	// message chat hello (via websocket)
}

// Channels a client asks for: the server's OnSubscribe and OnPublish
// decide. The Socket asks for its subscriptions again after every
// reconnection, and resumes each where it was. Answers come in order
// with the messages.
func ExampleSocket_Subscribe() {
	hub := realtime.NewHub(nil)
	defer hub.Close()
	srv := httptest.NewServer(realtime.Handler(&realtime.Options{
		Hub: hub,
		OnSubscribe: func(_ context.Context, _ *realtime.Socket, channel string) error {
			if channel == "staff" {
				return errors.New("staff only")
			}
			return nil
		},
		OnPublish: func(context.Context, *realtime.Socket, string, string) error { return nil },
	}, nil))
	defer srv.Close()
	defer hub.Shutdown(context.Background())

	d := &client.Dialer{Proxy: proxy.Direct}
	s, err := d.Socket(srv.URL, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	next := func() {
		m, err := s.Next(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(m.Kind, m.Channel, m.Data)
	}
	s.Subscribe(ctx, "room")
	next()
	s.Subscribe(ctx, "staff")
	next()
	s.Publish(ctx, "room", "hi all")
	next()
	fmt.Println(s.Subscriptions())
	// Output:
	// subscribed room fresh
	// unsubscribed staff staff only
	// message room hi all
	// [room]
}

// Behind a proxy that drops the Upgrade header, as nginx does unless told
// otherwise, the server answers the WebSocket handshake with 426 and the
// Socket falls back to EventSource and POSTs.
func ExampleDialer_Socket_fallback() {
	hub := realtime.NewHub(nil)
	defer hub.Close()
	rt := realtime.Handler(&realtime.Options{
		Hub:      hub,
		Channels: []string{"chat"},
		OnMessage: func(ctx context.Context, s *realtime.Socket, text string) {
			hub.Publish(ctx, "chat", text+" (via "+s.Transport().String()+")")
		},
	}, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("Upgrade") // the proxy's doing
		rt.ServeHTTP(w, r)
	}))
	defer srv.Close()
	defer hub.Shutdown(context.Background())

	d := &client.Dialer{Proxy: proxy.Direct}
	s, err := d.Socket(srv.URL, &client.SocketOptions{
		OnOpen: func(o client.OpenInfo) {
			var he *websocket.HandshakeError
			if errors.As(o.WebSocketErr, &he) {
				fmt.Println("websocket refused with", he.Status)
			}
			fmt.Println("open over", o.Transport)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.Send(ctx, "hello")
	for m, err := range s.All(ctx) {
		if err == nil && m.Kind == client.KindMessage {
			fmt.Println(m.Data)
			break
		}
	}
	// Output:
	// websocket refused with 426
	// open over eventsource
	// hello (via eventsource)
}

// Read every message with a range loop, and keep the last event id to
// resume from after a restart of the program. The loop ends when the
// server closes with a code that does not call for reconnecting (here,
// 4000 when the client says it has read three messages), or when ctx
// ends.
func ExampleSocket_All() {
	hub := realtime.NewHub(nil)
	defer hub.Close()
	srv := httptest.NewServer(realtime.Handler(&realtime.Options{
		Hub:      hub,
		Channels: []string{"news"},
		OnMessage: func(_ context.Context, s *realtime.Socket, text string) {
			s.CloseWith(4000, "that is all")
		},
	}, func(ctx context.Context, s *realtime.Socket) {
		for _, text := range []string{"one", "two", "three"} {
			hub.Publish(ctx, "news", text)
		}
		<-ctx.Done()
	}))
	defer srv.Close()
	defer hub.Shutdown(context.Background())

	d := &client.Dialer{Proxy: proxy.Direct}
	s, err := d.Socket(srv.URL, nil) // LastEventID: a saved id, to resume
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := 0
	for m, err := range s.All(ctx) {
		if err != nil {
			fmt.Println("stopped with code", int(websocket.CloseStatus(err)))
			break
		}
		if m.Kind != client.KindMessage {
			continue // "subscribed news fresh"
		}
		fmt.Println(m.Data, m.ID == s.LastEventID())
		if n++; n == 3 {
			s.Send(ctx, "done")
		}
	}
	// Output:
	// one true
	// two true
	// three true
	// stopped with code 4000
}
