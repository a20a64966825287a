package websocket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/klauspost/compress/flate"

	"github.com/realtime-go/realtime/extensions"
	"github.com/realtime-go/realtime/extensions/deflate"
)

// onceConn is a net.Conn whose reads return in once and then io.EOF,
// and whose writes are kept, so a test sees the close frame a Conn sends.
type onceConn struct {
	replayConn // for the methods that do nothing
	in         bytes.Reader
	out        bytes.Buffer
}

func (c *onceConn) Read(p []byte) (int, error)  { return c.in.Read(p) }
func (c *onceConn) Write(p []byte) (int, error) { return c.out.Write(p) }

// bombFrame is one masked permessage-deflate frame, as a client sends it,
// whose payload inflates to n zero bytes: about n/1000 bytes on the wire.
func bombFrame(tb testing.TB, n int) []byte {
	tb.Helper()
	var z bytes.Buffer
	fw, err := flate.NewWriter(&z, flate.BestCompression)
	if err != nil {
		tb.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for left := n; left > 0; left -= len(zeros) {
		fw.Write(zeros[:min(left, len(zeros))])
	}
	if err := fw.Flush(); err != nil {
		tb.Fatal(err)
	}
	// RFC 7692 §7.2.1: the sync flush's final 00 00 ff ff is left out.
	payload := bytes.TrimSuffix(z.Bytes(), []byte{0, 0, 0xff, 0xff})
	return appendFrame(nil, true, extensions.RSV1, opBinary, true, [4]byte{1, 2, 3, 4}, payload)
}

// bombConn is a server Conn that negotiated permessage-deflate and whose
// peer sends frame and then closes.
func bombConn(tb testing.TB, frame []byte, limit int64) (*Conn, *onceConn) {
	tb.Helper()
	ext, err := extensions.ServerNegotiate([]extensions.Extension{deflate.New(nil)}, []string{deflate.Name})
	if err != nil || len(ext.Sessions) != 1 {
		tb.Fatalf("negotiation: %v, %d sessions", err, len(ext.Sessions))
	}
	nc := &onceConn{}
	nc.in.Reset(frame)
	return newConn(nc, nil, false, 13, "", ext, ConnOptions{MaxMessageSize: limit}), nc
}

// readBomb reads the bomb and returns the bytes allocated meanwhile. It
// fails tb unless the read fails with 1009 and ErrMessageTooBig.
func readBomb(tb testing.TB, c *Conn, nc *onceConn) uint64 {
	tb.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := c.Read(context.Background())
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrMessageTooBig) {
		tb.Fatalf("read: %v, want an error wrapping ErrMessageTooBig", err)
	}
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Code != StatusMessageTooBig {
		tb.Fatalf("read: %v, want a ProtocolError with code 1009", err)
	}
	f, ferr := readWireFrame(&nc.out)
	if ferr != nil || f.op != opClose || f.closeCode() != StatusMessageTooBig {
		tb.Fatalf("sent %v (%v), want a close frame with 1009", f, ferr)
	}
	return after.TotalAlloc - before.TotalAlloc
}

// bombSlack is what reading a message costs beyond its bytes: the read
// buffer, the decompressor's window and tables, the close frame.
const bombSlack = 1 << 20

// TestDecompressionBombMemory checks that a small compressed message that
// inflates past MaxMessageSize costs about the limit in memory, not a
// multiple of it: the decoded bytes are kept in chunks, never copied
// whole to grow.
func TestDecompressionBombMemory(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	for _, limit := range []int64{1 << 20, DefaultMaxMessageSize} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			frame := bombFrame(t, int(limit)+4<<20)
			c, nc := bombConn(t, frame, limit)
			allocated := readBomb(t, c, nc)
			bound := uint64(limit)*5/4 + bombSlack
			t.Logf("%d-byte frame, limit %d: %d bytes allocated (%.2fx the limit)", len(frame), limit, allocated, float64(allocated)/float64(limit))
			if allocated > bound {
				t.Errorf("reading the bomb allocated %d bytes, want at most %d", allocated, bound)
			}
			runtime.GC()
		})
	}
}

// TestDecodedMessageWhole checks that compressed messages of sizes around
// the chunk boundaries come back whole, alone or appended to what dst
// held, over every transport.
func TestDecodedMessageWhole(t *testing.T) {
	ext := []extensions.Extension{deflate.New(&deflate.Options{Threshold: -1})}
	for _, tr := range transports {
		for _, size := range []int{0, 1, 511, 512, 513, 4095, 4096, 70000, 1<<20 + 3, 3 << 20} {
			t.Run(fmt.Sprint(tr, "/", size), func(t *testing.T) {
				sc, cc := deflatePair(t, tr, ext)
				want := pattern(size, byte(size))
				werr := make(chan error, 1)
				go func() { werr <- cc.Write(context.Background(), MessageBinary, want) }()
				prefix := []byte("prefix")
				typ, got, err := sc.ReadAppend(context.Background(), prefix)
				if err != nil || typ != MessageBinary {
					t.Fatalf("read: %v %v", typ, err)
				}
				if !bytes.Equal(got[:len(prefix)], prefix) || !bytes.Equal(got[len(prefix):], want) {
					t.Fatalf("read %d bytes, want %d after the prefix", len(got), len(want)+len(prefix))
				}
				if err := <-werr; err != nil {
					t.Fatal(err)
				}
				go func() { werr <- cc.Write(context.Background(), MessageBinary, want) }()
				if _, got, err = sc.Read(context.Background()); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("read %d bytes (%v), want %d", len(got), err, len(want))
				}
				if err := <-werr; err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// deflatePair connects a server Conn and a client Conn over tr that
// negotiated exts.
func deflatePair(t *testing.T, tr transport, exts []extensions.Extension) (server, client *Conn) {
	t.Helper()
	if tr == overH2 {
		s, c := h2ConnPair(t, &AcceptOptions{Extensions: exts}, &ClientOptions{Extensions: exts})
		t.Cleanup(func() {
			s.CloseNow()
			c.CloseNow()
		})
		if s.Extensions() == "" || c.Extensions() == "" {
			t.Fatal("permessage-deflate not negotiated")
		}
		return s, c
	}
	a, b := netPair(t, tr)
	return deflatePairOn(t, a, b, exts)
}

// deflatePairOn is deflatePair over a, the server's end, and b.
func deflatePairOn(t *testing.T, a, b net.Conn, exts []extensions.Extension) (server, client *Conn) {
	t.Helper()
	sch := make(chan connResult, 1)
	go func() {
		c, _, err := AcceptConn(context.Background(), a, &AcceptOptions{Extensions: exts})
		sch <- connResult{c, err}
	}()
	u, _ := url.Parse("ws://server.example.com/chat")
	cc, _, cerr := NewClient(context.Background(), b, u, &ClientOptions{Extensions: exts})
	s := <-sch
	if s.err != nil || cerr != nil {
		a.Close()
		b.Close()
		t.Fatalf("handshake: server %v, client %v", s.err, cerr)
	}
	t.Cleanup(func() {
		s.c.CloseNow()
		cc.CloseNow()
	})
	if s.c.Extensions() == "" {
		t.Fatal("permessage-deflate not negotiated")
	}
	return s.c, cc
}

// BenchmarkDecompressionBomb reports the bytes one bomb costs, a frame of
// about limit/1000 bytes that inflates past the limit.
func BenchmarkDecompressionBomb(b *testing.B) {
	for _, limit := range []int64{64 << 10, 1 << 20, DefaultMaxMessageSize} {
		b.Run(fmt.Sprint(limit), func(b *testing.B) {
			frame := bombFrame(b, int(limit)+4<<20)
			b.ReportAllocs()
			var total uint64
			for b.Loop() {
				b.StopTimer()
				c, nc := bombConn(b, frame, limit)
				b.StartTimer()
				total += readBomb(b, c, nc)
			}
			b.ReportMetric(float64(total)/float64(b.N), "bytes/bomb")
			b.ReportMetric(float64(total)/float64(b.N)/float64(limit), "x-limit")
		})
	}
}

// TestFragmentedMessageWithinLimit checks that growing the buffer of a
// fragmented message never makes room beyond the limit: a 600 KiB
// fragment and a 1-byte one under a 1 MiB limit once grew the buffer to
// 1.2 MiB.
func TestFragmentedMessageWithinLimit(t *testing.T) {
	const limit = 1 << 20
	key := [4]byte{1, 2, 3, 4}
	wire := appendFrame(nil, false, 0, opBinary, true, key, make([]byte, 600<<10))
	wire = appendFrame(wire, false, 0, opContinuation, true, key, []byte{0})
	wire = appendFrame(wire, true, 0, opContinuation, true, key, make([]byte, limit-600<<10-1))
	nc := &onceConn{}
	nc.in.Reset(wire)
	c := newConn(nc, nil, false, 13, "", extensions.Negotiated{}, ConnOptions{MaxMessageSize: limit})
	defer c.CloseNow()
	_, p, err := c.Read(context.Background())
	if err != nil || len(p) != limit {
		t.Fatalf("read %d bytes, %v; want %d", len(p), err, limit)
	}
	if cap(p) > limit {
		t.Errorf("the message's buffer grew to %d bytes, beyond the %d-byte limit", cap(p), limit)
	}
}

// TestDecodedMessageReusedBuffer checks that reading compressed messages
// into a buffer reused across them (ReadAppend) allocates nothing once the
// buffer has grown to their size, as it does for uncompressed ones. A
// message that exactly filled the buffer once cost a spare chunk and a
// copy of the whole.
func TestDecodedMessageReusedBuffer(t *testing.T) {
	skipAllocs(t)
	ext := []extensions.Extension{deflate.New(&deflate.Options{Threshold: -1})}
	sc, cc := deflatePair(t, overTCP, ext)
	msg := pattern(1024, 7)
	const rounds = 200
	werr := make(chan error, 1)
	go func() {
		for range rounds + 1 {
			if err := cc.Write(context.Background(), MessageBinary, msg); err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()
	_, buf, err := sc.ReadAppend(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(rounds-1, func() {
		var got []byte
		_, got, err = sc.ReadAppend(context.Background(), buf[:0])
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("read %d bytes (%v), want %d", len(got), err, len(msg))
		}
		buf = got
	})
	if allocs != 0 {
		t.Errorf("ReadAppend of a compressed message into a reused buffer: %.1f allocations, want 0", allocs)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
}
