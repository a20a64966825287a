package eventsource

import "unicode/utf8"

// appendText appends p to dst, replacing invalid UTF-8 the way the
// WHATWG Encoding Standard's UTF-8 decoder does, which is how a browser
// reads an event stream: each maximal subpart of an ill-formed sequence
// becomes one U+FFFD. (utf8.DecodeRune would instead replace byte by
// byte, and strings.ToValidUTF8 whole runs.) Line breaks and colons are
// ASCII and never part of a multi-byte sequence, so decoding each value
// on its own gives the same text as decoding the stream first.
func appendText(dst, p []byte) []byte {
	if utf8.Valid(p) {
		return append(dst, p...)
	}
	for len(p) > 0 {
		if p[0] < utf8.RuneSelf {
			dst = append(dst, p[0])
			p = p[1:]
			continue
		}
		r, n := utf8.DecodeRune(p)
		if r == utf8.RuneError && n <= 1 {
			n = maximalSubpart(p)
			dst = utf8.AppendRune(dst, utf8.RuneError)
		} else {
			dst = append(dst, p[:n]...)
		}
		p = p[n:]
	}
	return dst
}

// maximalSubpart returns the length of the ill-formed sequence at the
// start of p that one U+FFFD replaces: the lead byte and the
// continuation bytes that could still have completed it.
func maximalSubpart(p []byte) int {
	lo, hi := byte(0x80), byte(0xBF)
	var need int
	switch b := p[0]; {
	case b >= 0xC2 && b <= 0xDF:
		need = 1
	case b >= 0xE0 && b <= 0xEF:
		need = 2
		if b == 0xE0 {
			lo = 0xA0 // no overlong forms
		} else if b == 0xED {
			hi = 0x9F // no surrogates
		}
	case b >= 0xF0 && b <= 0xF4:
		need = 3
		if b == 0xF0 {
			lo = 0x90
		} else if b == 0xF4 {
			hi = 0x8F // nothing above U+10FFFF
		}
	default:
		return 1
	}
	n := 1
	for n <= need && n < len(p) && p[n] >= lo && p[n] <= hi {
		lo, hi = 0x80, 0xBF
		n++
	}
	return n
}
