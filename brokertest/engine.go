package brokertest

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/realtime-go/realtime"
)

// kill stops the engine, and starts it again at cleanup if the test
// ends before it does, so that the tests after it find an engine.
func (s *suite) kill(t *testing.T) {
	t.Helper()
	s.killed = true
	t.Cleanup(func() {
		if s.killed {
			s.start(t)
		}
	})
	s.h.Kill(t)
}

func (s *suite) start(t *testing.T) {
	t.Helper()
	s.h.Start(t)
	s.killed = false
}

// publishRetry publishes with key until the engine takes it: a publish
// in doubt is retried with its key, as a Hub does.
func publishRetry(t *testing.T, b realtime.Broker, channel, text, key string) realtime.Position {
	t.Helper()
	var p realtime.Position
	var last error
	deadline := time.Now().Add(waitLong)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), unavailCtx)
		var err error
		p, err = b.Publish(ctx, channel, text, key)
		cancel()
		if err == nil {
			return p
		}
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("Publish(%q) failed for %v after the engine started again; last: %v", text, waitLong, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sinceRetry calls Since until the engine answers.
func sinceRetry(t *testing.T, b realtime.Broker, channel string, pos realtime.Position) ([]realtime.Entry, realtime.Position, error) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), unavailCtx)
		entries, latest, err := b.Since(ctx, channel, pos)
		cancel()
		if err == nil || errors.Is(err, realtime.ErrPositionLost) {
			return entries, latest, err
		}
		if time.Now().After(deadline) {
			t.Fatalf("Since(%q, %v) failed for %v after the engine started again; last: %v", channel, pos, waitLong, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// unavailable calls f with a short context, and fails the test unless
// f returns, with an error wrapping ErrBrokerUnavailable.
func unavailable(t *testing.T, what string, f func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), unavailCtx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, realtime.ErrBrokerUnavailable) {
			t.Errorf("%s while the engine is down: %v, want ErrBrokerUnavailable", what, err)
		}
	case <-time.After(waitLong):
		t.Fatalf("%s while the engine is down did not return %v after its context ended", what, waitLong)
	}
}

// followed returns two clients, pub and sub, a new channel and its
// latest position, start, and a follower of it from start on sub.
func (s *suite) followed(t *testing.T, what string) (pub, sub realtime.Broker, ch string, start realtime.Position, f *follower) {
	pub, sub = s.client(t), s.client(t)
	ch = s.name(what)
	start = latest(t, pub, ch)
	return pub, sub, ch, start, follow(t, sub, ch, start)
}

// testUnavailable: while the engine is down, calls fail with
// ErrBrokerUnavailable within their context; a Follow keeps going, and
// delivers what is published once the engine is back, with no gap and
// no duplicate.
func (s *suite) testUnavailable(t *testing.T) {
	pub, sub, ch, start, f := s.followed(t, "unavail")
	before := publish(t, pub, ch, "before", "")
	f.waitUntil(t, before)

	s.kill(t)
	unavailable(t, "Publish", func(ctx context.Context) error {
		_, err := pub.Publish(ctx, ch, "during", "during-key")
		return err
	})
	unavailable(t, "Since", func(ctx context.Context) error {
		_, _, err := pub.Since(ctx, ch, before)
		return err
	})
	unavailable(t, "AddPresence", func(ctx context.Context) error {
		_, err := pub.AddPresence(ctx, ch, realtime.PresenceEntry{Socket: s.name("down") + ".a"}, time.Minute)
		return err
	})
	unavailable(t, "Call", func(ctx context.Context) error {
		_, err := pub.Call(ctx, s.name("down-node"), []byte("x"))
		return err
	})
	if done, err := f.returned(); done {
		t.Fatalf("Follow returned %v while the engine was down", err)
	}
	s.start(t)

	// The publish in doubt, retried with its key, then more.
	during := publishRetry(t, pub, ch, "during", "during-key")
	var last realtime.Position
	for i := range 5 {
		last = publishRetry(t, pub, ch, "after"+strconv.Itoa(i), "after-key-"+strconv.Itoa(i))
	}
	if last.Offset != during.Offset+5 {
		t.Fatalf("5 publishes after %v end at %v", during, last)
	}
	got := f.waitUntil(t, last)
	f.check(t)
	want := []string{"before", "during", "after0", "after1", "after2", "after3", "after4"}
	if !slices.Equal(texts(got), want) {
		t.Fatalf("Follow delivered %q, want %q", texts(got), want)
	}
	entries, top, err := sinceRetry(t, sub, ch, start)
	if err != nil || top != last || !slices.Equal(entries, got) {
		t.Fatalf("Since(%v) = %d entries, %v, %v; unlike what Follow delivered up to %v", start, len(entries), top, err, last)
	}
}

// testRestart: the engine killed and started again with its data
// loses nothing: the same entries at the same positions, keys still
// remembered, and a Follow goes on with no gap and no duplicate.
func (s *suite) testRestart(t *testing.T) {
	pub, sub, ch, start, f := s.followed(t, "restart")
	var last realtime.Position
	for i := range 20 {
		last = publish(t, pub, ch, "m"+strconv.Itoa(i), "key-"+strconv.Itoa(i))
	}
	f.waitUntil(t, last)
	before, _ := since(t, pub, ch, start)

	s.kill(t)
	s.start(t)

	entries, top, err := sinceRetry(t, sub, ch, start)
	if err != nil || top != last || !slices.Equal(entries, before) {
		t.Fatalf("after the restart: Since(%v) = %d entries, %v, %v; want %d, %v", start, len(entries), top, err, len(before), last)
	}
	// The last publish retried (its answer lost with the engine, say).
	if p := publishRetry(t, pub, ch, "m19", "key-19"); p != last {
		t.Fatalf("a retry after the restart published at %v; the first was at %v", p, last)
	}
	next := publishRetry(t, pub, ch, "next", "key-next")
	if next != (realtime.Position{Epoch: last.Epoch, Offset: last.Offset + 1}) {
		t.Fatalf("the publish after the restart at %v, after %v", next, last)
	}
	got := f.waitUntil(t, next)
	f.check(t)
	if !slices.Equal(got, append(before, realtime.Entry{Position: next, Text: "next"})) {
		t.Fatalf("Follow delivered %q across the restart", texts(got))
	}
}

// testWipe: the engine restarted without its data starts every channel
// again under a new epoch: positions of the old one are lost, for Since
// and for a running Follow, which delivers nothing of the new epoch.
func (s *suite) testWipe(t *testing.T) {
	pub, sub, ch, _, f := s.followed(t, "wipe")
	var old realtime.Position
	for i := range 3 {
		old = publish(t, pub, ch, "old"+strconv.Itoa(i), "")
	}
	f.waitUntil(t, old)

	s.h.Wipe(t)

	p := publishRetry(t, pub, ch, "new", "new-key")
	if p.Epoch == old.Epoch || p.Epoch == 0 || p.Offset != 1 {
		t.Fatalf("the first publish after the wipe at %v; before it, %v", p, old)
	}
	entries, top, err := sinceRetry(t, sub, ch, old)
	if !errors.Is(err, realtime.ErrPositionLost) || len(entries) != 0 || top != p {
		t.Fatalf("Since(%v) after the wipe = %v, %v, %v; want none, %v, ErrPositionLost", old, entries, top, err, p)
	}
	if _, top, err := sinceRetry(t, sub, ch, realtime.Position{}); err != nil || top != p {
		t.Fatalf("Since(zero) after the wipe = %v, %v; want %v", top, err, p)
	}
	waitFor(t, "Follow to return ErrPositionLost after the wipe", func() bool {
		done, _ := f.returned()
		return done
	})
	if _, err := f.returned(); !errors.Is(err, realtime.ErrPositionLost) {
		t.Fatalf("Follow returned %v after the wipe, want ErrPositionLost", err)
	}
	f.check(t) // nothing of the new epoch
	if got := f.got(); len(got) != 3 {
		t.Fatalf("Follow delivered %v", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := sub.Follow(ctx, ch, old, func(e realtime.Entry) {
		t.Errorf("Follow from the old epoch delivered %v", e)
	}); !errors.Is(err, realtime.ErrPositionLost) {
		t.Fatalf("Follow from the old epoch after the wipe returned %v", err)
	}
	// The new epoch is followed as any.
	f2 := follow(t, sub, ch, p)
	p2 := publish(t, pub, ch, "new2", "")
	f2.waitUntil(t, p2)
	f2.check(t)
}
