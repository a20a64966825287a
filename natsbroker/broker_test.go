package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/realtime-go/realtime"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Offsets count each channel's messages from 1, whatever the other
// channels do, and Since returns them from any position.
func TestPublishSince(t *testing.T) {
	s := startServer(t)
	b := dialBroker(t, s, nil)
	ctx := testContext(t)
	channels := []string{"a", "b.c*>", "$presence:a b"}
	var epochs [3]uint64
	for i := 1; i <= 5; i++ {
		for j, ch := range channels {
			pos, err := b.Publish(ctx, ch, fmt.Sprintf("%s %d", ch, i), "")
			if err != nil {
				t.Fatal(err)
			}
			if pos.Offset != uint64(i) || pos.Epoch == 0 || (epochs[j] != 0 && pos.Epoch != epochs[j]) {
				t.Fatalf("publish %d to %q: position %v", i, ch, pos)
			}
			epochs[j] = pos.Epoch
		}
	}
	for j, ch := range channels {
		entries, latest, err := b.Since(ctx, ch, realtime.Position{})
		if err != nil || len(entries) != 0 || latest != (realtime.Position{Epoch: epochs[j], Offset: 5}) {
			t.Fatalf("Since(%q, zero) = %v, %v, %v", ch, entries, latest, err)
		}
		entries, latest, err = b.Since(ctx, ch, realtime.Position{Epoch: epochs[j], Offset: 2})
		if err != nil || latest.Offset != 5 || len(entries) != 3 {
			t.Fatalf("Since(%q, 2) = %v, %v, %v", ch, entries, latest, err)
		}
		for k, e := range entries {
			if e.Position != (realtime.Position{Epoch: epochs[j], Offset: uint64(k + 3)}) || e.Text != fmt.Sprintf("%s %d", ch, k+3) {
				t.Fatalf("Since(%q, 2)[%d] = %v", ch, k, e)
			}
		}
		if _, _, err := b.Since(ctx, ch, realtime.Position{Epoch: epochs[j] + 1, Offset: 2}); !errors.Is(err, realtime.ErrPositionLost) {
			t.Fatalf("Since another epoch: %v", err)
		}
		if _, _, err := b.Since(ctx, ch, realtime.Position{Epoch: epochs[j], Offset: 6}); !errors.Is(err, realtime.ErrPositionLost) {
			t.Fatalf("Since past the last: %v", err)
		}
	}
	// A channel nobody published to is at offset 0 of an epoch.
	_, latest, err := b.Since(ctx, "empty", realtime.Position{})
	if err != nil || latest.Epoch == 0 || latest.Offset != 0 {
		t.Fatalf("Since(empty) = %v, %v", latest, err)
	}
}

// Nodes that create a channel's stream at once end up in one stream,
// under one epoch, with one numbering.
func TestCreateRace(t *testing.T) {
	s := startServer(t)
	ctx := testContext(t)
	bs := dialBrokers(t, s, 6)
	for round := range 5 {
		channel := fmt.Sprintf("race-%d", round)
		positions := make([]realtime.Position, len(bs))
		errs := make([]error, len(bs))
		var wg sync.WaitGroup
		for i, b := range bs {
			wg.Go(func() { positions[i], errs[i] = b.Publish(ctx, channel, "x", "") })
		}
		wg.Wait()
		seen := map[uint64]bool{}
		for i, p := range positions {
			if errs[i] != nil || p.Epoch != positions[0].Epoch || p.Offset < 1 || p.Offset > uint64(len(bs)) || seen[p.Offset] {
				t.Fatalf("round %d: positions %v, errors %v", round, positions, errs)
			}
			seen[p.Offset] = true
		}
	}
}

func TestOptions(t *testing.T) {
	for _, o := range []Options{{Prefix: "a.b"}, {Prefix: "a*"}, {Prefix: "é"}, {Prefix: strings.Repeat("p", 65)}, {MaxKeyAge: -1}} {
		if _, err := Dial("nats://127.0.0.1:1", &o); err == nil {
			t.Errorf("Dial with %+v: no error", o)
		}
	}
	o, err := normalize(&Options{MaxHistoryAge: time.Minute, MaxHistory: -1})
	if err != nil || o.MaxKeyAge != time.Minute || o.MaxHistory != -1 || o.MaxHistoryBytes != realtime.DefaultMaxHistoryBytes || o.Prefix != DefaultPrefix {
		t.Fatalf("normalize = %+v, %v", o, err)
	}
}

// A stream named after a channel but not made by a broker (or a hash
// collision) is an error that retrying cannot mend, not an unavailable
// server.
func TestForeignStream(t *testing.T) {
	s := startServer(t)
	b := dialBroker(t, s, nil)
	ctx := testContext(t)
	name, _ := b.names("taken")
	if _, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"someone.else"}}); err != nil {
		t.Fatal(err)
	}
	_, err := b.Publish(ctx, "taken", "x", "")
	if err == nil || errors.Is(err, realtime.ErrBrokerUnavailable) {
		t.Fatalf("publish: %v", err)
	}
	if err := b.Follow(ctx, "taken", realtime.Position{}, func(realtime.Entry) {}); err == nil || errors.Is(err, realtime.ErrBrokerUnavailable) {
		t.Fatalf("follow: %v", err)
	}
}

// ConnectOptions reach the connection Dial makes.
func TestConnectOptions(t *testing.T) {
	s := startServer(t)
	b := dialBroker(t, s, &Options{ConnectOptions: []nats.Option{nats.Name("mine")}})
	if _, err := b.Publish(testContext(t), "co", "x", ""); err != nil {
		t.Fatal(err)
	}
	if b.nc.Opts.Name != "mine" || b.nc.Opts.MaxReconnect != -1 {
		t.Fatalf("connection options: name %q, max reconnect %d", b.nc.Opts.Name, b.nc.Opts.MaxReconnect)
	}
}
