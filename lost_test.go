package realtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// losingBroker is a MemoryBroker whose Follow of chat ends with
// ErrPositionLost whenever lose gets a value, as when a node fell
// behind the broker's history or the broker lost the stream.
type losingBroker struct {
	*MemoryBroker
	lose chan struct{}
}

func (b *losingBroker) Follow(ctx context.Context, channel string, pos Position, deliver func(Entry)) error {
	if channel != chat {
		return b.MemoryBroker.Follow(ctx, channel, pos, deliver)
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- b.MemoryBroker.Follow(fctx, channel, pos, deliver) }()
	select {
	case <-b.lose:
		cancel()
		<-errc
		return fmt.Errorf("%w: the test lost it", ErrPositionLost)
	case err := <-errc:
		return err
	}
}

// When the broker cannot go on without a gap, the channel's sockets are
// told ("lost CHANNEL" on v2, the new cursor alone on v1) and live
// messages follow from the latest position.
func TestChannelLost(t *testing.T) {
	broker := &losingBroker{MemoryBroker: NewMemoryBroker(nil), lose: make(chan struct{})}
	defer broker.Close()
	hub := newHub(t, &HubOptions{Broker: broker})
	ts := newTestServer(t, chatOptions(hub), nil)
	v1 := dialWS(t, ts, wsDial{})
	ts.next(t)
	v2 := dialV2(t, ts, TransportEventSource, "")
	ts.next(t)
	v2.expect(t, "subscribed chat", "fresh")
	publishWait(t, hub, chat, "before")
	v2.expect(t, "message chat", "before")
	v1.read(t)
	broker.lose <- struct{}{}
	lostAt := lastID(t, hub, chat) // nothing was published since
	if id := v2.expect(t, "lost chat", ""); id != lostAt {
		t.Fatalf("lost at %q, want %q", id, lostAt)
	}
	if id, _, hasData := v1.read(t); id != lostAt || hasData {
		t.Fatalf("v1 got %q (data %v), want the position %q", id, hasData, lostAt)
	}
	after := publishWait(t, hub, chat, "after")
	if id := v2.expect(t, "message chat", "after"); id != after {
		t.Fatalf("id %q, want %q", id, after)
	}
	if id, data, _ := v1.read(t); id != after || data != "after" {
		t.Fatalf("v1 got %q %q", id, data)
	}
}

// A join after the hello tells a v1 client its new cursor: on WebSocket
// a message with the id alone, on EventSource a realtime.position event.
func TestJoinAfterHelloV1(t *testing.T) {
	hub := newHub(t, nil)
	ts := newTestServer(t, &Options{Hub: hub}, nil)
	wc := dialWS(t, ts, wsDial{})
	ws := ts.next(t)
	ec := dialES(t, ts, esDial{})
	es := ts.next(t)
	if wc.pos != "" || ec.pos != "" {
		t.Fatalf("positions %q %q in no channel", wc.pos, ec.pos)
	}
	for _, s := range []*Socket{ws, es} {
		if err := s.Join(testCtx(t), chat); err != nil {
			t.Fatal(err)
		}
	}
	want := lastID(t, hub, chat)
	if id, _, hasData := wc.read(t); id != want || hasData {
		t.Fatalf("websocket got %q (data %v), want the position %q", id, hasData, want)
	}
	if ev := ec.next(t); ev.Type != PositionEvent || ev.ID != want {
		t.Fatalf("eventsource got %+v, want a %s event with id %q", ev, PositionEvent, want)
	}
	for _, s := range []*Socket{ws, es} {
		if err := s.Leave(testCtx(t), chat); err != nil {
			t.Fatal(err)
		}
	}
	if id, _, hasData := wc.read(t); id != "" || hasData {
		t.Fatalf("websocket got %q after the leave, want the empty position", id)
	}
	// An event cannot clear a last event id: the client keeps the old
	// one, whose entry the next connection carries without using it.
	if ev := ec.next(t); ev.Type != PositionEvent {
		t.Fatalf("eventsource got %+v after the leave", ev)
	}
}

// flakyBroker is a MemoryBroker whose Publish fails with
// ErrBrokerUnavailable the first fails times, the second of them after
// appending (a publish in doubt), and records the keys it was given.
type flakyBroker struct {
	*MemoryBroker
	mu    sync.Mutex
	fails int
	keys  []string
}

func (b *flakyBroker) Publish(ctx context.Context, channel, text, key string) (Position, error) {
	b.mu.Lock()
	b.keys = append(b.keys, key)
	n := len(b.keys)
	fail := n <= b.fails
	b.mu.Unlock()
	if fail && n == 2 {
		b.MemoryBroker.Publish(ctx, channel, text, key)
	}
	if fail {
		return Position{}, fmt.Errorf("%w: flaky", ErrBrokerUnavailable)
	}
	return b.MemoryBroker.Publish(ctx, channel, text, key)
}

// Publish retries while the broker is unavailable with one key, so that
// a publish in doubt is appended once; it gives up when ctx ends.
func TestPublishRetries(t *testing.T) {
	broker := &flakyBroker{MemoryBroker: NewMemoryBroker(nil), fails: 3}
	defer broker.Close()
	hub := newHub(t, &HubOptions{Broker: broker})
	p, err := hub.Publish(testCtx(t), chat, "once")
	if err != nil {
		t.Fatal(err)
	}
	entries, _, err := broker.Since(testCtx(t), chat, Position{Epoch: p.Epoch})
	if err != nil || len(entries) != 1 || entries[0].Position != p {
		t.Fatalf("the channel holds %v (%v), want the one message at %v", entries, err, p)
	}
	broker.mu.Lock()
	keys := broker.keys
	broker.mu.Unlock()
	if len(keys) != 4 || keys[0] == "" || len(slices.Compact(slices.Clone(keys))) != 1 {
		t.Fatalf("keys %q, want 4 attempts with one key", keys)
	}

	broker.mu.Lock()
	broker.fails = 1 << 30
	broker.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := hub.Publish(ctx, chat, "never"); !errors.Is(err, ErrBrokerUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish to an unavailable broker: %v", err)
	}
	if err := hub.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := hub.Publish(testCtx(t), chat, "closed"); !errors.Is(err, ErrHubClosed) {
		t.Fatalf("Publish after Close: %v", err)
	}
}

// Publish returns once its own node has queued the message for the
// channel's sockets: a publisher is paced by the fan-out, and code after
// Publish finds the message queued, as after the Broadcast of a hub
// without a broker.
func TestPublishWaitsForLocalDelivery(t *testing.T) {
	hub := newHub(t, nil)
	s := fakeSocket(hub, nil)
	defer s.discard()
	if err := s.Join(testCtx(t), chat); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		p, err := hub.Publish(testCtx(t), chat, strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		if _, got := queuedOffsets(s, chat); len(got) != i+1 || got[i] != p.Offset {
			t.Fatalf("after Publish %d at %v, queued %v", i, p, got)
		}
	}
}

// stallingBroker is a MemoryBroker whose first Since stalls until its
// context ends.
type stallingBroker struct {
	*MemoryBroker
	once    sync.Once
	stalled chan struct{} // closed once the first Since stalls
}

func (b *stallingBroker) Since(ctx context.Context, channel string, pos Position) ([]Entry, Position, error) {
	first := false
	b.once.Do(func() { first = true })
	if first {
		close(b.stalled)
		<-ctx.Done()
		return nil, Position{}, ctx.Err()
	}
	return b.MemoryBroker.Since(ctx, channel, pos)
}

// A socket whose join started a channel and gave up (its context ended)
// does not fail the joins that were waiting for that start.
func TestJoinOutlivesAbandonedStart(t *testing.T) {
	broker := &stallingBroker{MemoryBroker: NewMemoryBroker(nil), stalled: make(chan struct{})}
	defer broker.Close()
	hub := newHub(t, &HubOptions{Broker: broker})
	first, second := fakeSocket(hub, nil), fakeSocket(hub, nil)
	defer first.discard()
	defer second.discard()
	ctx, cancel := context.WithCancel(context.Background())
	errc, errc2 := make(chan error, 1), make(chan error, 1)
	go func() { errc <- first.Join(ctx, chat) }()
	<-broker.stalled
	go func() { errc2 <- second.Join(testCtx(t), chat) }()
	eventually(t, "the second join to wait for the start", func() bool {
		hub.mu.Lock()
		defer hub.mu.Unlock()
		c := hub.channels[chat]
		return c != nil && c.refs == 2
	})
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("the abandoned join: %v", err)
	}
	if err := <-errc2; err != nil {
		t.Fatalf("the waiting join: %v", err)
	}
	if got := second.Channels(); len(got) != 1 || got[0] != chat {
		t.Fatalf("Channels() = %q", got)
	}
}
