package client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"time"

	"github.com/realtime-go/realtime/client"
	"github.com/realtime-go/realtime/eventsource"
	"github.com/realtime-go/realtime/proxy"
	"github.com/realtime-go/realtime/websocket"
)

// Dial a WebSocket server and exchange a message.
func ExampleDialer_Dial() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"echo.v1"}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		typ, p, err := c.Read(context.Background())
		if err == nil {
			c.Write(context.Background(), typ, p)
			c.Close(websocket.StatusNormalClosure, "")
		}
	}))
	defer srv.Close()

	d := &client.Dialer{
		Proxy:        proxy.Direct, // ignore HTTP_PROXY and friends here
		Subprotocols: []string{"echo.v1"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := d.Dial(ctx, "ws"+srv.URL[len("http"):])
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	c.Write(ctx, websocket.MessageText, []byte("hello"))
	_, p, _ := c.Read(ctx)
	fmt.Println(resp.StatusCode, c.Subprotocol(), string(p))
	// Output: 101 echo.v1 hello
}

// A refused handshake leaves the response for the caller, the cue to
// fall back to EventSource.
func ExampleDialer_Dial_refused() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no websockets here", http.StatusForbidden)
	}))
	defer srv.Close()

	_, resp, err := client.Dial(context.Background(), "ws"+srv.URL[len("http"):], &client.Dialer{Proxy: proxy.Direct})
	if errors.Is(err, websocket.ErrBadHandshake) {
		fmt.Println("refused with", resp.StatusCode)
	}
	// Output: refused with 403
}

// Read server-sent events; the EventSource reconnects by itself and
// resumes after the last event id.
func ExampleDialer_EventSource() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := eventsource.Accept(w, r, &eventsource.Options{Retry: 10 * time.Millisecond})
		if err != nil {
			return
		}
		defer s.Close()
		// Two events per connection, then the stream ends.
		n, _ := strconv.Atoi(s.LastEventID())
		s.Send(r.Context(), eventsource.Event{ID: strconv.Itoa(n + 1), Data: "tick"})
		s.Send(r.Context(), eventsource.Event{ID: strconv.Itoa(n + 2), Data: "tock"})
	}))
	defer srv.Close()

	d := &client.Dialer{Proxy: proxy.Direct}
	es, err := d.EventSource(srv.URL, &client.EventSourceOptions{
		IdleTimeout: 45 * time.Second, // three missed keep-alives
	})
	if err != nil {
		log.Fatal(err)
	}
	defer es.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 4 {
		ev, err := es.Next(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.ID, ev.Data)
	}
	// Output:
	// 1 tick
	// 2 tock
	// 3 tick
	// 4 tock
}

// Reach servers through an HTTPS proxy with credentials, trusting a
// private CA for the proxy only.
func ExampleDialer_proxy() {
	proxyURL, _ := url.Parse("https://alice:s3cret@proxy.corp.example:3129")
	d := &client.Dialer{
		Proxy:              http.ProxyURL(proxyURL),
		ProxyTLSConfig:     &tls.Config{ /* RootCAs: the corporate CA */ },
		ProxyConnectHeader: http.Header{"X-Team": {"realtime"}},
		HandshakeTimeout:   15 * time.Second,
	}
	c, _, err := d.Dial(context.Background(), "wss://chat.example/socket")
	if errors.Is(err, proxy.ErrAuth) {
		log.Fatal("the proxy refused the credentials")
	}
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
}
