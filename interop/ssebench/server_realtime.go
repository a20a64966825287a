package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/eventsource"
)

func init() {
	register(server{
		name:  "realtime",
		pkg:   "github.com/realtime-go/realtime",
		notes: "eventsource.Broker as the http.Handler: Publish appends the event (encoded once) to one ring shared by all streams, and the Broker's writer goroutines take each stream with events waiting and write all of them with one flush (they also run Accept, so the handler's goroutine only waits); the publisher calls Broker.Wait, then Broker.Publish of an Event with ID and Data; default bounds (256 events, 4 MiB waiting per stream), no History, as r3labs runs without AutoReplay",
		start: startBroker,
	})
	register(server{
		name:  "realtime-hub",
		pkg:   "github.com/realtime-go/realtime",
		notes: "realtime.Handler with a realtime.Hub, the clients connecting with Accept: text/event-stream (the EventSource transport; the hello event is not counted); QueuePolicy QueueDropOldest; the publisher calls Hub.Publish to the one channel of every socket, which never waits for a socket and has no way to: a flat-out publisher overruns the queues, and the events dropped show as lost (the default policy, QueueClose, would close the sockets instead)",
		start: startHub,
	})
}

func startBroker(serverConfig) (http.Handler, func(uint64, []byte), func() string) {
	b := eventsource.NewBroker(nil)
	ctx := context.Background()
	publish := func(seq uint64, payload []byte) {
		b.Wait(ctx)
		if _, err := b.Publish(eventsource.Event{ID: strconv.FormatUint(seq, 10), Data: string(payload)}); err != nil {
			panic(err)
		}
	}
	return b, publish, nil
}

func startHub(serverConfig) (http.Handler, func(uint64, []byte), func() string) {
	hub := realtime.NewHub(nil)
	h := realtime.Handler(&realtime.Options{Hub: hub, Channels: []string{"bench"}, QueuePolicy: realtime.QueueDropOldest}, nil)
	publish := func(seq uint64, payload []byte) {
		if _, err := hub.Publish(context.Background(), "bench", string(payload)); err != nil {
			panic(err)
		}
	}
	stats := func() string { return fmt.Sprintf("sockets=%d", hub.Len()) }
	return h, publish, stats
}
