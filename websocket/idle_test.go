package websocket

import (
	"context"
	"errors"
	"testing"
	"time"
)

// An idle TCP connection holds no buffer: once the messages are read and
// the writes flushed, waiting for input borrows nothing from the pool.
// That is what keeps 10,000 idle connections at a few KiB each.
func TestIdleHoldsNoBuffers(t *testing.T) {
	if !haveRawIO {
		t.Skip("without raw I/O, a read waits for input in a buffer")
	}
	s, c := connPair(t, overTCP, ConnOptions{}, ConnOptions{})
	ctx := context.Background()
	for _, size := range []int{16, 1024, 100 << 10} {
		msg := pattern(size, 3)
		if err := c.Write(ctx, MessageBinary, msg); err != nil {
			t.Fatal(err)
		}
		_, got, err := s.Read(ctx)
		if err != nil || len(got) != size {
			t.Fatalf("%d bytes: read %d, %v", size, len(got), err)
		}
		if err := s.Write(ctx, MessageBinary, got); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Read(ctx); err != nil {
			t.Fatal(err)
		}
		// Wait for input that does not come; the same goroutine then
		// looks at what the reader holds.
		for _, conn := range []*Conn{s, c} {
			wctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
			_, _, err := conn.Read(wctx)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%d bytes: idle read: %v", size, err)
			}
			if conn.rbufp != nil || conn.rbuf != nil {
				t.Errorf("%d bytes: idle %s holds a %d-byte read buffer", size, roleName(conn.client), cap(conn.rbuf))
			}
			conn.writeLock.lock(ctx, nil)
			held := conn.wbufp != nil
			conn.unlockWrite()
			if held {
				t.Errorf("%d bytes: idle %s holds a write buffer", size, roleName(conn.client))
			}
		}
	}
}
