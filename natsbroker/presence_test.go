package natsbroker

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/realtime-go/realtime"
)

func TestPresence(t *testing.T) {
	s := startServer(t)
	b1 := dialBroker(t, s, nil)
	b2 := dialBroker(t, s, nil)
	ctx := testContext(t)
	alice := realtime.PresenceEntry{Socket: "n1.a", User: "alice", Info: `{"x":1}`}
	bob := realtime.PresenceEntry{Socket: "n2.b", User: "bob"}
	if added, err := b1.AddPresence(ctx, "room", alice, time.Minute); err != nil || !added {
		t.Fatalf("add alice = %v, %v", added, err)
	}
	if added, err := b1.AddPresence(ctx, "room", alice, time.Minute); err != nil || added {
		t.Fatalf("refresh alice = %v, %v", added, err)
	}
	if added, err := b2.AddPresence(ctx, "room", bob, time.Minute); err != nil || !added {
		t.Fatalf("add bob = %v, %v", added, err)
	}
	if _, err := b2.AddPresence(ctx, "other room", bob, time.Minute); err != nil {
		t.Fatal(err)
	}
	live, expired, err := b2.Presence(ctx, "room")
	if err != nil || !slices.Equal(live, []realtime.PresenceEntry{alice, bob}) || len(expired) != 0 {
		t.Fatalf("presence = %v, %v, %v", live, expired, err)
	}
	if removed, err := b2.RemovePresence(ctx, "room", alice.Socket); err != nil || !removed {
		t.Fatalf("remove alice = %v, %v", removed, err)
	}
	if removed, err := b1.RemovePresence(ctx, "room", alice.Socket); err != nil || removed {
		t.Fatalf("remove alice again = %v, %v", removed, err)
	}
	live, _, err = b1.Presence(ctx, "room")
	if err != nil || !slices.Equal(live, []realtime.PresenceEntry{bob}) {
		t.Fatalf("presence after the remove = %v, %v", live, err)
	}
	if added, err := b1.AddPresence(ctx, "room", alice, time.Minute); err != nil || !added {
		t.Fatalf("add alice after her remove = %v, %v", added, err)
	}
}

// An expired entry (its node died) is returned as expired to one of
// many concurrent callers only.
func TestPresenceExpiredOnce(t *testing.T) {
	s := startServer(t)
	ctx := testContext(t)
	bs := dialBrokers(t, s, 4)
	ghosts := []realtime.PresenceEntry{{Socket: "dead.1"}, {Socket: "dead.2"}, {Socket: "dead.3"}}
	for _, g := range ghosts {
		if _, err := bs[0].AddPresence(ctx, "room", g, 300*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	keep := realtime.PresenceEntry{Socket: "alive.1"}
	if _, err := bs[1].AddPresence(ctx, "room", keep, time.Minute); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	var mu sync.Mutex
	var all []realtime.PresenceEntry
	var wg sync.WaitGroup
	for _, b := range bs {
		wg.Go(func() {
			live, expired, err := b.Presence(ctx, "room")
			if err != nil || !slices.Equal(live, []realtime.PresenceEntry{keep}) {
				t.Errorf("presence = %v, %v", live, err)
			}
			mu.Lock()
			all = append(all, expired...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.SortFunc(all, func(a, b realtime.PresenceEntry) int { return strings.Compare(a.Socket, b.Socket) })
	if !slices.Equal(all, ghosts) {
		t.Fatalf("expired across callers = %v, want each of %v once", all, ghosts)
	}
	if removed, err := bs[0].RemovePresence(ctx, "room", "dead.1"); err != nil || removed {
		t.Fatalf("remove a reaped entry = %v, %v", removed, err)
	}
}

func TestCall(t *testing.T) {
	s := startServer(t)
	b1 := dialBroker(t, s, nil)
	b2 := dialBroker(t, s, nil)
	ctx := testContext(t)
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- b2.Serve(sctx, "node 2", func(_ context.Context, req []byte) []byte {
			return append([]byte("re: "), req...)
		})
	}()
	var got []byte
	var err error
	for {
		got, err = b1.Call(ctx, "node 2", []byte("hi"))
		if !errors.Is(err, realtime.ErrNoNode) {
			break // Serve may not have subscribed yet
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil || string(got) != "re: hi" {
		t.Fatalf("call = %q, %v", got, err)
	}
	stop()
	if err := <-served; !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve returned %v", err)
	}
	if _, err := b1.Call(ctx, "node 2", []byte("hi")); !errors.Is(err, realtime.ErrNoNode) {
		t.Fatalf("call after Serve ended: %v", err)
	}
	if _, err := b1.Call(ctx, "nobody", nil); !errors.Is(err, realtime.ErrNoNode) {
		t.Fatalf("call to nobody: %v", err)
	}
}

// Close ends the broker's Follow and Serve calls and fails its methods,
// but leaves open a connection the caller gave New.
func TestClose(t *testing.T) {
	s := startServer(t)
	nc, err := nats.Connect(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	b, err := New(nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	pos, err := b.Publish(ctx, "c", "m1", "")
	if err != nil {
		t.Fatal(err)
	}
	followed := make(chan error, 1)
	go func() { followed <- b.Follow(ctx, "c", pos, func(realtime.Entry) {}) }()
	served := make(chan error, 1)
	go func() {
		served <- b.Serve(ctx, "n", func(context.Context, []byte) []byte { return nil })
	}()
	time.Sleep(100 * time.Millisecond)
	b.Close()
	for name, c := range map[string]chan error{"Follow": followed, "Serve": served} {
		if err := <-c; !errors.Is(err, realtime.ErrBrokerClosed) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
	if _, err := b.Publish(ctx, "c", "m2", ""); !errors.Is(err, realtime.ErrBrokerClosed) {
		t.Errorf("Publish after Close: %v", err)
	}
	if _, _, err := b.Since(ctx, "c", pos); !errors.Is(err, realtime.ErrBrokerClosed) {
		t.Errorf("Since after Close: %v", err)
	}
	if _, err := b.Call(ctx, "n", nil); !errors.Is(err, realtime.ErrBrokerClosed) {
		t.Errorf("Call after Close: %v", err)
	}
	if !nc.IsConnected() {
		t.Error("Close closed the caller's connection")
	}
}

// Calls racing the end of a Serve get an answer or ErrNoNode, never a
// wait for their timeout: those the server sent before it heard of the
// unsubscribe are answered as from no node.
func TestCallWhileServeEnds(t *testing.T) {
	s := startServer(t)
	b1 := dialBroker(t, s, &Options{RequestTimeout: time.Minute})
	b2 := dialBroker(t, s, nil)
	ctx := testContext(t)
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- b2.Serve(sctx, "ending", func(_ context.Context, req []byte) []byte { return req })
	}()
	for {
		if _, err := b1.Call(ctx, "ending", nil); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var wg sync.WaitGroup
	var answered atomic.Int64
	for range 8 {
		wg.Go(func() {
			for {
				_, err := b1.Call(ctx, "ending", []byte("x"))
				if errors.Is(err, realtime.ErrNoNode) {
					return
				}
				if err != nil {
					t.Errorf("call: %v", err)
					return
				}
				answered.Add(1)
			}
		})
	}
	for answered.Load() < 100 {
		time.Sleep(time.Millisecond)
	}
	stop()
	wg.Wait()
	<-served
}

// A server restarted empty has lost the presence bucket too: the broker
// makes it again.
func TestPresenceAfterWipe(t *testing.T) {
	s := startServer(t)
	b := dialBroker(t, s, nil)
	ctx := testContext(t)
	e := realtime.PresenceEntry{Socket: "n.1", User: "u"}
	if _, err := b.AddPresence(ctx, "room", e, time.Minute); err != nil {
		t.Fatal(err)
	}
	s.Wipe()
	var added bool
	err := untilAvailable(func() (err error) {
		added, err = b.AddPresence(ctx, "room", e, time.Minute)
		return err
	})
	if err != nil || !added {
		t.Fatalf("add after the wipe = %v, %v", added, err)
	}
	live, _, err := b.Presence(ctx, "room")
	if err != nil || !slices.Equal(live, []realtime.PresenceEntry{e}) {
		t.Fatalf("presence after the wipe = %v, %v", live, err)
	}
}
