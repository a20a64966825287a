package websocket

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realtime-go/realtime/extensions"
	"github.com/realtime-go/realtime/extensions/deflate"
	"github.com/realtime-go/realtime/internal/batchtest"
)

// countedConn is a server Conn over a countingConn, with the peer's raw
// end, which nobody reads yet.
func countedConn(tb testing.TB, opts ConnOptions) (*Conn, *atomic.Int64, net.Conn) {
	tb.Helper()
	a, b := netPair(tb, overTCP)
	writes := new(atomic.Int64)
	c, nc := benchConnOn(tb, batchtest.Conn{Conn: a, Writes: writes}, b, false, opts)
	tb.Cleanup(func() {
		c.CloseNow()
		nc.Close()
	})
	writes.Store(0)
	return c, writes, nc
}

// batchOf builds a batch of n messages of size bytes, alternating text,
// binary and prepared messages, and returns the frames a server sends for
// them without extensions.
func batchOf(tb testing.TB, n, size int) (*Batch, []byte) {
	tb.Helper()
	var b Batch
	var want []byte
	for i := range n {
		p := pattern(size, byte(i))
		switch i % 3 {
		case 0:
			p = textPattern(size)
			if err := b.Add(MessageText, p); err != nil {
				tb.Fatal(err)
			}
			want = appendFrame(want, true, 0, opText, false, [4]byte{}, p)
		case 1:
			if err := b.Add(MessageBinary, p); err != nil {
				tb.Fatal(err)
			}
			want = appendFrame(want, true, 0, opBinary, false, [4]byte{}, p)
		default:
			pm, err := NewPreparedMessage(MessageBinary, p)
			if err != nil {
				tb.Fatal(err)
			}
			if err := b.AddPrepared(pm); err != nil {
				tb.Fatal(err)
			}
			want = appendFrame(want, true, 0, opBinary, false, [4]byte{}, p)
		}
	}
	return &b, want
}

// TestWriteBatchWire: a server's batch is on the wire byte for byte as
// its frames, in order, and a batch that fits the buffer goes out in one
// write; a larger one in about one write per buffer's worth. Through the
// counting wrapper a vectored write (the buffer, then a payload that did
// not fit it) counts once per slice, though TCP makes it one writev.
func TestWriteBatchWire(t *testing.T) {
	for _, tc := range []struct {
		n, size   int
		maxWrites int64
	}{
		{1, 10, 1},
		{8, 100, 1},
		{64, 100, 3}, // 6,528 bytes through a 4,096-byte buffer
		{3, 70000, 6},
		{9, 0, 1},
	} {
		t.Run(fmt.Sprintf("%dx%d", tc.n, tc.size), func(t *testing.T) {
			c, writes, nc := countedConn(t, ConnOptions{})
			b, want := batchOf(t, tc.n, tc.size)
			if b.Len() != tc.n {
				t.Fatalf("Len = %d, want %d", b.Len(), tc.n)
			}
			got := make(chan []byte, 1)
			go func() {
				buf := make([]byte, len(want))
				n, _ := io.ReadFull(nc, buf)
				got <- buf[:n]
			}()
			if err := c.WriteBatch(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			if g := <-got; !bytes.Equal(g, want) {
				t.Fatalf("wire:\n%x\nwant\n%x", trunc(g), trunc(want))
			}
			if w := writes.Load(); w < 1 || w > tc.maxWrites {
				t.Fatalf("%d writes for the batch, want 1 to %d", w, tc.maxWrites)
			}
		})
	}
}

// TestWriteBatchCountsWrites: the same messages written one by one take
// one write each, which the batch saves.
func TestWriteBatchCountsWrites(t *testing.T) {
	c, writes, nc := countedConn(t, ConnOptions{})
	go io.Copy(io.Discard, nc)
	b, _ := batchOf(t, 8, 50)
	ctx := context.Background()
	for _, m := range b.msgs {
		if err := c.Write(ctx, MessageType(m.op), m.p); err != nil {
			t.Fatal(err)
		}
	}
	if w := writes.Load(); w != 8 {
		t.Fatalf("%d writes for 8 Writes, want 8", w)
	}
	writes.Store(0)
	if err := c.WriteBatch(ctx, b); err != nil {
		t.Fatal(err)
	}
	if w := writes.Load(); w != 1 {
		t.Fatalf("%d writes for a batch of 8, want 1", w)
	}
}

// TestWriteBatchClient: a client masks each frame of the batch, prepared
// ones included, and the peer gets them in order.
func TestWriteBatchClient(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			c, p := newTestConn(t, tr, true, ConnOptions{})
			b, _ := batchOf(t, 7, 300)
			errc := make(chan error, 1)
			go func() { errc <- c.WriteBatch(context.Background(), b) }()
			for _, m := range b.msgs {
				f := p.expectFrame(t, m.op, m.p)
				if !f.masked {
					t.Fatal("client frame not masked")
				}
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestWriteBatchContextEndsMidBatch: a batch whose ctx ends once part of
// it has reached the network closes the connection; the messages before
// the cut arrived whole and in order.
func TestWriteBatchContextEndsMidBatch(t *testing.T) {
	c, nc := benchConn(t, overTCP, false, ConnOptions{}) // nobody reads nc yet
	defer nc.Close()
	defer c.CloseNow()
	var b Batch
	var want []byte
	for i := range 3 {
		p := textPattern(20 + i)
		b.Add(MessageText, p)
		want = appendFrame(want, true, 0, opText, false, [4]byte{}, p)
	}
	b.Add(MessageBinary, make([]byte, 64<<20)) // more than the socket buffers take
	b.Add(MessageText, []byte("never"))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var err error
	within(t, waitLong, "WriteBatch", func() { err = c.WriteBatch(ctx, &b) })
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteBatch = %v, want context.DeadlineExceeded and net.ErrClosed", err)
	}
	if err := c.WriteBatch(context.Background(), &b); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteBatch after a cut = %v, want net.ErrClosed", err)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(nc, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("before the cut: %x (%v), want %x", got, err, want)
	}
}

// TestWriteBatchContextEndedBefore: a batch whose ctx ended before it
// began, or while it waited for another message, sends nothing and
// leaves the connection usable.
func TestWriteBatchContextEndedBefore(t *testing.T) {
	c, p := newTestConn(t, overTCP, false, ConnOptions{})
	b, _ := batchOf(t, 4, 10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.WriteBatch(ctx, b); !errors.Is(err, context.Canceled) || errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteBatch = %v, want context.Canceled only", err)
	}
	w, err := c.Writer(context.Background(), MessageText)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.WriteBatch(ctx, b); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteBatch behind a Writer = %v, want context.DeadlineExceeded only", err)
	}
	io.WriteString(w, "streamed")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Write(context.Background(), MessageText, []byte("after")); err != nil {
		t.Fatal(err)
	}
	p.expectFrame(t, opText, []byte("streamed"))
	p.expectFrame(t, opText, []byte("after"))
}

// TestWriteBatchAfterClose: once the connection is closed, or its close
// frame sent, a batch fails and sends nothing.
func TestWriteBatchAfterClose(t *testing.T) {
	b, _ := batchOf(t, 2, 10)
	c, p := newTestConn(t, overTCP, false, ConnOptions{CloseTimeout: 100 * time.Millisecond})
	closed := make(chan error, 1)
	go func() { closed <- c.Close(StatusNormalClosure, "") }()
	p.expectClose(t, StatusNormalClosure)
	if err := c.WriteBatch(context.Background(), b); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteBatch after the close frame = %v, want net.ErrClosed", err)
	}
	<-closed
	if err := c.WriteBatch(context.Background(), b); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteBatch after Close = %v, want net.ErrClosed", err)
	}
	p.expectEOF(t, eofWait)
}

// TestBatchMisuse: a batch refuses an invalid type and a nil prepared
// message, and an empty batch sends nothing.
func TestBatchMisuse(t *testing.T) {
	var b Batch
	if err := b.Add(MessageType(0), nil); err == nil {
		t.Fatal("Add accepted type 0")
	}
	if err := b.AddPrepared(nil); err == nil {
		t.Fatal("AddPrepared accepted nil")
	}
	if b.Len() != 0 {
		t.Fatalf("Len = %d after refusals", b.Len())
	}
	c, writes, _ := countedConn(t, ConnOptions{})
	if err := c.WriteBatch(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	b.Add(MessageText, []byte("x"))
	b.Reset()
	if err := c.WriteBatch(context.Background(), &b); err != nil || b.Len() != 0 {
		t.Fatal(err, b.Len())
	}
	if w := writes.Load(); w != 0 {
		t.Fatalf("%d writes for empty batches", w)
	}
}

// countedDeflatePair is deflatePair with the server's writes counted.
func countedDeflatePair(t *testing.T, exts []extensions.Extension) (server, client *Conn, writes *atomic.Int64) {
	t.Helper()
	a, b := netPair(t, overTCP)
	writes = new(atomic.Int64)
	server, client = deflatePairOn(t, batchtest.Conn{Conn: a, Writes: writes}, b, exts)
	writes.Store(0)
	return server, client, writes
}

// TestWriteBatchDeflate: with permessage-deflate, with and without
// context takeover, a batch's messages, prepared ones included, arrive
// decoded and in order, in one write, and the connection goes on in step
// (the next batch decodes too).
func TestWriteBatchDeflate(t *testing.T) {
	for _, noTakeover := range []bool{false, true} {
		t.Run(fmt.Sprintf("noContextTakeover=%v", noTakeover), func(t *testing.T) {
			ext := []extensions.Extension{deflate.New(&deflate.Options{NoContextTakeover: noTakeover})}
			s, cl, writes := countedDeflatePair(t, ext)
			b, _ := batchOf(t, 9, 500)          // over the threshold: compressed
			b.Add(MessageText, []byte("short")) // under it: sent as is
			for round := range 2 {
				writes.Store(0)
				errc := make(chan error, 1)
				go func() { errc <- s.WriteBatch(context.Background(), b) }()
				for i, m := range b.msgs {
					typ, got, err := cl.Read(context.Background())
					if err != nil || typ != MessageType(m.op) || !bytes.Equal(got, m.p) {
						t.Fatalf("round %d message %d: %v %d bytes %v, want %v %d bytes", round, i, typ, len(got), err, MessageType(m.op), len(m.p))
					}
				}
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
				if w := writes.Load(); w != 1 {
					t.Fatalf("round %d: %d writes for the batch, want 1", round, w)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := s.WriteBatch(ctx, b); !errors.Is(err, context.Canceled) || errors.Is(err, net.ErrClosed) {
				t.Fatalf("WriteBatch = %v, want context.Canceled only", err)
			}
			if err := s.Write(context.Background(), MessageText, []byte("after")); err != nil {
				t.Fatal(err)
			}
			if _, got, err := cl.Read(context.Background()); err != nil || string(got) != "after" {
				t.Fatalf("after: %q %v", got, err)
			}
		})
	}
}

// refill makes b hold msgs, as a writer reusing its batch does.
func refill(b *Batch, msgs []batchMessage) {
	b.Reset()
	for _, m := range msgs {
		if m.pm != nil {
			b.AddPrepared(m.pm)
		} else {
			b.Add(MessageType(m.op), m.p)
		}
	}
}

// TestWriteBatchAllocs: a reused batch costs no allocation per message.
func TestWriteBatchAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	c := drainedConn(t, overTCP, false)
	b, _ := batchOf(t, 64, 100)
	msgs := append([]batchMessage(nil), b.msgs...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	allocs := testing.AllocsPerRun(100, func() {
		refill(b, msgs)
		if err := c.WriteBatch(ctx, b); err != nil {
			t.Fatal(err)
		}
	})
	// The context's watch costs a few per batch, none per message.
	if allocs > 4 {
		t.Fatalf("%.1f allocations per batch of 64", allocs)
	}
}

// BenchmarkWriteBatch compares n messages written one by one with Write
// to the same written as one batch: ns and network writes per message.
func BenchmarkWriteBatch(b *testing.B) {
	batchtest.Compare(b, "Write", "WriteBatch", "msg", func(b *testing.B, n int, batched bool) (*atomic.Int64, func() error) {
		c, writes, nc := countedConn(b, ConnOptions{})
		done := make(chan struct{})
		go func() {
			io.Copy(io.Discard, bufio.NewReader(nc))
			close(done)
		}()
		b.Cleanup(func() {
			c.CloseNow()
			nc.Close()
			<-done
		})
		batch, _ := batchOf(b, n, 64)
		msgs := append([]batchMessage(nil), batch.msgs...)
		ctx, cancel := context.WithCancel(context.Background())
		b.Cleanup(cancel)
		if batched {
			return writes, func() error {
				refill(batch, msgs)
				return c.WriteBatch(ctx, batch)
			}
		}
		return writes, func() error {
			for _, m := range msgs {
				var err error
				if m.pm != nil {
					err = c.WritePrepared(ctx, m.pm)
				} else {
					err = c.Write(ctx, MessageType(m.op), m.p)
				}
				if err != nil {
					return err
				}
			}
			return nil
		}
	})
}

// TestWriteBatchDeflateContextEnds: with context takeover, a ctx that
// ends once the batch's encoding has begun closes the connection, even
// when no byte had reached the network (the peer, over net.Pipe, reads
// nothing): the compressor's state cannot be taken back.
func TestWriteBatchDeflateContextEnds(t *testing.T) {
	ext := []extensions.Extension{deflate.New(&deflate.Options{Threshold: -1})}
	a, b := netPair(t, overPipe)
	s, _ := deflatePairOn(t, a, b, ext) // the client reads nothing
	var batch Batch
	batch.Add(MessageText, []byte("first"))
	batch.Add(MessageText, []byte("second"))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var err error
	within(t, waitLong, "WriteBatch", func() { err = s.WriteBatch(ctx, &batch) })
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteBatch = %v, want context.DeadlineExceeded and net.ErrClosed", err)
	}
}
