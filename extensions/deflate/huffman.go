package deflate

import (
	"encoding/binary"
	"math/bits"
	"slices"
)

// DEFLATE (RFC 1951) constants shared by the compressor and the
// decompressor.
const (
	maxMatch    = 258
	numLitLen   = 286 // literals 0-255, end of block 256, lengths 257-285
	numDist     = 30
	numCodeLen  = 19
	endOfBlock  = 256
	maxCodeBits = 15
)

var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	// The order in which a dynamic block header lists code length code
	// lengths.
	codeLenOrder = [numCodeLen]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

	// lengthCode maps a match length minus 3 to its length code minus 257.
	lengthCode [256]uint8
	// symExtra is the number of extra bits of each literal/length symbol.
	symExtra [512]uint8

	// The fixed Huffman codes of block type 1.
	fixedLit  huffCode
	fixedDist huffCode
)

func init() {
	for c := range 28 {
		for l := int(lengthBase[c]); l < int(lengthBase[c])+1<<lengthExtra[c] && l <= maxMatch; l++ {
			lengthCode[l-3] = uint8(c)
		}
	}
	lengthCode[maxMatch-3] = 28 // 258 has a code of its own
	for c, e := range lengthExtra {
		symExtra[257+c] = e
	}
	lens := fixedLitLengths()
	fixedLit.assign(lens[:])
	for i := range numDist {
		lens[i] = 5
	}
	fixedDist.assign(lens[:numDist])
}

// fixedLitLengths returns the code lengths of the fixed literal/length
// code (RFC 1951 §3.2.6), which the compressor and the decompressor share.
func fixedLitLengths() [288]uint8 {
	var lens [288]uint8
	for i := range lens {
		switch {
		case i < 144:
			lens[i] = 8
		case i < 256:
			lens[i] = 9
		case i < 280:
			lens[i] = 7
		default:
			lens[i] = 8
		}
	}
	return lens
}

// distCode returns the distance code of a distance minus 1.
func distCode(d uint32) uint32 {
	if d < 4 {
		return d
	}
	nb := uint32(bits.Len32(d)) - 1
	return 2*nb + (d>>(nb-1))&1
}

// huffCode is a canonical Huffman code, with the codes bit-reversed
// because DEFLATE sends them most significant bit first into a stream
// that is otherwise filled from the least significant bit.
type huffCode struct {
	code [288]uint16
	len  [288]uint8
}

// assign gives the symbols their canonical codes (RFC 1951 §3.2.2).
func (h *huffCode) assign(lengths []uint8) {
	var count [maxCodeBits + 1]uint16
	for _, l := range lengths {
		count[l]++
	}
	h.assignCounted(lengths, &count)
}

// assignCounted is assign given how many codes there are of each length.
func (h *huffCode) assignCounted(lengths []uint8, count *[maxCodeBits + 1]uint16) {
	count[0] = 0
	var next [maxCodeBits + 1]uint16
	code := uint16(0)
	for b := 1; b <= maxCodeBits; b++ {
		code = (code + count[b-1]) << 1
		next[b] = code
	}
	for i, l := range lengths {
		h.len[i] = l
		if l != 0 {
			h.code[i] = bits.Reverse16(next[l]) >> (16 - l)
			next[l]++
		}
	}
}

// huffBuilder builds length-limited Huffman codes without allocating.
type huffBuilder struct {
	syms  [numLitLen]uint64 // frequency << 16 | symbol
	work  [numLitLen]uint32
	count [maxCodeBits + 1]uint16 // codes of each length, set by lengths
}

// lengths sets lengths[i] to the code length of symbol i, 0 for symbols
// that do not occur, so that no code is longer than limit. The code is
// complete whenever at least two symbols occur.
func (b *huffBuilder) lengths(freq []uint32, lengths []uint8, limit int) {
	clear(b.count[:])
	syms := b.syms[:0]
	for i, f := range freq {
		lengths[i] = 0
		if f != 0 {
			syms = append(syms, uint64(f)<<16|uint64(i))
		}
	}
	switch len(syms) {
	case 0:
		return
	case 1:
		// A code of one symbol is incomplete, which some decoders
		// refuse: give an unused symbol the other 1-bit code.
		s := syms[0] & 0xffff
		lengths[s] = 1
		lengths[min(s, 1)^1] = 1
		b.count[1] = 2
		return
	}
	slices.Sort(syms)
	a := b.work[:len(syms)]
	for i, s := range syms {
		a[i] = uint32(s >> 16)
	}
	minimumRedundancy(a)
	if int(a[0]) > limit {
		// Lengthen the code's deepest pairs into shallower leaves until
		// none is deeper than limit; then give the shortest codes to the
		// most frequent symbols again.
		var count [64]int
		for _, l := range a {
			count[min(l, 63)]++
		}
		for i := 63; i > limit; i-- {
			for count[i] > 0 {
				j := i - 2
				for count[j] == 0 {
					j--
				}
				count[i] -= 2
				count[i-1]++
				count[j+1] += 2
				count[j]--
			}
		}
		k := 0
		for l := limit; l >= 1; l-- {
			for range count[l] {
				a[k] = uint32(l)
				k++
			}
		}
	}
	for i, s := range syms {
		lengths[s&0xffff] = uint8(a[i])
		b.count[a[i]]++
	}
}

// minimumRedundancy replaces the weights in a, sorted in increasing
// order, with the lengths of an optimal prefix code for them, computed in
// place (Moffat and Katajainen, 1995). len(a) must be at least 2.
func minimumRedundancy(a []uint32) {
	n := len(a)
	// Phase 1: internal node weights, with parent pointers left behind.
	a[0] += a[1]
	root, leaf := 0, 2
	for next := 1; next < n-1; next++ {
		if leaf >= n || a[root] < a[leaf] {
			a[next] = a[root]
			a[root] = uint32(next)
			root++
		} else {
			a[next] = a[leaf]
			leaf++
		}
		if leaf >= n || (root < next && a[root] < a[leaf]) {
			a[next] += a[root]
			a[root] = uint32(next)
			root++
		} else {
			a[next] += a[leaf]
			leaf++
		}
	}
	// Phase 2: internal node depths.
	a[n-2] = 0
	for next := n - 3; next >= 0; next-- {
		a[next] = a[a[next]] + 1
	}
	// Phase 3: leaf depths.
	avail, used, depth := 1, 0, uint32(0)
	root, next := n-2, n-1
	for avail > 0 {
		for root >= 0 && a[root] == depth {
			used++
			root--
		}
		for avail > used {
			a[next] = depth
			next--
			avail--
		}
		avail, used, depth = 2*used, 0, depth+1
	}
}

// bitWriter packs bits least significant first into out.
type bitWriter struct {
	out  []byte
	bits uint64
	n    uint
}

// write appends the low n bits of v, n ≤ 32.
func (w *bitWriter) write(v uint32, n uint) {
	w.bits |= uint64(v) << w.n
	w.n += n
	if w.n >= 32 {
		w.out = binary.LittleEndian.AppendUint32(w.out, uint32(w.bits))
		w.bits >>= 32
		w.n -= 32
	}
}

// align8 moves the whole bytes of the bits pending to out, leaving fewer
// than 8.
func (w *bitWriter) align8() {
	for w.n >= 8 {
		w.out = append(w.out, byte(w.bits))
		w.bits >>= 8
		w.n -= 8
	}
}

// align pads with zero bits to a byte boundary and moves every whole
// byte to out.
func (w *bitWriter) align() {
	for w.n > 0 {
		w.out = append(w.out, byte(w.bits))
		w.bits >>= 8
		w.n = uint(max(int(w.n)-8, 0))
	}
	w.bits = 0
}

// Tokens of the LZ77 pass, in the terms writeTokens writes them in: bits
// 0-8 hold the literal/length symbol, a literal byte or 257 and more for
// a match; a match has the value of its length's extra bits in bits 9-13,
// its distance code in bits 14-18 and the value of the distance's extra
// bits in bits 19-31.
func matchToken(lc, length, dc, dist int) uint32 {
	return uint32(257+lc) | uint32(length-int(lengthBase[lc]))<<9 | uint32(dc)<<14 | uint32(dist-int(distBase[dc]))<<19
}

// blockWriter encodes blocks of tokens. Its tables are scratch space for
// one block at a time.
type blockWriter struct {
	bw       bitWriter
	litFreq  [numLitLen]uint32
	distFreq [numDist]uint32
	// The bits the block's tokens take in the fixed code, extra bits
	// included, and their extra bits.
	fixedBits, extraBits int
	matches              int // and how many are matches
	clFreq               [numCodeLen]uint32
	litLen               [numLitLen]uint8
	distLen              [numDist]uint8
	clLen                [numCodeLen]uint8
	lit                  huffCode
	dist                 huffCode
	cl                   huffCode
	rle                  [numLitLen + numDist]uint16 // code length symbol | extra bits << 8
	hb                   huffBuilder
	cache                codeCache
}

// writeBlock writes a non-final block holding toks, which encode raw, in
// whichever of the three block types is shortest, a dynamic block with
// the last dynamic code when that serves (see reuse). The matcher has
// counted the tokens' symbols and bits into b.
//
// reach is how far back a match may refer from the block's end.
func (b *blockWriter) writeBlock(toks []uint32, raw []byte, reach int) {
	// Bits the fixed code takes, with its block header and end of block,
	// and the length and distance extra bits, the same in every type.
	fixedBits, extra := 3+7+b.fixedBits, b.extraBits
	b.litFreq[endOfBlock] = 1

	storedBits := (len(raw) + 5*(len(raw)/0xffff+1)) * 8
	// A dynamic code's header takes some 40 bytes at least: with few
	// tokens it cannot pay for itself.
	if len(toks) < 128 {
		if storedBits < fixedBits {
			b.writeStored(raw)
		} else {
			b.writeFixed(toks)
		}
		return
	}

	done, near := b.reuse(toks, extra, min(storedBits, fixedBits))
	if done {
		return
	}

	merged := near && len(toks) < smoothTokens
	// A smaller block that the cached code nearly covered, with history
	// before it, gets one too: there the missing symbols are mostly the
	// lengths and distances of matches into earlier messages, which
	// vary from block to block, so that the union of the blocks' parts
	// (see below) would not settle, and a code would be built for one
	// block in five or so, which costs more than compressing one.
	if len(toks) >= smoothTokens || merged && reach > len(raw) {
		// A code for every length and every distance the window allows,
		// though the block does not use them all, can be reused for the
		// next blocks, which may (see reuse): it costs a block of this
		// size a few percent, and saves building a code for most of the
		// blocks that follow.
		for i := 257; i < numLitLen; i++ {
			if b.litFreq[i] == 0 {
				b.litFreq[i] = 1
			}
		}
		for i := range b.distFreq[:distCode(uint32(max(reach, 2)-1))+1] {
			if b.distFreq[i] == 0 {
				b.distFreq[i] = 1
			}
		}
	}
	if merged {
		// A smaller block whose symbols the cached code nearly covers
		// gets a code for the cached code's symbols too. Small blocks
		// of one kind of message each use a part of the same alphabet
		// (with context takeover, matches reach into the earlier
		// messages at distances that vary): the union of the parts
		// settles after a few blocks, and the code is then reused, at
		// the cost of a few bits for the symbols a block does not use.
		// A cached code far from the block's alphabet, from other
		// messages (the cache goes from connection to connection with
		// the pooled scratch space), is left out.
		c := &b.cache
		for i, l := range c.litLen {
			if l != 0 && b.litFreq[i] == 0 {
				b.litFreq[i] = 1
			}
		}
		for i, l := range c.distLen {
			if l != 0 && b.distFreq[i] == 0 {
				b.distFreq[i] = 1
			}
		}
	}
	// Dynamic codes. Two distance codes at least, as zlib does, so that
	// every decoder accepts the code.
	if b.distFreq[0] == 0 {
		b.distFreq[0] = 1
	}
	if b.distFreq[1] == 0 {
		b.distFreq[1] = 1
	}
	b.hb.lengths(b.litFreq[:], b.litLen[:], maxCodeBits)
	litCount := b.hb.count
	b.hb.lengths(b.distFreq[:], b.distLen[:], maxCodeBits)
	distCount := b.hb.count
	nlit := numLitLen
	for nlit > 257 && b.litLen[nlit-1] == 0 {
		nlit--
	}
	ndist := numDist
	for ndist > 1 && b.distLen[ndist-1] == 0 {
		ndist--
	}
	nrle := b.runLengths(nlit, ndist)
	clear(b.clFreq[:])
	for _, r := range b.rle[:nrle] {
		b.clFreq[r&0xff]++
	}
	b.hb.lengths(b.clFreq[:], b.clLen[:], 7)
	clCount := b.hb.count
	ncl := numCodeLen
	for ncl > 4 && b.clLen[codeLenOrder[ncl-1]] == 0 {
		ncl--
	}
	dynBits := 3 + 5 + 5 + 4 + 3*ncl + extra
	for i, f := range b.clFreq {
		dynBits += int(f) * int(b.clLen[i])
	}
	dynBits += 2*int(b.clFreq[16]) + 3*int(b.clFreq[17]) + 7*int(b.clFreq[18])
	for i, f := range b.litFreq[:nlit] {
		dynBits += int(f) * int(b.litLen[i])
	}
	for i, f := range b.distFreq[:ndist] {
		dynBits += int(f) * int(b.distLen[i])
	}

	if merged && min(storedBits, fixedBits) <= dynBits {
		// The cached code's symbols made the block's code too costly:
		// a code built afresh from the next block will serve better.
		b.cache.ok = false
	}
	switch {
	case storedBits < min(fixedBits, dynBits):
		b.writeStored(raw)
		return
	case fixedBits <= dynBits:
		b.writeFixed(toks)
		return
	}
	b.lit.assignCounted(b.litLen[:nlit], &litCount)
	b.dist.assignCounted(b.distLen[:ndist], &distCount)
	b.cl.assignCounted(b.clLen[:], &clCount)
	// The header goes to the cache first, then to the output.
	c := &b.cache
	w := &bitWriter{out: c.header[:0]}
	w.write(2<<1, 3) // BFINAL 0, BTYPE 10
	w.write(uint32(nlit-257), 5)
	w.write(uint32(ndist-1), 5)
	w.write(uint32(ncl-4), 4)
	for _, s := range codeLenOrder[:ncl] {
		w.write(uint32(b.clLen[s]), 3)
	}
	for _, r := range b.rle[:nrle] {
		s := r & 0xff
		w.write(uint32(b.cl.code[s]), uint(b.cl.len[s]))
		switch s {
		case 16:
			w.write(uint32(r>>8), 2)
		case 17:
			w.write(uint32(r>>8), 3)
		case 18:
			w.write(uint32(r>>8), 7)
		}
	}
	c.header, c.tail, c.tailBits = w.out, uint32(w.bits), w.n
	c.lit, c.dist = b.lit, b.dist
	c.litLen, c.distLen = b.litLen, b.distLen
	c.bits, c.tokens, c.ok = dynBits, len(toks), true
	b.writeCachedHeader()
	b.writeTokens(toks, &c.lit, &c.dist)
}

// smoothTokens is the size of a block, in tokens, from which its dynamic
// code covers every length and distance (see writeBlock).
const smoothTokens = 256

// codeCache is the last dynamic code a block writer built, with its
// header, for blocks whose symbols it covers. Messages of one kind have
// similar statistics: reusing the code saves building one per message.
type codeCache struct {
	ok       bool
	lit      huffCode
	dist     huffCode
	litLen   [numLitLen]uint8
	distLen  [numDist]uint8
	header   []byte // block type bits and header, whole bytes
	tail     uint32 // and the bits that follow them
	tailBits uint
	bits     int // the size of the block the code was built for, in bits
	tokens   int // and its tokens
}

func (b *blockWriter) writeCachedHeader() {
	c := &b.cache
	h := c.header
	for ; len(h) >= 4; h = h[4:] {
		b.bw.write(binary.LittleEndian.Uint32(h), 32)
	}
	for _, x := range h {
		b.bw.write(uint32(x), 8)
	}
	b.bw.write(c.tail, c.tailBits)
}

// reuse writes the block with the cached code if it encodes every symbol
// and costs, per token, at most 3% more than the block it was built for;
// it reports whether it did, and else whether the code lacked only a few
// of the block's symbols. extra is the blocks's extra bits.
func (b *blockWriter) reuse(toks []uint32, extra, limit int) (done, near bool) {
	c := &b.cache
	if !c.ok {
		return false, false
	}
	bits := len(c.header)*8 + int(c.tailBits) + extra
	missing := 0
	for i, f := range b.litFreq {
		if f != 0 {
			if c.litLen[i] == 0 {
				missing++
			}
			bits += int(f) * int(c.litLen[i])
		}
	}
	for i, f := range b.distFreq {
		if f != 0 {
			if c.distLen[i] == 0 {
				missing++
			}
			bits += int(f) * int(c.distLen[i])
		}
	}
	if missing > 0 {
		return false, missing <= nearMiss
	}
	if bits > limit || bits*c.tokens > c.bits*len(toks)*103/100 {
		return false, false
	}
	b.writeCachedHeader()
	b.writeTokens(toks, &c.lit, &c.dist)
	return true, false
}

// nearMiss is how many of a block's symbols the cached code may lack for
// the block's code to take in the cached code's symbols too.
const nearMiss = 4

func (b *blockWriter) writeFixed(toks []uint32) {
	b.bw.write(1<<1, 3) // BFINAL 0, BTYPE 01
	b.writeTokens(toks, &fixedLit, &fixedDist)
}

// runLengths encodes the code lengths of a dynamic block header with the
// code length alphabet's repeat codes, into b.rle.
func (b *blockWriter) runLengths(nlit, ndist int) int {
	var seq [numLitLen + numDist]uint8
	n := copy(seq[:], b.litLen[:nlit])
	n += copy(seq[n:], b.distLen[:ndist])
	out := 0
	for i := 0; i < n; {
		l := seq[i]
		run := 1
		for i+run < n && seq[i+run] == l {
			run++
		}
		i += run
		if l == 0 {
			for run >= 11 {
				r := min(run, 138)
				b.rle[out] = 18 | uint16(r-11)<<8
				out++
				run -= r
			}
			if run >= 3 {
				b.rle[out] = 17 | uint16(run-3)<<8
				out++
				run = 0
			}
		} else {
			b.rle[out] = uint16(l)
			out++
			run--
			for run >= 3 {
				r := min(run, 6)
				b.rle[out] = 16 | uint16(r-3)<<8
				out++
				run -= r
			}
		}
		for ; run > 0; run-- {
			b.rle[out] = uint16(l)
			out++
		}
	}
	return out
}

// writeTokens writes toks and the end of block with the given codes.
//
// A token takes 48 bits at most (a length code and its extra bits, 15 +
// 5, a distance code and its, 15 + 13): with fewer than 8 bits pending it
// fits a 64-bit buffer, whose whole bytes are then stored with one 8-byte
// write, into room reserved in advance. They are stored after every
// token, which costs less than a branch on the bits pending that the
// processor cannot predict.
func (b *blockWriter) writeTokens(toks []uint32, lit, dist *huffCode) {
	w := &b.bw
	w.align8()
	// A branch on each token's kind is mispredicted as literals give way
	// to a match and back, some 30 cycles a match, and treating both
	// kinds alike costs each literal some 6 cycles more: blocks with
	// fewer than some 4 literals a match take the path without the
	// branch.
	mixed := 5*b.matches > len(toks)
	acc, n, out := w.bits, w.n, w.out
	for len(toks) > 0 {
		chunk := toks[:min(len(toks), 1024)]
		toks = toks[len(chunk):]
		out = slices.Grow(out, 6*len(chunk)+8)
		o, buf := len(out), out[:cap(out)]
		if mixed {
			o, acc, n = putTokensMixed(buf, o, acc, n, chunk, lit, dist)
		} else {
			o, acc, n = putTokens(buf, o, acc, n, chunk, lit, dist)
		}
		for n >= 8 {
			buf[o] = byte(acc)
			o++
			acc >>= 8
			n -= 8
		}
		out = out[:o]
	}
	w.bits, w.n, w.out = acc, n, out
	w.write(uint32(lit.code[endOfBlock]), uint(lit.len[endOfBlock]))
}

// putTokens encodes toks into buf from o on, after the n bits pending in
// acc, and returns the new o, acc and n. Shift counts are masked to 6
// bits, which spares the compiler's checks for counts of 64 and more.
func putTokens(buf []byte, o int, acc uint64, n uint, toks []uint32, lit, dist *huffCode) (int, uint64, uint) {
	for _, t := range toks {
		sym := t & 0x1ff
		if sym < endOfBlock {
			acc |= uint64(lit.code[sym]) << (n & 63)
			n += uint(lit.len[sym])
		} else {
			acc |= (uint64(lit.code[sym]) | uint64(t>>9&0x1f)<<(lit.len[sym]&63)) << (n & 63)
			n += uint(lit.len[sym]) + uint(symExtra[sym])
			dc := t >> 14 & 0x1f
			acc |= (uint64(dist.code[dc]) | uint64(t>>19)<<(dist.len[dc]&63)) << (n & 63)
			n += uint(dist.len[dc]) + uint(distExtra[dc])
		}
		binary.LittleEndian.PutUint64(buf[o:], acc)
		k := n >> 3
		o += int(k)
		acc >>= (k << 3) & 63
		n &= 7
	}
	return o, acc, n
}

// putTokensMixed is putTokens for blocks with many matches: literals and
// matches take the same path, a literal's distance masked to no bits.
func putTokensMixed(buf []byte, o int, acc uint64, n uint, toks []uint32, lit, dist *huffCode) (int, uint64, uint) {
	for _, t := range toks {
		sym := t & 0x1ff
		ln := uint(lit.len[sym])
		v := uint64(lit.code[sym]) | uint64(t>>9&0x1f)<<(ln&63)
		ln += uint(symExtra[sym])
		m := -uint64(sym >> 8)
		dc := t >> 14 & 0x1f
		dn := uint(dist.len[dc])
		v |= (uint64(dist.code[dc]) | uint64(t>>19)<<(dn&63)) & m << (ln & 63)
		acc |= v << (n & 63)
		n += ln + (dn+uint(distExtra[dc]))&uint(m)
		binary.LittleEndian.PutUint64(buf[o:], acc)
		k := n >> 3
		o += int(k)
		acc >>= (k << 3) & 63
		n &= 7
	}
	return o, acc, n
}

// writeStored writes raw as stored blocks.
func (b *blockWriter) writeStored(raw []byte) {
	w := &b.bw
	for {
		n := min(len(raw), 0xffff)
		w.write(0, 3) // BFINAL 0, BTYPE 00
		w.align()
		w.out = binary.LittleEndian.AppendUint16(w.out, uint16(n))
		w.out = binary.LittleEndian.AppendUint16(w.out, ^uint16(n))
		w.out = append(w.out, raw[:n]...)
		raw = raw[n:]
		if len(raw) == 0 {
			return
		}
	}
}

// syncMarker ends a message as a sync flush does, less the 4 bytes
// 0x00 0x00 0xff 0xff that RFC 7692 §7.2.1 removes: the header of an
// empty stored block, padded to a byte boundary.
func (b *blockWriter) syncMarker() {
	b.bw.write(0, 3)
	b.bw.align()
}
