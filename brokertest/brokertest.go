// Package brokertest is the conformance suite of realtime.Broker: every
// broker of this repository runs it, and so should any other.
//
// A broker's tests call Run with a Harness that makes clients of the
// broker's engine:
//
//	func TestConformance(t *testing.T) {
//		srv := startEngine(t)
//		brokertest.Run(t, brokertest.Harness{
//			New:        func(t *testing.T) realtime.Broker { return newClient(t, srv, 100) },
//			MaxHistory: 100,
//			Kill:       srv.Kill,
//			Start:      srv.Start,
//			Wipe:       srv.Wipe,
//		})
//	}
//
// The suite tests what the doc comments of realtime.Broker promise:
// order and totality across clients publishing concurrently, Since,
// Follow from a past position into the live entries, eviction, epoch
// changes, idempotent publishes, presence with expiry, calls between
// nodes, Close; and with the engine controls of the Harness, an engine
// that is unreachable, restarted with its data, or restarted empty.
//
// Then it tests Hubs over the broker, as users see them: 3 nodes, each
// a realtime.Hub over a client of its own behind an HTTP server with
// realtime.Handler, and sockets of package client on both transports
// (and realtime.v1 ones when a node dies), directly or behind a load
// balancer without stickiness. Every socket
// gets every message of its channel once and in the broker's order:
// with publishes from 3 nodes, while sockets join and resume, when a
// socket resumes on a node behind the one it came from, when a node
// dies, when the engine is down and back; EventSource POSTs and
// Hub.SendTo reach a socket of another node; presence spans the nodes,
// and the users of a node that died leave within the presence TTL; an
// engine restarted empty is reported, never a silent gap.
//
// Every test uses channel and node names of its own (letters, digits,
// '-' and '_'), so the engine may keep data from earlier runs. Waits
// have generous deadlines and nothing is timed, so the suite passes on
// a loaded machine; against an engine on loopback it takes seconds.
package brokertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realtime-go/realtime"
)

// Harness is what Run needs of a broker.
type Harness struct {
	// New returns a new client of the engine: a broker as one node
	// would use it. Several clients share the engine's channels,
	// presence and calls. Run closes every broker New returns; New
	// should register a t.Cleanup for whatever else it starts. New
	// must not fail the test from another goroutine. Required.
	New func(t *testing.T) realtime.Broker

	// MaxHistory is the count bound of each channel's history that the
	// brokers New returns keep (their MaxHistory option), so that the
	// suite can test eviction: Since and Follow from a position whose
	// next entry was evicted must fail with realtime.ErrPositionLost.
	// The bound must be exact or above the count (an engine may trim
	// lazily); the suite publishes up to about 3*MaxHistory+600
	// messages to a channel. Required: at least 3; 100 to 1000 is
	// good.
	MaxHistory int

	// Kill stops the engine abruptly (as kill -9 would), so that it
	// cannot be reached, and Start starts it again, with its data, at
	// the same address; the clients New made before must reconnect on
	// their own. Start is called after Kill only. Wipe restarts the
	// engine without its data (or deletes all of it), so that every
	// channel starts again under a new epoch.
	//
	// A broker with no engine (such as realtime's MemoryBroker) leaves
	// all three nil. The tests of an unreachable and of a restarted
	// engine run only when Kill and Start are set, and the test of an
	// epoch change only when Wipe is set; they run one at a time, after
	// the other tests.
	Kill, Start, Wipe func(t *testing.T)
}

// Deadlines of the waits: a passing run never reaches them.
const (
	waitLong   = 20 * time.Second // for what must happen
	unavailCtx = 2 * time.Second  // the context of a call to a killed engine
)

// Run runs the conformance suite against the broker of h, as subtests
// of t.
func Run(t *testing.T, h Harness) {
	if h.New == nil {
		t.Fatal("brokertest: Harness.New is nil")
	}
	if h.MaxHistory < 3 {
		t.Fatalf("brokertest: Harness.MaxHistory is %d, less than 3", h.MaxHistory)
	}
	if (h.Kill == nil) != (h.Start == nil) {
		t.Fatal("brokertest: Harness.Kill and Harness.Start go together")
	}
	s := &suite{h: h, prefix: "bt" + randomHex(4)}
	t.Run("Broker", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			run  func(*testing.T)
		}{
			{"Since", s.testSince},
			{"Order", s.testOrder},
			{"FollowBoundary", s.testFollowBoundary},
			{"Eviction", s.testEviction},
			{"EvictionWhileFollowing", s.testEvictionWhileFollowing},
			{"SlowFollower", s.testSlowFollower},
			{"Idempotent", s.testIdempotent},
			{"Presence", s.testPresence},
			{"PresenceExpiry", s.testPresenceExpiry},
			{"Call", s.testCall},
			{"Close", s.testClose},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.run(t)
			})
		}
	})
	t.Run("Hub", func(t *testing.T) {
		t.Run("Order", s.testHubOrder)
		t.Run("JoinRace", s.testHubJoinRace)
		t.Run("Ahead", s.testHubAhead)
		t.Run("NodeKilled", s.testHubNodeKilled)
		t.Run("SendTo", s.testHubSendTo)
		t.Run("Post", s.testHubPost)
		t.Run("Presence", s.testHubPresence)
	})
	if h.Kill != nil {
		t.Run("Engine/Unavailable", s.testUnavailable)
		t.Run("Engine/Restart", s.testRestart)
		t.Run("Engine/HubBrokerKilled", s.testHubBrokerKilled)
	}
	if h.Wipe != nil {
		t.Run("Engine/Wipe", s.testWipe)
		t.Run("Engine/HubWipe", s.testHubWipe)
	}
}

type suite struct {
	h      Harness
	prefix string // of every channel and node name of the run
	seq    atomic.Int64
	killed bool // by kill, not yet started again; the engine tests run one at a time
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// name returns a channel or node name used by no other test.
func (s *suite) name(what string) string {
	return s.prefix + "-" + what + "-" + strconv.FormatInt(s.seq.Add(1), 10)
}

// client returns a new client of the engine, closed at cleanup.
func (s *suite) client(t *testing.T) realtime.Broker {
	t.Helper()
	b, _ := s.closable(t)
	return b
}

// closable returns a new client of the engine and a function that
// closes it once, whether the test calls it or its cleanup does.
func (s *suite) closable(t *testing.T) (realtime.Broker, func() error) {
	t.Helper()
	b := s.h.New(t)
	if b == nil {
		t.Fatal("brokertest: Harness.New returned nil")
	}
	var once sync.Once
	var err error
	closeB := func() error {
		once.Do(func() { err = b.Close() })
		return err
	}
	t.Cleanup(func() {
		if err := closeB(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b, closeB
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	t.Cleanup(cancel)
	return ctx
}

// publish publishes text and fails the test on an error.
func publish(t *testing.T, b realtime.Broker, channel, text, key string) realtime.Position {
	t.Helper()
	p, err := b.Publish(testCtx(t), channel, text, key)
	if err != nil {
		t.Fatalf("Publish(%q, %q, key %q): %v", channel, text, key, err)
	}
	return p
}

// since calls Since and fails the test on an error.
func since(t *testing.T, b realtime.Broker, channel string, pos realtime.Position) ([]realtime.Entry, realtime.Position) {
	t.Helper()
	entries, latest, err := b.Since(testCtx(t), channel, pos)
	if err != nil {
		t.Fatalf("Since(%q, %v): %v", channel, pos, err)
	}
	return entries, latest
}

// latest returns the channel's latest position.
func latest(t *testing.T, b realtime.Broker, channel string) realtime.Position {
	t.Helper()
	entries, p := since(t, b, channel, realtime.Position{})
	if len(entries) != 0 {
		t.Fatalf("Since(%q, zero) returned %d entries, want none", channel, len(entries))
	}
	if p.Epoch == 0 {
		t.Fatalf("Since(%q, zero): latest %v has epoch 0", channel, p)
	}
	return p
}

// waitFor polls cond until it holds, failing the test after waitLong.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// follower records what one Follow delivers.
type follower struct {
	channel string
	from    realtime.Position
	cancel  context.CancelFunc
	done    chan struct{}
	hold    chan struct{} // when not nil, the first deliver waits for it to close

	mu       sync.Mutex
	entries  []realtime.Entry
	err      error // what Follow returned, once done is closed
	inside   atomic.Int32
	overlaps atomic.Int32 // delivers that ran while another did
}

// follow starts a Follow of channel from pos, canceled at cleanup.
func follow(t *testing.T, b realtime.Broker, channel string, pos realtime.Position) *follower {
	return followHeld(t, b, channel, pos, nil)
}

func followHeld(t *testing.T, b realtime.Broker, channel string, pos realtime.Position, hold chan struct{}) *follower {
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{channel: channel, from: pos, cancel: cancel, done: make(chan struct{}), hold: hold}
	go func() {
		defer close(f.done)
		err := b.Follow(ctx, channel, pos, f.deliver)
		f.mu.Lock()
		f.err = err
		f.mu.Unlock()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-f.done:
		case <-time.After(waitLong):
			t.Errorf("Follow(%q) did not return %v after its context ended", channel, waitLong)
		}
	})
	return f
}

func (f *follower) deliver(e realtime.Entry) {
	if f.inside.Add(1) > 1 {
		f.overlaps.Add(1)
	}
	f.mu.Lock()
	f.entries = append(f.entries, e)
	n := len(f.entries)
	f.mu.Unlock()
	if n == 1 && f.hold != nil {
		<-f.hold
	}
	f.inside.Add(-1)
}

func (f *follower) got() []realtime.Entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.entries)
}

// returned reports whether Follow has returned, and its error.
func (f *follower) returned() (bool, error) {
	select {
	case <-f.done:
		f.mu.Lock()
		defer f.mu.Unlock()
		return true, f.err
	default:
		return false, nil
	}
}

// waitUntil waits until the follower has delivered the entry at pos,
// failing the test if Follow returns first.
func (f *follower) waitUntil(t *testing.T, pos realtime.Position) []realtime.Entry {
	t.Helper()
	var got []realtime.Entry
	waitFor(t, fmt.Sprintf("Follow(%q) to deliver %v", f.channel, pos), func() bool {
		got = f.got()
		if f.from.Offset >= pos.Offset || len(got) > 0 && got[len(got)-1].Position.Offset >= pos.Offset {
			return true
		}
		if done, err := f.returned(); done {
			t.Fatalf("Follow(%q) returned %v after delivering %d entries, before %v", f.channel, err, len(got), pos)
		}
		return false
	})
	return got
}

// check fails the test unless the follower delivered one entry after
// another from its start, each once and from one goroutine at a time.
func (f *follower) check(t *testing.T) {
	t.Helper()
	if n := f.overlaps.Load(); n > 0 {
		t.Errorf("Follow(%q) called deliver %d times while a deliver was running", f.channel, n)
	}
	checkContiguous(t, fmt.Sprintf("Follow(%q, %v)", f.channel, f.from), f.from, f.got())
}

// checkContiguous fails the test unless entries follow from one
// after another, offsets growing by one, in from's epoch (any epoch if
// from is zero).
func checkContiguous(t *testing.T, what string, from realtime.Position, entries []realtime.Entry) {
	t.Helper()
	prev := from
	for i, e := range entries {
		if prev.Epoch != 0 && e.Position.Epoch != prev.Epoch {
			t.Fatalf("%s: entry %d at %v, in another epoch than %v", what, i, e.Position, prev)
		}
		if e.Position.Offset != prev.Offset+1 {
			t.Fatalf("%s: entry %d at %v follows %v: a gap or a duplicate", what, i, e.Position, prev)
		}
		prev = e.Position
	}
}

// texts returns the texts of entries.
func texts(entries []realtime.Entry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Text
	}
	return out
}

// testSince: what Since returns, positions numbered from 1 per channel.
func (s *suite) testSince(t *testing.T) {
	b := s.client(t)
	ch, other := s.name("since"), s.name("since-other")
	start := latest(t, b, ch)
	if start.Offset != 0 {
		t.Fatalf("a new channel's latest is %v, want offset 0", start)
	}
	// A node follows a new channel from its latest: the first publish
	// must come to it (not be lost to a "start from now").
	f := follow(t, b, ch, start)
	want := []string{"", "two\nlines", "é ☃ \x00 end"}
	var ps []realtime.Position
	for i, text := range want {
		p := publish(t, b, ch, text, "")
		if p != (realtime.Position{Epoch: start.Epoch, Offset: uint64(i + 1)}) {
			t.Fatalf("publish %d at %v, want %d-%d", i, p, start.Epoch, i+1)
		}
		ps = append(ps, p)
		publish(t, b, other, "other", "") // channels are numbered apart
	}
	got := f.waitUntil(t, ps[2])
	f.check(t)
	if !slices.Equal(texts(got), want) {
		t.Fatalf("Follow delivered %q, want %q", texts(got), want)
	}
	if p := latest(t, b, ch); p != ps[2] {
		t.Fatalf("latest %v, want %v", p, ps[2])
	}
	entries, top := since(t, b, ch, ps[0])
	if top != ps[2] || !slices.Equal(texts(entries), want[1:]) {
		t.Fatalf("Since(%v) = %v, %v; want %q, %v", ps[0], entries, top, want[1:], ps[2])
	}
	checkContiguous(t, "Since", ps[0], entries)
	entries, top = since(t, b, ch, start) // offset 0 of the epoch: everything
	if top != ps[2] || !slices.Equal(texts(entries), want) {
		t.Fatalf("Since(%v) = %v, %v; want %q", start, entries, top, want)
	}
	if entries, top = since(t, b, ch, ps[2]); len(entries) != 0 || top != ps[2] {
		t.Fatalf("Since(latest) = %v, %v; want none, %v", entries, top, ps[2])
	}
	// Positions it cannot tell what follows: another epoch, or after the
	// latest (the client comes from another engine's life). The latest
	// comes back all the same.
	for _, pos := range []realtime.Position{
		{Epoch: start.Epoch + 1, Offset: 1},
		{Epoch: start.Epoch ^ 0xdead, Offset: 3},
		{Epoch: start.Epoch, Offset: 4},
	} {
		entries, top, err := b.Since(testCtx(t), ch, pos)
		if !errors.Is(err, realtime.ErrPositionLost) || len(entries) != 0 || top != ps[2] {
			t.Errorf("Since(%v) = %v, %v, %v; want none, %v, ErrPositionLost", pos, entries, top, err, ps[2])
		}
	}
	// Follow from another epoch fails at once.
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	err := b.Follow(ctx, ch, realtime.Position{Epoch: start.Epoch + 1, Offset: 1}, func(e realtime.Entry) {
		t.Errorf("Follow from another epoch delivered %v", e)
	})
	if !errors.Is(err, realtime.ErrPositionLost) {
		t.Errorf("Follow from another epoch returned %v, want ErrPositionLost", err)
	}
	// A second client sees the same.
	b2 := s.client(t)
	entries, top = since(t, b2, ch, start)
	if top != ps[2] || !slices.Equal(texts(entries), want) {
		t.Fatalf("another client: Since(%v) = %v, %v", start, entries, top)
	}
}

// testOrder: 3 clients publish concurrently; every Follow, on every
// client, delivers the same sequence as Since, each publisher's
// messages in the order it published them.
func (s *suite) testOrder(t *testing.T) {
	ch := s.name("order")
	const clients = 3
	per := min(100, s.h.MaxHistory/clients)
	bs := make([]realtime.Broker, clients)
	for i := range bs {
		bs[i] = s.client(t)
	}
	start := latest(t, bs[0], ch)
	var fs []*follower
	for _, b := range bs {
		fs = append(fs, follow(t, b, ch, start), follow(t, b, ch, start))
	}
	positions := make([][]realtime.Position, clients)
	var wg sync.WaitGroup
	for i, b := range bs {
		wg.Go(func() {
			for j := range per {
				p, err := b.Publish(testCtx(t), ch, fmt.Sprintf("c%d-%d", i, j), "")
				if err != nil {
					t.Errorf("client %d: Publish: %v", i, err)
					return
				}
				positions[i] = append(positions[i], p)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	top := realtime.Position{Epoch: start.Epoch, Offset: start.Offset + uint64(clients*per)}
	entries, last := since(t, bs[1], ch, start)
	if last != top {
		t.Fatalf("latest %v after %d publishes from %v", last, clients*per, start)
	}
	checkContiguous(t, "Since", start, entries)
	at := make(map[realtime.Position]string)
	for _, e := range entries {
		at[e.Position] = e.Text
	}
	for i := range clients {
		for j, p := range positions[i] {
			if text := fmt.Sprintf("c%d-%d", i, j); at[p] != text {
				t.Fatalf("Publish(%q) returned %v, where Since has %q", text, p, at[p])
			}
			if j > 0 && p.Offset <= positions[i][j-1].Offset {
				t.Fatalf("client %d: publish %d at %v, before its previous one at %v", i, j, p, positions[i][j-1])
			}
		}
	}
	for i, f := range fs {
		got := f.waitUntil(t, top)
		f.check(t)
		if !slices.Equal(got, entries) {
			t.Fatalf("follower %d (client %d) delivered %d entries unlike Since's %d", i, i/2, len(got), len(entries))
		}
	}
}

// testFollowBoundary: a Follow that starts from a past position, or the
// latest, while publishes go on, goes from the history into the live
// entries with no gap and no duplicate.
func (s *suite) testFollowBoundary(t *testing.T) {
	pub, sub := s.client(t), s.client(t)
	ch := s.name("boundary")
	start := latest(t, pub, ch)
	total := min(300, s.h.MaxHistory)
	published := make(chan realtime.Position, total)
	go func() {
		defer close(published)
		for i := range total {
			p, err := pub.Publish(testCtx(t), ch, "m"+strconv.Itoa(i), "")
			if err != nil {
				t.Errorf("Publish: %v", err)
				return
			}
			published <- p
		}
	}()
	// Start followers at different points of the stream while it grows:
	// from the start, from a past position, from the latest.
	var fs []*follower
	var last realtime.Position
	fs = append(fs, follow(t, sub, ch, start))
	n := 0
	for p := range published {
		n++
		last = p
		switch {
		case n%37 == 0:
			fs = append(fs, follow(t, sub, ch, latest(t, sub, ch)))
		case n%41 == 0:
			fs = append(fs, follow(t, sub, ch, realtime.Position{Epoch: p.Epoch, Offset: p.Offset - uint64(n%7)}))
		}
	}
	if t.Failed() {
		return
	}
	all, _ := since(t, sub, ch, start)
	for i, f := range fs {
		got := f.waitUntil(t, last)
		f.check(t)
		if from := int(f.from.Offset - start.Offset); !slices.Equal(got, all[from:]) {
			t.Fatalf("follower %d from %v delivered %d entries, unlike Since", i, f.from, len(got))
		}
	}
}

// testEviction: Since a position whose next entry is gone fails with
// ErrPositionLost; within MaxHistory it answers.
func (s *suite) testEviction(t *testing.T) {
	b := s.client(t)
	ch := s.name("evict")
	first := publish(t, b, ch, "first", "")
	var top realtime.Position
	for i := range 3*s.h.MaxHistory + 10 {
		top = publish(t, b, ch, "m"+strconv.Itoa(i), "")
	}
	for _, pos := range []realtime.Position{{Epoch: first.Epoch}, first} {
		entries, l, err := b.Since(testCtx(t), ch, pos)
		if !errors.Is(err, realtime.ErrPositionLost) || len(entries) != 0 || l != top {
			t.Errorf("Since(%v) after evicting it = %d entries, %v, %v; want none, %v, ErrPositionLost", pos, len(entries), l, err, top)
		}
	}
	from := realtime.Position{Epoch: top.Epoch, Offset: top.Offset - uint64(s.h.MaxHistory)}
	entries, l := since(t, b, ch, from)
	if l != top || len(entries) != s.h.MaxHistory {
		t.Fatalf("Since(%v) within MaxHistory %d = %d entries, %v", from, s.h.MaxHistory, len(entries), l)
	}
	checkContiguous(t, "Since", from, entries)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	err := b.Follow(ctx, ch, first, func(e realtime.Entry) {
		t.Errorf("Follow from an evicted position delivered %v", e.Position)
	})
	if !errors.Is(err, realtime.ErrPositionLost) {
		t.Errorf("Follow from an evicted position returned %v, want ErrPositionLost", err)
	}
}

// testEvictionWhileFollowing: a Follow held up while what it had yet to
// deliver is evicted returns ErrPositionLost; it may deliver what it
// had read before, but never skips an entry.
func (s *suite) testEvictionWhileFollowing(t *testing.T) {
	b := s.client(t)
	ch := s.name("lag")
	start := latest(t, b, ch)
	hold := make(chan struct{})
	f := followHeld(t, b, ch, start, hold)
	first := publish(t, b, ch, "first", "")
	waitFor(t, "the first entry", func() bool { return len(f.got()) == 1 })
	var top realtime.Position
	for i := range 3*s.h.MaxHistory + 600 {
		top = publish(t, b, ch, "m"+strconv.Itoa(i), "")
	}
	close(hold)
	var err error
	var done bool
	waitFor(t, "Follow to return or deliver everything", func() bool {
		done, err = f.returned()
		got := f.got()
		return done || got[len(got)-1].Position == top
	})
	f.check(t)
	if got := f.got(); got[0].Position != first {
		t.Fatalf("first delivered %v, want %v", got[0].Position, first)
	}
	if done && !errors.Is(err, realtime.ErrPositionLost) {
		t.Fatalf("Follow returned %v, want ErrPositionLost", err)
	}
	if !done {
		// It had read everything before the eviction: no gap either way.
		t.Logf("Follow had read all %d entries before they were evicted", top.Offset-start.Offset)
	}
}

// testSlowFollower: a Follow held up by its deliver holds up neither
// the publishers nor the other followers, and when it goes on it
// delivers everything, within the history, with no gap: a slow node
// lags, it is not cut off.
func (s *suite) testSlowFollower(t *testing.T) {
	pub, slow, fast := s.client(t), s.client(t), s.client(t)
	ch := s.name("slow")
	start := latest(t, pub, ch)
	hold := make(chan struct{})
	held := followHeld(t, slow, ch, start, hold)
	free := follow(t, fast, ch, start)
	first := publish(t, pub, ch, "first", "")
	held.waitUntil(t, first)
	var top realtime.Position
	for i := range s.h.MaxHistory - 1 {
		top = publish(t, pub, ch, "m"+strconv.Itoa(i), "")
	}
	free.waitUntil(t, top)
	close(hold)
	got := held.waitUntil(t, top)
	held.check(t)
	free.check(t)
	if !slices.Equal(got, free.got()) {
		t.Fatalf("the held follower delivered %d entries, the free one %d", len(got), len(free.got()))
	}
}

// testIdempotent: a publish repeated with its key appends nothing and
// returns the first's position, from any client, even concurrently.
func (s *suite) testIdempotent(t *testing.T) {
	b1, b2 := s.client(t), s.client(t)
	ch, other := s.name("idem"), s.name("idem-other")
	key := randomHex(8)
	p := publish(t, b1, ch, "once", key)
	if again := publish(t, b1, ch, "once", key); again != p {
		t.Fatalf("retry returned %v, the first %v", again, p)
	}
	if again := publish(t, b2, ch, "once", key); again != p {
		t.Fatalf("retry from another client returned %v, the first %v", again, p)
	}
	p2 := publish(t, b1, ch, "next", randomHex(8))
	if p2.Offset != p.Offset+1 {
		t.Fatalf("a new key at %v after %v", p2, p)
	}
	if po := publish(t, b1, other, "once", key); po.Offset != 1 {
		t.Fatalf("the key in another channel published at %v, want offset 1", po)
	}
	// Concurrent retries of one publish, from 3 clients.
	key2 := randomHex(8)
	bs := []realtime.Broker{b1, b2, s.client(t)}
	got := make([]realtime.Position, 9)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			var err error
			got[i], err = bs[i%3].Publish(testCtx(t), ch, "raced", key2)
			if err != nil {
				t.Errorf("Publish: %v", err)
			}
		})
	}
	wg.Wait()
	for _, q := range got {
		if q != got[0] {
			t.Fatalf("concurrent retries returned %v", got)
		}
	}
	entries, top := since(t, b2, ch, realtime.Position{Epoch: p.Epoch})
	if !slices.Equal(texts(entries), []string{"once", "next", "raced"}) || top != got[0] {
		t.Fatalf("the channel holds %q up to %v", texts(entries), top)
	}
}

func sortedSockets(es []realtime.PresenceEntry) []realtime.PresenceEntry {
	es = slices.Clone(es)
	slices.SortFunc(es, func(a, b realtime.PresenceEntry) int { return strings.Compare(a.Socket, b.Socket) })
	return es
}

// testPresence: add, refresh, list from any client, remove.
func (s *suite) testPresence(t *testing.T) {
	b1, b2 := s.client(t), s.client(t)
	ch, other := s.name("pres"), s.name("pres-other")
	ctx := testCtx(t)
	a := realtime.PresenceEntry{Socket: s.name("node1") + ".a", User: "ann"}
	z := realtime.PresenceEntry{Socket: s.name("node2") + ".z", User: "zed", Info: `{"x":1}`}
	if live, expired, err := b1.Presence(ctx, ch); err != nil || len(live)+len(expired) != 0 {
		t.Fatalf("empty presence: %v %v %v", live, expired, err)
	}
	if added, err := b1.AddPresence(ctx, ch, a, time.Minute); !added || err != nil {
		t.Fatalf("AddPresence(a) = %v, %v", added, err)
	}
	if added, err := b2.AddPresence(ctx, ch, z, time.Minute); !added || err != nil {
		t.Fatalf("AddPresence(z) = %v, %v", added, err)
	}
	if added, err := b2.AddPresence(ctx, other, z, time.Minute); !added || err != nil {
		t.Fatalf("AddPresence(z) in another channel = %v, %v", added, err)
	}
	a.Info = "refreshed"
	if added, err := b2.AddPresence(ctx, ch, a, time.Minute); added || err != nil {
		t.Fatalf("refresh AddPresence(a) = %v, %v; want false", added, err)
	}
	for i, b := range []realtime.Broker{b1, b2} {
		live, expired, err := b.Presence(ctx, ch)
		if err != nil || !slices.Equal(sortedSockets(live), []realtime.PresenceEntry{a, z}) || len(expired) != 0 {
			t.Fatalf("client %d: Presence = %v, %v, %v; want %v", i, live, expired, err, []realtime.PresenceEntry{a, z})
		}
	}
	if removed, err := b2.RemovePresence(ctx, ch, a.Socket); !removed || err != nil {
		t.Fatalf("RemovePresence(a) = %v, %v", removed, err)
	}
	if removed, err := b1.RemovePresence(ctx, ch, a.Socket); removed || err != nil {
		t.Fatalf("RemovePresence(a) again = %v, %v; want false", removed, err)
	}
	if removed, err := b1.RemovePresence(ctx, s.name("pres-none"), a.Socket); removed || err != nil {
		t.Fatalf("RemovePresence in an empty channel = %v, %v; want false", removed, err)
	}
	if live, expired, err := b1.Presence(ctx, ch); err != nil || !slices.Equal(live, []realtime.PresenceEntry{z}) || len(expired) != 0 {
		t.Fatalf("after remove: Presence = %v, %v, %v", live, expired, err)
	}
	if added, err := b1.AddPresence(ctx, ch, a, time.Minute); !added || err != nil {
		t.Fatalf("AddPresence(a) after its removal = %v, %v", added, err)
	}
	if live, _, err := b2.Presence(ctx, other); err != nil || !slices.Equal(live, []realtime.PresenceEntry{z}) {
		t.Fatalf("another channel: Presence = %v, %v", live, err)
	}
}

// testPresenceExpiry: an entry not refreshed within its ttl leaves the
// live list, and is reported expired to one caller only, while 3
// clients ask concurrently. A refreshed entry stays.
func (s *suite) testPresenceExpiry(t *testing.T) {
	bs := []realtime.Broker{s.client(t), s.client(t), s.client(t)}
	ch := s.name("expiry")
	ctx := testCtx(t)
	const ttl = time.Second
	gone := realtime.PresenceEntry{Socket: s.name("dead") + ".a", User: "ghost"}
	stays := realtime.PresenceEntry{Socket: s.name("live") + ".b", User: "host"}
	if _, err := bs[0].AddPresence(ctx, ch, gone, ttl); err != nil {
		t.Fatal(err)
	}
	if _, err := bs[1].AddPresence(ctx, ch, stays, time.Minute); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var reports []realtime.PresenceEntry
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, b := range bs {
		wg.Go(func() {
			for {
				live, expired, err := b.Presence(ctx, ch)
				if err != nil {
					t.Errorf("Presence: %v", err)
					return
				}
				if !slices.Contains(live, stays) {
					t.Errorf("Presence lost a live entry: %v", live)
				}
				mu.Lock()
				reports = append(reports, expired...)
				mu.Unlock()
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		})
	}
	waitFor(t, "the entry to expire", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(reports) > 0
	})
	time.Sleep(200 * time.Millisecond) // let more calls come after the expiry
	close(stop)
	wg.Wait()
	if len(reports) != 1 || reports[0] != gone {
		t.Fatalf("expired entries reported: %v; want %v once", reports, gone)
	}
	live, expired, err := bs[2].Presence(ctx, ch)
	if err != nil || !slices.Equal(live, []realtime.PresenceEntry{stays}) || len(expired) != 0 {
		t.Fatalf("after the expiry: Presence = %v, %v, %v", live, expired, err)
	}
	if removed, err := bs[0].RemovePresence(ctx, ch, gone.Socket); removed || err != nil {
		t.Fatalf("RemovePresence of the expired entry = %v, %v; want false", removed, err)
	}
	if added, err := bs[1].AddPresence(ctx, ch, gone, time.Minute); !added || err != nil {
		t.Fatalf("AddPresence of the expired entry again = %v, %v; want true", added, err)
	}
}

// testCall: calls between clients; ErrNoNode for a node not served;
// answers run concurrently; the Serve's end.
func (s *suite) testCall(t *testing.T) {
	server, c1, c2 := s.client(t), s.client(t), s.client(t)
	node := s.name("node")
	ctx := testCtx(t)
	if _, err := c1.Call(ctx, node, []byte("x")); !errors.Is(err, realtime.ErrNoNode) {
		t.Fatalf("Call before Serve: %v, want ErrNoNode", err)
	}
	sctx, stop := context.WithCancel(context.Background())
	defer stop()
	served := make(chan error, 1)
	arrived := make(chan struct{}) // closed by the answer to "second"
	var once sync.Once
	go func() {
		served <- server.Serve(sctx, node, func(ctx context.Context, req []byte) []byte {
			switch string(req) {
			case "first": // answered only once "second" has come
				select {
				case <-arrived:
					return []byte("first done")
				case <-ctx.Done():
					return nil
				}
			case "second":
				once.Do(func() { close(arrived) })
				return []byte("second done")
			}
			return append([]byte("re:"), req...)
		})
	}()
	waitFor(t, "Serve to answer", func() bool {
		_, err := c1.Call(ctx, node, []byte("ping"))
		if err != nil && !errors.Is(err, realtime.ErrNoNode) {
			t.Fatalf("Call: %v", err)
		}
		return err == nil
	})
	big := []byte(strings.Repeat("0123456789abcdef", 4096)) // 64 KiB
	var wg sync.WaitGroup
	for i, c := range []realtime.Broker{c1, c2, server, c1, c2, server} {
		wg.Go(func() {
			req := append([]byte(strconv.Itoa(i)+":"), big...)
			ans, err := c.Call(ctx, node, req)
			if err != nil || string(ans) != "re:"+string(req) {
				t.Errorf("call %d: answer of %d bytes, %v", i, len(ans), err)
			}
		})
	}
	wg.Go(func() {
		if ans, err := c1.Call(ctx, node, []byte("first")); err != nil || string(ans) != "first done" {
			t.Errorf("call first: %q, %v", ans, err)
		}
	})
	wg.Go(func() {
		if ans, err := c2.Call(ctx, node, []byte("second")); err != nil || string(ans) != "second done" {
			t.Errorf("call second: %q, %v", ans, err)
		}
	})
	wg.Wait()
	stop()
	select {
	case err := <-served:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Serve returned %v, want context.Canceled", err)
		}
	case <-time.After(waitLong):
		t.Fatal("Serve did not return after its context ended")
	}
	waitFor(t, "calls to fail with ErrNoNode after the Serve", func() bool {
		_, err := c2.Call(ctx, node, []byte("x"))
		return errors.Is(err, realtime.ErrNoNode)
	})
	if _, err := c2.Call(ctx, s.name("never"), nil); !errors.Is(err, realtime.ErrNoNode) {
		t.Fatalf("Call to a node never served: %v", err)
	}
}

// testClose: after Close, methods fail with ErrBrokerClosed, and a
// running Follow and Serve return; other clients go on.
func (s *suite) testClose(t *testing.T) {
	b, closeB := s.closable(t)
	other := s.client(t)
	ch := s.name("close")
	start := latest(t, b, ch)
	f := follow(t, b, ch, start)
	served := make(chan error, 1)
	sctx, stop := context.WithCancel(context.Background())
	defer stop()
	node := s.name("closed-node")
	go func() {
		served <- b.Serve(sctx, node, func(context.Context, []byte) []byte { return []byte("ok") })
	}()
	waitFor(t, "Serve to answer", func() bool {
		_, err := other.Call(testCtx(t), node, nil)
		return err == nil
	})
	p := publish(t, other, ch, "before", "")
	f.waitUntil(t, p)
	if err := closeB(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	waitFor(t, "Follow to return after Close", func() bool {
		done, _ := f.returned()
		return done
	})
	if _, err := f.returned(); !errors.Is(err, realtime.ErrBrokerClosed) {
		t.Errorf("Follow returned %v after Close, want ErrBrokerClosed", err)
	}
	select {
	case err := <-served:
		if !errors.Is(err, realtime.ErrBrokerClosed) {
			t.Errorf("Serve returned %v after Close, want ErrBrokerClosed", err)
		}
	case <-time.After(waitLong):
		t.Fatal("Serve did not return after Close")
	}
	ctx := testCtx(t)
	if _, err := b.Publish(ctx, ch, "x", ""); !errors.Is(err, realtime.ErrBrokerClosed) {
		t.Errorf("Publish after Close: %v", err)
	}
	if _, _, err := b.Since(ctx, ch, realtime.Position{}); !errors.Is(err, realtime.ErrBrokerClosed) {
		t.Errorf("Since after Close: %v", err)
	}
	if err := b.Follow(ctx, ch, start, func(realtime.Entry) {}); !errors.Is(err, realtime.ErrBrokerClosed) {
		t.Errorf("Follow after Close: %v", err)
	}
	if _, err := b.AddPresence(ctx, ch, realtime.PresenceEntry{Socket: "s"}, time.Minute); !errors.Is(err, realtime.ErrBrokerClosed) {
		t.Errorf("AddPresence after Close: %v", err)
	}
	if _, err := b.RemovePresence(ctx, ch, "s"); !errors.Is(err, realtime.ErrBrokerClosed) {
		t.Errorf("RemovePresence after Close: %v", err)
	}
	if _, _, err := b.Presence(ctx, ch); !errors.Is(err, realtime.ErrBrokerClosed) {
		t.Errorf("Presence after Close: %v", err)
	}
	if _, err := b.Call(ctx, node, nil); !errors.Is(err, realtime.ErrBrokerClosed) {
		t.Errorf("Call after Close: %v", err)
	}
	if err := b.Serve(ctx, node, func(context.Context, []byte) []byte { return nil }); !errors.Is(err, realtime.ErrBrokerClosed) {
		t.Errorf("Serve after Close: %v", err)
	}
	// The engine and the other clients go on.
	p2 := publish(t, other, ch, "after", "")
	if p2.Offset != p.Offset+1 {
		t.Fatalf("publish after another client's Close at %v, after %v", p2, p)
	}
}
