package realtime

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func publishN(t testing.TB, b Broker, channel string, n int) []Position {
	t.Helper()
	var out []Position
	for i := range n {
		p, err := b.Publish(context.Background(), channel, "m"+strconv.Itoa(i), "")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func TestMemoryBrokerDefaults(t *testing.T) {
	b := NewMemoryBroker(nil)
	defer b.Close()
	if b.maxN != DefaultMaxHistory || b.maxBytes != DefaultMaxHistoryBytes || b.maxAge != 0 {
		t.Fatalf("bounds %d %d %v", b.maxN, b.maxBytes, b.maxAge)
	}
	if b.epoch == 0 || b.epoch >= 1<<32 {
		t.Fatalf("epoch %d", b.epoch)
	}
	opts := &MemoryBrokerOptions{MaxHistory: 3}
	b2 := NewMemoryBroker(opts)
	defer b2.Close()
	opts.MaxHistory = 100 // changes nothing
	if b2.maxN != 3 {
		t.Fatalf("maxN %d", b2.maxN)
	}
	if b2.epoch == b.epoch {
		t.Fatalf("two brokers share the epoch %d", b.epoch) // 1 in 2^32
	}
}

func TestMemoryBrokerPublishSince(t *testing.T) {
	ctx := context.Background()
	b := NewMemoryBroker(nil)
	defer b.Close()
	entries, latest, err := b.Since(ctx, "c", Position{})
	if err != nil || len(entries) != 0 || latest != (Position{b.epoch, 0}) {
		t.Fatalf("empty channel: %v %v %v", entries, latest, err)
	}
	ps := publishN(t, b, "c", 5)
	publishN(t, b, "other", 2)
	for i, p := range ps {
		if p != (Position{b.epoch, uint64(i + 1)}) {
			t.Fatalf("publish %d at %v", i, p)
		}
	}
	entries, latest, err = b.Since(ctx, "c", ps[1])
	if err != nil || latest != ps[4] || len(entries) != 3 {
		t.Fatalf("since %v: %v %v %v", ps[1], entries, latest, err)
	}
	for i, e := range entries {
		if e.Position != ps[i+2] || e.Text != "m"+strconv.Itoa(i+2) {
			t.Fatalf("entry %d: %+v", i, e)
		}
	}
	entries, _, err = b.Since(ctx, "c", Position{b.epoch, 0})
	if err != nil || len(entries) != 5 {
		t.Fatalf("since the start: %v %v", entries, err)
	}
	entries, _, err = b.Since(ctx, "c", ps[4])
	if err != nil || len(entries) != 0 {
		t.Fatalf("since the latest: %v %v", entries, err)
	}
	for _, pos := range []Position{{b.epoch + 1, 2}, {b.epoch, 6}, {0, 3}} {
		_, latest, err = b.Since(ctx, "c", pos)
		if !errors.Is(err, ErrPositionLost) || latest != ps[4] {
			t.Errorf("since %v: %v %v", pos, latest, err)
		}
	}
}

func TestMemoryBrokerEvictCount(t *testing.T) {
	ctx := context.Background()
	b := NewMemoryBroker(&MemoryBrokerOptions{MaxHistory: 3})
	defer b.Close()
	ps := publishN(t, b, "c", 10)
	if _, _, err := b.Since(ctx, "c", ps[5]); !errors.Is(err, ErrPositionLost) {
		t.Fatalf("since %v: %v", ps[5], err)
	}
	entries, _, err := b.Since(ctx, "c", ps[6])
	if err != nil || len(entries) != 3 || entries[0].Text != "m7" {
		t.Fatalf("since %v: %v %v", ps[6], entries, err)
	}
}

func TestMemoryBrokerEvictBytes(t *testing.T) {
	ctx := context.Background()
	b := NewMemoryBroker(&MemoryBrokerOptions{MaxHistory: -1, MaxHistoryBytes: 10})
	defer b.Close()
	p1, _ := b.Publish(ctx, "c", "12345", "")
	p2, _ := b.Publish(ctx, "c", "12345", "")
	if entries, _, err := b.Since(ctx, "c", Position{b.epoch, 0}); err != nil || len(entries) != 2 {
		t.Fatalf("two of 5 bytes: %v %v", entries, err)
	}
	// One message larger than the bound evicts the others, not itself:
	// a follower behind it by one keeps its place.
	p3, _ := b.Publish(ctx, "c", strings.Repeat("x", 20), "")
	if _, _, err := b.Since(ctx, "c", p1); !errors.Is(err, ErrPositionLost) {
		t.Fatalf("since %v: %v", p1, err)
	}
	entries, latest, err := b.Since(ctx, "c", p2)
	if err != nil || len(entries) != 1 || latest != p3 {
		t.Fatalf("since %v: %v %v %v", p2, entries, latest, err)
	}
	c := b.channel("c")
	if c.n != 1 || c.bytes != 20 {
		t.Fatalf("kept %d entries of %d bytes", c.n, c.bytes)
	}
}

func TestMemoryBrokerEvictAge(t *testing.T) {
	ctx := context.Background()
	b := NewMemoryBroker(&MemoryBrokerOptions{MaxHistoryAge: time.Millisecond})
	defer b.Close()
	ps := publishN(t, b, "c", 2)
	time.Sleep(5 * time.Millisecond)
	if _, _, err := b.Since(ctx, "c", ps[0]); !errors.Is(err, ErrPositionLost) {
		t.Fatalf("since %v after the age: %v", ps[0], err)
	}
	// The latest position stays valid after its entry has gone.
	entries, latest, err := b.Since(ctx, "c", ps[1])
	if err != nil || len(entries) != 0 || latest != ps[1] {
		t.Fatalf("since the latest: %v %v %v", entries, latest, err)
	}
	p, _ := b.Publish(ctx, "c", "new", "")
	if p.Offset != 3 {
		t.Fatalf("offsets restarted: %v", p)
	}
}

// TestMemoryBrokerRingShrinks: memory follows what is kept after a burst.
func TestMemoryBrokerRingShrinks(t *testing.T) {
	b := NewMemoryBroker(&MemoryBrokerOptions{MaxHistory: -1, MaxHistoryBytes: 1 << 20})
	defer b.Close()
	publishN(t, b, "c", 1000)
	c := b.channel("c")
	if len(c.ring) < 1000 {
		t.Fatalf("ring of %d", len(c.ring))
	}
	big := strings.Repeat("x", 1<<20)
	if _, err := b.Publish(context.Background(), "c", big, ""); err != nil {
		t.Fatal(err)
	}
	if c.n != 1 || len(c.ring) > 64 {
		t.Fatalf("%d entries in a ring of %d", c.n, len(c.ring))
	}
	ps := publishN(t, b, "c", 3) // the ring still works
	entries, _, err := b.Since(context.Background(), "c", Position{b.epoch, ps[0].Offset - 1})
	if err != nil || len(entries) != 3 || entries[2].Text != "m2" {
		t.Fatalf("%v %v", entries, err)
	}
}

func TestMemoryBrokerIdempotent(t *testing.T) {
	ctx := context.Background()
	b := NewMemoryBroker(nil)
	defer b.Close()
	p1, err := b.Publish(ctx, "c", "a", "k1")
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := b.Publish(ctx, "c", "b", "")
	again, _ := b.Publish(ctx, "c", "a", "k1")
	if again != p1 {
		t.Fatalf("retry at %v, first at %v", again, p1)
	}
	other, _ := b.Publish(ctx, "d", "a", "k1") // keys are per channel
	if other.Offset != 1 {
		t.Fatalf("other channel at %v", other)
	}
	entries, latest, _ := b.Since(ctx, "c", Position{b.epoch, 0})
	if len(entries) != 2 || latest != p2 {
		t.Fatalf("%v %v", entries, latest)
	}
}

// TestMemoryBrokerKeyWindow: a key is remembered as long as its message
// is kept, and no longer.
func TestMemoryBrokerKeyWindow(t *testing.T) {
	ctx := context.Background()
	b := NewMemoryBroker(&MemoryBrokerOptions{MaxHistory: 3})
	defer b.Close()
	first, _ := b.Publish(ctx, "c", "x", "k0")
	b.Publish(ctx, "c", "x", "k1")
	b.Publish(ctx, "c", "x", "")
	if p, _ := b.Publish(ctx, "c", "x", "k0"); p != first {
		t.Fatalf("k0 forgotten while its message is kept: %v", p)
	}
	b.Publish(ctx, "c", "x", "k3") // evicts k0's message
	if p, _ := b.Publish(ctx, "c", "x", "k0"); p.Offset != 5 {
		t.Fatalf("k0 remembered after its message was evicted: %v", p)
	}
	c := b.channel("c")
	if len(c.keys) != 2 || c.keys["k3"] != 4 || c.keys["k0"] != 5 {
		t.Fatalf("keys %v", c.keys)
	}
}

func TestMemoryBrokerFollow(t *testing.T) {
	b := NewMemoryBroker(nil)
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pre := publishN(t, b, "c", 3)
	got := make(chan Entry, 100)
	done := make(chan error, 1)
	go func() { done <- b.Follow(ctx, "c", pre[0], func(e Entry) { got <- e }) }()
	for i := 3; i < 600; i++ { // more than one batch
		b.Publish(ctx, "c", "m"+strconv.Itoa(i), "")
		if i%50 == 0 {
			time.Sleep(time.Millisecond) // let the follower wait at times
		}
	}
	for want := uint64(2); want <= 600; want++ {
		e := <-got
		if e.Position != (Position{b.epoch, want}) || e.Text != "m"+strconv.Itoa(int(want-1)) {
			t.Fatalf("want %d, got %+v", want, e)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("follow returned %v", err)
	}
	if n := len(b.channel("c").followers); n != 0 {
		t.Fatalf("%d followers left", n)
	}
}

func TestMemoryBrokerFollowZero(t *testing.T) {
	b := NewMemoryBroker(nil)
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	publishN(t, b, "c", 2)
	got := make(chan Entry, 10)
	go b.Follow(ctx, "c", Position{}, func(e Entry) { got <- e })
	if e := <-got; e.Position.Offset != 1 {
		t.Fatalf("first %+v", e)
	}
	if e := <-got; e.Position.Offset != 2 {
		t.Fatalf("second %+v", e)
	}
}

// TestMemoryBrokerFollowLost: a follower whose undelivered entries are
// evicted while it is held up gets ErrPositionLost, not a gap.
func TestMemoryBrokerFollowLost(t *testing.T) {
	b := NewMemoryBroker(&MemoryBrokerOptions{MaxHistory: 3})
	defer b.Close()
	ctx := context.Background()
	hold := make(chan struct{})
	var got []uint64
	done := make(chan error, 1)
	go func() {
		done <- b.Follow(ctx, "c", Position{b.epoch, 0}, func(e Entry) {
			got = append(got, e.Position.Offset)
			<-hold
		})
	}()
	publishN(t, b, "c", 1)
	// The follower holds entry 1 (or has not read it yet); 10 more evict
	// everything it had left.
	publishN(t, b, "c", 10)
	close(hold)
	err := <-done
	if !errors.Is(err, ErrPositionLost) {
		t.Fatalf("follow returned %v after %v", err, got)
	}
	for i, off := range got {
		if off != uint64(i+1) {
			t.Fatalf("delivered %v", got)
		}
	}
	// From the start of another epoch, at once.
	if err := b.Follow(ctx, "c", Position{b.epoch + 1, 0}, func(Entry) {}); !errors.Is(err, ErrPositionLost) {
		t.Fatalf("follow of another epoch: %v", err)
	}
}

func TestMemoryBrokerClose(t *testing.T) {
	b := NewMemoryBroker(nil)
	ctx := context.Background()
	follow := make(chan error, 1)
	serve := make(chan error, 1)
	go func() { follow <- b.Follow(ctx, "c", Position{}, func(Entry) {}) }()
	go func() { serve <- b.Serve(ctx, "n", func(context.Context, []byte) []byte { return nil }) }()
	time.Sleep(time.Millisecond)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := <-follow; !errors.Is(err, ErrBrokerClosed) {
		t.Errorf("follow: %v", err)
	}
	if err := <-serve; !errors.Is(err, ErrBrokerClosed) {
		t.Errorf("serve: %v", err)
	}
	if _, err := b.Publish(ctx, "c", "x", ""); !errors.Is(err, ErrBrokerClosed) {
		t.Errorf("publish: %v", err)
	}
	if _, _, err := b.Since(ctx, "c", Position{}); !errors.Is(err, ErrBrokerClosed) {
		t.Errorf("since: %v", err)
	}
	if _, err := b.AddPresence(ctx, "c", PresenceEntry{Socket: "s"}, time.Second); !errors.Is(err, ErrBrokerClosed) {
		t.Errorf("add presence: %v", err)
	}
	if _, err := b.RemovePresence(ctx, "c", "s"); !errors.Is(err, ErrBrokerClosed) {
		t.Errorf("remove presence: %v", err)
	}
	if _, _, err := b.Presence(ctx, "c"); !errors.Is(err, ErrBrokerClosed) {
		t.Errorf("presence: %v", err)
	}
	if _, err := b.Call(ctx, "n", nil); !errors.Is(err, ErrBrokerClosed) {
		t.Errorf("call: %v", err)
	}
	if err := b.Follow(ctx, "c", Position{}, func(Entry) {}); !errors.Is(err, ErrBrokerClosed) {
		t.Errorf("follow after close: %v", err)
	}
}

func TestMemoryBrokerCanceled(t *testing.T) {
	b := NewMemoryBroker(nil)
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Publish(ctx, "c", "x", ""); !errors.Is(err, context.Canceled) {
		t.Errorf("publish: %v", err)
	}
	if err := b.Follow(ctx, "c", Position{}, func(Entry) {}); !errors.Is(err, context.Canceled) {
		t.Errorf("follow: %v", err)
	}
	if err := b.Serve(ctx, "n", func(context.Context, []byte) []byte { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("serve: %v", err)
	}
}

func TestMemoryBrokerPresence(t *testing.T) {
	ctx := context.Background()
	b := NewMemoryBroker(nil)
	defer b.Close()
	a := PresenceEntry{Socket: "n1.a", User: "ann"}
	z := PresenceEntry{Socket: "n2.z", User: "zed", Info: "x"}
	if added, err := b.AddPresence(ctx, "c", z, time.Hour); !added || err != nil {
		t.Fatal(added, err)
	}
	if added, _ := b.AddPresence(ctx, "c", a, time.Millisecond); !added {
		t.Fatal("a not added")
	}
	a.Info = "refreshed"
	if added, _ := b.AddPresence(ctx, "c", a, time.Hour); added {
		t.Fatal("refresh reported as added")
	}
	live, expired, err := b.Presence(ctx, "c")
	if err != nil || fmt.Sprint(live) != fmt.Sprint([]PresenceEntry{a, z}) || expired != nil {
		t.Fatalf("%v %v %v", live, expired, err)
	}
	if removed, _ := b.RemovePresence(ctx, "c", "n1.a"); !removed {
		t.Fatal("not removed")
	}
	if removed, _ := b.RemovePresence(ctx, "c", "n1.a"); removed {
		t.Fatal("removed twice")
	}
	b.AddPresence(ctx, "c", a, time.Nanosecond)
	time.Sleep(time.Millisecond)
	var mu sync.Mutex
	var reports []PresenceEntry
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			live, expired, err := b.Presence(ctx, "c")
			if err != nil || len(live) != 1 || live[0] != z {
				t.Errorf("live %v %v", live, err)
			}
			mu.Lock()
			reports = append(reports, expired...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(reports) != 1 || reports[0] != a {
		t.Fatalf("expired reported as %v", reports)
	}
	b.RemovePresence(ctx, "c", z.Socket)
	if len(b.presence) != 0 {
		t.Fatalf("presence kept for an empty channel: %v", b.presence)
	}
}

func TestMemoryBrokerCall(t *testing.T) {
	b := NewMemoryBroker(nil)
	defer b.Close()
	ctx := context.Background()
	if _, err := b.Call(ctx, "n1", []byte("x")); !errors.Is(err, ErrNoNode) {
		t.Fatalf("call before serve: %v", err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	release := make(chan struct{})
	go func() {
		served <- b.Serve(sctx, "n1", func(ctx context.Context, req []byte) []byte {
			if string(req) == "block" {
				select {
				case <-release:
				case <-ctx.Done():
				}
				return []byte("unblocked")
			}
			out := append([]byte("re:"), req...)
			req[0] = '!' // the caller's req is a copy's
			return out
		})
	}()
	var err error
	for { // until the Serve has registered
		if _, err = b.Call(ctx, "n1", []byte("x")); !errors.Is(err, ErrNoNode) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Serve(ctx, "n1", nil); err == nil {
		t.Fatal("a second Serve of n1")
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			req := []byte(strconv.Itoa(i))
			ans, err := b.Call(ctx, "n1", req)
			if err != nil || string(ans) != "re:"+strconv.Itoa(i) || string(req) != strconv.Itoa(i) {
				t.Errorf("call %d: %q %v (req now %q)", i, ans, err, req)
			}
		})
	}
	// A blocked answer does not hold the others, and ends with its
	// caller's context.
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Millisecond)
	if _, err := b.Call(cctx, "n1", []byte("block")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("blocked call: %v", err)
	}
	ccancel()
	wg.Wait()
	// A call in progress when the Serve ends fails with ErrNoNode; the
	// Serve waits for its answer.
	calling := make(chan error, 1)
	go func() {
		_, err := b.Call(ctx, "n1", []byte("block"))
		calling <- err
	}()
	time.Sleep(5 * time.Millisecond)
	stop()
	if err := <-served; !errors.Is(err, context.Canceled) {
		t.Fatalf("serve returned %v", err)
	}
	if err := <-calling; !errors.Is(err, ErrNoNode) {
		t.Fatalf("call during the serve's end: %v", err)
	}
	if _, err := b.Call(ctx, "n1", nil); !errors.Is(err, ErrNoNode) {
		t.Fatalf("call after serve: %v", err)
	}
	close(release)
}

func BenchmarkMemoryBrokerPublish(b *testing.B) {
	for _, key := range []bool{false, true} {
		b.Run("key="+strconv.FormatBool(key), func(b *testing.B) {
			br := NewMemoryBroker(nil)
			defer br.Close()
			ctx := context.Background()
			keys := make([]string, 1<<16)
			for i := range keys {
				keys[i] = "key" + strconv.Itoa(i)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				k := ""
				if key {
					k = keys[i&(len(keys)-1)] // repeated after 65536: forgotten by then (MaxHistory)
				}
				if _, err := br.Publish(ctx, "chat", "hello", k); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMemoryBrokerPublishFollow(b *testing.B) {
	// No bound: the follower may lag behind by any number of entries.
	br := NewMemoryBroker(&MemoryBrokerOptions{MaxHistory: -1, MaxHistoryBytes: -1})
	defer br.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var delivered sync.WaitGroup
	done := make(chan error, 1)
	go func() { done <- br.Follow(ctx, "chat", Position{}, func(Entry) { delivered.Done() }) }()
	b.ReportAllocs()
	for b.Loop() {
		delivered.Add(1)
		if _, err := br.Publish(ctx, "chat", "hello", ""); err != nil {
			b.Fatal(err)
		}
	}
	delivered.Wait()
	cancel()
	<-done
}
