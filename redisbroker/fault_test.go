package redisbroker

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realtime-go/realtime"
	"github.com/redis/go-redis/v9"
)

// TestFollowLagsBehindBurst holds a Follow while 100,000 entries (20 MB)
// are published, under output buffer limits of 1 MB for every kind of
// client: the follower is not disconnected, and then delivers every
// entry once, in order.
func TestFollowLagsBehindBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("publishes 100,000 entries")
	}
	const n, workers = 100_000, 8
	s := startRedis(t, false)
	b := newTestBroker(t, s, &Options{MaxHistory: 2 * n})
	pub := newTestBroker(t, s, &Options{MaxHistory: 2 * n})
	if err := pub.client.ConfigSet(ctxFor(t), "client-output-buffer-limit",
		"normal 1mb 512kb 1 pubsub 1mb 512kb 1").Err(); err != nil {
		t.Fatal(err)
	}
	_, start, err := b.Since(ctxFor(t), "burst", realtime.Position{})
	if err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	var got atomic.Int64
	var bad atomic.Value
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		first := true
		done <- b.Follow(ctx, "burst", start, func(e realtime.Entry) {
			if first {
				first = false
				<-hold // deliver is held up: the loop reads nothing more
			}
			if want := uint64(got.Add(1)); e.Position.Offset != want {
				bad.CompareAndSwap(nil, e.Position.String()+" for "+strconv.FormatUint(want, 10))
			}
		})
	}()
	defer func() {
		cancel()
		<-finished
	}()
	payload := strings.Repeat("x", 200)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range n / workers {
				if _, err := pub.Publish(ctxFor(t), "burst", payload, ""); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(hold)
	for deadline := time.Now().Add(60 * time.Second); got.Load() < n; {
		select {
		case err := <-done:
			t.Fatalf("Follow returned %v after %d entries", err, got.Load())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d entries delivered of %d", got.Load(), n)
		}
	}
	if v := bad.Load(); v != nil {
		t.Fatalf("entry %v", v)
	}
	if d := s.infoInt(t, "stats", "client_output_buffer_limit_disconnections"); d != 0 {
		t.Fatalf("%d clients disconnected by the output buffer limit", d)
	}
}

// lossyConn loses the first reply read after drop is set: it reads it,
// and then fails as a connection cut after Redis ran the command.
type lossyConn struct {
	net.Conn
	drop *atomic.Bool
}

func (c lossyConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.drop.CompareAndSwap(true, false) {
		c.Conn.Close()
		return 0, io.ErrUnexpectedEOF
	}
	return n, err
}

// TestPublishReplyLost: a publish whose reply is lost fails with
// ErrBrokerUnavailable; retried with its key, it gives the position of
// the entry appended the first time, and the channel has one entry.
func TestPublishReplyLost(t *testing.T) {
	s := startRedis(t, false)
	var drop atomic.Bool
	client := redis.NewClient(&redis.Options{
		Network:    "unix",
		Addr:       s.sock,
		MaxRetries: -1,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return lossyConn{c, &drop}, nil
		},
	})
	defer client.Close()
	b, err := New(client, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	first := mustPublish(t, b, "lossy", "before", "")
	drop.Store(true)
	if _, err := b.Publish(ctxFor(t), "lossy", "once", "key-1"); !errors.Is(err, realtime.ErrBrokerUnavailable) {
		t.Fatalf("Publish with its reply lost: %v", err)
	}
	p := mustPublish(t, b, "lossy", "once", "key-1")
	if p.Offset != first.Offset+1 {
		t.Fatalf("retry at %v, after %v", p, first)
	}
	es, _, err := b.Since(ctxFor(t), "lossy", first)
	if err != nil || len(es) != 1 || es[0].Text != "once" {
		t.Fatalf("Since = %v, %v", es, err)
	}
}

// TestFollowEpochInEntries: a channel deleted and published again past
// the follower's offset ends the Follow with ErrPositionLost instead of
// delivering the new epoch's entries as if they followed the old ones
// (whether the loop first reads the announcement of the new epoch or
// the entries, which carry it).
func TestFollowEpochInEntries(t *testing.T) {
	s, b, pub, p := epochSetup(t, "ep")
	entries, done, _ := follow(t, b, "ep", p)
	waitBlocked(t, s, 1) // after the loop's first epoch check
	if err := pub.client.Del(ctxFor(t), pub.streamKey("ep"), pub.metaKey("ep")).Err(); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		mustPublish(t, pub, "ep", "new"+strconv.Itoa(i), "")
	}
	waitLost(t, entries, done)
}
