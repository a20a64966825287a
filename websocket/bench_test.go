package websocket

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
)

var benchSizes = []int{16, 1024, 65536}

func BenchmarkParseHeader(b *testing.B) {
	for _, v := range []string{"81 05", "81 85 37 fa 21 3d", "82 ff 00 00 00 00 00 01 00 00 01 02 03 04"} {
		wire := hx(v)
		b.Run(fmt.Sprintf("%dB", len(wire)), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(wire)))
			for b.Loop() {
				if _, n, err := parseHeader(wire); n != len(wire) || err != nil {
					b.Fatal(n, err)
				}
			}
		})
	}
}

func BenchmarkPutHeader(b *testing.B) {
	for _, h := range []header{
		{fin: true, op: opText, length: 5},
		{fin: true, op: opText, masked: true, key: 0x3d21fa37, length: 300},
		{fin: true, op: opBinary, masked: true, key: 1, length: 1 << 20},
	} {
		var buf [maxHeaderSize]byte
		n := putHeader(buf[:], h)
		b.Run(fmt.Sprintf("%dB", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				putHeader(buf[:], h)
			}
		})
	}
}

func BenchmarkMask(b *testing.B) {
	// 16 B messages, 125 B control frames, and payloads starting 3 bytes
	// past an aligned address, as after a frame header in a read buffer.
	for _, c := range []struct{ size, off int }{
		{16, 0}, {125, 0}, {1024, 0}, {65536, 0}, {1024, 3}, {65536, 3},
	} {
		size := c.size
		buf := pattern(size+c.off, 1)[c.off:]
		name := fmt.Sprint(size)
		if c.off != 0 {
			name += "-unaligned"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				mask(0x3d21fa37, 1, buf)
			}
		})
	}
}

func BenchmarkUTF8(b *testing.B) {
	inputs := map[string][]byte{
		"ascii-1KiB":  pattern(1024, 0),
		"mixed-1KiB":  textPattern(1024),
		"ascii-64KiB": pattern(65536, 0),
		"mixed-64KiB": textPattern(65536),
	}
	for i := range inputs["ascii-1KiB"] {
		inputs["ascii-1KiB"][i] &= 0x7F
	}
	for i := range inputs["ascii-64KiB"] {
		inputs["ascii-64KiB"][i] &= 0x7F
	}
	for _, name := range []string{"ascii-1KiB", "mixed-1KiB", "ascii-64KiB", "mixed-64KiB"} {
		in := inputs[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				var s utf8State
				if !s.valid(in) || !s.complete() {
					b.Fatal("invalid")
				}
			}
		})
	}
}

// benchConn hands back a Conn after the opening handshake, and the raw
// other end, which nobody reads yet.
func benchConn(tb testing.TB, tr transport, client bool, opts ConnOptions) (*Conn, net.Conn) {
	tb.Helper()
	a, b := netPair(tb, tr)
	return benchConnOn(tb, a, b, client, opts)
}

// benchConnOn is benchConn over a, which the Conn uses, and b, the
// peer's end.
func benchConnOn(tb testing.TB, a, b net.Conn, client bool, opts ConnOptions) (*Conn, net.Conn) {
	tb.Helper()
	br := bufio.NewReader(b)
	var ch <-chan connResult
	if client {
		ch = dialOn(a, opts)
		req, err := http.ReadRequest(br)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := io.WriteString(b, testResponse(req.Header.Get("Sec-WebSocket-Key"))); err != nil {
			tb.Fatal(err)
		}
	} else {
		ch = acceptOn(a, opts)
		if _, err := io.WriteString(b, testRequest); err != nil {
			tb.Fatal(err)
		}
		readResponse(tb, br)
	}
	r := <-ch
	if r.err != nil {
		tb.Fatal(r.err)
	}
	if br.Buffered() > 0 {
		tb.Fatal("unexpected bytes after the handshake")
	}
	return r.c, b
}

// drainedConn is a Conn whose peer discards everything.
func drainedConn(tb testing.TB, tr transport, client bool) *Conn {
	c, nc := benchConn(tb, tr, client, ConnOptions{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(io.Discard, nc)
	}()
	tb.Cleanup(func() {
		c.CloseNow()
		nc.Close()
		<-done
	})
	return c
}

// fedConn is a Conn whose peer sends frame (one or more whole messages)
// again and again.
func fedConn(tb testing.TB, tr transport, client bool, frame []byte) *Conn {
	c, nc := benchConn(tb, tr, client, ConnOptions{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		io.Copy(io.Discard, nc) // pongs, close frames; ends with nc
	}()
	go func() {
		defer wg.Done()
		for {
			if _, err := nc.Write(frame); err != nil {
				return
			}
		}
	}()
	tb.Cleanup(func() {
		c.CloseNow()
		nc.Close()
		wg.Wait()
	})
	return c
}

// messageBatch frames about 64 KiB of messages of size bytes, masked as a
// client sends them when the Conn is a server.
func messageBatch(size int, connIsClient bool) (batch []byte, count int) {
	payload := pattern(size, 9)
	for count == 0 || len(batch) < 64<<10 {
		batch = appendFrame(batch, true, 0, opBinary, !connIsClient, [4]byte{1, 2, 3, 4}, payload)
		count++
	}
	return batch, count
}

func BenchmarkWrite(b *testing.B) {
	for _, tr := range netTransports {
		for _, client := range []bool{false, true} {
			for _, size := range benchSizes {
				b.Run(fmt.Sprintf("%s/%s/%d", tr, roleName(client), size), func(b *testing.B) {
					c := drainedConn(b, tr, client)
					msg := pattern(size, 1)
					ctx := context.Background()
					b.ReportAllocs()
					b.SetBytes(int64(size))
					for b.Loop() {
						if err := c.Write(ctx, MessageBinary, msg); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

func BenchmarkRead(b *testing.B) {
	for _, tr := range netTransports {
		for _, size := range benchSizes {
			b.Run(fmt.Sprintf("%s/%d", tr, size), func(b *testing.B) {
				batch, _ := messageBatch(size, false)
				c := fedConn(b, tr, false, batch)
				ctx := context.Background()
				b.ReportAllocs()
				b.SetBytes(int64(size))
				for b.Loop() {
					if _, p, err := c.Read(ctx); err != nil || len(p) != size {
						b.Fatal(len(p), err)
					}
				}
			})
		}
	}
}

func BenchmarkReader(b *testing.B) {
	for _, tr := range netTransports {
		for _, size := range benchSizes {
			b.Run(fmt.Sprintf("%s/%d", tr, size), func(b *testing.B) {
				batch, _ := messageBatch(size, false)
				c := fedConn(b, tr, false, batch)
				ctx := context.Background()
				buf := make([]byte, 32<<10)
				b.ReportAllocs()
				b.SetBytes(int64(size))
				for b.Loop() {
					if n, err := readStream(ctx, c, buf); err != nil || n != size {
						b.Fatal(n, err)
					}
				}
			})
		}
	}
}

// readStream reads one message through Reader into buf, reusing it.
func readStream(ctx context.Context, c *Conn, buf []byte) (int, error) {
	_, r, err := c.Reader(ctx)
	if err != nil {
		return 0, err
	}
	total := 0
	for {
		n, err := r.Read(buf)
		total += n
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// BenchmarkEcho is a round trip: the client writes, the server echoes.
func BenchmarkEcho(b *testing.B) {
	for _, tr := range netTransports {
		for _, size := range benchSizes {
			b.Run(fmt.Sprintf("%s/%d", tr, size), func(b *testing.B) {
				benchRoundTrips(b, tr, size, false, false)
			})
		}
	}
}

// benchRoundTrips runs b's round trips of size-byte messages over tr: the
// client writes and reads the echo, the server echoes. Each side reads
// with ReadAppend into the buffer of its message before when its append
// flag is set, and with Read otherwise.
func benchRoundTrips(b *testing.B, tr transport, size int, serverAppend, clientAppend bool) {
	s, c := connPair(b, tr, ConnOptions{}, ConnOptions{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx := context.Background()
		read := benchReader(s, serverAppend)
		for {
			typ, p, err := read(ctx)
			if err != nil || s.Write(ctx, typ, p) != nil {
				return
			}
		}
	}()
	b.Cleanup(func() {
		s.CloseNow()
		<-done
	})
	msg := pattern(size, 2)
	ctx := context.Background()
	read := benchReader(c, clientAppend)
	b.ReportAllocs()
	b.SetBytes(int64(size))
	for b.Loop() {
		if err := c.Write(ctx, MessageBinary, msg); err != nil {
			b.Fatal(err)
		}
		if _, p, err := read(ctx); err != nil || len(p) != size {
			b.Fatal(err)
		}
	}
}

// benchReader reads c's messages with Read, or with ReadAppend into the
// buffer of the message before.
func benchReader(c *Conn, reuse bool) func(context.Context) (MessageType, []byte, error) {
	if !reuse {
		return c.Read
	}
	var buf []byte
	return func(ctx context.Context) (MessageType, []byte, error) {
		typ, p, err := c.ReadAppend(ctx, buf[:0])
		buf = p
		return typ, p, err
	}
}

// The allocation goals, as tests: Write and Reader allocate nothing in
// steady state, Read only the message.

func skipAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocations (sync.Pool drops items)")
	}
	if testing.Short() {
		t.Skip("short")
	}
}

func TestWriteAllocs(t *testing.T) {
	skipAllocs(t)
	for _, tr := range netTransports {
		for _, client := range []bool{false, true} {
			for _, size := range benchSizes {
				c := drainedConn(t, tr, client)
				msg := pattern(size, 1)
				ctx := context.Background()
				allocs := testing.AllocsPerRun(200, func() {
					if err := c.Write(ctx, MessageBinary, msg); err != nil {
						t.Fatal(err)
					}
				})
				if allocs != 0 {
					t.Errorf("%s/%s/%d: Write allocates %.1f times", tr, roleName(client), size, allocs)
				}
			}
		}
	}
}

func TestReaderAllocs(t *testing.T) {
	skipAllocs(t)
	for _, tr := range netTransports {
		for _, size := range benchSizes {
			batch, _ := messageBatch(size, false)
			c := fedConn(t, tr, false, batch)
			ctx := context.Background()
			buf := make([]byte, 32<<10)
			allocs := testing.AllocsPerRun(200, func() {
				if n, err := readStream(ctx, c, buf); err != nil || n != size {
					t.Fatal(n, err)
				}
			})
			if allocs != 0 {
				t.Errorf("%s/%d: reading through Reader allocates %.1f times", tr, size, allocs)
			}
		}
	}
}

func TestReadAllocs(t *testing.T) {
	skipAllocs(t)
	for _, tr := range netTransports {
		for _, size := range benchSizes {
			batch, _ := messageBatch(size, false)
			c := fedConn(t, tr, false, batch)
			ctx := context.Background()
			allocs := testing.AllocsPerRun(200, func() {
				if _, p, err := c.Read(ctx); err != nil || len(p) != size {
					t.Fatal(len(p), err)
				}
			})
			if allocs > 1 {
				t.Errorf("%s/%d: Read allocates %.1f times, want only the message", tr, size, allocs)
			}
		}
	}
}
