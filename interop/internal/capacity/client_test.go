package capacity

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/realtime-go/realtime/interop/internal/latency"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// parserConn is a client with one open socket of kind p whose far end is
// peer: input fed to it goes through the same parser as in the
// benchmark, and its pongs arrive at peer.
func parserConn(t testing.TB, kind string, chunked bool) (c *Client, k *conn, peer int) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.Close(fds[1])
		if c.conns[fds[0]] != nil {
			unix.Close(fds[0])
		}
	})
	c = &Client{conns: make([]*conn, fds[0]+1), hist: &latency.Histogram{}}
	k = &conn{fd: int32(fds[0]), proto: protos[kind], phase: phOpen, ready: true, chunked: chunked}
	c.conns[fds[0]] = k
	return c, k, fds[1]
}

// serverFrame is an unmasked server frame.
func serverFrame(op byte, p []byte) []byte {
	b := []byte{0x80 | op}
	switch {
	case len(p) < 126:
		b = append(b, byte(len(p)))
	case len(p) < 1<<16:
		b = append(b, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(len(p)))
	}
	return append(b, p...)
}

func chunk(p []byte) []byte {
	return append(fmt.Appendf(nil, "%x\r\n", len(p)), append(p, "\r\n"...)...)
}

// streams are a few messages on each kind of socket, as the servers send
// them, with pings between: the deliveries are 1..3.
func streams() map[string][]byte {
	var ws, cf, es, esChunked []byte
	ws = append(ws, serverFrame(1, []byte("c9da4698-0"))...) // the position
	cf = append(cf, serverFrame(1, []byte(`{"id":1,"connect":{"client":"x"}}`))...)
	es = append(es, "event: realtime.hello\nid: x-0\ndata: tok\n\n"...)
	esChunked = append(esChunked, chunk([]byte("event: realtime.hello\nid: x-0\ndata: tok\n\n"))...)
	for seq := int64(1); seq <= 3; seq++ {
		size := 64
		if seq == 2 {
			size = 300 // a 16-bit length
		}
		p := AppendPayload(nil, seq, 1765000000000000000+seq, size)
		ws = append(ws, serverFrame(1, append([]byte("x-1\n"), p...))...)
		ws = append(ws, serverFrame(9, []byte("hb"))...)
		cf = append(cf, serverFrame(1, append(append([]byte(`{"push":{"channel":"bench","pub":{"data":"`), p...), `"}}}`+"\n{}"...))...)
		ev := append(append([]byte("id: x-1\ndata: "), p...), "\n\n: heartbeat\n\n"...)
		es = append(es, ev...)
		esChunked = append(esChunked, chunk(ev[:10])...)
		esChunked = append(esChunked, chunk(ev[10:])...)
	}
	return map[string][]byte{"rt-ws": ws, "cf-ws": cf, "rt-es": es, "rt-es-chunked": esChunked}
}

// feed gives c the input in pieces of n bytes; false if the socket was
// closed.
func feed(c *Client, k *conn, in []byte, n int) bool {
	for len(in) > 0 {
		m := min(n, len(in))
		if !c.body(k, in[:m]) {
			return false
		}
		in = in[m:]
	}
	return true
}

// TestParser checks that the load client counts each message once, in
// any split of the bytes, and answers pings.
func TestParser(t *testing.T) {
	for name, in := range streams() {
		for _, n := range []int{1, 2, 7, 100, len(in)} {
			t.Run(fmt.Sprintf("%s/%d", name, n), func(t *testing.T) {
				kind, chunked := name, false
				if name == "rt-es-chunked" {
					kind, chunked = "rt-es", true
				}
				c, k, peer := parserConn(t, kind, chunked)
				if !feed(c, k, in, n) {
					t.Fatalf("socket closed: %v", c.firstErr)
				}
				if k.next != 3 || k.bad != 0 || c.delivered.Load() != 3 {
					t.Fatalf("next %d, bad %d, delivered %d; want 3, 0, 3", k.next, k.bad, c.delivered.Load())
				}
				out := make([]byte, 4096)
				got, _ := unix.Read(peer, out)
				var want []byte
				switch kind {
				case "rt-ws":
					want = bytes.Repeat([]byte{0x8a, 0x82, 0, 0, 0, 0, 'h', 'b'}, 3)
				case "cf-ws":
					want = bytes.Repeat(maskedText("{}"), 3)
				}
				if !bytes.Equal(out[:max(got, 0)], want) {
					t.Fatalf("pongs % x, want % x", out[:max(got, 0)], want)
				}
			})
		}
	}
}

// TestParserCountsWrongOrder checks that a duplicate or a gap is counted.
func TestParserCountsWrongOrder(t *testing.T) {
	c, k, _ := parserConn(t, "rt-es", false)
	var in []byte
	for _, seq := range []int64{1, 2, 2, 4} {
		in = append(append(in, "data: "...), AppendPayload(nil, seq, 1, 64)...)
		in = append(in, "\n\n"...)
	}
	feed(c, k, in, len(in))
	if k.next != 4 || k.bad != 2 {
		t.Fatalf("next %d, bad %d; want 4, 2", k.next, k.bad)
	}
}

// FuzzParser checks that any input, split anywhere, leaves the parser in
// the same state as the whole input, without a panic.
func FuzzParser(f *testing.F) {
	for _, in := range streams() {
		f.Add(in, uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, split uint8) {
		for _, kind := range []string{"rt-ws", "cf-ws", "sio-ws", "rt-es", "rt-es-chunked"} {
			p, chunked := kind, false
			if kind == "rt-es-chunked" {
				p, chunked = "rt-es", true
			}
			c1, k1, _ := parserConn(t, p, chunked)
			c2, k2, _ := parserConn(t, p, chunked)
			ok1 := feed(c1, k1, in, len(in)+1)
			ok2 := feed(c2, k2, in, int(split)+1)
			if ok1 != ok2 || k1.next != k2.next || k1.bad != k2.bad || k1.msgs != k2.msgs ||
				c1.delivered.Load() != c2.delivered.Load() {
				t.Fatalf("%s: whole: %v next %d bad %d msgs %d; in pieces of %d: %v next %d bad %d msgs %d",
					kind, ok1, k1.next, k1.bad, k1.msgs, int(split)+1, ok2, k2.next, k2.bad, k2.msgs)
			}
		}
	})
}

// TestRatios checks the realtime / driver line of the report: medians
// over repeated runs and over the quiet ones, one line per transport with
// both rows, none for a transport with one of them missing.
func TestRatios(t *testing.T) {
	res := func(name string, cpu time.Duration, other float64) *Result {
		row, _ := RowByName(name)
		return &Result{Row: row, Burst: Broadcast{Deliveries: 1, CPUPerMessage: cpu, Other: other}}
	}
	results := []*Result{
		res("rt-ws", 6*time.Microsecond, 1), res("drv-ws", 2*time.Microsecond, 0.1),
		res("rt-ws", 9*time.Microsecond, 1), res("drv-ws", 3*time.Microsecond, 1),
		res("rt-ws", 3*time.Microsecond, 0.2), res("rt-es", 5*time.Microsecond, 0),
	}
	var b bytes.Buffer
	writeRatios(&b, results)
	if want := "| WebSocket | rt-ws: 6.00 (3) | drv-ws: 2.50 (2) | 2.40x | 3.00 (1) | 2.00 (1) | 1.50x |"; !strings.Contains(b.String(), want) {
		t.Errorf("ratios lack %q:\n%s", want, b.String())
	}
	if strings.Contains(b.String(), "EventSource") {
		t.Errorf("a ratio for EventSource without drv-es:\n%s", b.String())
	}
}
