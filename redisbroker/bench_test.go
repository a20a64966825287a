package redisbroker

import (
	"context"
	"strconv"
	"testing"

	"github.com/realtime-go/realtime"
)

// BenchmarkPublish publishes with a key (as realtime.Hub does), one at
// a time, to a local redis-server on a Unix socket: one EVALSHA round
// trip each.
func BenchmarkPublish(b *testing.B) {
	s := startRedis(b, false)
	br := newTestBroker(b, s, nil)
	ctx := context.Background()
	text := "hello, world: a chat message of some length"
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := br.Publish(ctx, "bench", text, "k"+strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublishToFollow is the latency from a publish on one Broker
// (node) to the delivery by Follow on another, one message at a time:
// the EVALSHA, the XREAD it wakes, and the delivery.
func BenchmarkPublishToFollow(b *testing.B) {
	s := startRedis(b, false)
	pub := newTestBroker(b, s, nil)
	sub := newTestBroker(b, s, nil)
	ctx, cancel := context.WithCancel(context.Background())
	_, start, err := sub.Since(ctx, "bench", realtime.Position{})
	if err != nil {
		b.Fatal(err)
	}
	got := make(chan realtime.Entry, 1)
	done := make(chan error, 1)
	go func() { done <- sub.Follow(ctx, "bench", start, func(e realtime.Entry) { got <- e }) }()
	defer func() {
		cancel()
		<-done
	}()
	text := "hello, world: a chat message of some length"
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		p, err := pub.Publish(ctx, "bench", text, "k"+strconv.Itoa(i))
		if err != nil {
			b.Fatal(err)
		}
		select {
		case e := <-got:
			if e.Position != p {
				b.Fatalf("delivered %v, published %v", e.Position, p)
			}
		case err := <-done:
			b.Fatal(err)
		}
	}
}
