package deflate

import (
	"encoding/binary"
	"errors"
	"io"
	"math/bits"
	"sync"
)

// The decompressor. It writes what it decodes straight into a window,
// a ring of 2^bits bytes that is at once the history matches refer to
// and the buffer the reader is served from. With context takeover the
// window is all a connection keeps between messages; without it the
// window comes from a pool. The decoding tables and the input buffer
// are taken from a pool for the length of one message.

var (
	errCorrupt   = errors.New("deflate: corrupt compressed data")
	errTruncated = errors.New("deflate: compressed data truncated")
	errTooFar    = errors.New("deflate: corrupt compressed data: distance beyond the window")
)

// window is the output history of a decompression stream.
type window struct {
	buf []byte // a power of two long, at most size
	max int    // the history the peer may refer to
	pos uint64 // bytes written since the stream began
}

func newWindow(size int, lazy bool) *window {
	// The longest match must fit beside what the reader has yet to take.
	w := &window{max: max(size, 512)}
	if !lazy {
		w.buf = make([]byte, w.max)
	}
	return w
}

// room makes sure that n more bytes can be written without overwriting
// the bytes from rd on, which the reader has not taken yet; it reports
// whether they can. Until the ring has its full size it grows instead of
// wrapping.
func (w *window) room(rd uint64, n int) bool {
	if len(w.buf) < w.max {
		if int(w.pos)+n <= len(w.buf) {
			return true
		}
		size := max(len(w.buf), 1024)
		for size < int(w.pos)+n && size < w.max {
			size *= 2
		}
		size = min(size, w.max)
		nb := make([]byte, size)
		copy(nb, w.buf[:w.pos])
		w.buf = nb
		if size < w.max {
			return true
		}
	}
	return int(w.pos-rd)+n <= len(w.buf)
}

// space is how many bytes can be written now without growing.
func (w *window) space(rd uint64) int {
	if len(w.buf) < w.max {
		return len(w.buf) - int(w.pos)
	}
	return len(w.buf) - int(w.pos-rd)
}

// history is how far back a match may refer.
func (w *window) history() int {
	if w.pos < uint64(w.max) {
		return int(w.pos)
	}
	return w.max
}

// read copies the bytes from rd on into p.
func (w *window) read(rd uint64, p []byte) int {
	n := min(len(p), int(w.pos-rd))
	mask := len(w.buf) - 1
	i := int(rd) & mask
	k := copy(p[:n], w.buf[i:])
	copy(p[k:n], w.buf)
	return n
}

// Pooled windows for decompression without context takeover, by size:
// 2^9 to 2^15 bytes.
var windowPools [7]sync.Pool

func getWindow(size int) *window {
	if w, ok := windowPools[bits.Len(uint(size))-10].Get().(*window); ok {
		w.pos = 0
		return w
	}
	return newWindow(size, false)
}

func putWindow(w *window) { windowPools[bits.Len(uint(w.max))-10].Put(w) }

// Decoding tables: a primary table indexed by the next root bits of
// input, whose entries are either what a symbol decodes to, or
// linkFlag | the offset of a secondary table << 4 | that table's bits,
// for codes longer than root bits. A symbol's entry holds its code
// length in bits 0-3 and, so that the decoder needs no other lookup, the
// meaning of the symbol: a literal byte, or a length or distance base
// with its count of extra bits. 0, in any table, is an invalid code.
const (
	litRootBits  = 9
	distRootBits = 7
	linkFlag     = 1 << 31
	// Bounds on the size of the tables of any complete code, from zlib's
	// enough.c, rounded up: 852 entries for 286 symbols with 9 root bits,
	// and well under 1024 for 30 symbols with 7 root bits.
	litTableSize  = 1024
	distTableSize = 1024

	// Kinds of entry, in bits 8-10; the value is in bits 16-30 and the
	// count of extra bits in bits 4-7.
	entLit   = 1 << 8 // a literal; in the other tables, any valid symbol
	entLen   = 1 << 9 // a length
	entEnd   = 1 << 10
	entShift = 16
)

// What each symbol's entry holds besides its code length.
var (
	litEntries  [288]uint32 // 286 and 287, in the fixed code only, are invalid
	distEntries [32]uint32  // and so are 30 and 31
	clEntries   [numCodeLen]uint32
)

func init() {
	for i := range 256 {
		litEntries[i] = uint32(i)<<entShift | entLit
	}
	litEntries[endOfBlock] = entEnd
	for c := range 29 {
		litEntries[257+c] = uint32(lengthBase[c])<<entShift | uint32(lengthExtra[c])<<4 | entLen
	}
	for c := range numDist {
		distEntries[c] = uint32(distBase[c])<<entShift | uint32(distExtra[c])<<4 | entLit
	}
	for c := range numCodeLen {
		clEntries[c] = uint32(c)<<entShift | entLit
	}
}

type huffTable struct {
	root  uint
	table []uint32
}

// codeLists holds a code's lengths as what building its table needs:
// how many symbols have codes of each length, and for each length the
// symbols in a list threaded through an array next, where a symbol s is
// s+1 and 0 ends a list.
type codeLists struct {
	count [maxCodeBits + 1]uint16
	head  [maxCodeBits + 1]uint16
}

// add adds symbol sym with a code of l bits; next is the array the lists
// run through, indexed by symbol.
func (c *codeLists) add(sym int, l uint8, next []uint16) {
	next[sym] = c.head[l]
	c.head[l] = uint16(sym + 1)
	c.count[l]++
}

// init builds the table of the code with the given lengths, whose
// symbols decode to entries. It fails unless the code is complete or has
// a single code of 1 bit, as zlib requires; a code without symbols builds
// an empty table, which fails any symbol decoded with it.
func (h *huffTable) init(lengths []uint8, root uint, storage []uint32, entries []uint32) bool {
	var c codeLists
	var next [288]uint16
	for sym, l := range lengths {
		if l != 0 {
			c.add(sym, l, next[:])
		}
	}
	var scratch [288]uint32
	return h.build(&c, next[:], root, storage, entries, scratch[:])
}

// build is init given the code as lists, and scratch space for as many
// entries as the code has symbols.
//
// Codes no longer than root bits are placed as libdeflate does, shortest
// first: each is written once, into the part of the table as long as the
// code, and that part is then doubled with copy until it fills the table.
// Longer codes go to secondary tables, one for each prefix of root bits,
// which are sized by the longest code with that prefix.
func (h *huffTable) build(c *codeLists, next []uint16, root uint, storage []uint32, entries []uint32, scratch []uint32) bool {
	count := &c.count
	count[0] = 0
	h.root = root
	size := 1 << root
	t := storage[:size]
	h.table = t
	left, minLen, maxLen := 1, uint(0), uint(0)
	// first[l] is the first code of l bits, most significant bit first.
	var first [maxCodeBits + 1]uint16
	code := uint16(0)
	for l := uint(1); l <= maxCodeBits; l++ {
		n := count[l]
		left = left<<1 - int(n)
		if left < 0 {
			return false // over-subscribed
		}
		if n != 0 {
			maxLen = l
			if minLen == 0 {
				minLen = l
			}
		}
		code = (code + count[l-1]) << 1
		first[l] = code
	}
	if left > 0 {
		if maxLen > 1 || count[1] > 1 {
			return false // incomplete
		}
		// No code, or a single one of 1 bit: the entries of the
		// missing code fail.
		clear(t)
		if s := c.head[1]; s != 0 {
			for i := 0; i < size; i += 2 {
				t[i] = entries[s-1] | 1
			}
		}
		return true
	}
	// A list runs from the last symbol of its length to the first, so
	// the codes are taken from the last one down.
	if minLen <= root {
		end := 1 << minLen
		for l := minLen; ; l++ {
			code := first[l] + count[l]
			for s := c.head[l]; s != 0; s = next[s-1] {
				code--
				t[bits.Reverse16(code)>>(16-l)] = entries[s-1] | uint32(l)
			}
			if l == root {
				break
			}
			copy(t[end:2*end], t[:end])
			end <<= 1
		}
	}
	if maxLen <= root {
		return true
	}
	// The longer codes, with their reversed codes and lengths; the root
	// entries of their prefixes first note the longest code.
	rootMask := uint32(size - 1)
	long := scratch[:0]
	for l := root + 1; l <= maxLen; l++ {
		code := first[l] + count[l]
		for s := c.head[l]; s != 0; s = next[s-1] {
			code--
			rev := uint32(bits.Reverse16(code) >> (16 - l))
			long = append(long, rev<<16|uint32(l)<<12|uint32(s-1))
			t[rev&rootMask] = 0
		}
	}
	for _, x := range long {
		p := (x >> 16) & rootMask
		t[p] = max(t[p], (x>>12)&15-uint32(root))
	}
	off := uint32(size)
	for _, x := range long {
		p := (x >> 16) & rootMask
		if sub := t[p]; sub&linkFlag == 0 {
			if int(off+1<<sub) > len(storage) {
				return false
			}
			t[p] = linkFlag | off<<4 | sub
			off += 1 << sub
		}
	}
	for _, x := range long {
		rev, l := x>>16, (x>>12)&15
		link := t[rev&rootMask]
		base, sub := (link&^linkFlag)>>4, link&15
		e := entries[x&0xfff] | l
		for i := rev >> root; i < 1<<sub; i += 1 << (l - uint32(root)) {
			storage[base+i] = e
		}
	}
	h.table = storage[:off]
	return true
}

var fixedLitTable, fixedDistTable huffTable

func init() {
	lens := fixedLitLengths()
	fixedLitTable.init(lens[:], litRootBits, make([]uint32, litTableSize), litEntries[:])
	// 32 codes of 5 bits, of which 30 and 31 never occur in valid data.
	for i := range 32 {
		lens[i] = 5
	}
	fixedDistTable.init(lens[:32], distRootBits, make([]uint32, distTableSize), distEntries[:])
}

// Decompressor states between calls.
const (
	stHeader  = iota // at a block boundary
	stStored         // inside a stored block
	stHuffman        // inside a compressed block
	stDone           // the message has ended
)

// inflater decompresses one message into a window.
type inflater struct {
	src     io.Reader
	srcErr  error // what src returned last, once its bytes are used
	srcEOF  bool
	tail    bool // the 4 bytes the sender removed have been added
	anyData bool // the message had a payload
	in      [4096]byte
	ip, ie  int
	bits    uint64
	nbits   uint

	w      *window
	rd     uint64 // window position of the next byte for the reader
	state  int
	final  bool // the current block is the last
	stored int  // bytes left in the stored block

	lit, dist       *huffTable
	dynLit, dynDist huffTable
	litStore        [litTableSize]uint32
	distStore       [distTableSize]uint32
	lens            [numLitLen + numDist + 2]uint8
	next            [numLitLen + numDist + 2]uint16 // see codeLists
	long            [numLitLen]uint32               // scratch for huffTable.build
	clTable         huffTable
	clStore         [1 << 7]uint32
}

var inflaterPool = sync.Pool{New: func() any { return new(inflater) }}

func (f *inflater) reset(src io.Reader, w *window) {
	f.src, f.srcErr, f.srcEOF, f.tail, f.anyData = src, nil, false, false, false
	f.ip, f.ie, f.bits, f.nbits = 0, 0, 0, 0
	f.w, f.rd, f.state, f.final, f.stored = w, w.pos, stHeader, false, 0
}

// more refills the input buffer from src; after src's end it supplies
// the 4 bytes 0x00 0x00 0xff 0xff that RFC 7692 §7.2.2 has the receiver
// append, and then io.EOF.
func (f *inflater) more() error {
	if f.srcErr != nil {
		return f.srcErr
	}
	for tries := 0; !f.srcEOF; tries++ {
		n, err := f.src.Read(f.in[:])
		f.ip, f.ie = 0, n
		if n > 0 {
			f.anyData = true
		}
		switch {
		case err == io.EOF:
			f.srcEOF = true
		case err != nil:
			f.srcErr = err
		case n == 0 && tries > 100:
			f.srcErr = io.ErrNoProgress
		}
		if n > 0 {
			return nil
		}
		if f.srcErr != nil {
			return f.srcErr
		}
	}
	if !f.tail && f.anyData {
		f.tail = true
		f.ip, f.ie = 0, copy(f.in[:], []byte{0x00, 0x00, 0xff, 0xff})
		return nil
	}
	return io.EOF
}

// refill tops the bit buffer up from the input buffer, without reading.
func (f *inflater) refill() {
	if f.ie-f.ip >= 8 {
		f.bits |= binary.LittleEndian.Uint64(f.in[f.ip:]) << f.nbits
		f.ip += int(63-f.nbits) >> 3
		f.nbits |= 56
		return
	}
	for f.nbits <= 56 && f.ip < f.ie {
		f.bits |= uint64(f.in[f.ip]) << f.nbits
		f.ip++
		f.nbits += 8
	}
}

// need makes n bits available, reading as needed.
func (f *inflater) need(n uint) error {
	for f.nbits < n {
		if f.ip == f.ie {
			if err := f.more(); err != nil {
				return truncated(err)
			}
		}
		f.refill()
	}
	return nil
}

func truncated(err error) error {
	if err == io.EOF {
		return errTruncated
	}
	return err
}

func (f *inflater) take(n uint) uint32 {
	v := uint32(f.bits) & (1<<n - 1)
	f.bits >>= n
	f.nbits -= n
	return v
}

// symbol decodes one symbol with h, reading as needed, and returns its
// entry.
func (f *inflater) symbol(h *huffTable) (uint32, error) {
	for {
		e := h.table[uint32(f.bits)&(1<<h.root-1)]
		if e&linkFlag != 0 {
			e = h.table[(e&^linkFlag)>>4+uint32(f.bits>>h.root)&(1<<(e&15)-1)]
		}
		n := uint(e & 15)
		if n != 0 && n <= f.nbits {
			f.bits >>= n
			f.nbits -= n
			return e, nil
		}
		if n == 0 && f.nbits >= maxCodeBits {
			return 0, errCorrupt
		}
		if f.ip == f.ie {
			if err := f.more(); err != nil {
				return 0, truncated(err)
			}
		}
		f.refill()
	}
}

// inflate decodes until want bytes wait for the reader, the window has
// no room for more, or the message ends.
func (f *inflater) inflate(want int) error {
	w := f.w
	for int(w.pos-f.rd) < want {
		switch f.state {
		case stDone:
			return nil
		case stHeader:
			if f.final {
				f.state = stDone
				// What follows a final block is padding; the message
				// must still be read to its end.
				for f.more() == nil {
				}
				if f.srcErr != nil {
					return f.srcErr
				}
				return nil
			}
			if f.nbits < 8 && f.ip == f.ie {
				// At a byte boundary with no more input: the message
				// ends here, after the sync flush's empty stored block.
				switch err := f.more(); err {
				case nil:
				case io.EOF:
					f.state = stDone
					return nil
				default:
					return err
				}
			}
			if err := f.header(); err != nil {
				return err
			}
		case stStored:
			if err := f.copyStored(want); err != nil {
				return err
			}
			if f.state == stStored {
				return nil // the window is full
			}
		case stHuffman:
			full, err := f.decode(want)
			if err != nil || full {
				return err
			}
		}
	}
	return nil
}

// header reads a block header.
func (f *inflater) header() error {
	if err := f.need(3); err != nil {
		return err
	}
	f.final = f.take(1) == 1
	switch f.take(2) {
	case 0:
		f.take(f.nbits & 7)
		if err := f.need(32); err != nil {
			return err
		}
		n := f.take(16)
		if f.take(16) != n^0xffff {
			return errCorrupt
		}
		f.stored = int(n)
		f.state = stStored
	case 1:
		f.lit, f.dist = &fixedLitTable, &fixedDistTable
		f.state = stHuffman
	case 2:
		if err := f.dynamicHeader(); err != nil {
			return err
		}
		f.lit, f.dist = &f.dynLit, &f.dynDist
		f.state = stHuffman
	default:
		return errCorrupt
	}
	return nil
}

func (f *inflater) dynamicHeader() error {
	if err := f.need(14); err != nil {
		return err
	}
	nlit := int(f.take(5)) + 257
	ndist := int(f.take(5)) + 1
	ncl := int(f.take(4)) + 4
	if nlit > numLitLen {
		return errCorrupt
	}
	var clLens [numCodeLen]uint8
	for _, s := range codeLenOrder[:ncl] {
		if err := f.need(3); err != nil {
			return err
		}
		clLens[s] = uint8(f.take(3))
	}
	// The code length code must be complete (zlib refuses even a single
	// code of 1 bit here).
	if !complete(clLens[:]) || !f.clTable.init(clLens[:], 7, f.clStore[:], clEntries[:]) {
		return errCorrupt
	}
	lens := f.lens[:nlit+ndist]
	cl := f.clTable.table
	// The literal/length and the distance code, as lists (see
	// codeLists), made as the lengths come.
	var codes [2]codeLists
	next := f.next[:]
	for i := 0; i < len(lens); {
		var e uint32
		if f.nbits < 7+7 && f.ie-f.ip >= 8 {
			f.refill()
		}
		if f.nbits >= 7+7 {
			// Enough bits for the symbol and its extra bits: the code
			// is complete and no longer than 7 bits, so it is found in
			// the root table.
			e = cl[f.bits&(1<<7-1)]
			f.bits >>= e & 15
			f.nbits -= uint(e & 15)
		} else {
			var err error
			if e, err = f.symbol(&f.clTable); err != nil {
				return err
			}
		}
		s := e >> entShift
		rep, val := 1, uint8(s)
		switch s {
		case 16:
			if i == 0 {
				return errCorrupt
			}
			if err := f.need(2); err != nil {
				return err
			}
			rep, val = 3+int(f.take(2)), lens[i-1]
		case 17:
			if err := f.need(3); err != nil {
				return err
			}
			rep, val = 3+int(f.take(3)), 0
		case 18:
			if err := f.need(7); err != nil {
				return err
			}
			rep, val = 11+int(f.take(7)), 0
		}
		end := i + rep
		if end > len(lens) {
			return errCorrupt
		}
		for ; i < end; i++ {
			lens[i] = val
			if val != 0 {
				// A run may go on from the literal/length code into
				// the distance code.
				if i < nlit {
					codes[0].add(i, val, next)
				} else {
					codes[1].add(i-nlit, val, next[nlit:])
				}
			}
		}
	}
	if lens[endOfBlock] == 0 {
		return errCorrupt
	}
	if !f.dynLit.build(&codes[0], next, litRootBits, f.litStore[:], litEntries[:], f.long[:]) ||
		!f.dynDist.build(&codes[1], next[nlit:], distRootBits, f.distStore[:], distEntries[:], f.long[:]) {
		return errCorrupt
	}
	return nil
}

// complete reports whether the code lengths make a complete prefix code.
func complete(lengths []uint8) bool {
	left := 1 << maxCodeBits
	for _, l := range lengths {
		if l != 0 {
			left -= 1 << (maxCodeBits - l)
		}
	}
	return left == 0
}

// copyStored copies from a stored block into the window.
func (f *inflater) copyStored(want int) error {
	w := f.w
	for f.stored > 0 {
		pending := int(w.pos - f.rd)
		if pending >= want {
			return nil
		}
		if f.nbits >= 8 {
			// Bytes already in the bit buffer come first.
			if !w.room(f.rd, 1) {
				return nil
			}
			w.buf[int(w.pos)&(len(w.buf)-1)] = byte(f.take(8))
			w.pos++
			f.stored--
			continue
		}
		// The bit buffer is empty, but may hold bits of bytes ahead,
		// which are about to be taken from the input directly.
		f.bits = 0
		if f.ip == f.ie {
			if err := f.more(); err != nil {
				return truncated(err)
			}
		}
		k := min(f.stored, f.ie-f.ip, want-pending)
		if !w.room(f.rd, 1) {
			return nil
		}
		w.room(f.rd, k) // grows the window if it may
		i := int(w.pos) & (len(w.buf) - 1)
		k = min(k, len(w.buf)-i, w.space(f.rd))
		copy(w.buf[i:i+k], f.in[f.ip:f.ip+k])
		w.pos += uint64(k)
		f.ip += k
		f.stored -= k
	}
	f.state = stHeader
	return nil
}

// safe is the last window position at which a symbol may start: from
// there the longest match still fits.
func (f *inflater) safe() int64 {
	w := f.w
	if len(w.buf) < w.max {
		return int64(len(w.buf)) - maxMatch
	}
	return int64(f.rd) + int64(len(w.buf)) - maxMatch
}

// decode decodes a compressed block. It reports whether it stopped for
// want of room in the window.
func (f *inflater) decode(want int) (full bool, err error) {
	w := f.w
	for int(w.pos-f.rd) < want {
		safe := f.safe()
		if int64(w.pos) > safe {
			if !w.room(f.rd, maxMatch) {
				return true, nil
			}
			safe = f.safe()
		}
		if f.nbits+8*uint(f.ie-f.ip) >= 48 {
			end := min(safe+1, int64(f.rd)+int64(want))
			if done, err := f.decodeFast(end); done || err != nil {
				return false, err
			}
			if int(w.pos-f.rd) >= want || int64(w.pos) > safe {
				continue
			}
		}
		// Near the end of the input: one symbol at a time, reading as
		// needed.
		if done, err := f.decodeSlow(); done || err != nil {
			return false, err
		}
	}
	return false, nil
}

// decodeFast decodes while the window position is below end and the
// input buffer holds enough bits for any literal or match. It reports
// whether the block ended.
//
// A refill leaves at least 56 bits while the input buffer holds 8 bytes,
// and a length with its distance takes 48 at most (15 + 5 extra, 15 + 13
// extra): each step refills once and checks nothing else before it
// decodes a literal or a whole match. The
// state lives in locals, which the compiler keeps in registers, and goes
// back to f on the way out.
func (f *inflater) decodeFast(end int64) (done bool, err error) {
	w := f.w
	buf := w.buf
	mask := len(buf) - 1
	lt, dt := f.lit.table, f.dist.table
	in := f.in[:f.ie]
	ip, bitbuf, nbits := f.ip, f.bits, f.nbits
	pos := int64(w.pos)
	for pos < end {
		if ip <= len(in)-8 {
			bitbuf |= binary.LittleEndian.Uint64(in[ip:]) << nbits
			ip += int(63-nbits) >> 3
			nbits |= 56
		} else {
			for nbits <= 56 && ip < len(in) {
				bitbuf |= uint64(in[ip]) << nbits
				ip++
				nbits += 8
			}
			if nbits < 48 {
				break
			}
		}

		e := lt[bitbuf&(1<<litRootBits-1)]
		if e&linkFlag != 0 {
			e = lt[(e&^linkFlag)>>4+uint32(bitbuf>>litRootBits)&(1<<(e&15)-1)]
		}
		bitbuf >>= e & 15
		nbits -= uint(e & 15)
		if e&entLit != 0 {
			buf[int(pos)&mask] = byte(e >> entShift)
			pos++
			continue
		}
		if e&entLen == 0 {
			if e&entEnd != 0 {
				f.state = stHeader
				done = true
			} else {
				err = errCorrupt
			}
			break
		}
		eb := (e >> 4) & 15
		length := int(e>>entShift) + int(uint32(bitbuf)&(1<<eb-1))
		bitbuf >>= eb
		nbits -= uint(eb)

		e = dt[bitbuf&(1<<distRootBits-1)]
		if e&linkFlag != 0 {
			e = dt[(e&^linkFlag)>>4+uint32(bitbuf>>distRootBits)&(1<<(e&15)-1)]
		}
		bitbuf >>= e & 15
		nbits -= uint(e & 15)
		if e&entLit == 0 {
			err = errCorrupt
			break
		}
		eb = (e >> 4) & 15
		d := int(e>>entShift) + int(uint32(bitbuf)&(1<<eb-1))
		bitbuf >>= eb
		nbits -= uint(eb)
		if int64(d) > min(pos, int64(w.max)) {
			err = errTooFar
			break
		}
		copyMatch(buf, int(pos), d, length)
		pos += int64(length)
	}
	f.ip, f.bits, f.nbits = ip, bitbuf, nbits
	w.pos = uint64(pos)
	return done, err
}

// decodeSlow decodes one literal or match, reading as needed. It reports
// whether the block ended.
func (f *inflater) decodeSlow() (done bool, err error) {
	w := f.w
	if f.nbits < 48 {
		f.refill()
	}
	e, err := f.symbol(f.lit)
	if err != nil {
		return false, err
	}
	if e&entLit != 0 {
		w.buf[int(w.pos)&(len(w.buf)-1)] = byte(e >> entShift)
		w.pos++
		return false, nil
	}
	if e&entLen == 0 {
		if e&entEnd != 0 {
			f.state = stHeader
			return true, nil
		}
		return false, errCorrupt
	}
	length := int(e >> entShift)
	if eb := uint(e>>4) & 15; eb > 0 {
		if err := f.need(eb); err != nil {
			return false, err
		}
		length += int(f.take(eb))
	}
	if e, err = f.symbol(f.dist); err != nil {
		return false, err
	}
	if e&entLit == 0 {
		return false, errCorrupt
	}
	d := int(e >> entShift)
	if eb := uint(e>>4) & 15; eb > 0 {
		if err := f.need(eb); err != nil {
			return false, err
		}
		d += int(f.take(eb))
	}
	if d > w.history() {
		return false, errTooFar
	}
	copyMatch(w.buf, int(w.pos), d, length)
	w.pos += uint64(length)
	return false, nil
}

// copyMatch writes length bytes at window position pos, copied from dist
// bytes back; the window has room and history for them.
func copyMatch(b []byte, pos, dist, length int) {
	mask := len(b) - 1
	dst := pos & mask
	src := (pos - dist) & mask
	if dst+length <= len(b) && src+length <= len(b) {
		// Short matches, the most common, are copied in words, the
		// last word overlapping what came before. A byte written is
		// read, if at all, a word or more later; and the source, where
		// it lies after the destination (the ring has wrapped between
		// them), is a word ahead at least, so the last word reads none
		// of the history the match overwrites.
		switch {
		case length > 32 && dist >= length:
			copy(b[dst:dst+length], b[src:src+length])
			return
		case dist >= 8 && length >= 8 && uint(src-dst) >= 8:
			for i := 0; i < length-8; i += 8 {
				binary.LittleEndian.PutUint64(b[dst+i:], binary.LittleEndian.Uint64(b[src+i:]))
			}
			binary.LittleEndian.PutUint64(b[dst+length-8:], binary.LittleEndian.Uint64(b[src+length-8:]))
			return
		case dist >= 4 && length >= 4 && length < 8 && uint(src-dst) >= 4:
			binary.LittleEndian.PutUint32(b[dst:], binary.LittleEndian.Uint32(b[src:]))
			binary.LittleEndian.PutUint32(b[dst+length-4:], binary.LittleEndian.Uint32(b[src+length-4:]))
			return
		case dist >= length && length > 3:
			copy(b[dst:dst+length], b[src:src+length])
			return
		case src < dst && length > 3:
			// Overlapping: the copied run repeats, doubling each time.
			end := dst + length
			for dst < end {
				dst += copy(b[dst:end], b[src:dst])
			}
			return
		}
	}
	for range length {
		b[dst] = b[src]
		dst = (dst + 1) & mask
		src = (src + 1) & mask
	}
}
