package main

import (
	"bytes"
	"testing"
)

// serverFrame is clientFrame without the mask, as a server sends it.
func serverFrame(payload []byte) []byte {
	f := clientFrame(payload)
	hl := len(f) - len(payload) - 4
	out := append([]byte(nil), f[:hl]...)
	out[1] &^= 0x80
	return append(out, payload...)
}

// TestParserSplits feeds streams of frames cut at every possible point
// and checks that every frame is counted once.
func TestParserSplits(t *testing.T) {
	for _, size := range []int{0, 16, 125, 126, 1024, 65535, 65536} {
		for _, masked := range []bool{false, true} {
			f := serverFrame(testPayload(size))
			if masked {
				f = clientFrame(testPayload(size))
			}
			stream := bytes.Repeat(f, 3)
			step := 1
			if len(stream) > 4096 {
				step = 97
			}
			for cut := 0; cut <= len(stream); cut += step {
				var p parser
				p.want = size
				total := 0
				buf := append([]byte(nil), stream[:cut]...)
				k, used, err := p.feed(buf)
				if err != nil {
					t.Fatalf("size %d masked %v cut %d: %v", size, masked, cut, err)
				}
				total += k
				buf = append(buf[used:], stream[cut:]...)
				k, used, err = p.feed(buf)
				if err != nil {
					t.Fatalf("size %d masked %v cut %d: %v", size, masked, cut, err)
				}
				total += k
				if total != 3 || used != len(buf) {
					t.Fatalf("size %d masked %v cut %d: %d frames, %d of %d bytes used", size, masked, cut, total, used, len(buf))
				}
			}
		}
	}
}

func TestParserRejects(t *testing.T) {
	p := parser{want: 16}
	if _, _, err := p.feed(serverFrame(testPayload(17))); err == nil {
		t.Fatal("wrong length accepted")
	}
	f := serverFrame(testPayload(16))
	f[0] = 0x81 // text
	p = parser{want: 16}
	if _, _, err := p.feed(f); err == nil {
		t.Fatal("text frame accepted")
	}
}
