package websocket

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/realtime-go/realtime/extensions"
)

// bufferSizes are buffer sizes to echo with: the default, a power of two
// that is not, one that is no power of two, and a large one.
var bufferSizes = []int{0, 8192, 5000, 64 << 10}

// echoConn is a server Conn with read and write buffers of size bytes
// whose peer sends 16 pipelined messages of msgSize bytes again and
// again, and whose writes go nowhere.
func echoConn(size, msgSize int) *Conn {
	var batch []byte
	for range 16 {
		batch = appendFrame(batch, true, 0, opBinary, true, [4]byte{1, 2, 3, 4}, pattern(msgSize, 3))
	}
	return newConn(&replayConn{batch: batch}, nil, false, 13, "", extensions.Negotiated{},
		ConnOptions{ReadBufferSize: size, WriteBufferSize: size})
}

// echoReadAppend echoes one message with ReadAppend into buf and Write.
func echoReadAppend(tb testing.TB, c *Conn, buf []byte) []byte {
	ctx := context.Background()
	typ, p, err := c.ReadAppend(ctx, buf[:0])
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.Write(ctx, typ, p); err != nil {
		tb.Fatal(err)
	}
	return p
}

// echoStream echoes one message through Reader and Writer.
func echoStream(tb testing.TB, c *Conn, buf []byte) {
	ctx := context.Background()
	typ, r, err := c.Reader(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	w, err := c.Writer(ctx, typ)
	if err != nil {
		tb.Fatal(err)
	}
	for {
		n, err := r.Read(buf)
		if _, werr := w.Write(buf[:n]); werr != nil {
			tb.Fatal(werr)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
}

// TestBufferSizesPooled checks that buffers of any size are pooled as
// the default size's are: an echo costs no allocation.
func TestBufferSizesPooled(t *testing.T) {
	skipAllocs(t)
	for _, size := range bufferSizes {
		for _, msgSize := range []int{16, 1024, 20000} {
			t.Run(fmt.Sprintf("%d/%d", size, msgSize), func(t *testing.T) {
				c := echoConn(size, msgSize)
				defer c.CloseNow()
				buf := make([]byte, 0, 32<<10)
				if allocs := testing.AllocsPerRun(200, func() { buf = echoReadAppend(t, c, buf) }); allocs != 0 {
					t.Errorf("ReadAppend and Write allocate %.1f times per echo", allocs)
				}
				if allocs := testing.AllocsPerRun(200, func() { echoStream(t, c, buf[:cap(buf)]) }); allocs != 0 {
					t.Errorf("Reader and Writer allocate %.1f times per echo", allocs)
				}
			})
		}
	}
}

// BenchmarkEchoBufferSize is an echo over buffers of several sizes.
func BenchmarkEchoBufferSize(b *testing.B) {
	for _, size := range bufferSizes {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			c := echoConn(size, 1024)
			defer c.CloseNow()
			buf := make([]byte, 0, 32<<10)
			b.ReportAllocs()
			b.SetBytes(1024)
			for b.Loop() {
				buf = echoReadAppend(b, c, buf)
			}
		})
	}
}

// TestBufClass checks the size classes: every size up to the largest
// class gets a class at least as large and at most half larger, the
// classes grow with the size, and a class's size maps to itself.
func TestBufClass(t *testing.T) {
	prevClass, prevSize := -1, 0
	for size := 1; size <= maxClassSize; size += 1 + size/97 {
		class, n, ok := bufClass(size)
		if !ok || n < size || (size >= minClassSize && 2*n > 3*size) {
			t.Fatalf("bufClass(%d) = %d, %d, %v", size, class, n, ok)
		}
		if class < prevClass || (class == prevClass) != (n == prevSize) {
			t.Fatalf("bufClass(%d) = %d, %d after %d, %d", size, class, n, prevClass, prevSize)
		}
		if c2, n2, _ := bufClass(n); c2 != class || n2 != n {
			t.Fatalf("bufClass(%d) = %d, %d, want %d, %d", n, c2, n2, class, n)
		}
		prevClass, prevSize = class, n
	}
	if prevClass != len(bufPools)-1 {
		t.Errorf("largest class %d, want %d", prevClass, len(bufPools)-1)
	}
	if _, n, ok := bufClass(maxClassSize + 1); ok || n != maxClassSize+1 {
		t.Errorf("bufClass(maxClassSize+1) = %d, %v", n, ok)
	}
	if _, n, _ := bufClass(defaultBufferSize); n != defaultBufferSize {
		t.Errorf("the default size is rounded to %d", n)
	}
}
