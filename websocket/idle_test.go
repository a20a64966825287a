package websocket

import (
	"context"
	"errors"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/realtime-go/realtime/extensions"
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

// A ping exchange leaves nothing behind on an idle connection: with a
// heartbeat every connection sees one every few seconds, so what the
// first leaves (a buffer for control payloads, the answered ping and its
// callback in the unused end of the pending list, drained pongs) is paid
// by every idle connection of a server for its life.
func TestPingLeavesNothing(t *testing.T) {
	const n = 200
	ctx := context.Background()
	type pair struct {
		s, c         *Conn
		sRead, cRead <-chan readResult
	}
	pairs := make([]pair, n)
	for i := range pairs {
		s, c := connPair(t, overTCP, ConnOptions{}, ConnOptions{})
		pairs[i] = pair{s, c, startReader(t, s), startReader(t, c)}
		// A message each way first: what any read or write makes once
		// is not the ping's.
		for _, d := range [][2]*Conn{{s, c}, {c, s}} {
			if err := d[0].Write(ctx, MessageText, []byte("hi")); err != nil {
				t.Fatal(err)
			}
		}
		for _, ch := range []<-chan readResult{pairs[i].sRead, pairs[i].cRead} {
			if r := <-ch; r.err != nil {
				t.Fatal(r.err)
			}
		}
	}
	live := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC() // the pools' victims too
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := live()
	for _, p := range pairs {
		// Both ways: the server's reader answers the client's ping, and
		// sees the pong of its own.
		for _, c := range []*Conn{p.s, p.c} {
			if _, err := c.Ping(ctx, []byte("beat")); err != nil {
				t.Fatal(err)
			}
		}
	}
	after := live()
	// Signed: the heap may have shrunk. The bound leaves room for what
	// a connection makes once, on the first contention for its write
	// lock (a wake channel, the flush timer), which a ping may be the
	// first to meet, and for what the runtime's own structures grow by
	// (one run in CI measured 275 bytes); what the pings left each time
	// was 812 bytes.
	if grown := (int64(after) - int64(before)) / n; grown > 512 {
		t.Errorf("a ping each way left %d bytes per connection pair on the heap, want at most 512", grown)
	}
}

// What a server connection costs of its own, idle, beside the net.Conn
// and the goroutine reading it: the Conn and what newConn makes with it,
// with a heartbeat as package realtime gives every socket. It was 1.35
// KiB (a Conn of 952 bytes in the 1 KiB size class, its Done channel,
// the keep-alive and its timer); most connections of a push server are
// idle, so this is much of their memory beside the kernel's and the
// reading goroutine's.
func TestIdleConnBytes(t *testing.T) {
	a, b := netPair(t, overTCP)
	defer a.Close()
	defer b.Close()
	const n = 100
	conns := make([]*Conn, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range conns {
		conns[i] = newConn(a, nil, false, 13, "", extensions.Negotiated{}, ConnOptions{Heartbeat: time.Hour})
	}
	runtime.ReadMemStats(&after)
	for _, c := range conns {
		c.ka.stop()
	}
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 1152 {
		t.Errorf("a server connection made %d bytes, want at most 1152", per)
	}
}

// A heartbeat costs a ping and its pong, and no context: one with the
// pong's deadline per ping, its timer left in the runtime's timer heap
// until that deadline, kept 0.2-0.3 KiB of each of 10,000 idle
// connections reachable for seconds after every heartbeat (capbench,
// -settle 20s).
func TestHeartbeatBytes(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops sync.Pool's buffers: each write allocates one")
	}
	const n = 100
	conns := make([]*Conn, n)
	for i := range conns {
		// The heartbeat is run by hand below.
		s, c := connPair(t, overTCP, ConnOptions{Heartbeat: time.Hour}, ConnOptions{})
		startReader(t, s)
		startReader(t, c)
		conns[i] = s
	}
	beat := func() {
		for _, c := range conns {
			c.ka.fire()
		}
		deadline := time.Now().Add(waitLong)
		for _, c := range conns {
			for {
				c.ka.mu.Lock()
				waiting := c.ka.waiting
				c.ka.mu.Unlock()
				if !waiting {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no pong")
				}
				runtime.Gosched()
			}
		}
	}
	beat() // what the first makes once is not the heartbeat's
	// The least of a few: what other goroutines of the process allocate
	// meanwhile (an earlier test's, ending) counts too, and only adds.
	least := uint64(math.MaxUint64)
	for range 5 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		beat()
		runtime.ReadMemStats(&after)
		least = min(least, (after.TotalAlloc-before.TotalAlloc)/n)
	}
	// Both sides: the server's ping, the client's pong.
	if least > 320 {
		t.Errorf("a heartbeat made %d bytes per connection, want at most 320", least)
	}
}
