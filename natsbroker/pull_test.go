package natsbroker

import (
	"sync"
	"testing"

	"github.com/realtime-go/realtime"
)

// Pulls that end on the client's side (its deadline came before the
// server's expiry) while messages are in flight: the consumer counts
// those messages as delivered, so the Follow must not go on with it, or
// it would skip them. Short pulls make the race frequent.
func TestFollowShortPulls(t *testing.T) {
	s := startServer(t)
	pub := dialBroker(t, s, &Options{MaxHistory: -1, MaxHistoryBytes: -1})
	b := dialBroker(t, s, &Options{Heartbeat: 2e6}) // 2 ms: pulls of 10 ms
	start := publishN(t, pub, "short", 1, 1)
	f := follow(t, b, "short", start)
	const n = 3000
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			ctx := testContext(t)
			for i := w; i < n; i += 4 {
				if _, err := pub.Publish(ctx, "short", "x", ""); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	got := f.wait(t, n)
	for i, e := range got {
		if e.Position != (realtime.Position{Epoch: start.Epoch, Offset: uint64(i + 2)}) {
			t.Fatalf("entry %d at %v", i, e.Position)
		}
	}
}
