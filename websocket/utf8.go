package websocket

import "unicode/utf8"

// utf8State validates UTF-8 incrementally, so a text message can be
// checked as its bytes arrive and fail in the frame that carries the first
// bad byte, even when a character is split across frames or reads.
type utf8State struct {
	need   uint8 // continuation bytes still expected
	lo, hi byte  // range allowed for the next continuation byte
}

// valid feeds p and reports whether it is still a prefix of valid UTF-8.
func (s *utf8State) valid(p []byte) bool {
	// Finish a character left open by the previous chunk.
	for s.need > 0 {
		if len(p) == 0 {
			return true
		}
		if !s.cont(p[0]) {
			return false
		}
		p = p[1:]
	}
	// The stdlib validator is fast on whole characters; only an incomplete
	// character at the end needs the state machine.
	cut := tailStart(p)
	if !utf8.Valid(p[:cut]) {
		return false
	}
	for _, c := range p[cut:] {
		if s.need == 0 {
			if !s.lead(c) {
				return false
			}
		} else if !s.cont(c) {
			return false
		}
	}
	return true
}

// complete reports whether the bytes fed so far end on a character boundary.
func (s *utf8State) complete() bool { return s.need == 0 }

func (s *utf8State) lead(c byte) bool {
	s.lo, s.hi = 0x80, 0xBF
	switch {
	case c < 0x80:
		return true
	case c >= 0xC2 && c <= 0xDF:
		s.need = 1
	case c == 0xE0:
		s.need, s.lo = 2, 0xA0
	case c == 0xED:
		s.need, s.hi = 2, 0x9F
	case c >= 0xE1 && c <= 0xEF:
		s.need = 2
	case c == 0xF0:
		s.need, s.lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		s.need = 3
	case c == 0xF4:
		s.need, s.hi = 3, 0x8F
	default:
		return false
	}
	return true
}

func (s *utf8State) cont(c byte) bool {
	if c < s.lo || c > s.hi {
		return false
	}
	s.need--
	s.lo, s.hi = 0x80, 0xBF
	return true
}

// tailStart returns where a possibly incomplete last character of p begins,
// or len(p) when p ends on a character boundary or with bytes that are
// invalid whatever follows.
func tailStart(p []byte) int {
	n := len(p)
	for i := n - 1; i >= 0 && i >= n-3; i-- {
		c := p[i]
		if c < 0x80 {
			return n
		}
		if c >= 0xC0 {
			size := 2
			if c >= 0xF0 {
				size = 4
			} else if c >= 0xE0 {
				size = 3
			}
			if n-i < size {
				return i
			}
			return n
		}
	}
	return n
}
