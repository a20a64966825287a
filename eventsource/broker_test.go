package eventsource

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startBroker serves b over HTTP/1.1.
func startBroker(t *testing.T, b *Broker) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(b)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(func() {
		b.Close()
		srv.Close()
	})
	return srv
}

// listen opens an EventSource request to srv and decodes its events
// until the test ends.
func listen(t *testing.T, srv *httptest.Server, header http.Header) <-chan decoded {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	resp := open(t, ctx, srv, "HTTP/1.1", "/", header)
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
	})
	return readEvents(resp.Body, nil)
}

// waitLen waits until b serves n streams.
func waitLen(t *testing.T, b *Broker, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); b.Len() != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("broker serves %d streams, want %d", b.Len(), n)
		}
	}
}

// subscriberOf returns the subscriber whose client is conn.
func subscriberOf(b *Broker, conn net.Conn) *subscriber {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, sub := range b.subs {
		if sub.s.Request().RemoteAddr == conn.LocalAddr().String() {
			return sub
		}
	}
	return nil
}

// queued returns the events and bytes published that sub has not yet
// taken: none once it left the Broker or was dropped.
func queued(b *Broker, sub *subscriber) (n int, bytes int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if sub.listed == listedNowhere || sub.next == b.head {
		return 0, 0
	}
	return int(b.head - sub.next), b.total - b.slots[sub.next&b.mask].start
}

// publishSeen publishes the next event of a numbered sequence and waits
// until the client reading events gets it.
func publishSeen(t *testing.T, b *Broker, events <-chan decoded, seq *int, data string) {
	t.Helper()
	*seq++
	if _, err := b.Publish(Event{ID: strconv.Itoa(*seq), Data: data}); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events); ev.ID != strconv.Itoa(*seq) {
		t.Fatalf("got event %q, want %d", ev.ID, *seq)
	}
}

// bigData is the data of the events that fill a stalled client's socket
// buffers.
var bigData = strings.Repeat("x", 64<<10)

// blockWrites publishes events of bigData, each seen by the client
// reading events, until the writes to every stuck stream are blocked:
// with three events or more waiting, each has lasted while blockRounds
// more events were published (on a loaded machine a write that is only
// slow can outlast one or two). It returns when each blocked write
// started.
func blockWrites(t *testing.T, b *Broker, events <-chan decoded, seq *int, stuck ...*subscriber) []int64 {
	t.Helper()
	const blockRounds = 8
	prev := make([]int64, len(stuck))
	rounds := make([]int, len(stuck))
	for blocked := 0; blocked < len(stuck); {
		publishSeen(t, b, events, seq, bigData)
		blocked = 0
		for i, sub := range stuck {
			ws := sub.writing.Load()
			if n, _ := queued(b, sub); n >= 3 && ws != 0 && ws == prev[i] {
				rounds[i]++
			} else {
				rounds[i] = 0
			}
			if rounds[i] >= blockRounds {
				blocked++
			}
			prev[i] = ws
		}
		if *seq > 10000 {
			t.Fatal("the stalled clients' writes never blocked")
		}
	}
	return prev
}

// A client that never reads blocks its own writer, not the publisher nor
// the other clients: while its write stays blocked, the others get every
// event.
func TestBrokerStalledClientDoesNotDelayOthers(t *testing.T) {
	b := NewBroker(&BrokerOptions{Stream: Options{WriteTimeout: -1, Heartbeat: -1}, MaxQueue: -1, MaxQueueBytes: -1})
	srv := startBroker(t, b)
	stalled := stalledClient(t, srv)
	defer stalled.Close()
	waitLen(t, b, 1)
	stuck := subscriberOf(b, stalled)
	if stuck == nil {
		t.Fatal("stalled client not subscribed")
	}
	events := listen(t, srv, nil)
	waitLen(t, b, 2)

	seq := 0
	blockedSince := blockWrites(t, b, events, &seq, stuck)[0]
	for range 20 {
		publishSeen(t, b, events, &seq, bigData)
	}
	if stuck.writing.Load() != blockedSince {
		t.Fatal("the stalled client's write completed: the test did not hold it")
	}
	if n, _ := queued(b, stuck); n < 20 {
		t.Fatalf("%d events wait for the stalled client, want at least 20", n)
	}
}

// A client whose queue overflows is dropped: its queue never exceeds the
// bounds, its blocked write is cut at once, and its stream ends with
// ErrQueueFull.
func TestBrokerDropsOverflowingStream(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts BrokerOptions
	}{
		{"events", BrokerOptions{MaxQueue: 8, MaxQueueBytes: -1}},
		{"bytes", BrokerOptions{MaxQueue: -1, MaxQueueBytes: 5 * (16<<10 + 64)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Stream = Options{WriteTimeout: -1, Heartbeat: -1}
			b := NewBroker(&tc.opts)
			served := make(chan error, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s, err := Accept(w, r, &tc.opts.Stream)
				if err != nil {
					return
				}
				defer s.Close()
				served <- b.Serve(r.Context(), s)
			}))
			defer srv.Close()
			stalled := stalledClient(t, srv)
			defer stalled.Close()
			waitLen(t, b, 1)
			stuck := subscriberOf(b, stalled)
			data := strings.Repeat("y", 16<<10)
			var err error
			for i := 0; i < 100000; i++ {
				if _, err := b.Publish(Event{Data: data}); err != nil {
					t.Fatal(err)
				}
				n, bytes := queued(b, stuck)
				if (tc.opts.MaxQueue > 0 && n > tc.opts.MaxQueue) || (tc.opts.MaxQueueBytes > 0 && bytes > tc.opts.MaxQueueBytes) {
					t.Fatalf("queue holds %d events, %d bytes", n, bytes)
				}
				select {
				case err = <-served:
				default:
					continue
				}
				break
			}
			if !errors.Is(err, ErrQueueFull) {
				t.Fatalf("Serve returned %v, want ErrQueueFull", err)
			}
			waitLen(t, b, 0)
		})
	}
}

// Clients that resume while events are being published get each event
// after their Last-Event-ID exactly once, in order, the replayed ones and
// the live ones alike.
func TestBrokerReplayThenLiveExactlyOnce(t *testing.T) {
	const total = 3000
	b := NewBroker(&BrokerOptions{History: NewHistory(&HistoryOptions{MaxHistory: -1}), MaxQueue: -1})
	srv := startBroker(t, b)
	if _, err := b.Publish(Event{ID: "1", Data: "first"}); err != nil {
		t.Fatal(err)
	}
	published := make(chan int, total) // ids published so far
	published <- 1
	go func() {
		for i := 2; i <= total; i++ {
			if _, err := b.Publish(Event{ID: strconv.Itoa(i), Data: "d"}); err != nil {
				t.Error(err)
				return
			}
			published <- i
		}
	}()
	var wg sync.WaitGroup
	for range 20 {
		from := <-published // a client that saw this one, then left
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			resp, err := tryOpen(ctx, srv, "HTTP/1.1", "/", http.Header{"Last-Event-Id": {strconv.Itoa(from)}})
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			d := NewDecoder(resp.Body, nil)
			for want := from + 1; want <= total; want++ {
				ev, err := d.Next()
				if err != nil {
					t.Errorf("from %d: %v", from, err)
					return
				}
				if ev.ID != strconv.Itoa(want) {
					t.Errorf("from %d: got event %s, want %d", from, ev.ID, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// A client that goes away is unsubscribed.
func TestBrokerUnsubscribesOnDisconnect(t *testing.T) {
	b := NewBroker(nil)
	srv := startBroker(t, b)
	ctx, cancel := context.WithCancel(context.Background())
	resp := open(t, ctx, srv, "HTTP/1.1", "/", nil)
	events := readEvents(resp.Body, nil)
	waitLen(t, b, 1)
	if _, err := b.Publish(Event{Data: "hi"}); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events); ev.Data != "hi" {
		t.Fatalf("got %q", ev.Data)
	}
	cancel()
	resp.Body.Close()
	waitLen(t, b, 0)
}

// A resuming client whose id is no longer held gets OnResumeFailed's
// event before the live ones.
func TestBrokerResumeFailed(t *testing.T) {
	b := NewBroker(&BrokerOptions{
		History: NewHistory(nil),
		OnResumeFailed: func(ctx context.Context, s *Stream) error {
			return s.Send(ctx, Event{Type: "reset", Data: s.LastEventID()})
		},
	})
	srv := startBroker(t, b)
	events := listen(t, srv, http.Header{"Last-Event-Id": {"gone"}})
	waitLen(t, b, 1)
	b.Publish(Event{ID: "1", Data: "live"})
	if ev := next(t, events); ev.Type != "reset" || ev.Data != "gone" {
		t.Fatalf("got %+v, want the reset", ev)
	}
	if ev := next(t, events); ev.Data != "live" {
		t.Fatalf("got %+v, want the live event", ev)
	}
}

// Close ends every stream with ErrBrokerClosed and refuses what follows.
func TestBrokerClose(t *testing.T) {
	b := NewBroker(nil)
	srv := startBroker(t, b)
	events := listen(t, srv, nil)
	waitLen(t, b, 1)
	b.Close()
	select {
	case d := <-events:
		if !errors.Is(d.err, io.EOF) {
			t.Fatalf("got %+v, want the end of the stream", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stream still open")
	}
	if _, err := b.Publish(Event{Data: "x"}); !errors.Is(err, ErrBrokerClosed) {
		t.Fatalf("Publish after Close: %v", err)
	}
	// A reconnecting client is refused rather than given a stream that
	// ends at once, which it would reconnect to again and again.
	if _, err := tryOpen(context.Background(), srv, "HTTP/1.1", "/", nil); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("request after Close: %v, want 503", err)
	}
}

// Wait lets a publisher go at its clients' pace without dropping them,
// and does not wait for a client that stopped reading.
func TestBrokerWait(t *testing.T) {
	b := NewBroker(&BrokerOptions{Stream: Options{WriteTimeout: -1, Heartbeat: -1}, MaxQueue: 64})
	srv := startBroker(t, b)
	events := listen(t, srv, nil)
	stalled := stalledClient(t, srv)
	defer stalled.Close()
	waitLen(t, b, 2)
	data := strings.Repeat("z", 8<<10)
	const total = 3000
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i <= total; i++ {
			if err := b.Wait(ctx); err != nil {
				return
			}
			if _, err := b.Publish(Event{ID: strconv.Itoa(i), Data: data}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := 1; i <= total; i++ {
		if ev := next(t, events); ev.ID != strconv.Itoa(i) {
			t.Fatalf("got event %q, want %d", ev.ID, i)
		}
	}
}

func TestBrokerPublishInvalid(t *testing.T) {
	b := NewBroker(nil)
	if _, err := b.Publish(Event{ID: "a\nb"}); !errors.Is(err, ErrInvalidField) {
		t.Fatalf("got %v", err)
	}
	if err := b.PublishEncoded(nil); err == nil {
		t.Fatal("nil event published")
	}
}

// More clients that stop reading than the Broker keeps writers for do
// not hold up the others: a writer blocked for over a second stops
// counting, and another takes the waiting streams.
func TestBrokerStalledClientsBeyondWriters(t *testing.T) {
	b := NewBroker(&BrokerOptions{Stream: Options{WriteTimeout: -1, Heartbeat: -1}, MaxQueue: -1, MaxQueueBytes: -1})
	b.base = 1
	srv := startBroker(t, b)
	var stuck []*subscriber
	for i := range 2 {
		c := stalledClient(t, srv)
		defer c.Close()
		waitLen(t, b, i+1)
		stuck = append(stuck, subscriberOf(b, c))
	}
	events := listen(t, srv, nil)
	waitLen(t, b, 3)

	seq := 0
	prev := blockWrites(t, b, events, &seq, stuck...)
	for range 20 {
		publishSeen(t, b, events, &seq, bigData)
	}
	for i, sub := range stuck {
		if sub.writing.Load() != prev[i] {
			t.Fatal("a stalled client's write completed: the test did not hold it")
		}
	}
}

// A stream whose next event is pushed out of the ring by the bound is
// dropped, even while no writer has taken it.
func TestBrokerDropsStreamBehindRing(t *testing.T) {
	b := NewBroker(&BrokerOptions{MaxQueue: 4})
	b.base = 0 // no writer: the stream waits in the ring
	defer b.Close()
	s := acceptOn(t, httptest.NewRecorder())
	served := make(chan error, 1)
	go func() { served <- b.Serve(context.Background(), s) }()
	waitLen(t, b, 1)
	for i := range 4 {
		if _, err := b.Publish(Event{Data: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v with 4 events waiting", err)
	default:
	}
	if _, err := b.Publish(Event{Data: "one too many"}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-served:
		if !errors.Is(err, ErrQueueFull) {
			t.Fatalf("Serve returned %v, want ErrQueueFull", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stream not dropped")
	}
	if !errors.Is(s.Err(), ErrQueueFull) {
		t.Fatalf("stream ended with %v", s.Err())
	}
	if n := b.Len(); n != 0 {
		t.Fatalf("%d streams left", n)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.head != b.tail {
		t.Fatalf("the ring holds %d events no stream needs", b.head-b.tail)
	}
}

// A stream dropped while its write is blocked on a client that stopped
// reading has that write cut at once, even with no write timeout, and
// Serve returns ErrQueueFull.
func TestBrokerCutsBlockedWriteOfDroppedStream(t *testing.T) {
	opts := BrokerOptions{Stream: Options{WriteTimeout: -1, Heartbeat: -1}, MaxQueue: 64, MaxQueueBytes: -1}
	b := NewBroker(&opts)
	type result struct {
		addr string
		err  error
	}
	served := make(chan result, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := Accept(w, r, &opts.Stream)
		if err != nil {
			return
		}
		defer s.Close()
		served <- result{r.RemoteAddr, b.Serve(r.Context(), s)}
	}))
	defer srv.Close()
	defer b.Close()
	stalled := stalledClient(t, srv)
	defer stalled.Close()
	waitLen(t, b, 1)
	stuck := subscriberOf(b, stalled)
	events := listen(t, srv, nil)
	waitLen(t, b, 2)

	seq := 0
	blockWrites(t, b, events, &seq, stuck)
	for range opts.MaxQueue {
		publishSeen(t, b, events, &seq, bigData)
	}
	select {
	case r := <-served:
		if r.addr != stalled.LocalAddr().String() || !errors.Is(r.err, ErrQueueFull) {
			t.Fatalf("Serve for %s returned %v, want ErrQueueFull for the stalled client", r.addr, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the dropped stream's blocked write was not cut")
	}
}

// Over HTTP/2 too, a Broker's writers accept the stream, replay what the
// client missed and write the live events, and a client that leaves is
// unsubscribed.
func TestBrokerHTTP2(t *testing.T) {
	b := NewBroker(&BrokerOptions{History: NewHistory(nil)})
	srv := httptest.NewUnstartedServer(b)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	defer b.Close()
	for i := 1; i <= 3; i++ {
		if _, err := b.Publish(Event{ID: strconv.Itoa(i), Data: "old"}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	resp := open(t, ctx, srv, "HTTP/2.0", "/", http.Header{"Last-Event-Id": {"1"}})
	events := readEvents(resp.Body, nil)
	waitLen(t, b, 1)
	if _, err := b.Publish(Event{ID: "4", Data: "live"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2", "3", "4"} {
		if ev := next(t, events); ev.ID != want {
			t.Fatalf("got event %q, want %s", ev.ID, want)
		}
	}
	cancel()
	resp.Body.Close()
	waitLen(t, b, 0)
}
