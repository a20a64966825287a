package redisbroker_test

import (
	"context"
	"log"
	"net/http"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/redisbroker"
)

// Two processes (nodes) running this share the channel "chat": a
// message published on one reaches the sockets of both, and a client
// resumes on either.
func ExampleOpen() {
	b, err := redisbroker.Open("redis://127.0.0.1:6379/0", &redisbroker.Options{MaxHistory: 1000})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	hub := realtime.NewHub(&realtime.HubOptions{Broker: b})
	defer hub.Close()
	http.Handle("/chat", realtime.Handler(&realtime.Options{
		Hub:      hub,
		Channels: []string{"chat"},
		OnMessage: func(ctx context.Context, s *realtime.Socket, text string) {
			hub.Publish(ctx, "chat", text)
		},
	}, nil))
	log.Fatal(http.ListenAndServe(":8080", nil))
}
