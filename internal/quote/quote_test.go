package quote

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPrefixShortIsQuoted(t *testing.T) {
	for _, s := range []string{"", "abc", "a\"b\\c\n", "\xff\xfe", strings.Repeat("x", MaxBytes)} {
		if got, want := Prefix(s), fmt.Sprintf("%q", s); got != want {
			t.Errorf("Prefix(%q) = %s, want %s", s, got, want)
		}
		if got, want := Prefix([]byte(s)), fmt.Sprintf("%q", s); got != want {
			t.Errorf("Prefix([]byte(%q)) = %s, want %s", s, got, want)
		}
	}
}

func TestPrefixLongIsBounded(t *testing.T) {
	worst := []string{
		strings.Repeat("\xff", 1<<20), // each byte escapes to 4
		strings.Repeat("\x00", 1<<20),
		strings.Repeat("\U0010FFFF", 1<<18), // escapes to \U0010ffff
		strings.Repeat("€", 1<<18),
	}
	for _, s := range worst {
		got := Prefix(s)
		if len(got) > 300 {
			t.Errorf("Prefix of %d bytes is %d bytes long: %.80s", len(s), len(got), got)
		}
		if !strings.HasSuffix(got, fmt.Sprintf("... (%d bytes)", len(s))) {
			t.Errorf("Prefix of %d bytes = %.80s..., want the length at the end", len(s), got)
		}
	}
}

func TestPrefixKeepsCharactersWhole(t *testing.T) {
	s := "a" + strings.Repeat("€", 40) // MaxBytes falls inside a character
	got := Prefix(s)
	q := got[:strings.Index(got, "...")]
	if strings.Contains(q, `\x`) {
		t.Errorf("Prefix split a character: %s", got)
	}
	if !utf8.ValidString(q) {
		t.Errorf("Prefix is not valid UTF-8: %s", got)
	}
}

func TestErrorIsBounded(t *testing.T) {
	short := fmt.Errorf("malformed HTTP status code %q", "x")
	if got := Error(short); got != short.Error() {
		t.Errorf("Error(short) = %q, want it whole", got)
	}
	long := fmt.Errorf("malformed HTTP response %q", strings.Repeat("\xff", 1<<20))
	got := Error(long)
	if len(got) != 2*MaxBytes+3 || !strings.HasSuffix(got, "...") || !strings.HasPrefix(long.Error(), got[:2*MaxBytes]) {
		t.Errorf("Error(1 MiB text) = %d bytes %.40q..., want its first %d bytes and \"...\"", len(got), got, 2*MaxBytes)
	}
}
