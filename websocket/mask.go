package websocket

import (
	"encoding/binary"
	"math/bits"
)

// mask XORs b with the masking key (RFC 6455 §5.3), starting at key offset
// pos, and returns the offset for the byte after b. key holds the four key
// bytes in wire order read as a little-endian uint32, so a machine word of
// payload read little-endian lines up with it.
func mask(key uint32, pos int, b []byte) int { return maskCopy(key, pos, b, b) }

// maskCopy is mask that reads src and writes the result to dst, which
// must be as long; dst may be src. Unmasking while copying out of the read
// buffer passes over the payload once instead of twice.
func maskCopy(key uint32, pos int, dst, src []byte) int {
	// The Go loop stays in this function rather than a second one so
	// that short payloads still cost one call: a wrapper making two calls
	// is too big to inline. Tests with -tags purego cover it at every
	// length.
	n := len(src)
	dst = dst[:n]
	if haveMaskAsm && n >= maskAsmMin {
		maskAsm(dst, src, bits.RotateLeft32(key, -8*(pos&3)))
		return (pos + n) & 3
	}
	if len(src) >= 8 {
		k := bits.RotateLeft32(key, -8*(pos&3))
		k64 := uint64(k) | uint64(k)<<32
		for len(src) >= 32 {
			v0 := binary.LittleEndian.Uint64(src)
			v1 := binary.LittleEndian.Uint64(src[8:])
			v2 := binary.LittleEndian.Uint64(src[16:])
			v3 := binary.LittleEndian.Uint64(src[24:])
			binary.LittleEndian.PutUint64(dst, v0^k64)
			binary.LittleEndian.PutUint64(dst[8:], v1^k64)
			binary.LittleEndian.PutUint64(dst[16:], v2^k64)
			binary.LittleEndian.PutUint64(dst[24:], v3^k64)
			src, dst = src[32:], dst[32:]
		}
		for len(src) >= 8 {
			binary.LittleEndian.PutUint64(dst, binary.LittleEndian.Uint64(src)^k64)
			src, dst = src[8:], dst[8:]
		}
		// Whole words keep the key phase: pos is unchanged modulo 4.
	}
	for i := range src {
		dst[i] = src[i] ^ byte(key>>(8*((pos+i)&3)))
	}
	return (pos + n) & 3
}
