package websocket

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// Keys with four distinct bytes, so a key byte used at the wrong phase
// shows.
var maskTestKeys = []uint32{0x3d21fa37, 0x04030201, 0x8badf00d}

// checkMask masks buf[off:off+n] in a copy of buf and compares the
// whole copy, guard bytes around the slice included, with maskRef; then
// it does the same with maskCopy into a separate buffer.
func checkMask(t *testing.T, buf []byte, key uint32, pos, off, n int) {
	t.Helper()
	var kb [4]byte
	binary.LittleEndian.PutUint32(kb[:], key)
	want := bytes.Clone(buf)
	maskRef(kb, pos, want[off:off+n])
	got := bytes.Clone(buf)
	next := mask(key, pos, got[off:off+n])
	if !bytes.Equal(got, want) {
		i := 0
		for got[i] == want[i] {
			i++
		}
		t.Fatalf("key %#x pos %d off %d len %d: first wrong byte at %d (slice index %d)", key, pos, off, n, i, i-off)
	}
	if next != (pos+n)%4 {
		t.Fatalf("key %#x pos %d off %d len %d: returned %d, want %d", key, pos, off, n, next, (pos+n)%4)
	}

	// maskCopy into another buffer, at another alignment than the source.
	src := bytes.Clone(buf)
	doff := (off + 13) % 32
	dst := bytes.Repeat([]byte{0xA5}, doff+n+8)
	next = maskCopy(key, pos, dst[doff:doff+n], src[off:off+n])
	if !bytes.Equal(src, buf) {
		t.Fatalf("key %#x pos %d off %d len %d: maskCopy changed its source", key, pos, off, n)
	}
	if !bytes.Equal(dst[doff:doff+n], want[off:off+n]) || next != (pos+n)%4 {
		t.Fatalf("key %#x pos %d off %d→%d len %d: maskCopy wrote wrong bytes or returned %d", key, pos, off, doff, n, next)
	}
	for i, b := range dst {
		if (i < doff || i >= doff+n) && b != 0xA5 {
			t.Fatalf("key %#x pos %d off %d→%d len %d: maskCopy wrote outside dst, at %d", key, pos, off, doff, n, i)
		}
	}
}

// testMaskLengths covers every length through 600 at every start offset
// modulo 32, so every path through the assembly's alignment steps, vector
// loops and tail.
func testMaskLengths(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	buf := make([]byte, 600+64)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	for _, key := range maskTestKeys {
		for off := range 33 {
			for n := 0; n <= 600; n++ {
				for pos := range 4 {
					checkMask(t, buf, key, pos, off, n)
				}
			}
		}
	}
}

func testMaskLarge(t *testing.T) {
	buf := pattern(1<<20+128, 9)
	for _, n := range []int{65536, 65537, 65538, 65539, 65536 + 31, 65536 + 127, 1<<20 + 5} {
		for _, off := range []int{0, 1, 3, 30} {
			for pos := range 4 {
				checkMask(t, buf[:off+n+64], maskTestKeys[pos%len(maskTestKeys)], pos, off, n)
			}
		}
	}
}

func TestMaskLengths(t *testing.T) { testMaskLengths(t) }

func TestMaskLarge(t *testing.T) { testMaskLarge(t) }

func FuzzMask(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, key uint32, pos, off uint8) {
		// Guard bytes on both sides; off moves the start across alignments.
		o := int(off % 32)
		buf := make([]byte, o+len(b)+8)
		copy(buf[o:], b)
		checkMask(t, buf, key, int(pos%4), o, len(b))
	})
}
