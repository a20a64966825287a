package deflate_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/realtime-go/realtime/extensions"
	"github.com/realtime-go/realtime/extensions/deflate"
)

// TestParamErrorIsBounded checks that a response with a long hostile
// parameter name or value gets an error quoting only a prefix of it.
func TestParamErrorIsBounded(t *testing.T) {
	huge := strings.Repeat("\xff", 1<<20)
	for _, p := range []extensions.Param{
		{Name: huge},
		{Name: "server_max_window_bits", Value: huge},
		{Name: "client_max_window_bits", Value: huge},
		{Name: "server_no_context_takeover", Value: huge},
	} {
		_, err := deflate.New(nil).ClientActivate(extensions.Offer{Name: deflate.Name, Params: []extensions.Param{p}})
		if err == nil {
			t.Fatalf("ClientActivate accepted %.40q=%.40q", p.Name, p.Value)
		}
		if n := len(err.Error()); n > 512 {
			t.Errorf("error text is %d bytes: %.100q", n, err.Error())
		}
	}
}

// TestNewCopiesOptions changes every field of the Options New was given,
// reference fields included should any be added, and checks that the
// extension behaves as before: its offer and its answers to offers.
func TestNewCopiesOptions(t *testing.T) {
	opts := &deflate.Options{
		Level:                    1,
		Threshold:                64,
		NoContextTakeover:        true,
		MaxWindowBits:            10,
		RequestNoContextTakeover: true,
		RequestMaxWindowBits:     9,
	}
	e := deflate.New(opts)
	observe := func() string {
		var b strings.Builder
		b.WriteString(e.ClientOffer().String())
		for _, offer := range []string{
			"permessage-deflate",
			"permessage-deflate; client_max_window_bits",
			"permessage-deflate; server_max_window_bits=12; client_max_window_bits=11",
		} {
			offers, err := extensions.Parse(offer)
			if err != nil {
				t.Fatal(err)
			}
			resp, s, ok := e.ServerNegotiate(offers)
			b.WriteString(" | " + resp.String())
			if ok {
				s.Close()
			}
			if sh, ok := s.(extensions.SharedEncoder); ok {
				b.WriteString(" key " + sh.EncodingKey())
			}
		}
		return b.String()
	}
	before := observe()
	mutateAll(t, reflect.ValueOf(opts).Elem())
	if after := observe(); after != before {
		t.Errorf("changing the options after New changed the extension:\nbefore %s\nafter  %s", before, after)
	}
	// The changed options do configure another extension, so the check
	// above would see a field New shared.
	if e = deflate.New(opts); observe() == before {
		t.Errorf("the changed options configure the same extension: %s", before)
	}
}

// mutateAll changes every field of the struct v, following pointers,
// slices and maps into what they share.
func mutateAll(t *testing.T, v reflect.Value) {
	for i := range v.NumField() {
		f := v.Field(i)
		name := v.Type().Field(i).Name
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(!f.Bool())
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			f.SetInt(f.Int() + 3)
		case reflect.String:
			f.SetString(f.String() + "x")
		case reflect.Struct:
			mutateAll(t, f)
		default:
			// A new reference field (slice, map, pointer, func,
			// interface) needs New to copy it deeply and this test to
			// mutate what it refers to.
			t.Fatalf("Options.%s is a %s: teach New to copy it and this test to change it", name, f.Kind())
		}
	}
}
