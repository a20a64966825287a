package deflate

import (
	"encoding/binary"
	"io"
	"math/bits"
	"slices"
	"sync"
)

// The compressor. It is a greedy LZ77 matcher over a 4-byte hash table
// and an encoder that picks stored, fixed or dynamic Huffman blocks. It
// is built so that the state a connection keeps between messages with
// context takeover is small: the last 2^bits bytes of input (the only
// ones the window lets a match refer to) and a 4096-entry table of 16-bit
// positions, 8 KiB. Both are allocated as they fill, so a connection that
// has sent little holds little. Everything else is scratch space taken
// from a pool for the length of one message.

const (
	hashBits = 12
	minMatch = 4 // the matcher compares 4 bytes at a time

	// ctxBlock is the input a context-takeover compressor buffers beyond
	// its window before it writes a block: a larger one compresses a
	// little better and costs every such connection as much again.
	ctxBlock = 4 << 10
	// poolBlock is the same for pooled compressors.
	poolBlock = 16 << 10
)

// lz is the state of one compression stream: with context takeover it
// lives as long as the connection, without it only for a message.
type lz struct {
	window int // 2^bits: the farthest a match may refer back
	block  int // input buffered before a block is written
	// buf holds up to window bytes already compressed, the history,
	// followed by the input not yet compressed, from pend on.
	buf  []byte
	pend int
	// base is the stream position of buf[0], modulo 2^32.
	base uint32
	// table maps a hash of 4 bytes to the low 16 bits of the stream
	// position where they were last seen. A match lies at most 32 KiB
	// back, so those bits name a position in buf unambiguously; a stale
	// entry fails the distance or byte comparison.
	table *[1 << hashBits]uint16
}

func newLZ(bits, block int) *lz {
	return &lz{window: 1 << bits, block: block, table: new([1 << hashBits]uint16)}
}

// reset forgets the history, for a compressor that does not take over
// context. The table may keep stale entries: they fail the checks.
func (z *lz) reset() {
	z.base += uint32(len(z.buf))
	z.buf = z.buf[:0]
	z.pend = 0
}

// write buffers p and compresses whole blocks as they fill.
func (z *lz) write(p []byte, bw *blockWriter, toks []uint32) []uint32 {
	for len(p) > 0 {
		if len(z.buf) == cap(z.buf) {
			toks = z.grow(bw, toks)
		}
		n := copy(z.buf[len(z.buf):cap(z.buf)], p)
		z.buf = z.buf[:len(z.buf)+n]
		p = p[n:]
		if len(z.buf)-z.pend >= z.block {
			toks = z.compress(bw, toks)
		}
	}
	return toks
}

// grow makes room in a full buffer: up to window+block bytes it grows,
// beyond that it keeps the last window bytes of history and drops the
// rest.
func (z *lz) grow(bw *blockWriter, toks []uint32) []uint32 {
	limit := z.window + z.block
	if c := cap(z.buf); c < limit {
		nb := make([]byte, len(z.buf), min(limit, max(2*c, 1024)))
		copy(nb, z.buf)
		z.buf = nb
		return toks
	}
	if z.pend < len(z.buf) {
		toks = z.compress(bw, toks)
	}
	drop := len(z.buf) - z.window
	copy(z.buf, z.buf[drop:])
	z.buf = z.buf[:z.window]
	z.pend = z.window
	z.base += uint32(drop)
	return toks
}

// compress writes the pending input as one block.
func (z *lz) compress(bw *blockWriter, toks []uint32) []uint32 {
	toks = z.match(toks[:0], z.pend, len(z.buf), bw)
	bw.writeBlock(toks, z.buf[z.pend:], min(len(z.buf), z.window))
	z.pend = len(z.buf)
	return toks
}

func load32(b []byte, i int) uint32 { return binary.LittleEndian.Uint32(b[i:]) }

func hash4(u uint32) uint32 { return (u * 0x9e3779b1) >> (32 - hashBits) }

// match appends the tokens of buf[start:end] to toks, and counts their
// symbols and bits for bw.writeBlock: counting here, where each token is
// made, spares writeBlock a second pass that branches on every token's
// kind.
func (z *lz) match(toks []uint32, start, end int, bw *blockWriter) []uint32 {
	lf, df := &bw.litFreq, &bw.distFreq
	clear(lf[:])
	clear(df[:])
	// Literals take 8 bits in the fixed code, 9 from 144 on.
	fixed, extra, matches := 8*(end-start), 0, 0
	buf, tab, w := z.buf[:end], z.table, z.window
	base := uint16(z.base)
	// A token at most for each byte.
	toks = slices.Grow(toks, end-start)
	k, out := len(toks), toks[:cap(toks)]
	i, lit := start, start
outer:
	for {
		// Positions without a match go round an inner loop of their
		// own: when they went round the outer one, the compiler
		// reloaded every variable of the match path at each of them.
		var d int
		for {
			if i+minMatch > end {
				break outer
			}
			x := load32(buf, i)
			h := hash4(x)
			cur := base + uint16(i)
			d = int(cur - tab[h])
			tab[h] = cur
			if uint(d-1) < uint(min(w, i)) && load32(buf, i-d) == x {
				break
			}
			// Step faster through data that does not compress.
			i += 1 + (i-lit)>>6
		}
		c := i - d
		n := minMatch + matchLen(buf[c+minMatch:], buf[i+minMatch:min(end, i+maxMatch)])
		for i > lit && c > 0 && n < maxMatch && buf[i-1] == buf[c-1] {
			i, c, n = i-1, c-1, n+1
		}
		for ; lit < i; lit++ {
			c := buf[lit]
			out[k] = uint32(c)
			k++
			lf[c]++
			fixed += int(nineBit[c])
		}
		lc := lengthCode[n-3]
		lf[257+int(lc)]++
		dc := distCode(uint32(d - 1))
		df[dc]++
		out[k] = matchToken(int(lc), n, int(dc), d)
		k++
		e := int(lengthExtra[lc]) + int(distExtra[dc])
		extra += e
		matches++
		// 7 bits for the length code, 8 from code 280 on, and 5 for the
		// distance code, in place of n literals.
		fixed += 12 + int(lc)/23 + e - 8*n
		// Index some positions inside the match, so that the table
		// keeps pointing at recent data even where everything matched.
		stop := min(i+n, end-minMatch+1)
		for j := i + 1; j < stop; j += 4 {
			tab[hash4(load32(buf, j))] = base + uint16(j)
		}
		i += n
		lit = i
	}
	for ; lit < end; lit++ {
		c := buf[lit]
		out[k] = uint32(c)
		k++
		lf[c]++
		fixed += int(nineBit[c])
	}
	bw.fixedBits, bw.extraBits, bw.matches = fixed, extra, matches
	return out[:k]
}

// nineBit marks the literals that take 9 bits in the fixed code.
var nineBit = func() (t [endOfBlock + 1]uint8) {
	for c := 144; c < endOfBlock; c++ {
		t[c] = 1
	}
	return t
}()

// matchLen returns how many leading bytes of b a has too; a is at least
// as long as b.
func matchLen(a, b []byte) int {
	n := 0
	for len(b)-n >= 8 {
		if x := binary.LittleEndian.Uint64(a[n:]) ^ binary.LittleEndian.Uint64(b[n:]); x != 0 {
			return n + bits.TrailingZeros64(x)>>3
		}
		n += 8
	}
	for n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// encScratch is what one message being compressed borrows.
type encScratch struct {
	blockWriter
	toks []uint32
}

var encScratchPool = sync.Pool{New: func() any {
	return &encScratch{toks: make([]uint32, 0, poolBlock)}
}}

// pooled compressors without context takeover, by window bits.
var lzPools [8]sync.Pool

func getLZ(bits int) *lz {
	if z, ok := lzPools[bits-8].Get().(*lz); ok {
		z.reset()
		return z
	}
	return newLZ(bits, poolBlock)
}

func putLZ(z *lz) {
	lzPools[bits.Len(uint(z.window))-9].Put(z)
}

// lzEncoder is the writer Encode returns for our own compressor.
type lzEncoder struct {
	s   *session
	z   *lz
	sc  *encScratch
	dst io.Writer
	err error
}

func (e *lzEncoder) Write(p []byte) (int, error) {
	if e.sc == nil {
		return 0, errWriteAfterClose
	}
	if e.err != nil {
		return 0, e.err
	}
	n := len(p)
	for len(p) > 0 {
		// Bound what one step buffers, so that compressed output goes
		// out as it is made.
		k := min(len(p), e.z.block)
		e.sc.toks = e.z.write(p[:k], &e.sc.blockWriter, e.sc.toks)
		p = p[k:]
		if err := e.flush(); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// flush passes on the whole bytes compressed so far.
func (e *lzEncoder) flush() error {
	out := &e.sc.bw.out
	if len(*out) == 0 {
		return nil
	}
	_, err := e.dst.Write(*out)
	*out = (*out)[:0]
	if err != nil {
		e.err = err
	}
	return err
}

// Close compresses what is buffered and ends the message as a sync
// flush does (RFC 7692 §7.2.1).
func (e *lzEncoder) Close() error {
	if e.sc == nil {
		return errCloseClosed
	}
	err := e.err
	if err == nil {
		if e.z.pend < len(e.z.buf) {
			e.sc.toks = e.z.compress(&e.sc.blockWriter, e.sc.toks)
		}
		e.sc.syncMarker()
		err = e.flush()
	}
	sc, z := e.sc, e.z
	e.sc, e.z, e.dst, e.err = nil, nil, nil, nil
	sc.bw = bitWriter{out: sc.bw.out[:0]}
	encScratchPool.Put(sc)
	e.s.endLZ(z, err)
	return err
}
