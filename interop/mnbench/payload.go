package main

import "strconv"

// A published message is a JSON string, so that centrifuge's JSON protocol
// embeds it as it is and both servers carry the same bytes:
//
//	"@TIME-CHANNEL-SEQ-xxx…"
//
// TIME is the publisher's clock in Unix nanoseconds, CHANNEL the channel's
// index and SEQ the message's number in its channel (from 1; each channel
// has one publisher, so a subscriber sees them in order), padded with x
// to the message size. '@' appears nowhere else in either protocol's
// framing of a message.

// appendPayload appends the message to dst, at least size bytes.
func appendPayload(dst []byte, now int64, ch int, seq uint32, size int) []byte {
	start := len(dst)
	dst = append(dst, '"', '@')
	dst = strconv.AppendInt(dst, now, 10)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, int64(ch), 10)
	dst = append(dst, '-')
	dst = strconv.AppendUint(dst, uint64(seq), 10)
	dst = append(dst, '-')
	for len(dst)-start < size-1 {
		dst = append(dst, 'x')
	}
	return append(dst, '"')
}

// parsePayload reads the first message marker in p, returning the rest
// of p after it for the next one (centrifuge packs several messages in
// one WebSocket frame).
// found is false when p holds no marker at all (ok is false then too).
func parsePayload[T ~string | ~[]byte](p T) (now int64, ch int, seq uint32, rest T, found, ok bool) {
	i := 0
	for i < len(p) && p[i] != '@' {
		i++
	}
	if i == len(p) {
		return 0, 0, 0, p[:0], false, false
	}
	p = p[i+1:]
	var n [3]uint64
	for k := range n {
		j := 0
		for j < len(p) && p[j] >= '0' && p[j] <= '9' && j < 19 {
			n[k] = n[k]*10 + uint64(p[j]-'0')
			j++
		}
		if j == 0 || j == len(p) || p[j] != '-' {
			return 0, 0, 0, p, true, false
		}
		p = p[j+1:]
	}
	if n[0] > 1<<62 || n[1] > 1<<30 || n[2] > 1<<32-1 {
		return 0, 0, 0, p, true, false
	}
	return int64(n[0]), int(n[1]), uint32(n[2]), p, true, true
}
