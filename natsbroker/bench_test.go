package natsbroker

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/realtime-go/realtime"
)

// BenchmarkPublish: one Publish (one JetStream publish and its ack) of a
// 100-byte message to a file-stored stream, with and without a key.
func BenchmarkPublish(b *testing.B) {
	s := startServer(b)
	br := dialBroker(b, s, nil)
	ctx := context.Background()
	text := strings.Repeat("x", 100)
	for _, keyed := range []bool{false, true} {
		name := "nokey"
		if keyed {
			name = "key"
		}
		b.Run(name, func(b *testing.B) {
			if _, err := br.Publish(ctx, name, text, ""); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				key := ""
				if keyed {
					key = strconv.Itoa(i)
				}
				if _, err := br.Publish(ctx, name, text, key); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPublishToFollow: from a Publish on one connection until a
// Follow on another delivers it, one message at a time. ns/op is the
// mean; p50 and p99 are reported too.
func BenchmarkPublishToFollow(b *testing.B) {
	s := startServer(b)
	pub := dialBroker(b, s, nil)
	sub := dialBroker(b, s, nil)
	ctx, cancel := context.WithCancel(context.Background())
	start, err := pub.Publish(ctx, "ptf", "start", "")
	if err != nil {
		b.Fatal(err)
	}
	got := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- sub.Follow(ctx, "ptf", start, func(realtime.Entry) { got <- struct{}{} })
	}()
	defer func() { cancel(); <-done }()
	text := strings.Repeat("x", 100)
	lat := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if _, err := pub.Publish(ctx, "ptf", text, ""); err != nil {
			b.Fatal(err)
		}
		<-got
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
}

// BenchmarkSince: a resume 10 messages behind (a consumer made, read and
// deleted), and one at the latest position (the stream's state only).
func BenchmarkSince(b *testing.B) {
	s := startServer(b)
	br := dialBroker(b, s, nil)
	ctx := context.Background()
	var last realtime.Position
	for range 20 {
		var err error
		if last, err = br.Publish(ctx, "since", strings.Repeat("x", 100), ""); err != nil {
			b.Fatal(err)
		}
	}
	for _, behind := range []uint64{10, 0} {
		b.Run(strconv.FormatUint(behind, 10)+"-behind", func(b *testing.B) {
			pos := realtime.Position{Epoch: last.Epoch, Offset: last.Offset - behind}
			b.ReportAllocs()
			for b.Loop() {
				entries, _, err := br.Since(ctx, "since", pos)
				if err != nil || uint64(len(entries)) != behind {
					b.Fatal(len(entries), err)
				}
			}
		})
	}
}
