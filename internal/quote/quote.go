// Package quote quotes a peer's input in error messages and responses
// without echoing all of it: a peer controls how long its headers,
// addresses and payloads are, and an error that repeats them whole lets
// it make responses and logs as large as it likes.
package quote

import "strconv"

// MaxBytes is how many bytes of the input Prefix quotes.
const MaxBytes = 64

// Prefix returns s quoted as %q quotes it when s is at most MaxBytes
// long; otherwise the quoted first MaxBytes bytes (cut back to the start
// of a UTF-8 sequence) followed by "..." and s's length. The result is at
// most about 300 bytes whatever s holds.
func Prefix[T ~string | ~[]byte](s T) string {
	if len(s) <= MaxBytes {
		return strconv.Quote(string(s))
	}
	cut := MaxBytes
	// Back off at most 3 continuation bytes, so a character is not split
	// into escapes.
	for i := 0; i < 3 && cut > 0 && s[cut]&0xC0 == 0x80; i++ {
		cut--
	}
	return strconv.Quote(string(s[:cut])) + "... (" + strconv.Itoa(len(s)) + " bytes)"
}

// Error returns err's text cut to its first 2*MaxBytes bytes, with "..."
// when it is longer: for an error of another package that quotes peer
// input without bound (net/http quotes a whole malformed status line).
// The cut may fall inside an escape: the text is for people.
func Error(err error) string {
	msg := err.Error()
	if len(msg) <= 2*MaxBytes {
		return msg
	}
	return msg[:2*MaxBytes] + "..."
}
