// Package quote quotes peer input for error messages, bounded so that a
// peer cannot make an error text, or a response that echoes one, grow
// with what it sent.
package quote

import "strconv"

// Max is the number of bytes of input that Bounded quotes.
const Max = 64

// Bounded returns s quoted as %q does, cut to its first Max bytes with
// "..." after the closing quote when it is longer.
func Bounded(s string) string {
	if len(s) <= Max {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:Max]) + "..."
}

// Error returns err's text cut to its first 2*Max bytes, with "..."
// when it is longer: for an error of another package that quotes peer
// input without bound (net/http quotes a whole malformed status line).
// The cut may fall inside an escape, never inside a raw byte sequence
// that matters: the text is for people.
func Error(err error) string {
	msg := err.Error()
	if len(msg) <= 2*Max {
		return msg
	}
	return msg[:2*Max] + "..."
}
