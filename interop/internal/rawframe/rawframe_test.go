package rawframe

import (
	"bytes"
	"testing"
)

func TestAppendMasked(t *testing.T) {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	// RFC 6455 §5.7: a single-frame masked text message "Hello".
	got := AppendMasked(nil, 0x81, key, []byte("Hello"))
	want := []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}
	if !bytes.Equal(got, want) {
		t.Fatalf("Hello: % x, want % x", got, want)
	}
	for _, tc := range []struct {
		n   int
		hdr []byte
	}{
		{125, []byte{0x82, 0x80 | 125}},
		{126, []byte{0x82, 0x80 | 126, 0, 126}},
		{65535, []byte{0x82, 0x80 | 126, 0xff, 0xff}},
		{65536, []byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	} {
		f := AppendMasked([]byte("x"), 0x82, key, make([]byte, tc.n))
		if !bytes.HasPrefix(f[1:], tc.hdr) || len(f) != 1+len(tc.hdr)+4+tc.n {
			t.Errorf("%d bytes: header % x, length %d", tc.n, f[1:1+len(tc.hdr)], len(f))
		}
	}
}
