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

// A chat client: send a line, read what the room broadcasts.
func ExampleDialer_Socket() {
	hub := realtime.NewHub(nil)
	defer hub.Close()
	srv := httptest.NewServer(realtime.Handler(&realtime.Options{
		Hub:      hub,
		Channels: []string{"room"},
		OnMessage: func(ctx context.Context, s *realtime.Socket, text string) {
			hub.Publish(ctx, "room", text+" (via "+s.Transport().String()+")")
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
	m, err := s.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Data)
	// Output:
	// open over websocket
	// hello (via websocket)
}

// Behind a proxy that drops the Upgrade header, as nginx does unless told
// otherwise, the server answers the WebSocket handshake with 426 and the
// Socket falls back to EventSource and POSTs.
func ExampleDialer_Socket_fallback() {
	hub := realtime.NewHub(nil)
	defer hub.Close()
	rt := realtime.Handler(&realtime.Options{
		Hub:      hub,
		Channels: []string{"room"},
		OnMessage: func(ctx context.Context, s *realtime.Socket, text string) {
			hub.Publish(ctx, "room", text+" (via "+s.Transport().String()+")")
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
	m, _ := s.Next(ctx)
	fmt.Println(m.Data)
	// Output:
	// websocket refused with 426
	// open over eventsource
	// hello (via eventsource)
}

// Read every message with a range loop, and keep the last event id to
// resume from after a restart of the program. The loop ends when the
// server closes with a code that does not call for reconnecting (here,
// 4000 once the client said bye), or when ctx ends.
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
	for m, err := range s.All(ctx) {
		if err != nil {
			fmt.Println("stopped with code", int(websocket.CloseStatus(err)))
			break
		}
		fmt.Println(m.Data, m.ID == s.LastEventID())
		if m.Data == "three" {
			s.Send(ctx, "bye")
		}
	}
	// Output:
	// one true
	// two true
	// three true
	// stopped with code 4000
}
