package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/realtime-go/realtime"
)

// follower runs Follow on a goroutine and collects what it delivers.
type follower struct {
	mu      sync.Mutex
	entries []realtime.Entry
	more    chan struct{}
	done    chan error
	cancel  context.CancelFunc
}

func follow(t *testing.T, b *Broker, channel string, pos realtime.Position) *follower {
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{more: make(chan struct{}, 1), done: make(chan error, 1), cancel: cancel}
	go func() {
		f.done <- b.Follow(ctx, channel, pos, func(e realtime.Entry) {
			f.mu.Lock()
			f.entries = append(f.entries, e)
			f.mu.Unlock()
			select {
			case f.more <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() { f.stop() })
	return f
}

// stop ends the Follow and returns its error.
func (f *follower) stop() error {
	f.cancel()
	err := <-f.done
	f.done <- err
	return err
}

// wait waits until n entries were delivered, or the Follow returned.
func (f *follower) wait(t *testing.T, n int) []realtime.Entry {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		f.mu.Lock()
		got := append([]realtime.Entry(nil), f.entries...)
		f.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-f.more:
		case err := <-f.done:
			f.done <- err
			t.Fatalf("Follow returned %v after %d of %d entries", err, len(got), n)
		case <-timeout:
			t.Fatalf("Follow delivered %d of %d entries", len(got), n)
		}
	}
}

// checkEntries checks that got are the offsets from..from+len(got)-1
// of epoch, with the texts "m<offset>".
func checkEntries(t *testing.T, got []realtime.Entry, epoch, from uint64) {
	t.Helper()
	for i, e := range got {
		want := realtime.Entry{Position: realtime.Position{Epoch: epoch, Offset: from + uint64(i)}, Text: fmt.Sprintf("m%d", from+uint64(i))}
		if e != want {
			t.Fatalf("entry %d = %v, want %v", i, e, want)
		}
	}
}

func publishN(t *testing.T, b *Broker, channel string, from, to int) realtime.Position {
	t.Helper()
	ctx := testContext(t)
	var pos realtime.Position
	for i := from; i <= to; i++ {
		var err error
		pos, err = b.Publish(ctx, channel, fmt.Sprintf("m%d", i), fmt.Sprintf("k%d", i))
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		if pos.Offset != uint64(i) {
			t.Fatalf("publish %d: position %v", i, pos)
		}
	}
	return pos
}

// A Follow survives a kill -9 of the server and its restart on the
// same store: every entry once, in order, and the epoch kept.
func TestFollowSurvivesKill(t *testing.T) {
	s := startServer(t)
	b := dialBroker(t, s, nil)
	pos := publishN(t, b, "k", 1, 10)
	f := follow(t, b, "k", realtime.Position{Epoch: pos.Epoch, Offset: 3})
	checkEntries(t, f.wait(t, 7), pos.Epoch, 4)
	s.Kill()
	// While the server is down, a publish fails promptly.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err := b.Publish(ctx, "k", "x", "down")
	cancel()
	if !errors.Is(err, realtime.ErrBrokerUnavailable) {
		t.Fatalf("publish with the server down: %v", err)
	}
	s.Start()
	var p2 realtime.Position
	for i := 11; i <= 20; i++ {
		// Retry with one key, as a Hub does, until the client reconnected.
		err := untilAvailable(func() (err error) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			p2, err = b.Publish(ctx, "k", fmt.Sprintf("m%d", i), fmt.Sprintf("k%d", i))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if p2 != (realtime.Position{Epoch: pos.Epoch, Offset: uint64(i)}) {
			t.Fatalf("publish %d after the restart: %v", i, p2)
		}
	}
	checkEntries(t, f.wait(t, 17), pos.Epoch, 4)
	time.Sleep(100 * time.Millisecond)
	f.mu.Lock()
	n := len(f.entries)
	f.mu.Unlock()
	if n != 17 {
		t.Fatalf("%d entries delivered, want 17", n)
	}
}

// A server restarted empty is a new epoch: Since and Follow from an old
// position fail with ErrPositionLost, and publishing starts at 1 again.
func TestWipe(t *testing.T) {
	s := startServer(t)
	b := dialBroker(t, s, nil)
	old := publishN(t, b, "w", 1, 5)
	f := follow(t, b, "w", old)
	s.Wipe()
	if err := <-f.done; !errors.Is(err, realtime.ErrPositionLost) {
		t.Fatalf("Follow after a wipe: %v", err)
	}
	f.done <- nil
	ctx := testContext(t)
	var entries []realtime.Entry
	var latest realtime.Position
	err := untilAvailable(func() (err error) {
		entries, latest, err = b.Since(ctx, "w", old)
		return err
	})
	if !errors.Is(err, realtime.ErrPositionLost) || len(entries) != 0 || latest.Epoch == old.Epoch || latest.Epoch == 0 || latest.Offset != 0 {
		t.Fatalf("Since after a wipe = %v, %v, %v", entries, latest, err)
	}
	pos := publishN(t, b, "w", 1, 1)
	if pos.Epoch != latest.Epoch {
		t.Fatalf("publish after the wipe: %v, Since said %v", pos, latest)
	}
}

// A second broker that recreates the stream after a wipe: the first
// broker's publish, with its old stream cached, lands in the new epoch
// and says so.
func TestPublishAfterRecreate(t *testing.T) {
	s := startServer(t)
	b1 := dialBroker(t, s, nil)
	b2 := dialBroker(t, s, nil)
	old := publishN(t, b1, "r", 1, 3)
	s.Wipe()
	ctx := testContext(t)
	var p2 realtime.Position
	err := untilAvailable(func() (err error) {
		p2, err = b2.Publish(ctx, "r", "m1", "")
		return err
	})
	if err != nil || p2.Epoch == old.Epoch || p2.Offset != 1 {
		t.Fatalf("publish on the second broker: %v, %v", p2, err)
	}
	var p1 realtime.Position
	err = untilAvailable(func() (err error) {
		p1, err = b1.Publish(ctx, "r", "m2", "")
		return err
	})
	if err != nil || p1 != (realtime.Position{Epoch: p2.Epoch, Offset: 2}) {
		t.Fatalf("publish on the first broker: %v, %v (second at %v)", p1, err, p2)
	}
}

// Eviction by count: a position whose next entry is gone is lost, for
// Since and Follow alike.
func TestEviction(t *testing.T) {
	s := startServer(t)
	b := dialBroker(t, s, &Options{MaxHistory: 3})
	pos := publishN(t, b, "e", 1, 10)
	ctx := testContext(t)
	entries, latest, err := b.Since(ctx, "e", realtime.Position{Epoch: pos.Epoch, Offset: 7})
	if err != nil || latest != pos || len(entries) != 3 {
		t.Fatalf("Since(7) = %v, %v, %v", entries, latest, err)
	}
	checkEntries(t, entries, pos.Epoch, 8)
	if _, latest, err := b.Since(ctx, "e", realtime.Position{Epoch: pos.Epoch, Offset: 6}); !errors.Is(err, realtime.ErrPositionLost) || latest != pos {
		t.Fatalf("Since(6) = %v, %v", latest, err)
	}
	f := follow(t, b, "e", realtime.Position{Epoch: pos.Epoch, Offset: 5})
	if err := <-f.done; !errors.Is(err, realtime.ErrPositionLost) {
		t.Fatalf("Follow(5) = %v", err)
	}
	f.done <- nil
}

// Publish is one message on the channel's subject, whatever the number
// of Follows: the followers read the stream through their consumers.
func TestOnePublishPerMessage(t *testing.T) {
	s := startServer(t)
	b := dialBroker(t, s, nil)
	nc, err := nats.Connect(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var seen atomic.Int64
	sub, err := nc.Subscribe(DefaultPrefix+".c.>", func(*nats.Msg) { seen.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	start := publishN(t, b, "one", 1, 1)
	var fs []*follower
	for range 5 {
		other := dialBroker(t, s, nil)
		fs = append(fs, follow(t, other, "one", start))
	}
	publishN(t, b, "one", 2, 101)
	for _, f := range fs {
		checkEntries(t, f.wait(t, 100), start.Epoch, 2)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := seen.Load(); n != 101 {
		t.Fatalf("%d messages on the channel's subject for 101 publishes", n)
	}
}

// An acknowledgment lost on the way back: the message was stored, the
// publisher retries with the same key and gets the first's position,
// also when the server was killed and restarted in between.
func TestDedupLostAck(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprintf("restart=%v", restart), func(t *testing.T) { testDedupLostAck(t, restart) })
	}
}

func testDedupLostAck(t *testing.T, restart bool) {
	s := startServer(t)
	b := dialBroker(t, s, nil)
	ctx := testContext(t)
	first := publishN(t, b, "d", 1, 2)
	st, ok := b.cached("d")
	if !ok {
		t.Fatal("no stream cached")
	}
	// The message reaches the stream, and nobody hears the ack.
	nc, err := nats.Connect(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	m := nats.NewMsg(st.subject)
	m.Data = []byte("m3")
	m.Header.Set(jetstream.MsgIDHeader, "lost")
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	for {
		_, latest, err := b.Since(ctx, "d", realtime.Position{})
		if err != nil {
			t.Fatal(err)
		}
		if latest.Offset == 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if restart {
		s.Kill()
		s.Start()
	}
	for range 2 {
		var pos realtime.Position
		err := untilAvailable(func() (err error) {
			pos, err = b.Publish(ctx, "d", "m3", "lost")
			return err
		})
		if err != nil || pos != (realtime.Position{Epoch: first.Epoch, Offset: 3}) {
			t.Fatalf("retry = %v, %v", pos, err)
		}
	}
	entries, latest, err := b.Since(ctx, "d", realtime.Position{Epoch: first.Epoch, Offset: 0})
	if err != nil || latest.Offset != 3 {
		t.Fatalf("Since = %v, %v, %v", entries, latest, err)
	}
	checkEntries(t, entries, first.Epoch, 1)
}

// A Follow whose deliver is slow lags behind; the server is never asked
// for more than one pull, so it is not cut off as a slow consumer, and
// it catches up.
func TestFollowLagging(t *testing.T) {
	s := startServer(t)
	var slow atomic.Int64
	nc, err := nats.Connect(s.URL(), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrSlowConsumer) {
			slow.Add(1)
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	b, err := New(nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// The stream keeps them all: the Follow must lag, not be evicted.
	pub := dialBroker(t, s, &Options{MaxHistory: -1, MaxHistoryBytes: -1})
	start := publishN(t, pub, "lag", 1, 1)
	release := make(chan struct{})
	var got []realtime.Entry
	var mu sync.Mutex
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- b.Follow(ctx, "lag", start, func(e realtime.Entry) {
			<-release
			mu.Lock()
			got = append(got, e)
			mu.Unlock()
		})
	}()
	defer func() { cancel(); <-done }()
	const n = 3000
	text := strings.Repeat("x", 1000)
	pctx := testContext(t)
	for i := 2; i <= n+1; i++ {
		if _, err := pub.Publish(pctx, "lag", text, ""); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // deliver is stuck meanwhile
	close(release)
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		k := len(got)
		mu.Unlock()
		if k == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d entries delivered", k, n)
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("Follow returned %v after %d of %d entries", err, k, n)
		case <-time.After(10 * time.Millisecond):
		}
	}
	for i, e := range got {
		if e.Position.Offset != uint64(i+2) {
			t.Fatalf("entry %d at %v", i, e.Position)
		}
	}
	if n := slow.Load(); n != 0 {
		t.Fatalf("%d slow consumer errors", n)
	}
}

// A message that does not fit max_payload is refused before it is sent.
func TestTooLarge(t *testing.T) {
	s := startServer(t)
	b := dialBroker(t, s, nil)
	ctx := testContext(t)
	_, err := b.Publish(ctx, "big", strings.Repeat("x", 1<<20+1), "")
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("publish of 1 MiB + 1: %v", err)
	}
	// With its key header, 1 MiB exactly does not fit either.
	_, err = b.Publish(ctx, "big", strings.Repeat("x", 1<<20), "key")
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("publish of 1 MiB with a key: %v", err)
	}
	if _, err := b.Publish(ctx, "big", strings.Repeat("x", 1<<19), "key"); err != nil {
		t.Fatal(err)
	}
}

// A stream deleted under an idle Follow (nats stream rm): the Follow
// tells the position is lost, and the channel goes on in a new epoch.
func TestStreamDeleted(t *testing.T) {
	s := startServer(t)
	b := dialBroker(t, s, nil)
	old := publishN(t, b, "del", 1, 3)
	f := follow(t, b, "del", old)
	st, _ := b.cached("del")
	ctx := testContext(t)
	if err := b.js.DeleteStream(ctx, st.name); err != nil {
		t.Fatal(err)
	}
	if err := <-f.done; !errors.Is(err, realtime.ErrPositionLost) {
		t.Fatalf("Follow after the delete: %v", err)
	}
	f.done <- nil
	pos, err := b.Publish(ctx, "del", "m1", "")
	if err != nil || pos.Epoch == old.Epoch || pos.Offset != 1 {
		t.Fatalf("publish after the delete: %v, %v", pos, err)
	}
}

// A node that starts while the server is down: Dial succeeds, calls fail
// with ErrBrokerUnavailable at once, and the broker works once the server
// is up; Close stops its reconnecting.
func TestDialServerDown(t *testing.T) {
	s := startServer(t)
	s.Kill()
	b, err := Dial(s.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := testContext(t)
	if _, err := b.Publish(ctx, "down", "x", ""); !errors.Is(err, realtime.ErrBrokerUnavailable) {
		t.Fatalf("publish with the server down: %v", err)
	}
	if _, _, err := b.Since(ctx, "down", realtime.Position{}); !errors.Is(err, realtime.ErrBrokerUnavailable) {
		t.Fatalf("Since with the server down: %v", err)
	}
	if _, err := b.AddPresence(ctx, "down", realtime.PresenceEntry{Socket: "s"}, time.Minute); !errors.Is(err, realtime.ErrBrokerUnavailable) {
		t.Fatalf("AddPresence with the server down: %v", err)
	}
	if _, err := b.Call(ctx, "node", nil); !errors.Is(err, realtime.ErrBrokerUnavailable) {
		t.Fatalf("Call with the server down: %v", err)
	}
	s.Start()
	var pos realtime.Position
	err = untilAvailable(func() (err error) {
		pos, err = b.Publish(ctx, "down", "m1", "")
		return err
	})
	if err != nil || pos.Offset != 1 {
		t.Fatalf("publish once the server is up: %v, %v", pos, err)
	}
}
