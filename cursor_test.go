package realtime

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestCursorRoundTrip(t *testing.T) {
	var c cursor
	if c.encode() != "" {
		t.Fatalf("empty cursor encodes as %q, want \"\"", c.encode())
	}
	c.set("b", Position{Epoch: 7, Offset: 3})
	c.set("a", Position{Epoch: 1<<64 - 1, Offset: 1<<64 - 1})
	c.set("c", Position{Epoch: 9, Offset: 0})
	c.set("b", Position{Epoch: 7, Offset: 4}) // replaces
	if len(c) != 3 {
		t.Fatalf("cursor has %d entries, want 3", len(c))
	}
	d, ok := decodeCursor(c.encode())
	if !ok {
		t.Fatalf("decodeCursor(%q) refused its own encoding", c.encode())
	}
	for ch, want := range map[string]Position{"a": {1<<64 - 1, 1<<64 - 1}, "b": {7, 4}, "c": {9, 0}} {
		if got, ok := d.get(ch); !ok || got != want {
			t.Errorf("get(%q) = %v, %v; want %v", ch, got, ok, want)
		}
	}
	if _, ok := d.get("d"); ok {
		t.Error("get of a channel never set succeeded")
	}
	d.remove("b")
	d.remove("zz") // absent: no effect
	if _, ok := d.get("b"); ok || len(d) != 2 {
		t.Errorf("after remove: %d entries, b present %v", len(d), ok)
	}
	if _, ok := c.get("b"); !ok {
		t.Error("remove on a decoded copy changed the original")
	}
}

func TestCursorRefuses(t *testing.T) {
	enc := func(b ...byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	entry := func(h byte, epoch, off byte) []byte { return []byte{0, 0, 0, 0, 0, 0, 0, h, epoch, off} }
	join := func(parts ...[]byte) []byte {
		out := []byte{cursorVersion}
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	for name, id := range map[string]string{
		"not base64":      "!!",
		"padding":         enc(join(entry(1, 1, 1))...) + "=",
		"std alphabet":    "+/",
		"version 0":       enc(0),
		"version 2":       enc(append([]byte{2}, entry(1, 1, 1)...)...),
		"version only":    enc(cursorVersion),
		"short hash":      enc(cursorVersion, 1, 2, 3),
		"no offset":       enc(append([]byte{cursorVersion}, 0, 0, 0, 0, 0, 0, 0, 1, 5)...),
		"zero epoch":      enc(join(entry(1, 0, 1))...),
		"unsorted":        enc(join(entry(2, 1, 1), entry(1, 1, 1))...),
		"repeated":        enc(join(entry(1, 1, 1), entry(1, 1, 2))...),
		"varint too big":  enc(append([]byte{cursorVersion, 0, 0, 0, 0, 0, 0, 0, 1}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 1)...),
		"trailing bits":   "AX0000000000A01",
		"overlong varint": enc(append([]byte{cursorVersion, 0, 0, 0, 0, 0, 0, 0, 1}, 0x81, 0x00, 1)...),
		"too long":        strings.Repeat("A", maxCursorLen+1),
	} {
		if c, ok := decodeCursor(id); ok {
			t.Errorf("%s: decodeCursor(%.40q) = %v, accepted", name, id, c)
		}
	}
}

// FuzzCursor checks that whatever a client presents, decoding neither
// panics nor accepts an id it would not itself produce: an accepted id
// encodes back to the same text, so a cursor has one spelling.
func FuzzCursor(f *testing.F) {
	var c cursor
	c.set("room", Position{Epoch: 42, Offset: 7})
	f.Add(c.encode())
	c.set("news", Position{Epoch: 1, Offset: 0})
	f.Add(c.encode())
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, id string) {
		c, ok := decodeCursor(id)
		if !ok {
			return
		}
		if got := c.encode(); got != id {
			t.Fatalf("decodeCursor(%q) accepted, but it encodes as %q", id, got)
		}
	})
}
