package websocket

import (
	"encoding/binary"
	"math/bits"
)

// mask XORs b with the masking key (RFC 6455 §5.3), starting at key offset
// pos, and returns the offset for the byte after b. key holds the four key
// bytes in wire order read as a little-endian uint32, so a machine word of
// payload read little-endian lines up with it.
func mask(key uint32, pos int, b []byte) int {
	// The Go loop stays in this function rather than a second one so
	// that short payloads still cost one call: a wrapper making two calls
	// is too big to inline. Tests with -tags purego cover it at every
	// length.
	if haveMaskAsm && len(b) >= maskAsmMin {
		maskAsm(b, bits.RotateLeft32(key, -8*(pos&3)))
		return (pos + len(b)) & 3
	}
	if len(b) >= 8 {
		k := bits.RotateLeft32(key, -8*(pos&3))
		k64 := uint64(k) | uint64(k)<<32
		for len(b) >= 32 {
			v0 := binary.LittleEndian.Uint64(b)
			v1 := binary.LittleEndian.Uint64(b[8:])
			v2 := binary.LittleEndian.Uint64(b[16:])
			v3 := binary.LittleEndian.Uint64(b[24:])
			binary.LittleEndian.PutUint64(b, v0^k64)
			binary.LittleEndian.PutUint64(b[8:], v1^k64)
			binary.LittleEndian.PutUint64(b[16:], v2^k64)
			binary.LittleEndian.PutUint64(b[24:], v3^k64)
			b = b[32:]
		}
		for len(b) >= 8 {
			binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k64)
			b = b[8:]
		}
		// Whole words keep the key phase: pos is unchanged modulo 4.
	}
	for i := range b {
		b[i] ^= byte(key >> (8 * ((pos + i) & 3)))
	}
	return (pos + len(b)) & 3
}
