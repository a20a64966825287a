package deflate_test

import (
	"bytes"
	stdflate "compress/flate"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/klauspost/compress/flate"

	"github.com/realtime-go/realtime/extensions"
	"github.com/realtime-go/realtime/extensions/deflate"
)

// pair negotiates the extension between a server and a client configured
// by so and co, and returns their sessions.
func pair(tb testing.TB, so, co *deflate.Options) (server, client extensions.Session) {
	tb.Helper()
	se, ce := deflate.New(so), deflate.New(co)
	resp, s, ok := se.ServerNegotiate([]extensions.Offer{ce.ClientOffer()})
	if !ok {
		tb.Fatalf("server declined %q", ce.ClientOffer())
	}
	c, err := ce.ClientActivate(resp)
	if err != nil {
		tb.Fatalf("client refused %q: %v", resp, err)
	}
	tb.Cleanup(func() { s.Close(); c.Close() })
	return s, c
}

// encode passes p through s's encoder in chunks, as the driver would.
func encode(tb testing.TB, s extensions.Session, p []byte, size int64, chunk int) ([]byte, byte) {
	tb.Helper()
	var out bytes.Buffer
	w, rsv, err := s.Encode(&out, extensions.Message{Size: size})
	if err != nil {
		tb.Fatal(err)
	}
	if w == nil {
		return append([]byte(nil), p...), 0
	}
	for len(p) > 0 {
		k := min(chunk, len(p))
		if n, err := w.Write(p[:k]); err != nil || n != k {
			tb.Fatalf("Write: %d, %v", n, err)
		}
		p = p[k:]
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return out.Bytes(), rsv
}

func decode(s extensions.Session, wire []byte, rsv byte, wrap func(io.Reader) io.Reader) ([]byte, error) {
	src := &trackingReader{r: bytes.NewReader(wire)}
	r, err := s.Decode(src, rsv)
	if err != nil {
		return nil, err
	}
	if wrap != nil {
		r = wrap(r)
	}
	p, err := io.ReadAll(r)
	if err == nil && !src.eof {
		return p, errors.New("decoder did not read its source to the end")
	}
	return p, err
}

type trackingReader struct {
	r   io.Reader
	eof bool
}

func (t *trackingReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err == io.EOF {
		t.eof = true
	}
	return n, err
}

// jsonMessage returns a 1 KiB JSON object, a little different for every i.
func jsonMessage(i int) []byte {
	v := map[string]any{
		"type": "update", "seq": i, "channel": "prices",
		"data": map[string]any{"symbol": "ACME", "bid": 101.25 + float64(i%7), "ask": 101.5, "volume": 1000 + i,
			"tags": []string{"alpha", "beta", "gamma"}, "note": ""},
	}
	b, _ := json.Marshal(v)
	lorem := strings.Repeat("lorem ipsum dolor sit amet ", 40)
	v["data"].(map[string]any)["note"] = lorem[i%20 : i%20+1024-len(b)]
	b, _ = json.Marshal(v)
	return b
}

func TestSessionRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 300000)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	text := bytes.Repeat([]byte("The quick brown fox jumps over the lazy dog. "), 7000)
	msgs := [][]byte{nil, {0}, []byte("a"), jsonMessage(1), jsonMessage(2), jsonMessage(2), random[:70000], text[:200000], text[:1000], random, text[:5]}
	for _, so := range []deflate.Options{{Threshold: -1}, {Threshold: -1, NoContextTakeover: true}, {Threshold: -1, MaxWindowBits: 9}, {Threshold: -1, MaxWindowBits: 8, NoContextTakeover: true}, {Threshold: -1, Level: 9}, {Threshold: -1, Level: flate.HuffmanOnly}} {
		for _, co := range []deflate.Options{{}, {RequestNoContextTakeover: true, MaxWindowBits: 10}} {
			t.Run(fmt.Sprintf("%+v/%+v", so, co), func(t *testing.T) {
				s, c := pair(t, &so, &co)
				for i, m := range msgs {
					size := int64(len(m))
					if i%2 == 1 {
						size = -1
					}
					wire, rsv := encode(t, s, m, size, 1+i*997)
					if rsv != extensions.RSV1 {
						t.Fatalf("message %d: rsv %#x", i, rsv)
					}
					var wrap func(io.Reader) io.Reader
					if i%3 == 0 {
						wrap = iotest.OneByteReader
					}
					got, err := decode(c, wire, rsv, wrap)
					if err != nil || !bytes.Equal(got, m) {
						t.Fatalf("message %d (%d bytes, %d on the wire): %v, got %d bytes", i, len(m), len(wire), err, len(got))
					}
					// And the other way.
					wire, rsv = encode(t, c, m, size, 4096)
					got, err = decode(s, wire, rsv, nil)
					if err != nil || !bytes.Equal(got, m) {
						t.Fatalf("client message %d: %v", i, err)
					}
				}
			})
		}
	}
}

func TestEmptyMessageIsOneByte(t *testing.T) {
	// RFC 7692 §7.2.3.6: an empty message compresses to a single 0x00.
	s, _ := pair(t, &deflate.Options{Threshold: -1}, nil)
	for range 3 {
		if wire, _ := encode(t, s, nil, 0, 1); !bytes.Equal(wire, []byte{0}) {
			t.Fatalf("empty message encoded as %x", wire)
		}
	}
}

func TestContextTakeoverShrinksRepeats(t *testing.T) {
	m := jsonMessage(3)
	for _, tt := range []struct {
		opts  deflate.Options
		reuse bool
	}{{deflate.Options{}, true}, {deflate.Options{NoContextTakeover: true}, false}} {
		s, c := pair(t, &tt.opts, nil)
		first, _ := encode(t, s, m, int64(len(m)), len(m))
		second, rsv := encode(t, s, m, int64(len(m)), len(m))
		if got := len(second) < len(first)/4; got != tt.reuse {
			t.Fatalf("%+v: repeat is %d bytes after %d", tt.opts, len(second), len(first))
		}
		if _, err := decode(c, first, rsv, nil); err != nil {
			t.Fatal(err)
		}
		if got, err := decode(c, second, rsv, nil); err != nil || !bytes.Equal(got, m) {
			t.Fatalf("repeat: %v", err)
		}
	}
}

func TestThreshold(t *testing.T) {
	for _, tt := range []struct {
		threshold int
		size      int64
		compress  bool
	}{
		{0, 127, false}, {0, 128, true}, {0, -1, true}, {0, 0, false},
		{1000, 999, false}, {1000, 1000, true}, {-1, 0, true}, {-1, 1, true}, {1, 0, false},
	} {
		s, _ := pair(t, &deflate.Options{Threshold: tt.threshold}, nil)
		w, rsv, err := s.Encode(io.Discard, extensions.Message{Size: tt.size})
		if err != nil {
			t.Fatal(err)
		}
		if (w != nil) != tt.compress || (rsv == extensions.RSV1) != tt.compress {
			t.Fatalf("threshold %d, size %d: writer %v rsv %#x, want compress=%v", tt.threshold, tt.size, w != nil, rsv, tt.compress)
		}
		if w != nil {
			w.Close()
		}
	}
}

func TestUncompressedPassesThrough(t *testing.T) {
	_, c := pair(t, nil, nil)
	src := strings.NewReader("plain")
	r, err := c.Decode(src, 0)
	if err != nil || r != io.Reader(src) {
		t.Fatalf("Decode without RSV1 = %v, %v; want the source", r, err)
	}
}

// A peer may end its data with a final block (BFINAL); the rest of the
// message is then ignored, and context takeover goes on.
func TestPeerFinalBlock(t *testing.T) {
	_, c := pair(t, nil, nil)
	for i, m := range [][]byte{[]byte("first message, first message"), []byte("second message, first message")} {
		var buf bytes.Buffer
		fw, _ := flate.NewWriter(&buf, 5)
		fw.Write(m)
		fw.Close()
		wire := append(buf.Bytes(), 0x00) // the sender appends an empty block minus its last 4 bytes
		got, err := decode(c, wire, extensions.RSV1, nil)
		if err != nil || !bytes.Equal(got, m) {
			t.Fatalf("message %d: %q, %v", i, got, err)
		}
	}
}

func TestCorruptInput(t *testing.T) {
	s, _ := pair(t, &deflate.Options{Threshold: -1}, nil)
	good, _ := encode(t, s, bytes.Repeat([]byte("abcdefgh"), 1000), -1, 8000)
	for name, wire := range map[string][]byte{
		"reserved block type": {0xff, 0xff, 0xff},
		"truncated":           good[:len(good)/2],
		"distance too far":    withDict([]byte("a dictionary the receiver lacks"), []byte("the receiver lacks it")),
		"stored length":       {0x00, 0x05, 0x00, 0x00, 0x00},
	} {
		_, c := pair(t, nil, &deflate.Options{RequestNoContextTakeover: true})
		if _, err := decode(c, wire, extensions.RSV1, nil); err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.HasPrefix(err.Error(), "deflate: ") && !strings.HasPrefix(err.Error(), "flate: ") {
			t.Errorf("%s: error %q", name, err)
		}
		// The session decodes the next message.
		if got, err := decode(c, good, extensions.RSV1, nil); err != nil || len(got) != 8000 {
			t.Errorf("%s: next message: %d bytes, %v", name, len(got), err)
		}
	}
}

func TestEncodeAfterClose(t *testing.T) {
	s, _ := pair(t, &deflate.Options{Threshold: -1}, nil)
	encode(t, s, []byte("hello"), 5, 5)
	s.Close()
	if _, _, err := s.Encode(io.Discard, extensions.Message{Size: -1}); err == nil {
		t.Fatal("Encode after Close succeeded")
	}
	// Closing while a message is being written: the message finishes.
	s, c := pair(t, &deflate.Options{Threshold: -1}, nil)
	var out bytes.Buffer
	w, rsv, _ := s.Encode(&out, extensions.Message{Size: -1})
	w.Write([]byte("during close"))
	s.Close()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := decode(c, out.Bytes(), rsv, nil); err != nil || string(got) != "during close" {
		t.Fatalf("%q, %v", got, err)
	}
}

// withDict compresses p as a message whose sender had dict as history.
func withDict(dict, p []byte) []byte {
	var buf bytes.Buffer
	fw, _ := flate.NewWriterDict(&buf, 5, dict)
	fw.Write(p)
	fw.Flush()
	return buf.Bytes()[:buf.Len()-4]
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after -= len(p); f.after < 0 {
		return 0, errors.New("broken pipe")
	}
	return len(p), nil
}

func TestEncodeFailureBreaksContext(t *testing.T) {
	s, _ := pair(t, &deflate.Options{Threshold: -1}, nil)
	w, _, _ := s.Encode(&failWriter{after: 10}, extensions.Message{Size: -1})
	rng := rand.New(rand.NewPCG(3, 4))
	p := make([]byte, 100000)
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	w.Write(p)
	if err := w.Close(); err == nil {
		t.Fatal("Close reported no error")
	}
	if _, _, err := s.Encode(io.Discard, extensions.Message{Size: -1}); err == nil {
		t.Fatal("Encode after a failed message with context takeover succeeded")
	}
	// Without context takeover the next message is fine.
	s, _ = pair(t, &deflate.Options{Threshold: -1, NoContextTakeover: true}, nil)
	w, _, _ = s.Encode(&failWriter{after: 10}, extensions.Message{Size: -1})
	w.Write(p)
	w.Close()
	if w, _, err := s.Encode(io.Discard, extensions.Message{Size: -1}); err != nil {
		t.Fatal(err)
	} else {
		w.Close()
	}
}

// FuzzInflate feeds arbitrary bytes to the decoder of a session, with
// and without history, and reads at most 1 MiB: no panic, and the source
// is read to its end whenever the message ends.
func FuzzInflate(f *testing.F) {
	s, _ := pair(f, &deflate.Options{Threshold: -1}, nil)
	for _, m := range [][]byte{nil, []byte("hello"), jsonMessage(1), bytes.Repeat([]byte{0}, 100000)} {
		wire, _ := encode(f, s, m, -1, 1000)
		f.Add(wire, false)
	}
	f.Add([]byte{0x00}, true)
	f.Add([]byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}, true)
	f.Add([]byte{0x63, 0x00, 0x02, 0x00}, false)
	f.Fuzz(func(t *testing.T, wire []byte, noCtx bool) {
		_, c := pair(t, nil, &deflate.Options{RequestNoContextTakeover: noCtx, RequestMaxWindowBits: 9})
		for range 2 { // the second message decodes with the first's history
			src := &trackingReader{r: bytes.NewReader(wire)}
			r, err := c.Decode(src, extensions.RSV1)
			if err != nil {
				t.Fatal(err)
			}
			n, err := io.Copy(io.Discard, io.LimitReader(r, 1<<20))
			if n == 1<<20 {
				return
			}
			if err == nil && !src.eof {
				t.Fatalf("message ended after %d bytes without reading its source to the end", n)
			}
		}
	})
}

func TestSessionAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	m := jsonMessage(5)
	for _, opts := range []deflate.Options{{}, {NoContextTakeover: true, RequestNoContextTakeover: true}} {
		s, c := pair(t, &opts, &opts)
		wire, rsv := encode(t, s, m, int64(len(m)), len(m))
		if _, err := decode(c, wire, rsv, nil); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		var failed error
		out.Grow(4096)
		buf := make([]byte, 4096)
		src := bytes.NewReader(nil)
		allocs := testing.AllocsPerRun(100, func() {
			out.Reset()
			w, _, _ := s.Encode(&out, extensions.Message{Size: int64(len(m))})
			w.Write(m)
			w.Close()
			wire = out.Bytes()
			src.Reset(wire)
			r, _ := c.Decode(src, rsv)
			for {
				if _, err := r.Read(buf); err != nil {
					if err != io.EOF {
						failed = err
					}
					break
				}
			}
		})
		if failed != nil {
			t.Fatal(failed)
		}
		if allocs > 0 {
			t.Errorf("%+v: %v allocations per message", opts, allocs)
		}
	}
}

// Benchmarks: 1 KiB JSON messages, with and without context takeover.
// "similar" cycles through jsonMessage(i), which differ in a few bytes,
// so that with context takeover each compresses to almost nothing;
// "prices" through 64 different price updates, whose numbers and symbols
// do not repeat, as a feed's messages would not.

// priceMessages returns 64 different 1 KiB JSON price updates.
func priceMessages() [][]byte {
	msgs := make([][]byte, 64)
	rng := rand.New(rand.NewPCG(2024, 1))
	symbols := []string{"ACME", "GLOBX", "INITECH", "UMBRL", "HOOLI", "STARK", "WAYNE", "CYBDN"}
	for i := range msgs {
		var b bytes.Buffer
		fmt.Fprintf(&b, `{"type":"update","seq":%d,"ts":%d,"channel":"prices","items":[`, 100000+i*37, 1700000000000+int64(i)*1375+int64(rng.IntN(999)))
		for k := 0; b.Len() < 1024-120; k++ {
			if k > 0 {
				b.WriteByte(',')
			}
			s := symbols[rng.IntN(len(symbols))]
			fmt.Fprintf(&b, `{"symbol":"%s","bid":%d.%02d,"ask":%d.%02d,"volume":%d,"venue":"X%d"}`, s, 100+rng.IntN(50), rng.IntN(100), 100+rng.IntN(50), rng.IntN(100), rng.IntN(1000000), rng.IntN(9))
		}
		b.WriteString(`],"note":"`)
		for b.Len() < 1024-2 {
			b.WriteByte("abcdefghij"[rng.IntN(10)])
		}
		b.WriteString(`"}`)
		msgs[i] = b.Bytes()
	}
	return msgs
}

func similarMessages() [][]byte {
	msgs := make([][]byte, 64)
	for i := range msgs {
		msgs[i] = jsonMessage(i)
	}
	return msgs
}

var benchSets = []struct {
	name string
	msgs func() [][]byte
}{{"prices", priceMessages}, {"similar", similarMessages}}

var benchModes = []struct {
	name string
	opts deflate.Options
}{{"context-takeover", deflate.Options{}}, {"no-context-takeover", deflate.Options{NoContextTakeover: true}}}

func TestPriceMessages(t *testing.T) {
	seen := map[string]bool{}
	for i, m := range priceMessages() {
		if len(m) != 1024 || !json.Valid(m) || seen[string(m)] {
			t.Fatalf("message %d: %d bytes, valid %v, repeated %v", i, len(m), json.Valid(m), seen[string(m)])
		}
		seen[string(m)] = true
	}
}

func BenchmarkCompress(b *testing.B) {
	for _, set := range benchSets {
		for _, mode := range benchModes {
			b.Run(set.name+"/"+mode.name, func(b *testing.B) {
				s, _ := pair(b, &mode.opts, nil)
				msgs := set.msgs()
				var out bytes.Buffer
				wire := 0
				b.ReportAllocs()
				b.SetBytes(1024)
				for i := 0; b.Loop(); i++ {
					out.Reset()
					w, _, _ := s.Encode(&out, extensions.Message{Size: 1024})
					w.Write(msgs[i%len(msgs)])
					w.Close()
					if i < len(msgs) {
						wire += out.Len()
					}
				}
				// The mean over one cycle, which the loop may not finish
				// when b.N is small.
				if b.N >= len(msgs) {
					b.ReportMetric(float64(wire)/float64(len(msgs)), "wire-bytes")
				}
			})
		}
	}
}

// BenchmarkDecompress decodes what our compressor sends, and what
// compress/flate (as zlib does in browsers) and klauspost/compress (as
// other Go servers do) send at level 1.
func BenchmarkDecompress(b *testing.B) {
	for _, set := range benchSets {
		for _, from := range []string{"own", "std", "klauspost"} {
			for _, mode := range benchModes {
				b.Run(set.name+"/"+from+"/"+mode.name, func(b *testing.B) {
					s, c := pair(b, &mode.opts, &mode.opts)
					msgs := set.msgs()
					// A cycle of messages compressed in sequence:
					// replayed, each one refers only to what precedes it
					// in the cycle.
					wires := make([][]byte, len(msgs))
					var stdw *stdflate.Writer
					var kw *flate.Writer
					var buf bytes.Buffer
					for i, m := range msgs {
						switch from {
						case "own":
							wires[i], _ = encode(b, s, m, 1024, 1024)
							continue
						case "std":
							if stdw == nil || mode.opts.NoContextTakeover {
								stdw, _ = stdflate.NewWriter(&buf, 1)
							}
							stdw.Write(m)
							stdw.Flush()
						case "klauspost":
							if kw == nil || mode.opts.NoContextTakeover {
								kw, _ = flate.NewWriter(&buf, 1)
							}
							kw.Write(m)
							kw.Flush()
						}
						wires[i] = bytes.Clone(buf.Bytes()[:buf.Len()-4])
						buf.Reset()
					}
					wire := 0
					for _, w := range wires {
						wire += len(w)
					}
					p := make([]byte, 4096)
					src := bytes.NewReader(nil)
					b.ReportAllocs()
					b.SetBytes(1024)
					for i := 0; b.Loop(); i++ {
						src.Reset(wires[i%len(wires)])
						r, _ := c.Decode(src, extensions.RSV1)
						n := 0
						for {
							k, err := r.Read(p[n:])
							n += k
							if err == io.EOF {
								break
							}
							if err != nil {
								b.Fatal(err)
							}
						}
						if n != 1024 {
							b.Fatalf("decoded %d bytes", n)
						}
					}
					b.ReportMetric(float64(wire)/float64(len(wires)), "wire-bytes")
				})
			}
		}
	}
}
