package realtime_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/eventsource"
	"github.com/realtime-go/realtime/websocket"
)

// A server that answers each client on whichever transport it came, and
// a Go client on WebSocket that speaks the wire protocol by hand.
func ExampleHandler() {
	h := realtime.Handler(&realtime.Options{
		OnMessage: func(ctx context.Context, s *realtime.Socket, text string) {
			s.Send("you said " + text + " over " + s.Transport().String())
		},
	}, nil)
	srv := httptest.NewServer(h)
	defer srv.Close()

	ctx := context.Background()
	u, _ := url.Parse(strings.Replace(srv.URL, "http", "ws", 1))
	nc, err := net.Dial("tcp", u.Host)
	if err != nil {
		panic(err)
	}
	c, _, err := websocket.NewClient(ctx, nc, u, &websocket.ClientOptions{Subprotocols: []string{realtime.Subprotocol}})
	if err != nil {
		panic(err)
	}
	defer c.CloseNow()
	_, pos, _ := c.Read(ctx) // the position; empty without a hub
	c.Write(ctx, websocket.MessageText, []byte("hi"))
	_, msg, _ := c.Read(ctx) // "ID\nDATA"; a Send has an empty ID
	fmt.Printf("position %q, message %q\n", pos, msg)
	c.Close(websocket.StatusNormalClosure, "")
	// Output: position "", message "\nyou said hi over websocket"
}

// A client that reconnects with the id of the last message it got
// receives what it missed, here on an EventSource stream.
func ExampleHub() {
	hub := realtime.NewHub(nil)
	defer hub.Close()
	srv := httptest.NewServer(realtime.Handler(&realtime.Options{Hub: hub, Channels: []string{"news"}}, nil))
	defer srv.Close()
	ctx := context.Background()

	connect := func(lastID string) (*http.Response, *eventsource.Decoder) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Last-Event-ID", lastID)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		dec := eventsource.NewDecoder(resp.Body, nil)
		dec.Next() // realtime.hello: the position, and the session token for POSTs
		return resp, dec
	}
	resp, dec := connect("")
	hub.Publish(ctx, "news", "one")
	seen, _ := dec.Next()
	resp.Body.Close()

	hub.Publish(ctx, "news", "two")
	hub.Publish(ctx, "news", "three")
	resp, dec = connect(seen.ID)
	defer resp.Body.Close()
	for range 2 {
		ev, _ := dec.Next()
		fmt.Println(ev.Type, ev.Data)
	}
	// Output:
	// message two
	// message three
}

// Hub.Shutdown runs once the server's listeners are closed; clients
// reconnect elsewhere, or to this server's next listener, and resume.
func ExampleHub_Shutdown() {
	hub := realtime.NewHub(nil)
	defer hub.Close()
	srv := &http.Server{Handler: realtime.Handler(&realtime.Options{Hub: hub}, nil)}
	srv.RegisterOnShutdown(func() { hub.Shutdown(context.Background()) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(ln)
	// ... serve clients, then:
	fmt.Println(srv.Shutdown(context.Background()))
	// Output: <nil>
}

// OnConnect authorizes each socket and joins it to the channels it may
// read; Publish reaches them on every node. A realtime.v2 client sees
// the channel of each message.
func ExampleHub_Publish() {
	hub := realtime.NewHub(nil)
	defer hub.Close()
	srv := httptest.NewServer(realtime.Handler(&realtime.Options{
		Hub: hub,
		OnConnect: func(ctx context.Context, s *realtime.Socket) error {
			if s.Request().URL.Query().Get("key") != "secret" {
				return errors.New("who are you?") // 403
			}
			return s.Join(ctx, "news")
		},
	}, nil))
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"?key=secret&protocol=realtime.v2", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	dec := eventsource.NewDecoder(resp.Body, nil)
	dec.Next() // realtime.hello
	hub.Publish(context.Background(), "news", "extra! extra!")
	for range 3 {
		ev, _ := dec.Next()
		fmt.Printf("%q\n", ev.Data)
	}
	// Output:
	// "heartbeat\n15000"
	// "subscribed news\nfresh"
	// "message news\nextra! extra!"
}
