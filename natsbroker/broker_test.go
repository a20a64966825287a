package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

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
