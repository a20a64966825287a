package websocket_test

import (
	"context"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/realtime-go/realtime/websocket"
)

// A production echo server without net/http: each handshake must finish
// within 5 s, dead peers are found by a heartbeat, and an interrupt
// closes every connection with 1001 before the program exits.
func ExampleServer() {
	ln, err := net.Listen("tcp", ":8080")
	if err != nil {
		log.Fatal(err)
	}
	srv := &websocket.Server{
		Options: &websocket.AcceptOptions{
			OriginPatterns: []string{"example.com"},
			ConnOptions:    websocket.ConnOptions{Heartbeat: 30 * time.Second},
		},
		HandshakeTimeout: 5 * time.Second,
		Handler: func(c *websocket.Conn, r *http.Request) {
			for {
				typ, p, err := c.Read(context.Background())
				if err != nil {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err = c.Write(ctx, typ, p)
				cancel()
				if err != nil {
					return
				}
			}
		},
	}
	go func() {
		if err := srv.Serve(ln); err != websocket.ErrServerClosed {
			log.Fatal(err)
		}
	}()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	<-stop
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Print(err)
	}
}
