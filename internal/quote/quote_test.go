package quote

import (
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestBounded(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", `""`},
		{"200 OK", `"200 OK"`},
		{"a\r\nb", `"a\r\nb"`},
		{strings.Repeat("x", Max), `"` + strings.Repeat("x", Max) + `"`},
		{strings.Repeat("y", Max+1), `"` + strings.Repeat("y", Max) + `"...`},
	} {
		if got := Bounded(tc.in); got != tc.want {
			t.Errorf("Bounded(%.20q) = %s, want %s", tc.in, got, tc.want)
		}
	}
	if got := Bounded(strings.Repeat("\xff", 1<<20)); len(got) > 4*Max+5 {
		t.Fatalf("1 MiB of 0xFF quoted as %d bytes", len(got))
	}
}
