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

// copyMatch appends length bytes copied from dist bytes back; room and
// history have been checked.
func (w *window) copyMatch(dist, length int) {
	mask := len(w.buf) - 1
	dst := int(w.pos) & mask
	src := (int(w.pos) - dist) & mask
	w.pos += uint64(length)
	b := w.buf
	if dst+length <= len(b) && src+length <= len(b) {
		if dist >= length {
			copy(b[dst:dst+length], b[src:src+length])
			return
		}
		if src < dst {
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

// Decoding tables: a primary table indexed by the next rootBits bits of
// input, whose entries are either a symbol << 4 | its code length, or
// linkFlag | the offset of a secondary table << 4 | that table's bits,
// for codes longer than rootBits. 0 is an invalid code.
const (
	litRootBits  = 9
	distRootBits = 7
	linkFlag     = 1 << 31
	// Bounds on the size of the tables of any complete code, from zlib's
	// enough.c, rounded up: 852 entries for 286 symbols with 9 root bits,
	// and well under 1024 for 30 symbols with 7 root bits.
	litTableSize  = 1024
	distTableSize = 1024
)

type huffTable struct {
	root  uint
	table []uint32
}

// init builds the table of the code with the given lengths. It fails
// unless the code is complete or has a single code of 1 bit, as zlib
// requires; a code without symbols builds an empty table, which fails
// any symbol decoded with it.
func (h *huffTable) init(lengths []uint8, root uint, storage []uint32) bool {
	var count [maxCodeBits + 1]int
	maxLen := 0
	for _, l := range lengths {
		count[l]++
		maxLen = max(maxLen, int(l))
	}
	count[0] = 0
	h.root = root
	h.table = storage[:1<<root]
	clear(h.table)
	if maxLen == 0 {
		return true
	}
	left := 1
	for l := 1; l <= maxCodeBits; l++ {
		left = left<<1 - count[l]
		if left < 0 {
			return false // over-subscribed
		}
	}
	if left > 0 && !(maxLen == 1 && count[1] == 1) {
		return false // incomplete
	}
	var next [maxCodeBits + 2]uint32
	code := uint32(0)
	for l := 1; l <= maxCodeBits; l++ {
		code = (code + uint32(count[l-1])) << 1
		next[l] = code
	}
	rootMask := uint32(1)<<root - 1
	if uint(maxLen) > root {
		// Size a secondary table for every root prefix of a long code
		// by its longest code, first noting that length in the root.
		nx := next
		for _, l := range lengths {
			if uint(l) > root {
				rev := bits.Reverse32(nx[l]) >> (32 - uint32(l))
				nx[l]++
				p := rev & rootMask
				h.table[p] = max(h.table[p], uint32(l)-uint32(root))
			}
		}
		off := uint32(len(h.table))
		for p, sub := range h.table {
			if sub == 0 {
				continue
			}
			size := uint32(1) << sub
			if int(off+size) > len(storage) {
				return false
			}
			clear(storage[off : off+size])
			h.table[p] = linkFlag | off<<4 | sub
			off += size
		}
		h.table = storage[:off]
	}
	for sym, l := range lengths {
		if l == 0 {
			continue
		}
		rev := bits.Reverse32(next[l]) >> (32 - uint32(l))
		next[l]++
		e := uint32(sym)<<4 | uint32(l)
		if uint(l) <= root {
			for k := rev; k <= rootMask; k += 1 << l {
				h.table[k] = e
			}
			continue
		}
		link := h.table[rev&rootMask]
		off, sub := (link&^linkFlag)>>4, link&15
		for k := rev >> root; k < 1<<sub; k += 1 << (uint(l) - root) {
			h.table[off+k] = e
		}
	}
	return true
}

var fixedLitTable, fixedDistTable huffTable

func init() {
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
	fixedLitTable.init(lens[:], litRootBits, make([]uint32, litTableSize))
	// 32 codes of 5 bits, of which 30 and 31 never occur in valid data.
	for i := range 32 {
		lens[i] = 5
	}
	fixedDistTable.init(lens[:32], distRootBits, make([]uint32, distTableSize))
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

// symbol decodes one symbol with h, reading as needed.
func (f *inflater) symbol(h *huffTable) (int, error) {
	for {
		// Bits not yet read are zero here: a code shorter than the bits
		// at hand decodes right whatever follows.
		e := h.table[uint32(f.bits)&(1<<h.root-1)]
		if e&linkFlag != 0 {
			e = h.table[(e&^linkFlag)>>4+uint32(f.bits>>h.root)&(1<<(e&15)-1)]
		}
		n := uint(e & 15)
		if n != 0 && n <= f.nbits {
			f.bits >>= n
			f.nbits -= n
			return int(e >> 4), nil
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
	if !complete(clLens[:]) || !f.clTable.init(clLens[:], 7, f.clStore[:]) {
		return errCorrupt
	}
	lens := f.lens[:nlit+ndist]
	for i := 0; i < len(lens); {
		s, err := f.symbol(&f.clTable)
		if err != nil {
			return err
		}
		if s < 16 {
			lens[i] = uint8(s)
			i++
			continue
		}
		var rep int
		var val uint8
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
			rep = 3 + int(f.take(3))
		default:
			if err := f.need(7); err != nil {
				return err
			}
			rep = 11 + int(f.take(7))
		}
		if i+rep > len(lens) {
			return errCorrupt
		}
		for range rep {
			lens[i] = val
			i++
		}
	}
	if lens[endOfBlock] == 0 {
		return errCorrupt
	}
	if !f.dynLit.init(lens[:nlit], litRootBits, f.litStore[:]) || !f.dynDist.init(lens[nlit:], distRootBits, f.distStore[:]) {
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
	lit, dist := f.lit, f.dist
	safe := f.safe()
	for int(w.pos-f.rd) < want {
		if int64(w.pos) > safe {
			if !w.room(f.rd, maxMatch) {
				return true, nil
			}
			safe = f.safe()
		}
		if f.nbits < 48 {
			f.refill()
		}
		var sym int
		// The common case first: enough bits for any code.
		if f.nbits >= maxCodeBits {
			e := lit.table[uint32(f.bits)&(1<<litRootBits-1)]
			if e&linkFlag != 0 {
				e = lit.table[(e&^linkFlag)>>4+uint32(f.bits>>litRootBits)&(1<<(e&15)-1)]
			}
			n := uint(e & 15)
			if n == 0 {
				return false, errCorrupt
			}
			f.bits >>= n
			f.nbits -= n
			sym = int(e >> 4)
		} else if sym, err = f.symbol(lit); err != nil {
			return false, err
		}
		if sym < 256 {
			w.buf[int(w.pos)&(len(w.buf)-1)] = byte(sym)
			w.pos++
			continue
		}
		if sym == endOfBlock {
			f.state = stHeader
			return false, nil
		}
		lc := sym - 257
		if lc >= 29 {
			return false, errCorrupt
		}
		length := int(lengthBase[lc])
		if eb := uint(lengthExtra[lc]); eb > 0 {
			if f.nbits < eb {
				if err := f.need(eb); err != nil {
					return false, err
				}
			}
			length += int(f.take(eb))
		}
		var dsym int
		if f.nbits >= maxCodeBits {
			e := dist.table[uint32(f.bits)&(1<<distRootBits-1)]
			if e&linkFlag != 0 {
				e = dist.table[(e&^linkFlag)>>4+uint32(f.bits>>distRootBits)&(1<<(e&15)-1)]
			}
			n := uint(e & 15)
			if n == 0 {
				return false, errCorrupt
			}
			f.bits >>= n
			f.nbits -= n
			dsym = int(e >> 4)
		} else if dsym, err = f.symbol(dist); err != nil {
			return false, err
		}
		if dsym >= numDist {
			return false, errCorrupt
		}
		d := int(distBase[dsym])
		if eb := uint(distExtra[dsym]); eb > 0 {
			if f.nbits < eb {
				if err := f.need(eb); err != nil {
					return false, err
				}
			}
			d += int(f.take(eb))
		}
		if d > w.history() {
			return false, errTooFar
		}
		w.copyMatch(d, length)
	}
	return false, nil
}
