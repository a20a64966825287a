package extensions

import (
	"errors"
	"strings"
	"testing"
)

// TestParseErrorIsBounded checks that a syntax error quotes only a short
// prefix of a hostile value, however long.
func TestParseErrorIsBounded(t *testing.T) {
	for _, v := range []string{
		strings.Repeat("\xff", 1<<20),
		"x" + strings.Repeat("y", 1<<20) + "\xff",
		`x; p="` + strings.Repeat(`\`+"\xff", 1<<19) + `"`,
		"x; p=" + strings.Repeat("\xff", 1<<20),
	} {
		_, err := Parse(v)
		if !errors.Is(err, ErrSyntax) {
			t.Fatalf("Parse: %v, want ErrSyntax", err)
		}
		if n := len(err.Error()); n > 512 {
			t.Errorf("error text is %d bytes: %.100q", n, err.Error())
		}
	}
}

// TestNegotiationErrorIsBounded checks the client's error on a response
// naming a long extension it did not offer.
func TestNegotiationErrorIsBounded(t *testing.T) {
	_, err := ClientActivate(nil, []string{strings.Repeat("x", 1<<20)})
	if !errors.Is(err, ErrNegotiation) {
		t.Fatalf("ClientActivate: %v, want ErrNegotiation", err)
	}
	if n := len(err.Error()); n > 512 {
		t.Errorf("error text is %d bytes: %.100q", n, err.Error())
	}
}
