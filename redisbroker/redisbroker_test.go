package redisbroker

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/realtime-go/realtime"
	"github.com/redis/go-redis/v9"
)

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustPublish(t testing.TB, b *Broker, ch, text, key string) realtime.Position {
	t.Helper()
	p, err := b.Publish(ctxFor(t), ch, text, key)
	if err != nil {
		t.Fatalf("Publish(%q, %q): %v", ch, text, err)
	}
	return p
}

// follow runs Follow on a goroutine of its own, and returns the entries
// it delivers and the error it returns.
func follow(t testing.TB, b *Broker, ch string, pos realtime.Position) (<-chan realtime.Entry, <-chan error, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	entries := make(chan realtime.Entry, 1<<20)
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		done <- b.Follow(ctx, ch, pos, func(e realtime.Entry) { entries <- e })
	}()
	t.Cleanup(func() {
		cancel()
		<-finished
	})
	return entries, done, cancel
}

func next(t testing.TB, entries <-chan realtime.Entry, done <-chan error) realtime.Entry {
	t.Helper()
	select {
	case e := <-entries:
		return e
	case err := <-done:
		t.Fatalf("Follow returned %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no entry in 20 s")
	}
	return realtime.Entry{}
}

func TestPublishSince(t *testing.T) {
	s := startRedis(t, false)
	b := newTestBroker(t, s, nil)
	ctx := ctxFor(t)
	_, zero, err := b.Since(ctx, "a", realtime.Position{})
	if err != nil || zero.Epoch == 0 || zero.Offset != 0 {
		t.Fatalf("Since(zero) = %v, %v", zero, err)
	}
	for i := 1; i <= 3; i++ {
		p := mustPublish(t, b, "a", "m"+strconv.Itoa(i), "")
		if p != (realtime.Position{Epoch: zero.Epoch, Offset: uint64(i)}) {
			t.Fatalf("publish %d at %v, want epoch %d", i, p, zero.Epoch)
		}
	}
	es, latest, err := b.Since(ctx, "a", realtime.Position{Epoch: zero.Epoch, Offset: 1})
	if err != nil || latest.Offset != 3 || len(es) != 2 || es[0].Text != "m2" || es[1].Text != "m3" || es[1].Position != latest {
		t.Fatalf("Since(1) = %v, %v, %v", es, latest, err)
	}
	if _, _, err := b.Since(ctx, "a", realtime.Position{Epoch: zero.Epoch + 1, Offset: 1}); !errors.Is(err, realtime.ErrPositionLost) {
		t.Fatalf("Since(other epoch): %v", err)
	}
	if _, _, err := b.Since(ctx, "a", realtime.Position{Epoch: zero.Epoch, Offset: 4}); !errors.Is(err, realtime.ErrPositionLost) {
		t.Fatalf("Since(ahead): %v", err)
	}
}

// TestOneEvalPerPublish counts the commands a publish sends, and the
// EVALSHA calls Redis runs: one each.
func TestOneEvalPerPublish(t *testing.T) {
	s := startRedis(t, false)
	b := newTestBroker(t, s, nil)
	mustPublish(t, b, "c", "warm", "k0") // loads the script
	var sent []string
	var mu sync.Mutex
	b.client.AddHook(countHook{func(name string) {
		mu.Lock()
		sent = append(sent, name)
		mu.Unlock()
	}})
	before := s.infoInt(t, "commandstats", "cmdstat_evalsha")
	const n = 50
	for i := range n {
		mustPublish(t, b, "c", "x", "k"+strconv.Itoa(i+1))
	}
	if d := s.infoInt(t, "commandstats", "cmdstat_evalsha") - before; d != n {
		t.Errorf("%d publishes ran %d EVALSHA", n, d)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sent) != n || slices.ContainsFunc(sent, func(c string) bool { return c != "evalsha" }) {
		t.Errorf("%d publishes sent %d commands: %v", n, len(sent), sent)
	}
}

// countHook calls count with the name of every command a client sends.
type countHook struct{ count func(string) }

func (h countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.count(cmd.Name())
		return next(ctx, cmd)
	}
}
func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			h.count(c.Name())
		}
		return next(ctx, cmds)
	}
}

func TestIdempotentKey(t *testing.T) {
	s := startRedis(t, false)
	b := newTestBroker(t, s, nil)
	p1 := mustPublish(t, b, "i", "one", "key")
	p2 := mustPublish(t, b, "i", "two", "key")
	p3 := mustPublish(t, b, "j", "other channel", "key")
	if p1 != p2 || p3.Offset != 1 {
		t.Fatalf("positions %v %v %v", p1, p2, p3)
	}
	es, _, err := b.Since(ctxFor(t), "i", realtime.Position{Epoch: p1.Epoch})
	if err != nil || len(es) != 1 || es[0].Text != "one" {
		t.Fatalf("Since = %v, %v", es, err)
	}
}

func TestFollowLostOnTrim(t *testing.T) {
	s := startRedis(t, false)
	b := newTestBroker(t, s, &Options{MaxHistory: 5})
	p := mustPublish(t, b, "t", "1", "")
	for i := 2; i <= 10; i++ {
		mustPublish(t, b, "t", strconv.Itoa(i), "")
	}
	_, done, _ := follow(t, b, "t", p)
	select {
	case err := <-done:
		if !errors.Is(err, realtime.ErrPositionLost) {
			t.Fatalf("Follow: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Follow from a trimmed position did not fail")
	}
}

// TestFollowManyChannels follows many channels from one Broker: they
// share one connection, and each gets its own entries in order.
func TestFollowManyChannels(t *testing.T) {
	s := startRedis(t, false)
	b := newTestBroker(t, s, nil)
	pub := newTestBroker(t, s, nil)
	const n = 200
	type f struct {
		entries <-chan realtime.Entry
		done    <-chan error
	}
	fs := make([]f, n)
	for i := range fs {
		ch := "many" + strconv.Itoa(i)
		_, p, err := b.Since(ctxFor(t), ch, realtime.Position{})
		if err != nil {
			t.Fatal(err)
		}
		fs[i].entries, fs[i].done, _ = follow(t, b, ch, p)
	}
	for round := 1; round <= 3; round++ {
		for i := range fs {
			mustPublish(t, pub, "many"+strconv.Itoa(i), strconv.Itoa(round), "")
		}
	}
	for i := range fs {
		for round := 1; round <= 3; round++ {
			e := next(t, fs[i].entries, fs[i].done)
			if e.Text != strconv.Itoa(round) || e.Position.Offset != uint64(round) {
				t.Fatalf("channel %d: entry %v, want %d", i, e, round)
			}
		}
	}
	// b's loop blocks in one XREAD for all 200 channels: one client
	// of the server is blocked, whatever the number of channels.
	for deadline := time.Now().Add(20 * time.Second); ; {
		n := s.infoInt(t, "clients", "blocked_clients")
		if n == 1 {
			break
		}
		if n > 1 || time.Now().After(deadline) {
			t.Fatalf("%d clients blocked, want 1", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPresence(t *testing.T) {
	s := startRedis(t, false)
	b := newTestBroker(t, s, nil)
	ctx := ctxFor(t)
	e := realtime.PresenceEntry{Socket: "n1.a", User: "ann", Info: `{"x":1}`}
	if added, err := b.AddPresence(ctx, "p", e, time.Hour); err != nil || !added {
		t.Fatalf("AddPresence = %v, %v", added, err)
	}
	if added, err := b.AddPresence(ctx, "p", e, time.Hour); err != nil || added {
		t.Fatalf("AddPresence again = %v, %v", added, err)
	}
	short := realtime.PresenceEntry{Socket: "n2.b", User: "bob"}
	if _, err := b.AddPresence(ctx, "p", short, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	live, expired, err := b.Presence(ctx, "p")
	if err != nil || len(live) != 1 || live[0] != e || len(expired) != 1 || expired[0] != short {
		t.Fatalf("Presence = %v, %v, %v", live, expired, err)
	}
	if _, expired, _ := b.Presence(ctx, "p"); len(expired) != 0 {
		t.Fatalf("expired entries returned twice: %v", expired)
	}
	forever := realtime.PresenceEntry{Socket: "n3.c"}
	if added, err := b.AddPresence(ctx, "p", forever, 0); err != nil || !added {
		t.Fatalf("AddPresence without a TTL = %v, %v", added, err)
	}
	if ttl, err := b.client.PTTL(ctx, b.presenceKeys("p")[0]).Result(); err != nil || ttl != -1 {
		t.Fatalf("presence keys with an entry without a TTL expire: %v, %v", ttl, err)
	}
	if removed, err := b.RemovePresence(ctx, "p", "n3.c"); err != nil || !removed {
		t.Fatalf("RemovePresence = %v, %v", removed, err)
	}
	if removed, err := b.RemovePresence(ctx, "p", "n1.a"); err != nil || !removed {
		t.Fatalf("RemovePresence = %v, %v", removed, err)
	}
	if removed, err := b.RemovePresence(ctx, "p", "n1.a"); err != nil || removed {
		t.Fatalf("RemovePresence again = %v, %v", removed, err)
	}
}

func TestCall(t *testing.T) {
	s := startRedis(t, false)
	a := newTestBroker(t, s, nil)
	b := newTestBroker(t, s, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	serving := make(chan struct{})
	go func() {
		defer wg.Done()
		close(serving)
		b.Serve(ctx, "node-b", func(ctx context.Context, req []byte) []byte { return append([]byte("re:"), req...) })
	}()
	defer func() {
		cancel()
		wg.Wait()
	}()
	<-serving
	var ans []byte
	var err error
	for range 200 { // until the Serve has subscribed
		ans, err = a.Call(ctxFor(t), "node-b", []byte("x\ny"))
		if !errors.Is(err, realtime.ErrNoNode) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil || string(ans) != "re:x\ny" {
		t.Fatalf("Call = %q, %v", ans, err)
	}
	if _, err := a.Call(ctxFor(t), "nobody", nil); !errors.Is(err, realtime.ErrNoNode) {
		t.Fatalf("Call(nobody): %v", err)
	}
}

func TestUnavailable(t *testing.T) {
	s := startRedis(t, false)
	b := newTestBroker(t, s, &Options{Timeout: time.Second})
	mustPublish(t, b, "u", "1", "")
	s.Kill(t)
	if _, err := b.Publish(ctxFor(t), "u", "2", "k"); !errors.Is(err, realtime.ErrBrokerUnavailable) {
		t.Fatalf("Publish to a killed Redis: %v", err)
	}
	if _, _, err := b.Since(ctxFor(t), "u", realtime.Position{}); !errors.Is(err, realtime.ErrBrokerUnavailable) {
		t.Fatalf("Since on a killed Redis: %v", err)
	}
}

func TestClosed(t *testing.T) {
	s := startRedis(t, false)
	b := newTestBroker(t, s, nil)
	_, p, _ := b.Since(ctxFor(t), "z", realtime.Position{})
	_, done, _ := follow(t, b, "z", p)
	time.Sleep(10 * time.Millisecond)
	b.Close()
	if err := <-done; !errors.Is(err, realtime.ErrBrokerClosed) {
		t.Fatalf("Follow after Close: %v", err)
	}
	if _, err := b.Publish(ctxFor(t), "z", "x", ""); !errors.Is(err, realtime.ErrBrokerClosed) {
		t.Fatalf("Publish after Close: %v", err)
	}
}

// TestFollowStartsWhileDown: a Follow called while Redis cannot be
// reached waits for it, and then delivers from its position.
func TestFollowStartsWhileDown(t *testing.T) {
	s := startRedis(t, true)
	b := newTestBroker(t, s, nil)
	p := mustPublish(t, b, "down", "1", "")
	s.Kill(t)
	entries, done, _ := follow(t, b, "down", p)
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Follow returned %v while Redis was down", err)
	default:
	}
	s.Start(t)
	mustPublish(t, b, "down", "2", "")
	if e := next(t, entries, done); e.Text != "2" || e.Position.Offset != p.Offset+1 {
		t.Fatalf("entry %v", e)
	}
}

// redisErr is an error as Redis answers it.
type redisErr string

func (e redisErr) Error() string { return string(e) }
func (redisErr) RedisError()     {}

func TestUnavailableErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{redisErr("LOADING Redis is loading the dataset in memory"), true},
		{redisErr("READONLY You can't write against a read only replica."), true},
		{redisErr("ERR max number of clients reached"), true},
		{redisErr("WRONGTYPE Operation against a key holding the wrong kind of value"), false},
		{redisErr("ERR user_script:1: Script attempted to access nonexistent global variable"), false},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{context.DeadlineExceeded, true},
		{redis.ErrPoolTimeout, true},
	} {
		if got := unavailable(tc.err); got != tc.want {
			t.Errorf("unavailable(%v) = %v", tc.err, got)
		}
	}
}
