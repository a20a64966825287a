package extensions_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/realtime-go/realtime/extensions"
)

type param = extensions.Param
type offer = extensions.Offer

func TestParse(t *testing.T) {
	tests := []struct {
		in   []string
		want []offer
	}{
		{nil, nil},
		{[]string{""}, nil},
		{[]string{"  ,\t, "}, nil},
		{[]string{"permessage-deflate"}, []offer{{Name: "permessage-deflate"}}},
		{[]string{"a, b"}, []offer{{Name: "a"}, {Name: "b"}}},
		{[]string{"a", "b, c"}, []offer{{Name: "a"}, {Name: "b"}, {Name: "c"}}},
		{[]string{", a ,, b ,"}, []offer{{Name: "a"}, {Name: "b"}}},
		{[]string{"a;x"}, []offer{{Name: "a", Params: []param{{Name: "x"}}}}},
		{[]string{"a ; x = 1 ;\ty"}, []offer{{Name: "a", Params: []param{{"x", "1"}, {Name: "y"}}}}},
		{[]string{`a; x="10"`}, []offer{{Name: "a", Params: []param{{"x", "10"}}}}},
		{[]string{`a; x="\1\0"`}, []offer{{Name: "a", Params: []param{{"x", "10"}}}}},
		{[]string{`a; x="1", a; x=2`}, []offer{{Name: "a", Params: []param{{"x", "1"}}}, {Name: "a", Params: []param{{"x", "2"}}}}},
		{[]string{"permessage-deflate; client_max_window_bits; server_max_window_bits=10, permessage-deflate"},
			[]offer{{Name: "permessage-deflate", Params: []param{{Name: "client_max_window_bits"}, {"server_max_window_bits", "10"}}}, {Name: "permessage-deflate"}}},
		{[]string{"x!#$%&'*+-.^_`|~09AZaz"}, []offer{{Name: "x!#$%&'*+-.^_`|~09AZaz"}}},
		{[]string{"a; x=x; x=y"}, []offer{{Name: "a", Params: []param{{"x", "x"}, {"x", "y"}}}}},
	}
	for _, tt := range tests {
		got, err := extensions.Parse(tt.in...)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Parse(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"a;", "a; ", "a;;x", "a; =1", "a; x=", "a; x= ", `a; x=""`, `a; x="1 2"`, `a; x="1`, `a; x="\`,
		`a; x="a;b"`, "a b", ";a", "a; x=1 2", "a@b", "a; x=@", "a; x y", "=a", "a, ;", `"a"`, "a; x=1=2",
		"a;\x00", "a\r\n", "é",
	} {
		got, err := extensions.Parse(in)
		if err == nil {
			t.Errorf("Parse(%q) = %#v, want an error", in, got)
			continue
		}
		if !errors.Is(err, extensions.ErrSyntax) {
			t.Errorf("Parse(%q): %v does not wrap ErrSyntax", in, err)
		}
	}
	// One bad value among several fails them all.
	if _, err := extensions.Parse("a", "b;"); err == nil {
		t.Error(`Parse("a", "b;") succeeded`)
	}
}

func TestFormat(t *testing.T) {
	offers := []offer{
		{Name: "permessage-deflate", Params: []param{{Name: "server_no_context_takeover"}, {"server_max_window_bits", "10"}}},
		{Name: "x-foo"},
	}
	const want = "permessage-deflate; server_no_context_takeover; server_max_window_bits=10, x-foo"
	if got := extensions.Format(offers); got != want {
		t.Fatalf("Format = %q, want %q", got, want)
	}
	if got := offers[1].String(); got != "x-foo" {
		t.Fatalf("String = %q", got)
	}
	if got := extensions.Format(nil); got != "" {
		t.Fatalf("Format(nil) = %q", got)
	}
	back, err := extensions.Parse(want)
	if err != nil || !reflect.DeepEqual(back, offers) {
		t.Fatalf("Parse(Format) = %#v, %v", back, err)
	}
}

func TestOfferGet(t *testing.T) {
	o := offer{Name: "a", Params: []param{{Name: "x"}, {"y", "1"}, {"y", "2"}}}
	for _, tt := range []struct {
		name, v string
		ok      bool
	}{{"x", "", true}, {"y", "1", true}, {"z", "", false}} {
		if v, ok := o.Get(tt.name); v != tt.v || ok != tt.ok {
			t.Errorf("Get(%q) = %q, %v; want %q, %v", tt.name, v, ok, tt.v, tt.ok)
		}
	}
}

// FuzzParse checks that Parse never panics and that what it accepts
// formats back to a header that parses to the same offers.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"permessage-deflate",
		"permessage-deflate; client_max_window_bits",
		`permessage-deflate; server_max_window_bits="10"; client_no_context_takeover, x-webkit-deflate-frame`,
		"a;;", `a; x="\"`, ", ,a , b;c=d",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		offers, err := extensions.Parse(s)
		if err != nil {
			if !errors.Is(err, extensions.ErrSyntax) {
				t.Fatalf("Parse(%q): %v does not wrap ErrSyntax", s, err)
			}
			return
		}
		for _, o := range offers {
			if o.Name == "" || strings.ContainsAny(o.Name, " ,;=\"") {
				t.Fatalf("Parse(%q): bad name %q", s, o.Name)
			}
		}
		h := extensions.Format(offers)
		back, err := extensions.Parse(h)
		if err != nil {
			t.Fatalf("Parse(%q) ok, but Parse(Format) of %q: %v", s, h, err)
		}
		if len(offers) == 0 && len(back) == 0 {
			return
		}
		if !reflect.DeepEqual(back, offers) {
			t.Fatalf("round trip of %q through %q: %#v != %#v", s, h, back, offers)
		}
	})
}
