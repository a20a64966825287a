package redisbroker

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/realtime-go/realtime"
	"github.com/redis/go-redis/v9"
)

// calls returns the calls of each command so far, from INFO
// commandstats, without those of its own connection (HELLO, CLIENT,
// INFO).
func (s *server) calls(t testing.TB) map[string]int64 {
	t.Helper()
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: s.sock})
	defer c.Close()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]int64)
	for line := range strings.Lines(info) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, found := strings.CutPrefix(name, "cmdstat_")
		if !ok || !found || name == "info" || name == "hello" || strings.HasPrefix(name, "client") {
			continue
		}
		v, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("INFO commandstats: %q", line)
		}
		m[name] = n
	}
	return m
}

// delta returns the commands run between two readings of calls.
func delta(before, after map[string]int64) map[string]int64 {
	d := make(map[string]int64)
	for k, v := range after {
		if n := v - before[k]; n != 0 {
			d[k] = n
		}
	}
	return d
}

// waitBlocked waits until n clients of s are blocked (a Follow loop in
// its XREAD).
func waitBlocked(t testing.TB, s *server, n int64) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); s.infoInt(t, "clients", "blocked_clients") < n; {
		if time.Now().After(deadline) {
			t.Fatal("the Follow loop never blocked")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPublishCommands counts the commands Redis runs for keyed
// publishes to a channel the Broker published to before: the EVALSHA,
// and in it one HINCRBY, one SET and one XADD, nothing else.
func TestPublishCommands(t *testing.T) {
	s := startRedis(t, false)
	b := newTestBroker(t, s, nil)
	first := mustPublish(t, b, "c", "warm", "k0") // loads the script, sets the TTLs
	before := s.calls(t)
	const n = 50
	for i := range n {
		p := mustPublish(t, b, "c", "x", "k"+strconv.Itoa(i+1))
		if p != (realtime.Position{Epoch: first.Epoch, Offset: first.Offset + uint64(i) + 1}) {
			t.Fatalf("publish %d at %v after %v", i+1, p, first)
		}
	}
	want := map[string]int64{"evalsha": n, "hincrby": n, "set": n, "xadd": n}
	if got := delta(before, s.calls(t)); !maps.Equal(got, want) {
		t.Errorf("%d publishes ran %v, want %v", n, got, want)
	}
}

// TestPublishTTLs: the first publish to a channel sets the stream's TTL
// to HistoryTTL plus the slack (a tenth of it here), and the next ones
// within the slack leave it.
func TestPublishTTLs(t *testing.T) {
	s := startRedis(t, false)
	const ttl = time.Hour
	b := newTestBroker(t, s, &Options{HistoryTTL: ttl})
	mustPublish(t, b, "c", "1", "")
	pttl := func(key string) time.Duration {
		d, err := b.client.PTTL(ctxFor(t), key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := pttl(b.streamKey("c")); d <= ttl || d > ttl+ttl/10 {
		t.Errorf("stream TTL %v, want in (%v, %v]", d, ttl, ttl+ttl/10)
	}
	if d := pttl(b.metaKey("c")); d <= 2*ttl || d > 2*ttl+ttl/10 {
		t.Errorf("meta TTL %v, want in (%v, %v]", d, 2*ttl, 2*ttl+ttl/10)
	}
	before := s.calls(t)
	mustPublish(t, b, "c", "2", "")
	if d := delta(before, s.calls(t)); d["pexpire"] != 0 {
		t.Errorf("a second publish ran %v", d)
	}
}

// TestPublishStaleEpoch: a Broker whose channel started a new epoch
// since its last publish publishes at the next offset of the new epoch,
// and leaves no field of the old one in the meta.
func TestPublishStaleEpoch(t *testing.T) {
	s := startRedis(t, false)
	b := newTestBroker(t, s, nil)
	other := newTestBroker(t, s, nil)
	old := mustPublish(t, b, "c", "1", "")
	if err := other.client.Del(ctxFor(t), other.metaKey("c")).Err(); err != nil {
		t.Fatal(err)
	}
	p1 := mustPublish(t, other, "c", "2", "")
	p2 := mustPublish(t, b, "c", "3", "")
	if p1.Epoch == old.Epoch || p2 != (realtime.Position{Epoch: p1.Epoch, Offset: p1.Offset + 1}) {
		t.Fatalf("positions %v, then %v and %v", old, p1, p2)
	}
	if n, err := b.client.HLen(ctxFor(t), b.metaKey("c")).Result(); err != nil || n != 2 {
		t.Fatalf("meta has %d fields (%v), want 2", n, err)
	}
}

// TestIdempotentKeyKeepsOffsets: a repeated key takes no offset.
func TestIdempotentKeyKeepsOffsets(t *testing.T) {
	s := startRedis(t, false)
	b := newTestBroker(t, s, nil)
	p1 := mustPublish(t, b, "i", "one", "key")
	if p := mustPublish(t, b, "i", "one", "key"); p != p1 {
		t.Fatalf("repeat at %v, first at %v", p, p1)
	}
	if p := mustPublish(t, b, "i", "two", "key2"); p != (realtime.Position{Epoch: p1.Epoch, Offset: p1.Offset + 1}) {
		t.Fatalf("next at %v after %v", p, p1)
	}
}

// TestFollowIdleCommands: a Broker that follows channels on which
// nothing is published runs no command but its XREAD, however many
// FollowTimeouts pass.
func TestFollowIdleCommands(t *testing.T) {
	s := startRedis(t, false)
	const timeout = 20 * time.Millisecond
	b := newTestBroker(t, s, &Options{FollowTimeout: timeout})
	for i := range 20 {
		ch := "idle" + strconv.Itoa(i)
		p := mustPublish(t, b, ch, "x", "")
		follow(t, b, ch, p)
	}
	waitBlocked(t, s, 1)
	time.Sleep(50 * timeout) // every channel would be checked 50 times
	// Once more, so that the loop has surely issued its XREAD again.
	waitBlocked(t, s, 1)
	before := s.calls(t)
	time.Sleep(50 * timeout)
	d := delta(before, s.calls(t))
	delete(d, "xread")
	if len(d) != 0 {
		t.Errorf("idle follow ran %v besides XREAD", d)
	}
}

// TestFollowNewEpochAnnounced: a followed channel that starts a new
// epoch (its meta deleted, then a publish or a Since) while its
// follower waits in XREAD, with fewer entries than the follower's
// offset, ends the Follow with ErrPositionLost at once, long before
// FollowTimeout.
func TestFollowNewEpochAnnounced(t *testing.T) {
	for _, by := range []string{"publish", "since"} {
		t.Run(by, func(t *testing.T) {
			s, b, pub, p := epochSetup(t, "ep")
			entries, done, _ := follow(t, b, "ep", p)
			waitBlocked(t, s, 1)
			if err := pub.client.Del(ctxFor(t), pub.metaKey("ep")).Err(); err != nil {
				t.Fatal(err)
			}
			if by == "publish" {
				mustPublish(t, pub, "ep", "new", "")
			} else if _, _, err := pub.Since(ctxFor(t), "ep", realtime.Position{}); err != nil {
				t.Fatal(err)
			}
			waitLost(t, entries, done)
		})
	}
}

// epochSetup starts a server, a Broker b that follows with a
// FollowTimeout of an hour (so that no timeout tells it of a new epoch)
// and a Broker pub, which publishes 3 entries to channel: p is the
// position of the last.
func epochSetup(t *testing.T, channel string) (s *server, b, pub *Broker, p realtime.Position) {
	t.Helper()
	s = startRedis(t, false)
	b = newTestBroker(t, s, &Options{FollowTimeout: time.Hour})
	pub = newTestBroker(t, s, nil)
	for i := range 3 {
		p = mustPublish(t, pub, channel, strconv.Itoa(i), "")
	}
	return s, b, pub, p
}

// waitLost waits for a Follow to end with ErrPositionLost, having
// delivered nothing.
func waitLost(t testing.TB, entries <-chan realtime.Entry, done <-chan error) {
	t.Helper()
	select {
	case e := <-entries:
		t.Fatalf("delivered %v", e)
	case err := <-done:
		if !errors.Is(err, realtime.ErrPositionLost) {
			t.Fatalf("Follow: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Follow went on")
	}
}

// TestFollowMissedAnnouncement: an announcement lost before the loop
// read it (the epochs stream deleted while the loop was delivering) is
// noticed by the gap before the next one, and the loop checks every
// followed channel.
func TestFollowMissedAnnouncement(t *testing.T) {
	s, b, pub, p := epochSetup(t, "a")
	_, hp, err := pub.Since(ctxFor(t), "hold", realtime.Position{})
	if err != nil {
		t.Fatal(err)
	}
	entries, done, _ := follow(t, b, "a", p)
	first, held, release := make(chan struct{}), make(chan struct{}), make(chan struct{})
	n := 0
	go b.Follow(t.Context(), "hold", hp, func(realtime.Entry) {
		if n++; n == 1 {
			close(first)
			return
		}
		close(held)
		<-release
	})
	// One entry delivered, and the loop blocked again: it has taken up
	// both Follows and made its checks.
	mustPublish(t, pub, "hold", "1", "")
	<-first
	waitBlocked(t, s, 1)
	mustPublish(t, pub, "hold", "2", "")
	<-held // the loop delivers: it reads nothing until released
	if err := pub.client.Del(ctxFor(t), pub.metaKey("a")).Err(); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, pub, "a", "new", "") // announced, then the announcement lost:
	if err := pub.client.Del(ctxFor(t), pub.epochsKey()).Err(); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, pub, "unfollowed", "x", "") // the next announcement
	close(release)
	waitLost(t, entries, done)
}

// TestFollowEpochChangedBeforeRegistered: a channel whose epoch changes
// after Follow checked its position, and whose announcement the loop
// read before the Follow was registered, still ends that Follow with
// ErrPositionLost: the loop reads a new Follow's epoch when it takes
// it up.
func TestFollowEpochChangedBeforeRegistered(t *testing.T) {
	s := startRedis(t, false)
	b := newTestBroker(t, s, &Options{FollowTimeout: time.Hour})
	pub := newTestBroker(t, s, nil)
	b.afterCheck = func(channel string) {
		if channel != "ep" {
			return
		}
		if err := pub.client.Del(ctxFor(t), pub.metaKey("ep")).Err(); err != nil {
			t.Error(err)
		}
		if _, _, err := pub.Since(ctxFor(t), "ep", realtime.Position{}); err != nil {
			t.Error(err)
		}
		// Redis answered the loop's XREAD with the announcement when it
		// ran the script; blocked again, the loop has read it.
		waitBlocked(t, s, 1)
	}
	_, op, err := pub.Since(ctxFor(t), "other", realtime.Position{})
	if err != nil {
		t.Fatal(err)
	}
	follow(t, b, "other", op) // the loop runs, blocked in its XREAD
	waitBlocked(t, s, 1)
	var p realtime.Position
	for i := range 3 {
		p = mustPublish(t, pub, "ep", strconv.Itoa(i), "")
	}
	entries, done, _ := follow(t, b, "ep", p)
	waitLost(t, entries, done)
}

// TestPresenceMany lists a presence of 2,500 entries, half of them
// expired, with one HMGET per thousand entries instead of one HGET
// each, and an empty presence with one ZRANGE.
func TestPresenceMany(t *testing.T) {
	s := startRedis(t, false)
	b := newTestBroker(t, s, nil)
	ctx := ctxFor(t)
	const n = 2500
	for i := range n {
		ttl := time.Hour
		if i%2 == 1 {
			ttl = time.Millisecond
		}
		e := realtime.PresenceEntry{Socket: "s" + strconv.Itoa(i), User: "u"}
		if _, err := b.AddPresence(ctx, "p", e, ttl); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond)
	if _, _, err := b.Presence(ctx, "warm"); err != nil { // loads the script
		t.Fatal(err)
	}
	before := s.calls(t)
	live, expired, err := b.Presence(ctx, "p")
	if err != nil || len(live) != n/2 || len(expired) != n/2 {
		t.Fatalf("Presence: %d live, %d expired, %v", len(live), len(expired), err)
	}
	for _, e := range live {
		if i, _ := strconv.Atoi(e.Socket[1:]); i%2 != 0 {
			t.Fatalf("%v live", e)
		}
	}
	want := map[string]int64{"evalsha": 1, "zrange": 1, "time": 1, "hmget": 3, "zrem": 2, "hdel": 2}
	if d := delta(before, s.calls(t)); !maps.Equal(d, want) {
		t.Errorf("Presence ran %v, want %v", d, want)
	}
	if live, expired, err := b.Presence(ctx, "p"); err != nil || len(live) != n/2 || len(expired) != 0 {
		t.Fatalf("Presence again: %d live, %d expired, %v", len(live), len(expired), err)
	}
	before = s.calls(t)
	if live, expired, err := b.Presence(ctx, "empty"); err != nil || len(live)+len(expired) != 0 {
		t.Fatalf("Presence(empty) = %v, %v, %v", live, expired, err)
	}
	want = map[string]int64{"evalsha": 1, "zrange": 1}
	if d := delta(before, s.calls(t)); !maps.Equal(d, want) {
		t.Errorf("Presence of an empty channel ran %v, want %v", d, want)
	}
}

// TestPresenceAddCommands: adding or refreshing an entry takes whether
// it is new from ZADD's reply, with no ZSCORE.
func TestPresenceAddCommands(t *testing.T) {
	s := startRedis(t, false)
	b := newTestBroker(t, s, nil)
	e := realtime.PresenceEntry{Socket: "s1", User: "u"}
	for i, want := range []bool{true, false} {
		before := s.calls(t)
		added, err := b.AddPresence(ctxFor(t), "p", e, time.Hour)
		if err != nil || added != want {
			t.Fatalf("AddPresence %d = %v, %v", i+1, added, err)
		}
		if i == 0 {
			continue // loads the script
		}
		cmds := map[string]int64{"evalsha": 1, "time": 1, "zadd": 1, "hset": 1, "zrange": 1, "pexpire": 2}
		if d := delta(before, s.calls(t)); !maps.Equal(d, cmds) {
			t.Errorf("AddPresence ran %v, want %v", d, cmds)
		}
	}
}
