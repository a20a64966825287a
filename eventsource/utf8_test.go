package eventsource

import "testing"

func TestAppendTextMatchesWHATWG(t *testing.T) {
	t.Parallel()
	check := func(p []byte) {
		if got, want := string(appendText(nil, p)), whatwgUTF8(string(p)); got != want {
			t.Fatalf("%q: got %q, want %q", p, got, want)
		}
	}
	for a := range 256 {
		check([]byte{byte(a)})
		for b := range 256 {
			check([]byte{byte(a), byte(b)})
		}
	}
	// Bytes at every boundary the decoder distinguishes.
	edges := []byte{0x00, 'a', 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2,
		0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF}
	for _, a := range edges {
		for _, b := range edges {
			for _, c := range edges {
				check([]byte{a, b, c})
				for _, d := range edges {
					check([]byte{a, b, c, d})
				}
			}
		}
	}
}
