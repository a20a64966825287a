package eventsource

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestAppendEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{"data only", Event{Data: "hello"}, "data: hello\n\n"},
		{"empty data still dispatches", Event{}, "data: \n\n"},
		{"all fields", Event{Type: "notice", ID: "42", Data: "x", Retry: 1500 * time.Millisecond},
			"event: notice\nid: 42\nretry: 1500\ndata: x\n\n"},
		{"LF splits", Event{Data: "a\nb"}, "data: a\ndata: b\n\n"},
		{"CRLF splits once", Event{Data: "a\r\nb"}, "data: a\ndata: b\n\n"},
		{"CR splits", Event{Data: "a\rb"}, "data: a\ndata: b\n\n"},
		{"LF CR is two breaks", Event{Data: "a\n\rb"}, "data: a\ndata: \ndata: b\n\n"},
		{"trailing break keeps an empty line", Event{Data: "a\n"}, "data: a\ndata: \n\n"},
		{"leading break", Event{Data: "\na"}, "data: \ndata: a\n\n"},
		{"only CRLF", Event{Data: "\r\n"}, "data: \ndata: \n\n"},
		{"leading space survives", Event{Data: " a", Type: " t", ID: " i"}, "event:  t\nid:  i\ndata:  a\n\n"},
		{"colons in values", Event{Data: "a:b", Type: "x:y", ID: "1:2"}, "event: x:y\nid: 1:2\ndata: a:b\n\n"},
		{"retry rounds down", Event{Retry: 1999 * time.Microsecond}, "retry: 1\ndata: \n\n"},
		{"zero retry omitted", Event{Retry: 0, Data: "d"}, "data: d\n\n"},
		{"unicode", Event{Data: "héllo\u2028wörld"}, "data: héllo\u2028wörld\n\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := AppendEvent([]byte("prefix|"), tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "prefix|"+tc.want {
				t.Errorf("got %q, want %q", got, "prefix|"+tc.want)
			}
			e, err := Encode(tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			if string(e.Bytes()) != tc.want || e.Len() != len(tc.want) || e.ID() != tc.ev.ID {
				t.Errorf("Encode = %q (id %q), want %q", e.Bytes(), e.ID(), tc.want)
			}
		})
	}
}

func TestAppendEventInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		ev    Event
		field string
	}{
		{"LF in type", Event{Type: "a\nb"}, "event"},
		{"CR in type", Event{Type: "a\r"}, "event"},
		{"LF in id", Event{ID: "1\n2"}, "id"},
		{"CR in id", Event{ID: "\r"}, "id"},
		{"NUL in id", Event{ID: "1\x002"}, "id"},
		{"negative retry", Event{Retry: -time.Second}, "retry"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dst := []byte("keep")
			got, err := AppendEvent(dst, tc.ev)
			if !errors.Is(err, ErrInvalidField) {
				t.Fatalf("err = %v, want ErrInvalidField", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Errorf("err = %#v, want a FieldError for %q", err, tc.field)
			}
			if string(got) != "keep" {
				t.Errorf("dst changed to %q", got)
			}
			if e, err := Encode(tc.ev); e != nil || !errors.Is(err, ErrInvalidField) {
				t.Errorf("Encode = %v, %v", e, err)
			}
		})
	}
	// NUL is allowed in data and type: it harms neither field.
	if _, err := AppendEvent(nil, Event{Type: "a\x00", Data: "\x00"}); err != nil {
		t.Errorf("NUL in data or type: %v", err)
	}
}

func TestAppendEventAllocs(t *testing.T) {
	ev := Event{Type: "update", ID: "12345", Data: strings.Repeat("x", 100)}
	buf := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() {
		buf, _ = AppendEvent(buf[:0], ev)
	})
	if allocs != 0 {
		t.Errorf("AppendEvent allocates %v times per event", allocs)
	}
}
