package websocket_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"

	"github.com/realtime-go/realtime/websocket"
)

// An echo server under net/http, and a client that talks to it.
func ExampleAccept() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"echo.v1"}})
		if err != nil {
			return // Accept wrote the error response
		}
		defer c.CloseNow()
		ctx := context.Background()
		for {
			typ, p, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, p); err != nil {
				return
			}
		}
	}))
	defer srv.Close()

	u, _ := url.Parse("ws" + srv.URL[len("http"):])
	nc, err := net.Dial("tcp", u.Host)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.NewClient(ctx, nc, u, &websocket.ClientOptions{Subprotocols: []string{"echo.v1"}})
	if err != nil {
		log.Fatal(err)
	}
	c.Write(ctx, websocket.MessageText, []byte("hello"))
	typ, p, err := c.Read(ctx)
	fmt.Println(typ, string(p), err, c.Subprotocol())
	fmt.Println(c.Close(websocket.StatusNormalClosure, "done"))
	// Output:
	// text hello <nil> echo.v1
	// <nil>
}

// The reader learns why the peer closed from CloseStatus.
func ExampleCloseStatus() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		c.Close(websocket.StatusGoingAway, "restarting")
	}))
	defer srv.Close()

	u, _ := url.Parse("ws" + srv.URL[len("http"):])
	nc, _ := net.Dial("tcp", u.Host)
	c, _, err := websocket.NewClient(context.Background(), nc, u, nil)
	if err != nil {
		log.Fatal(err)
	}
	_, _, err = c.Read(context.Background())
	fmt.Println(int(websocket.CloseStatus(err)), err)
	// Output:
	// 1001 websocket: closed by peer: 1001 (going away) "restarting"
}

// Ping returns the round-trip time once the pong for this ping arrives;
// a goroutine must be reading meanwhile.
func ExampleConn_Ping() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.Read(context.Background()) // answers pings until the client closes
	}))
	defer srv.Close()

	u, _ := url.Parse("ws" + srv.URL[len("http"):])
	nc, _ := net.Dial("tcp", u.Host)
	c, _, err := websocket.NewClient(context.Background(), nc, u, nil)
	if err != nil {
		log.Fatal(err)
	}
	go c.Read(context.Background()) // sees the pongs
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rtt, err := c.Ping(ctx, []byte("are you there"))
	fmt.Println(rtt > 0, err)
	c.Close(websocket.StatusNormalClosure, "")
	// Output:
	// true <nil>
}
