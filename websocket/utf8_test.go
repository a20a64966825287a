package websocket

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// utf8Vectors: valid or not as a whole text message (RFC 3629, as RFC 6455
// §8.1 requires).
var utf8Vectors = []struct {
	name  string
	in    string
	valid bool
}{
	{"empty", "", true},
	{"ascii", "Hello-µ@ßöäüàá-UTF-8!!", true},
	{"kosme", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", true},
	{"kosme then invalid", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited", false},
	{"U+0000", "\x00", true},
	{"U+007F", "\x7f", true},
	{"U+0080", "\xc2\x80", true},
	{"U+07FF", "\xdf\xbf", true},
	{"U+0800", "\xe0\xa0\x80", true},
	{"U+D7FF", "\xed\x9f\xbf", true},
	{"U+E000", "\xee\x80\x80", true},
	{"U+FFFD", "\xef\xbf\xbd", true},
	{"U+FFFE noncharacter", "\xef\xbf\xbe", true},
	{"U+FFFF noncharacter", "\xef\xbf\xbf", true},
	{"U+10000", "\xf0\x90\x80\x80", true},
	{"U+10FFFF", "\xf4\x8f\xbf\xbf", true},
	{"U+110000", "\xf4\x90\x80\x80", false},
	{"5-byte form", "\xf8\x88\x80\x80\x80", false},
	{"6-byte form", "\xfc\x84\x80\x80\x80\x80", false},
	{"lone continuation 0x80", "\x80", false},
	{"lone continuation 0xbf", "\xbf", false},
	{"two continuations", "\x80\xbf", false},
	{"lead then ascii", "\xc0 ", false},
	{"lone 0xc2", "\xc2", false},
	{"0xc2 then ascii", "\xc2a", false},
	{"truncated 3-byte", "\xe2\x82", false},
	{"truncated 4-byte", "\xf0\x9f\x98", false},
	{"0xfe", "\xfe", false},
	{"0xff", "\xff", false},
	{"0xfe 0xfe 0xff 0xff", "\xfe\xfe\xff\xff", false},
	{"overlong slash 2", "\xc0\xaf", false},
	{"overlong slash 3", "\xe0\x80\xaf", false},
	{"overlong slash 4", "\xf0\x80\x80\xaf", false},
	{"overlong max 2", "\xc1\xbf", false},
	{"overlong max 3", "\xe0\x9f\xbf", false},
	{"overlong max 4", "\xf0\x8f\xbf\xbf", false},
	{"overlong NUL", "\xc0\x80", false},
	{"surrogate D800", "\xed\xa0\x80", false},
	{"surrogate DBFF", "\xed\xaf\xbf", false},
	{"surrogate DC00", "\xed\xb0\x80", false},
	{"surrogate DFFF", "\xed\xbf\xbf", false},
	{"surrogate pair", "\xed\xa0\x80\xed\xb0\x80", false},
	{"F5 lead", "\xf5\x80\x80\x80", false},
	{"F4 90", "\xf4\x90", false},
	{"valid then lone lead at end", "abc\xe2", false},
	{"valid 4-byte then continuation", "\xf0\x9f\x98\x80\x80", false},
	{"mixed valid", "a€😀ß中\u0000\U0010FFFF", true},
}

// utf8ProperPrefixes holds every proper prefix of the encoding of every
// scalar value, built from the definition rather than from a decoder.
var utf8ProperPrefixes = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	var buf [4]byte
	// A proper prefix never includes the last byte, which carries the low
	// six bits: stepping by 64 visits every prefix.
	for r := rune(0x80); r <= utf8.MaxRune; r += 64 {
		if r >= 0xD800 && r <= 0xDFFF {
			continue
		}
		n := utf8.EncodeRune(buf[:], r)
		for k := 1; k < n; k++ {
			m[string(buf[:k])] = true
		}
	}
	return m
})

// validPrefix reports whether b can still be completed to valid UTF-8.
func validPrefix(b []byte) bool {
	pre := utf8ProperPrefixes()
	for k := 0; k <= 3 && k <= len(b); k++ {
		if utf8.Valid(b[:len(b)-k]) && (k == 0 || pre[string(b[len(b)-k:])]) {
			return true
		}
	}
	return false
}

// firstBad returns the index of the first byte after which b can no
// longer be completed, or -1.
func firstBad(b []byte) int {
	for i := 1; i <= len(b); i++ {
		if !validPrefix(b[:i]) {
			return i - 1
		}
	}
	return -1
}

// feedPieces feeds pieces to a fresh validator. It returns the index of
// the piece it rejected (-1 for none) and whether it ended complete.
func feedPieces(pieces [][]byte) (rejected int, complete bool) {
	var s utf8State
	for i, p := range pieces {
		if !s.valid(p) {
			return i, false
		}
	}
	return -1, s.complete()
}

func TestUTF8Vectors(t *testing.T) {
	for _, v := range utf8Vectors {
		t.Run(v.name, func(t *testing.T) {
			in := []byte(v.in)
			if utf8.Valid(in) != v.valid {
				t.Fatalf("table error: utf8.Valid = %v", !v.valid)
			}
			// At once.
			rej, complete := feedPieces([][]byte{in})
			if got := rej < 0 && complete; got != v.valid {
				t.Fatalf("whole: valid = %v, want %v", got, v.valid)
			}
			// Byte by byte: rejected exactly at the first byte that no
			// continuation can make valid.
			pieces := make([][]byte, len(in))
			for i := range in {
				pieces[i] = in[i : i+1]
			}
			rej, complete = feedPieces(pieces)
			if want := firstBad(in); rej != want {
				t.Fatalf("byte by byte: rejected at %d, want %d", rej, want)
			}
			if rej < 0 && complete != v.valid {
				t.Fatalf("byte by byte: complete = %v, want %v", complete, v.valid)
			}
		})
	}
}

// randomUTF8ish returns bytes that are mostly valid UTF-8 with faults of
// every kind mixed in.
func randomUTF8ish(r *rand.Rand) []byte {
	var b []byte
	n := r.IntN(24)
	for range n {
		switch r.IntN(10) {
		case 0:
			b = append(b, byte(r.IntN(256)))
		case 1:
			b = append(b, byte(0x80+r.IntN(0x40)))
		case 2:
			b = append(b, byte(0xC0+r.IntN(0x40)))
		case 3: // a truncated character
			var buf [4]byte
			k := utf8.EncodeRune(buf[:], rune(0x80+r.IntN(0x10FF80)))
			b = append(b, buf[:r.IntN(k)]...)
		case 4: // surrogates and the edges of the code space
			edges := []string{"\xed\xa0\x80", "\xed\xbf\xbf", "\xed\x9f\xbf", "\xee\x80\x80", "\xf4\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xe0\x9f\xbf", "\xe0\xa0\x80", "\xf0\x8f\xbf\xbf", "\xf0\x90\x80\x80", "\xc1\xbf", "\xc2\x80"}
			b = append(b, edges[r.IntN(len(edges))]...)
		default:
			var buf [4]byte
			rs := []rune{rune(r.IntN(0x80)), rune(0x80 + r.IntN(0x780)), rune(0x800 + r.IntN(0xF800)), rune(0x10000 + r.IntN(0x100000))}
			k := utf8.EncodeRune(buf[:], rs[r.IntN(4)])
			b = append(b, buf[:k]...)
		}
	}
	return b
}

// splitRandomly cuts b into pieces at random points, empty pieces included.
func splitRandomly(r *rand.Rand, b []byte) [][]byte {
	var pieces [][]byte
	for len(b) > 0 {
		k := r.IntN(min(len(b), 6) + 1)
		pieces = append(pieces, b[:k])
		b = b[k:]
	}
	return append(pieces, nil)
}

// TestUTF8IncrementalProperty checks the incremental validator against
// utf8.Valid of the concatenation, for random inputs cut at random points,
// and that it rejects in the piece holding the first hopeless byte.
func TestUTF8IncrementalProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(42, 6455))
	for i := range 30000 {
		b := randomUTF8ish(r)
		checkIncremental(t, b, splitRandomly(r, b), fmt.Sprint(i))
	}
}

func checkIncremental(t testing.TB, whole []byte, pieces [][]byte, name string) {
	t.Helper()
	rej, complete := feedPieces(pieces)
	got := rej < 0 && complete
	if got != utf8.Valid(whole) {
		t.Fatalf("%s: % x in %d pieces: valid = %v, utf8.Valid = %v", name, whole, len(pieces), got, !got)
	}
	// The piece that holds the first hopeless byte must be the one
	// rejected: not before it, not after.
	want := -1
	if bad := firstBad(whole); bad >= 0 {
		off := 0
		for i, p := range pieces {
			if bad < off+len(p) {
				want = i
				break
			}
			off += len(p)
		}
	}
	if rej != want {
		t.Fatalf("%s: % x cut as %q: rejected piece %d, want %d", name, whole, pieces, rej, want)
	}
}

// TestUTF8FailFastInFrame: the peer announces a 100-byte text frame, sends
// 10 bytes whose 6th is 0xFF and stops. The Conn must fail with 1007
// without waiting for the other 90 (Autobahn 6.4.x).
func TestUTF8FailFastInFrame(t *testing.T) {
	for _, tr := range transports {
		for _, client := range []bool{false, true} {
			for _, api := range []string{"Read", "Reader"} {
				t.Run(fmt.Sprintf("%s/client=%v/%s", tr, client, api), func(t *testing.T) {
					c, p := newTestConn(t, tr, client, ConnOptions{})
					payload := bytes.Repeat([]byte("a"), 100)
					payload[5] = 0xFF
					f := p.frame(true, 0, opText, payload)
					w := p.sendAsync(f[:p.hdrLen(100)+10])
					errc := make(chan error, 1)
					go func() {
						ctx := context.Background()
						if api == "Read" {
							_, _, err := c.Read(ctx)
							errc <- err
							return
						}
						_, r, err := c.Reader(ctx)
						if err == nil {
							_, err = io.ReadAll(r)
						}
						errc <- err
					}()
					p.expectFail(t, StatusInvalidFramePayloadData)
					select {
					case err := <-errc:
						expectProtocolError(t, err, StatusInvalidFramePayloadData)
					case <-time.After(waitLong):
						t.Fatal("Read did not fail")
					}
					<-w
				})
			}
		}
	}
}

// TestUTF8FailFastChops sends one text frame in pieces, as Autobahn 6.4.3
// and 6.4.4 do: a valid piece, then 0xF4 (still a valid prefix: no close
// yet), then 0x90 (now hopeless: U+110000 and up), then nothing more.
func TestUTF8FailFastChops(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			c, p := newTestConn(t, tr, false, ConnOptions{})
			reads := startReader(t, c)
			good := []byte("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5")
			payload := append(append(append([]byte(nil), good...), "\xf4\x90\x80\x80"...), "edited"...)
			f := p.frame(true, 0, opText, payload)
			h := p.hdrLen(len(payload))
			p.send(t, f[:h+len(good)])
			p.expectNothing(t, 30*time.Millisecond)
			p.send(t, f[h+len(good):h+len(good)+1]) // 0xF4
			p.expectNothing(t, 30*time.Millisecond)
			w := p.sendAsync(f[h+len(good)+1 : h+len(good)+2]) // 0x90
			p.expectFail(t, StatusInvalidFramePayloadData)
			expectProtocolError(t, expectReadErr(t, reads), StatusInvalidFramePayloadData)
			<-w
		})
	}
}

// TestUTF8AcrossFragments: a character may be split between fragments
// (RFC 6455 §5.6: the whole message must be valid, not each frame), but an
// invalid byte fails the fragment that carries it, before the rest arrives.
func TestUTF8AcrossFragments(t *testing.T) {
	type step struct {
		fin     bool
		payload string
	}
	cases := []struct {
		name  string
		steps []step
		valid bool // else the Conn must fail 1007 after the last step
	}{
		{"2-byte char split", []step{{false, "caf\xc3"}, {true, "\xa9"}}, true},
		{"4-byte char split in three", []step{{false, "\xf0\x9f"}, {false, "\x98"}, {true, "\x80!"}}, true},
		{"split with empty fragments", []step{{false, "\xe2"}, {false, ""}, {false, "\x82"}, {false, ""}, {true, "\xac"}}, true},
		{"invalid continuation in second fragment", []step{{false, "caf\xc3"}, {false, "\x28"}}, false},
		{"surrogate completed in second fragment", []step{{false, "\xed"}, {false, "\xa0"}}, false},
		{"overlong completed in second fragment", []step{{false, "\xe0"}, {false, "\x80"}}, false},
		{"bad byte at start of third fragment", []step{{false, "ab"}, {false, "cd"}, {false, "\xff"}}, false},
		{"ends inside a character", []step{{true, "\xce"}}, false},
		{"ends inside a character, 3 bytes", []step{{true, "a\xe2\x82"}}, false},
		{"ends inside a character, empty final fragment", []step{{false, "\xf0\x9f\x98"}, {true, ""}}, false},
		{"ends inside a character split over fragments", []step{{false, "\xf0"}, {false, "\x9f"}, {true, "\x98"}}, false},
	}
	for _, tr := range transports {
		for _, client := range []bool{false, true} {
			for _, tc := range cases {
				t.Run(fmt.Sprintf("%s/client=%v/%s", tr, client, tc.name), func(t *testing.T) {
					c, p := newTestConn(t, tr, client, ConnOptions{})
					reads := startReader(t, c)
					var want []byte
					for i, s := range tc.steps {
						op := opContinuation
						if i == 0 {
							op = opText
						}
						want = append(want, s.payload...)
						if i == len(tc.steps)-1 && !tc.valid {
							w := p.sendAsync(p.frame(s.fin, 0, op, []byte(s.payload)))
							// Nothing more is sent: the Conn must act on
							// what it has.
							p.expectFail(t, StatusInvalidFramePayloadData)
							expectProtocolError(t, expectReadErr(t, reads), StatusInvalidFramePayloadData)
							<-w
							return
						}
						p.send(t, p.frame(s.fin, 0, op, []byte(s.payload)))
					}
					expectMsg(t, reads, MessageText, want)
				})
			}
		}
	}
}

// TestUTF8VectorsThroughConn sends every vector as a text message, whole
// and in 1-byte fragments; the invalid ones must fail with 1007 as soon as
// the fragment with the first hopeless byte has arrived.
func TestUTF8VectorsThroughConn(t *testing.T) {
	for _, tr := range transports {
		for _, frag := range []bool{false, true} {
			for _, v := range utf8Vectors {
				t.Run(fmt.Sprintf("%s/fragmented=%v/%s", tr, frag, v.name), func(t *testing.T) {
					c, p := newTestConn(t, tr, false, ConnOptions{})
					reads := startReader(t, c)
					in := []byte(v.in)
					var b []byte
					if !frag || len(in) == 0 {
						b = p.frame(true, 0, opText, in)
					} else {
						stop := len(in)
						if bad := firstBad(in); bad >= 0 {
							stop = bad + 1 // send nothing after the fragment with the bad byte
						}
						for i := 0; i < stop; i++ {
							op := opContinuation
							if i == 0 {
								op = opText
							}
							b = append(b, p.frame(i == len(in)-1, 0, op, in[i:i+1])...)
						}
					}
					w := p.sendAsync(b)
					if v.valid {
						expectMsg(t, reads, MessageText, in)
					} else {
						p.expectFail(t, StatusInvalidFramePayloadData)
						expectProtocolError(t, expectReadErr(t, reads), StatusInvalidFramePayloadData)
					}
					<-w
				})
			}
		}
	}
}

// TestUTF8BinaryNotChecked: binary messages are bytes, not text.
func TestUTF8BinaryNotChecked(t *testing.T) {
	c, p := newTestConn(t, overTCP, false, ConnOptions{})
	reads := startReader(t, c)
	p.send(t, p.frame(true, 0, opBinary, []byte("\xff\xfe\xed\xa0\x80\xc0")))
	expectMsg(t, reads, MessageBinary, []byte("\xff\xfe\xed\xa0\x80\xc0"))
	p.send(t, append(p.frame(false, 0, opBinary, []byte("\xf0")), p.frame(true, 0, opContinuation, []byte("\xff"))...))
	expectMsg(t, reads, MessageBinary, []byte("\xf0\xff"))
}
