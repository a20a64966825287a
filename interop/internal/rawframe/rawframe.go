// Package rawframe writes WebSocket frames byte by byte (RFC 6455 §5.2),
// for the load clients and tests that must send exactly what they choose,
// whatever the library under test would send.
package rawframe

import "encoding/binary"

// AppendMasked appends a client frame to dst: first byte b0 (FIN, RSV
// bits and opcode), payload masked with key, length in its minimal form.
func AppendMasked(dst []byte, b0 byte, key [4]byte, payload []byte) []byte {
	dst = append(dst, b0)
	switch n := len(payload); {
	case n < 126:
		dst = append(dst, 0x80|byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 0x80|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	dst = append(dst, key[:]...)
	for i, b := range payload {
		dst = append(dst, b^key[i&3])
	}
	return dst
}
