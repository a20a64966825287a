package natsbroker_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/natsbroker"
)

// Two nodes share a channel through a nats-server run with -js: what one
// publishes, the other follows, numbered by the server.
func ExampleDial() {
	node1, err := natsbroker.Dial("nats://127.0.0.1:4222", &natsbroker.Options{
		MaxHistory:    10000,
		MaxHistoryAge: time.Hour,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer node1.Close()
	node2, err := natsbroker.Dial("nats://127.0.0.1:4222", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer node2.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, latest, err := node2.Since(ctx, "chat", realtime.Position{})
	if err != nil {
		log.Fatal(err)
	}
	go node2.Follow(ctx, "chat", latest, func(e realtime.Entry) {
		fmt.Println(e.Position, e.Text)
	})
	// The key makes a retry after a lost acknowledgment harmless.
	if _, err := node1.Publish(ctx, "chat", "hello", "msg-1"); err != nil {
		log.Fatal(err)
	}
}
