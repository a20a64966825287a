package natsbroker

import (
	"errors"
	"testing"
	"time"

	"github.com/realtime-go/realtime"
)

// A stream whose messages all expired keeps its last offset across a
// kill -9 and restart: the next publish does not reuse an offset of
// the same epoch.
func TestAgedOutAcrossRestart(t *testing.T) {
	s := startServer(t)
	b := dialBroker(t, s, &Options{MaxHistoryAge: 500 * time.Millisecond})
	last := publishN(t, b, "aged", 1, 5)
	ctx := testContext(t)
	for {
		_, latest, err := b.Since(ctx, "aged", realtime.Position{Epoch: last.Epoch, Offset: 1})
		if errors.Is(err, realtime.ErrPositionLost) && latest == last {
			break
		}
		if err != nil && !errors.Is(err, realtime.ErrPositionLost) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.Kill()
	s.Start()
	var pos realtime.Position
	err := untilAvailable(func() (err error) {
		pos, err = b.Publish(ctx, "aged", "m6", "")
		return err
	})
	if err != nil || pos.Epoch == last.Epoch && pos.Offset <= last.Offset {
		t.Fatalf("publish after the restart: %v, %v; before it the last was %v", pos, err, last)
	}
	t.Logf("after restart: %v (before %v)", pos, last)
}
