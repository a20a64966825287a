package eventsource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realtime-go/realtime/internal/batchtest"
)

// countingWriter is a ResponseWriter that keeps what is written and
// counts the writes and flushes.
type countingWriter struct {
	h       http.Header
	body    bytes.Buffer
	writes  int
	flushes int
}

func (c *countingWriter) Header() http.Header                { return c.h }
func (c *countingWriter) WriteHeader(int)                    {}
func (c *countingWriter) SetWriteDeadline(t time.Time) error { return nil }
func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes++
	return c.body.Write(p)
}
func (c *countingWriter) FlushError() error {
	c.flushes++
	return nil
}

// countedStream is a stream on a countingWriter, with the counts and
// the body of the opening cleared.
func countedStream(t testing.TB) (*Stream, *countingWriter) {
	t.Helper()
	w := &countingWriter{h: http.Header{}}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Accept", "text/event-stream")
	s, err := Accept(w, r, &Options{Heartbeat: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	w.body.Reset()
	w.writes, w.flushes = 0, 0
	return s, w
}

// eventBatch builds a batch of n events, alternating events encoded by
// the batch and events encoded beforehand, and returns their wire form
// and the events.
func eventBatch(tb testing.TB, n, size int) (*Batch, []byte, []Event) {
	tb.Helper()
	var b Batch
	var want []byte
	var evs []Event
	for i := range n {
		ev := Event{ID: fmt.Sprint("id", i), Data: strings.Repeat(string(rune('a'+i%26)), size)}
		if i%3 == 2 {
			ev.Type = "other"
			ev.Data += "\nsecond line"
		}
		var err error
		if i%2 == 0 {
			err = b.Add(ev)
		} else {
			var e *EncodedEvent
			if e, err = Encode(ev); err == nil {
				err = b.AddEncoded(e)
			}
		}
		if err != nil {
			tb.Fatal(err)
		}
		want, _ = AppendEvent(want, ev)
		evs = append(evs, ev)
	}
	return &b, want, evs
}

// TestSendBatchOneWrite: a batch goes out byte for byte as its events, in
// order, with one write and one flush.
func TestSendBatchOneWrite(t *testing.T) {
	for _, n := range []int{1, 8, 64} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			s, w := countedStream(t)
			b, want, _ := eventBatch(t, n, 50)
			if b.Len() != n {
				t.Fatalf("Len = %d, want %d", b.Len(), n)
			}
			if err := s.SendBatch(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(w.body.Bytes(), want) {
				t.Fatalf("body:\n%q\nwant\n%q", w.body.Bytes(), want)
			}
			if w.writes != 1 || w.flushes != 1 {
				t.Fatalf("%d writes and %d flushes, want 1 and 1", w.writes, w.flushes)
			}
			// Reused after Reset, the batch holds only what follows.
			b.Reset()
			b.Add(Event{Data: "again"})
			w.body.Reset()
			if err := s.SendBatch(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			if got := w.body.String(); got != "data: again\n\n" {
				t.Fatalf("after Reset: %q", got)
			}
		})
	}
}

// TestSendBatchDecoded: a client decodes a batch's events in order, over
// HTTP/1.1 and HTTP/2.
func TestSendBatchDecoded(t *testing.T) {
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			ready := make(chan *Stream, 1)
			srv := startServer(t, proto, &Options{Heartbeat: -1}, func(s *Stream) { ready <- s })
			resp := open(t, context.Background(), srv, proto, "/", nil)
			defer resp.Body.Close()
			events := readEvents(resp.Body, nil)
			s := <-ready
			b, _, evs := eventBatch(t, 20, 3000)
			if err := s.SendBatch(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			for i, want := range evs {
				got := next(t, events)
				if want.Type == "" {
					want.Type = "message"
				}
				if got.Type != want.Type || got.ID != want.ID || got.Data != want.Data {
					t.Fatalf("event %d: %+v, want %+v", i, got, want)
				}
			}
			s.Close()
		})
	}
}

// TestSendBatchMisuse: a batch refuses an event it cannot encode and a
// nil encoded event, unchanged; an empty batch writes nothing.
func TestSendBatchMisuse(t *testing.T) {
	var b Batch
	if err := b.Add(Event{ID: "a\nb"}); !errors.Is(err, ErrInvalidField) {
		t.Fatalf("Add = %v, want ErrInvalidField", err)
	}
	if err := b.AddEncoded(nil); err == nil {
		t.Fatal("AddEncoded accepted nil")
	}
	if b.Len() != 0 {
		t.Fatalf("Len = %d after refusals", b.Len())
	}
	s, w := countedStream(t)
	if err := s.SendBatch(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	if w.writes != 0 || w.flushes != 0 {
		t.Fatalf("%d writes and %d flushes for an empty batch", w.writes, w.flushes)
	}
}

// TestSendBatchContext: a batch whose ctx had ended writes nothing and
// leaves the stream usable; after the stream ends, it fails with
// net.ErrClosed.
func TestSendBatchContext(t *testing.T) {
	s, w := countedStream(t)
	b, want, _ := eventBatch(t, 3, 10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.SendBatch(ctx, b); !errors.Is(err, context.Canceled) {
		t.Fatalf("SendBatch = %v, want context.Canceled", err)
	}
	if w.writes != 0 {
		t.Fatalf("%d writes with an ended ctx", w.writes)
	}
	if err := s.SendBatch(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.body.Bytes(), want) {
		t.Fatalf("body %q, want %q", w.body.Bytes(), want)
	}
	s.Close()
	if err := s.SendBatch(context.Background(), b); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("SendBatch after Close = %v, want net.ErrClosed", err)
	}
}

// TestSendBatchContextEndsMidWrite: a ctx that ends while a batch is cut
// short ends the stream; the events before the cut arrived whole.
func TestSendBatchContextEndsMidWrite(t *testing.T) {
	ready := make(chan *Stream, 1)
	srv := startServer(t, "HTTP/1.1", &Options{WriteTimeout: -1, Heartbeat: -1}, func(s *Stream) { ready <- s })
	conn := stalledClient(t, srv)
	defer conn.Close()
	s := <-ready
	var b Batch
	b.Add(Event{ID: "1", Data: "first"})
	b.Add(Event{ID: "2", Data: "second"})
	b.Add(Event{Data: strings.Repeat("y", 32<<20)}) // more than the socket buffers hold
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.SendBatch(ctx, &b); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SendBatch = %v, want context.DeadlineExceeded", err)
	}
	waitDone(t, s)
	if err := s.SendBatch(context.Background(), &b); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("SendBatch after the cut = %v, want net.ErrClosed", err)
	}
	// The response, chunked, holds the first two events whole.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	head, _ := io.ReadAll(io.LimitReader(conn, 4096))
	if i := bytes.Index(head, []byte("id: 1\ndata: first\n\nid: 2\ndata: second\n\n")); i < 0 {
		t.Fatalf("events before the cut missing from %q", head)
	}
}

// TestSendBatchWriteTimeout: Options.WriteTimeout bounds the batch; a
// client that does not read ends the stream with ErrWriteTimeout.
func TestSendBatchWriteTimeout(t *testing.T) {
	ready := make(chan *Stream, 1)
	srv := startServer(t, "HTTP/1.1", &Options{WriteTimeout: 100 * time.Millisecond, Heartbeat: -1}, func(s *Stream) { ready <- s })
	conn := stalledClient(t, srv)
	defer conn.Close()
	s := <-ready
	var b Batch
	for range 64 {
		b.Add(Event{Data: strings.Repeat("z", 512<<10)}) // 32 MiB in all
	}
	if err := s.SendBatch(context.Background(), &b); !errors.Is(err, ErrWriteTimeout) {
		t.Fatalf("SendBatch = %v, want ErrWriteTimeout", err)
	}
	waitDone(t, s)
	if !errors.Is(s.Err(), ErrWriteTimeout) {
		t.Fatalf("Err = %v, want ErrWriteTimeout", s.Err())
	}
}

// TestSendBatchAllocs: a reused batch costs no allocation.
func TestSendBatchAllocs(t *testing.T) {
	s, _ := countedStream(t)
	_, _, evs := eventBatch(t, 64, 100)
	e, _ := Encode(evs[0])
	var b Batch
	ctx := context.Background()
	for range 2 { // grows the batch's buffer
		b.Reset()
		for _, ev := range evs {
			b.Add(ev)
		}
		b.AddEncoded(e)
	}
	allocs := testing.AllocsPerRun(100, func() {
		b.Reset()
		for _, ev := range evs {
			b.Add(ev)
		}
		b.AddEncoded(e)
		if err := s.SendBatch(ctx, &b); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch of 65", allocs)
	}
}

// BenchmarkSendBatch compares n events sent one by one with SendEncoded
// to the same sent as one batch over HTTP/1.1: ns and network writes per
// event.
func BenchmarkSendBatch(b *testing.B) {
	batchtest.Compare(b, "SendEncoded", "SendBatch", "event", func(b *testing.B, n int, batched bool) (*atomic.Int64, func() error) {
		writes := new(atomic.Int64)
		ready := make(chan *Stream, 1)
		srv := startCountedServer(b, "HTTP/1.1", &Options{Heartbeat: -1}, func(s *Stream) { ready <- s }, writes)
		resp := open(b, context.Background(), srv, "HTTP/1.1", "/", nil)
		copied := make(chan struct{})
		go func() {
			io.Copy(io.Discard, resp.Body)
			close(copied)
		}()
		s := <-ready
		b.Cleanup(func() {
			s.Close()
			<-copied
			resp.Body.Close()
		})
		encoded := make([]*EncodedEvent, n)
		for i := range encoded {
			encoded[i], _ = Encode(benchEvent)
		}
		ctx, cancel := context.WithCancel(context.Background())
		b.Cleanup(cancel)
		if batched {
			var batch Batch
			return writes, func() error {
				batch.Reset()
				for _, e := range encoded {
					batch.AddEncoded(e)
				}
				return s.SendBatch(ctx, &batch)
			}
		}
		return writes, func() error {
			for _, e := range encoded {
				if err := s.SendEncoded(ctx, e); err != nil {
					return err
				}
			}
			return nil
		}
	})
}
