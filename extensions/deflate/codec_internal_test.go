package deflate

import (
	"bytes"
	stdflate "compress/flate"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	kflate "github.com/klauspost/compress/flate"
)

// Tests of the compressor and decompressor on their own, against
// compress/flate and klauspost/compress.

// sample returns n bytes of a kind: 0 random, 1 text, 2 runs, 3 JSON-ish
// with small variations, 4 a mix.
func sample(rng *rand.Rand, kind, n int) []byte {
	b := make([]byte, 0, n)
	switch kind {
	case 0:
		for len(b) < n {
			b = append(b, byte(rng.Uint32()))
		}
	case 1:
		words := strings.Fields("the quick brown fox jumps over the lazy dog and then some more words to make a vocabulary of text")
		for len(b) < n {
			b = append(b, words[rng.IntN(len(words))]...)
			b = append(b, ' ')
		}
	case 2:
		for len(b) < n {
			c := byte(rng.IntN(4))
			for k := rng.IntN(300); k > 0; k-- {
				b = append(b, c)
			}
		}
	case 3:
		for i := 0; len(b) < n; i++ {
			b = fmt.Appendf(b, `{"seq":%d,"symbol":"ACME","bid":%d.%02d,"tags":["a","b"]},`, i, 100+rng.IntN(5), rng.IntN(100))
		}
	default:
		for len(b) < n {
			b = append(b, sample(rng, rng.IntN(4), 1+rng.IntN(3000))...)
		}
	}
	return b[:n]
}

// ourCompress compresses msgs as one stream with context takeover (or
// not), in writes of at most chunk bytes, and returns each message's
// payload as sent.
func ourCompress(t testing.TB, bits int, noCtx bool, msgs [][]byte, chunk int) [][]byte {
	var out [][]byte
	z := newLZ(bits, ctxBlock)
	for _, m := range msgs {
		if noCtx {
			z = getLZ(bits)
		}
		var dst bytes.Buffer
		e := &lzEncoder{s: &session{cfg: config{ownNoCtx: noCtx}}, z: z, dst: &dst, sc: encScratchPool.Get().(*encScratch)}
		for p := m; len(p) > 0; {
			k := min(len(p), chunk)
			if n, err := e.Write(p[:k]); n != k || err != nil {
				t.Fatalf("Write: %d, %v", n, err)
			}
			p = p[k:]
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		out = append(out, dst.Bytes())
	}
	return out
}

// refDecompress decompresses payloads with compress/flate, each message
// with the previous output as dictionary unless noCtx.
func refDecompress(t testing.TB, payloads [][]byte, noCtx bool) [][]byte {
	var hist []byte
	var out [][]byte
	for i, p := range payloads {
		if noCtx {
			hist = nil
		}
		r := stdflate.NewReaderDict(io.MultiReader(bytes.NewReader(p), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff})), hist)
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("message %d: compress/flate: %v", i, err)
		}
		out = append(out, got)
		hist = append(hist, got...)
		if len(hist) > 1<<15 {
			hist = hist[len(hist)-1<<15:]
		}
	}
	return out
}

// ourDecompress decompresses payloads with our inflater, reading with
// buffers of the given size.
func ourDecompress(payloads [][]byte, bits int, noCtx bool, readSize int) ([][]byte, error) {
	w := newWindow(1<<bits, true)
	var out [][]byte
	buf := make([]byte, readSize)
	for _, p := range payloads {
		if noCtx {
			w = newWindow(1<<bits, false)
		}
		s := &session{cfg: config{peerNoCtx: false}}
		f := new(inflater)
		f.reset(iotestHalf{bytes.NewReader(p)}, w)
		d := &decoder{s: s, f: f}
		var got []byte
		for {
			n, err := d.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				return out, err
			}
		}
		out = append(out, got)
	}
	return out, nil
}

// iotestHalf reads half of what is asked, to exercise refills.
type iotestHalf struct{ r io.Reader }

func (h iotestHalf) Read(p []byte) (int, error) { return h.r.Read(p[:(len(p)+1)/2]) }

func TestCodecAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, bits := range []int{8, 9, 12, 15} {
		for _, noCtx := range []bool{false, true} {
			for kind := range 5 {
				var msgs [][]byte
				for _, n := range []int{0, 1, 3, 4, 5, 100, 1024, 1024, 5000, 70000, 1024, 200000, 7} {
					msgs = append(msgs, sample(rng, kind, n))
				}
				msgs = append(msgs, msgs[6], msgs[9])
				for _, chunk := range []int{1 << 30, 1000, 7} {
					if chunk == 7 && kind != 3 {
						continue
					}
					name := fmt.Sprintf("bits=%d/noctx=%v/kind=%d/chunk=%d", bits, noCtx, kind, chunk)
					payloads := ourCompress(t, bits, noCtx, msgs, chunk)
					ref := refDecompress(t, payloads, noCtx)
					for i := range msgs {
						if !bytes.Equal(ref[i], msgs[i]) {
							t.Fatalf("%s: message %d: compress/flate decoded %d bytes, want %d", name, i, len(ref[i]), len(msgs[i]))
						}
					}
					for _, rs := range []int{1, 100, 1 << 16} {
						got, err := ourDecompress(payloads, bits, noCtx, rs)
						if err != nil {
							t.Fatalf("%s: read size %d: message %d: %v", name, rs, len(got), err)
						}
						for i := range msgs {
							if !bytes.Equal(got[i], msgs[i]) {
								t.Fatalf("%s: read size %d: message %d: decoded %d bytes, want %d", name, rs, i, len(got[i]), len(msgs[i]))
							}
						}
					}
				}
			}
		}
	}
}

// The matcher never reaches back further than the window.
func TestMatchDistances(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for bits := 8; bits <= 15; bits++ {
		z := newLZ(bits, ctxBlock)
		sc := &encScratch{}
		for range 20 {
			m := sample(rng, 4, 1+rng.IntN(20000))
			sc.toks = z.write(m, &sc.blockWriter, sc.toks)
			toks := z.match(sc.toks[:0], z.pend, len(z.buf), &sc.blockWriter)
			for _, tk := range toks {
				if sym := tk & 0x1ff; sym > endOfBlock {
					if d := int(distBase[tk>>14&0x1f]) + int(tk>>19); d > 1<<bits {
						t.Fatalf("bits %d: distance %d", bits, d)
					}
					if l := int(lengthBase[sym-257]) + int(tk>>9&0x1f); l < 3 || l > maxMatch {
						t.Fatalf("length %d", l)
					}
				}
			}
			sc.toks = z.compress(&sc.blockWriter, sc.toks)
			sc.bw = bitWriter{}
		}
	}
}

// Streams from other compressors, at every level, with and without
// context takeover.
func TestInflateReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, level := range []int{-2, 0, 1, 2, 5, 6, 9} {
		for _, lib := range []string{"std", "klauspost"} {
			for _, noCtx := range []bool{false, true} {
				var msgs, payloads [][]byte
				var hist []byte
				for i := range 12 {
					m := sample(rng, i%5, []int{0, 10, 1000, 40000, 300}[i%5])
					msgs = append(msgs, m)
					if noCtx {
						hist = nil
					}
					var b bytes.Buffer
					if lib == "std" {
						fw, _ := stdflate.NewWriterDict(&b, level, hist)
						fw.Write(m)
						fw.Flush()
					} else {
						fw, _ := kflate.NewWriterDict(&b, level, hist)
						fw.Write(m)
						fw.Flush()
					}
					payloads = append(payloads, b.Bytes()[:b.Len()-4])
					hist = append(hist, m...)
					if len(hist) > 1<<15 {
						hist = hist[len(hist)-1<<15:]
					}
				}
				for _, rs := range []int{1, 333, 1 << 16} {
					got, err := ourDecompress(payloads, 15, noCtx, rs)
					if err != nil {
						t.Fatalf("%s level %d noctx %v: message %d: %v", lib, level, noCtx, len(got), err)
					}
					for i := range msgs {
						if !bytes.Equal(got[i], msgs[i]) {
							t.Fatalf("%s level %d noctx %v: message %d differs", lib, level, noCtx, i)
						}
					}
				}
			}
		}
	}
}

// FuzzCodec compresses arbitrary messages with our compressor and checks
// that both decompressors restore them.
func FuzzCodec(f *testing.F) {
	f.Add([]byte("hello hello hello"), uint8(15), false, uint16(100))
	f.Add(bytes.Repeat([]byte{0}, 1000), uint8(8), true, uint16(3))
	f.Fuzz(func(t *testing.T, data []byte, bits uint8, noCtx bool, cut uint16) {
		b := 8 + int(bits%8)
		c := int(cut) % (len(data) + 1)
		msgs := [][]byte{data[:c], data[c:], data, data[:c]}
		payloads := ourCompress(t, b, noCtx, msgs, 1+int(cut)%5000)
		ref := refDecompress(t, payloads, noCtx)
		got, err := ourDecompress(payloads, b, noCtx, 1+c)
		if err != nil {
			t.Fatal(err)
		}
		for i := range msgs {
			if !bytes.Equal(ref[i], msgs[i]) || !bytes.Equal(got[i], msgs[i]) {
				t.Fatalf("message %d differs", i)
			}
		}
	})
}

// Every code of random complete codes, some as long as 15 bits, decodes
// to its symbol through the tables the decoder builds.
func TestHuffTableDecodesEveryCode(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	var hb huffBuilder
	var hc huffCode
	store := make([]uint32, litTableSize)
	for iter := range 3000 {
		n := 2 + rng.IntN(numLitLen-1)
		freq := make([]uint32, n)
		for i := range freq {
			switch iter % 3 {
			case 0:
				freq[i] = uint32(rng.IntN(3)) * uint32(rng.IntN(1000))
			case 1: // skewed, for long codes
				freq[i] = 1 << rng.IntN(30)
			default:
				if rng.IntN(4) == 0 {
					freq[i] = 1 + uint32(rng.IntN(5))
				}
			}
		}
		freq[rng.IntN(n)] = 1 + uint32(rng.IntN(1<<20))
		freq[rng.IntN(n)] = 1 + uint32(rng.IntN(1<<20))
		lens := make([]uint8, n)
		hb.lengths(freq, lens, maxCodeBits)
		hc.assign(lens)
		root := uint(litRootBits)
		if iter%2 == 1 {
			root = distRootBits
		}
		entries := make([]uint32, n)
		for i := range entries {
			entries[i] = uint32(i)<<entShift | entLit
		}
		var h huffTable
		if !h.init(lens, root, store, entries) {
			t.Fatalf("iteration %d: a complete code refused: %v", iter, lens)
		}
		for sym, l := range lens {
			if l == 0 {
				continue
			}
			// The code, followed by random bits.
			bitbuf := uint64(hc.code[sym]) | rng.Uint64()<<l
			e := h.table[bitbuf&(1<<root-1)]
			if e&linkFlag != 0 {
				e = h.table[(e&^linkFlag)>>4+uint32(bitbuf>>root)&(1<<(e&15)-1)]
			}
			if e>>entShift != uint32(sym) || e&15 != uint32(l) || e&entLit == 0 {
				t.Fatalf("iteration %d: symbol %d, %d bits: entry %#x", iter, sym, l, e)
			}
		}
	}
}

// headerLengths returns the code lengths of the dynamic header that
// compress/flate writes for a 1 KiB price message.
func headerLengths(tb testing.TB) (lens []uint8, nlit int) {
	m := bytes.Repeat([]byte(`{"symbol":"ACME","bid":101.25,"ask":102.5,"volume":381723,"venue":"X3"},{"symbol":"HOOLI","bid":141.05,"ask":122.75,"volume":92812,"venue":"X7"}`), 8)[:1024]
	var b bytes.Buffer
	fw, _ := stdflate.NewWriter(&b, 1)
	fw.Write(m)
	fw.Flush()
	f := new(inflater)
	f.reset(bytes.NewReader(b.Bytes()), newWindow(1<<15, false))
	if err := f.header(); err != nil || f.lit != &f.dynLit {
		tb.Fatalf("not a dynamic block: %v", err)
	}
	// BFINAL and BTYPE, then HLIT and HDIST, in the first 2 bytes.
	p := b.Bytes()
	nlit = 257 + int(p[0]>>3)
	ndist := 1 + int(p[1]&31)
	return append([]uint8(nil), f.lens[:nlit+ndist]...), nlit
}

func BenchmarkBuildTables(b *testing.B) {
	lens, nlit := headerLengths(b)
	var h huffTable
	var store [litTableSize]uint32
	for b.Loop() {
		h.init(lens[:nlit], litRootBits, store[:], litEntries[:])
		h.init(lens[nlit:], distRootBits, store[:], distEntries[:])
	}
}
