package websocket

import (
	"encoding/binary"
	"fmt"
)

// opcode is a frame opcode (RFC 6455 §5.2).
type opcode byte

const (
	opContinuation opcode = 0x0
	opText         opcode = 0x1
	opBinary       opcode = 0x2
	opClose        opcode = 0x8
	opPing         opcode = 0x9
	opPong         opcode = 0xA
)

func (op opcode) isControl() bool { return op&0x8 != 0 }

func (op opcode) isKnown() bool {
	switch op {
	case opContinuation, opText, opBinary, opClose, opPing, opPong:
		return true
	}
	return false
}

// RSV bits as they stand in the first header byte.
const (
	rsv1    = 0x40
	rsv2    = 0x20
	rsv3    = 0x10
	rsvMask = rsv1 | rsv2 | rsv3
)

const (
	maxHeaderSize      = 14
	maxControlPayload  = 125
	maxCloseReasonSize = maxControlPayload - 2
)

// header is a decoded frame header.
type header struct {
	fin    bool
	rsv    byte // the RSV bits in place (0x70 mask)
	op     opcode
	masked bool
	key    uint32 // masking key as read from the wire, little-endian order
	length int64
}

// parseHeader decodes the frame header at the start of b. It returns the
// number of bytes the header took; n == 0 with a nil error means b does not
// hold the whole header yet. It rejects what no valid frame can carry: a
// 64-bit length with the top bit set and lengths not in their minimal form.
func parseHeader(b []byte) (h header, n int, err error) {
	if len(b) < 2 {
		return h, 0, nil
	}
	b0, b1 := b[0], b[1]
	h.fin = b0&0x80 != 0
	h.rsv = b0 & rsvMask
	h.op = opcode(b0 & 0x0F)
	h.masked = b1&0x80 != 0
	n = 2
	switch l := b1 & 0x7F; l {
	case 126:
		if len(b) < 4 {
			return h, 0, nil
		}
		h.length = int64(binary.BigEndian.Uint16(b[2:]))
		if h.length < 126 {
			return h, 0, protocolErr(StatusProtocolError, "non-minimal 16-bit payload length")
		}
		n = 4
	case 127:
		if len(b) < 10 {
			return h, 0, nil
		}
		v := binary.BigEndian.Uint64(b[2:])
		if v>>63 != 0 {
			return h, 0, protocolErr(StatusProtocolError, "64-bit payload length with the most significant bit set")
		}
		if v <= 0xFFFF {
			return h, 0, protocolErr(StatusProtocolError, "non-minimal 64-bit payload length")
		}
		h.length = int64(v)
		n = 10
	default:
		h.length = int64(l)
	}
	if h.masked {
		if len(b) < n+4 {
			return h, 0, nil
		}
		h.key = binary.LittleEndian.Uint32(b[n:])
		n += 4
	}
	return h, n, nil
}

// putHeader encodes h into b, which must hold maxHeaderSize bytes, and
// returns the number of bytes written.
func putHeader(b []byte, h header) int {
	b0 := h.rsv | byte(h.op)
	if h.fin {
		b0 |= 0x80
	}
	b[0] = b0
	var b1 byte
	if h.masked {
		b1 = 0x80
	}
	n := 2
	switch {
	case h.length < 126:
		b[1] = b1 | byte(h.length)
	case h.length <= 0xFFFF:
		b[1] = b1 | 126
		binary.BigEndian.PutUint16(b[2:], uint16(h.length))
		n = 4
	default:
		b[1] = b1 | 127
		binary.BigEndian.PutUint64(b[2:], uint64(h.length))
		n = 10
	}
	if h.masked {
		binary.LittleEndian.PutUint32(b[n:], h.key)
		n += 4
	}
	return n
}

// frameRules is what the reading side knows when it checks a header.
type frameRules struct {
	client    bool // this endpoint is the client: frames must arrive unmasked
	rsvOK     byte // RSV bits owned by negotiated extensions
	inMessage bool // a fragmented data message is in progress
}

// check applies the framing rules of RFC 6455 §5 to a received header.
func (r frameRules) check(h header) error {
	if h.masked == r.client {
		if r.client {
			return protocolErr(StatusProtocolError, "masked frame from server")
		}
		return protocolErr(StatusProtocolError, "unmasked frame from client")
	}
	if !h.op.isKnown() {
		return protocolErr(StatusProtocolError, fmt.Sprintf("reserved opcode %#x", byte(h.op)))
	}
	if h.op.isControl() {
		if !h.fin {
			return protocolErr(StatusProtocolError, "fragmented control frame")
		}
		if h.length > maxControlPayload {
			return protocolErr(StatusProtocolError, "control frame payload over 125 bytes")
		}
		if h.rsv != 0 {
			return protocolErr(StatusProtocolError, "RSV bits set on a control frame")
		}
		return nil
	}
	if h.rsv&^r.rsvOK != 0 {
		return protocolErr(StatusProtocolError, fmt.Sprintf("RSV bits %#x not negotiated", h.rsv))
	}
	if h.op == opContinuation {
		if !r.inMessage {
			return protocolErr(StatusProtocolError, "continuation frame outside a fragmented message")
		}
		if h.rsv != 0 {
			return protocolErr(StatusProtocolError, "RSV bits set on a continuation frame")
		}
	} else if r.inMessage {
		return protocolErr(StatusProtocolError, "new data frame inside a fragmented message")
	}
	return nil
}
