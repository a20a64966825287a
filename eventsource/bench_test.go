package eventsource

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

var benchEvent = Event{Type: "update", ID: "1234567", Data: strings.Repeat("x", 100)}

func BenchmarkAppendEvent(b *testing.B) {
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchEvent.Data)))
	for b.Loop() {
		buf, _ = AppendEvent(buf[:0], benchEvent)
	}
}

func BenchmarkAppendEventMultiline(b *testing.B) {
	ev := Event{Data: strings.Repeat(strings.Repeat("y", 79)+"\n", 50)}
	buf := make([]byte, 0, 8192)
	b.ReportAllocs()
	b.SetBytes(int64(len(ev.Data)))
	for b.Loop() {
		buf, _ = AppendEvent(buf[:0], ev)
	}
}

func BenchmarkDecoder(b *testing.B) {
	for _, size := range []struct {
		name string
		data string
	}{
		{"100B", strings.Repeat("d", 100)},
		{"8KiB-multiline", strings.Repeat(strings.Repeat("m", 127)+"\n", 64)},
	} {
		b.Run(size.name, func(b *testing.B) {
			one, _ := AppendEvent(nil, Event{Type: "update", ID: "1234567", Data: size.data})
			r := &repeatReader{p: one}
			d := NewDecoder(r, nil)
			b.ReportAllocs()
			b.SetBytes(int64(len(one)))
			for b.Loop() {
				if _, err := d.Next(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkStreamSend(b *testing.B) {
	for _, proto := range protos {
		b.Run(proto, func(b *testing.B) {
			ready := make(chan *Stream, 1)
			srv := startServer(b, proto, &Options{Heartbeat: -1}, func(s *Stream) { ready <- s })
			resp := open(b, context.Background(), srv, proto, "/", nil)
			defer resp.Body.Close()
			copied := make(chan struct{})
			go func() {
				io.Copy(io.Discard, resp.Body)
				close(copied)
			}()
			s := <-ready
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(int64(len(benchEvent.Data)))
			for b.Loop() {
				if err := s.Send(ctx, benchEvent); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			s.Close()
			<-copied
		})
	}
}

func BenchmarkStreamSendEncodedFanOut(b *testing.B) {
	// One event to 100 streams: the cost of a broadcast, per stream.
	const n = 100
	ready := make(chan *Stream, n)
	srv := startServer(b, "HTTP/1.1", &Options{Heartbeat: -1}, func(s *Stream) { ready <- s })
	streams := make([]*Stream, n)
	var copies []chan struct{}
	for i := range streams {
		resp := open(b, context.Background(), srv, "HTTP/1.1", "/", nil)
		defer resp.Body.Close()
		done := make(chan struct{})
		copies = append(copies, done)
		go func() {
			io.Copy(io.Discard, resp.Body)
			close(done)
		}()
		streams[i] = <-ready
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		e, _ := Encode(benchEvent)
		for _, s := range streams {
			if err := s.SendEncoded(ctx, e); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/stream")
	b.StopTimer()
	for i, s := range streams {
		s.Close()
		<-copies[i]
	}
}

// discardWriter is a ResponseWriter that drops what is written.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Flush()                      {}

// BenchmarkBrokerPublish measures one Publish with N streams subscribed
// and waiting for it. The Broker runs no writers here, so that only
// Publish is timed; between rounds the streams are moved up to the
// newest event with the timer stopped. The cost does not grow with N.
func BenchmarkBrokerPublish(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("streams=%d", n), func(b *testing.B) {
			br := NewBroker(nil)
			br.base = 0
			subs := make([]*subscriber, n)
			for i := range subs {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.Header.Set("Accept", "text/event-stream")
				s, err := Accept(&discardWriter{h: http.Header{}}, r, &Options{Heartbeat: -1})
				if err != nil {
					b.Fatal(err)
				}
				if subs[i], err = br.join(context.Background(), s); err != nil {
					b.Fatal(err)
				}
			}
			e, _ := Encode(benchEvent)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if i%128 == 127 {
					b.StopTimer()
					br.mu.Lock()
					for _, sub := range subs {
						br.unlink(sub)
						sub.next = br.head
						br.list(sub)
					}
					br.evict()
					br.mu.Unlock()
					b.StartTimer()
				}
				if err := br.PublishEncoded(e); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			for _, sub := range subs {
				br.leave(sub)
				sub.s.Close()
			}
			br.Close()
		})
	}
}
