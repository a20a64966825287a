package eventsource

import (
	"bytes"
	"errors"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// chunkReader delivers p in pieces whose sizes come from cuts: a 0
// gives an empty read (once in a row), n gives n bytes. Past the end of
// cuts it delivers the rest at once.
type chunkReader struct {
	p        []byte
	cuts     []byte
	wasEmpty bool
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.p) == 0 {
		return 0, io.EOF
	}
	n := len(c.p)
	if len(c.cuts) > 0 {
		n = int(c.cuts[0]) % 17
		c.cuts = c.cuts[1:]
		if n == 0 {
			if !c.wasEmpty {
				c.wasEmpty = true
				return 0, nil
			}
			n = 1
		}
	}
	c.wasEmpty = false
	n = min(n, len(c.p), len(p))
	copy(p, c.p[:n])
	c.p = c.p[n:]
	return n, nil
}

// afterEachCR splits its input right after every CR, so a CRLF always
// straddles two reads.
type afterEachCR struct{ p []byte }

func (a *afterEachCR) Read(p []byte) (int, error) {
	if len(a.p) == 0 {
		return 0, io.EOF
	}
	n := len(a.p)
	if i := bytes.IndexByte(a.p, '\r'); i >= 0 {
		n = i + 1
	}
	n = copy(p, a.p[:n])
	a.p = a.p[n:]
	return n, nil
}

// refResult is what the reference parser finds in a whole stream.
type refResult struct {
	events   []Event
	lastID   string
	retry    time.Duration
	retrySet bool
	tooLarge bool
}

// refDecode is a deliberately plain reading of the WHATWG rules over the
// whole input at once, to check the Decoder's incremental reading
// against. It shares no code with the Decoder; the size limit follows
// the Decoder's documented rule (data so far plus the current line).
func refDecode(in []byte, max int, initialID string) refResult {
	in = bytes.TrimPrefix(in, []byte("\xEF\xBB\xBF"))
	var lines [][]byte
	start := 0
	for i := 0; i < len(in); i++ {
		if in[i] != '\r' && in[i] != '\n' {
			continue
		}
		lines = append(lines, in[start:i])
		if in[i] == '\r' && i+1 < len(in) && in[i+1] == '\n' {
			i++
		}
		start = i + 1
	}
	tail := in[start:]

	res := refResult{lastID: initialID}
	var data, typ string
	idBuf := initialID
	var evRetry time.Duration
	evRetrySet := false
	for _, line := range lines {
		if len(line)+len(data) > max {
			res.tooLarge = true
			return res
		}
		if len(line) == 0 {
			res.lastID = idBuf
			if data != "" {
				ev := Event{Type: "message", ID: idBuf, Data: data[:len(data)-1]}
				if typ != "" {
					ev.Type = typ
				}
				if evRetrySet {
					ev.Retry = evRetry
				}
				res.events = append(res.events, ev)
			}
			data, typ, evRetry, evRetrySet = "", "", 0, false
			continue
		}
		if line[0] == ':' {
			continue
		}
		name, value, found := strings.Cut(string(line), ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		value = whatwgUTF8(value)
		switch name {
		case "data":
			data += value + "\n"
		case "event":
			typ = value
		case "id":
			if !strings.Contains(value, "\x00") {
				idBuf = value
			}
		case "retry":
			if value != "" && strings.Trim(value, "0123456789") == "" {
				// Digits only, so the one possible error is a range error.
				ms, err := strconv.ParseInt(value, 10, 64)
				d := time.Duration(math.MaxInt64)
				if err == nil && ms <= math.MaxInt64/int64(time.Millisecond) {
					d = time.Duration(ms) * time.Millisecond
				}
				res.retry, res.retrySet = d, true
				evRetry, evRetrySet = d, true
			}
		}
	}
	if len(tail) > 0 && len(tail)+len(data) > max {
		res.tooLarge = true
	}
	return res
}

// whatwgUTF8 decodes s with the WHATWG Encoding Standard's UTF-8 decoder
// state machine, written out step by step.
func whatwgUTF8(s string) string {
	var out []rune
	var cp rune
	needed, seen := 0, 0
	lower, upper := byte(0x80), byte(0xBF)
	for i := 0; i < len(s); i++ {
		b := s[i]
		if needed == 0 {
			switch {
			case b <= 0x7F:
				out = append(out, rune(b))
			case b >= 0xC2 && b <= 0xDF:
				needed, cp = 1, rune(b&0x1F)
			case b >= 0xE0 && b <= 0xEF:
				if b == 0xE0 {
					lower = 0xA0
				}
				if b == 0xED {
					upper = 0x9F
				}
				needed, cp = 2, rune(b&0xF)
			case b >= 0xF0 && b <= 0xF4:
				if b == 0xF0 {
					lower = 0x90
				}
				if b == 0xF4 {
					upper = 0x8F
				}
				needed, cp = 3, rune(b&0x7)
			default:
				out = append(out, utf8.RuneError)
			}
			continue
		}
		if b < lower || b > upper {
			cp, needed, seen, lower, upper = 0, 0, 0, 0x80, 0xBF
			out = append(out, utf8.RuneError)
			i-- // the byte is read again
			continue
		}
		lower, upper = 0x80, 0xBF
		cp = cp<<6 | rune(b&0x3F)
		seen++
		if seen == needed {
			out = append(out, cp)
			cp, needed, seen = 0, 0, 0
		}
	}
	if needed != 0 {
		out = append(out, utf8.RuneError)
	}
	return string(out)
}

func FuzzDecode(f *testing.F) {
	for _, tc := range decodeTests {
		f.Add([]byte(tc.in), []byte{1, 0, 5, 3}, uint16(0))
	}
	f.Add([]byte("data: a\r\n\r\n"), []byte{8, 1, 0, 1}, uint16(3))
	f.Add([]byte("\xEF\xBB\xBFid: 1\rdata\r\r"), []byte{1, 1, 1, 1}, uint16(20))
	f.Fuzz(func(t *testing.T, in, cuts []byte, limit uint16) {
		max := int(limit % 512)
		if max == 0 {
			max = DefaultMaxEventSize
		}
		want := refDecode(in, max, "")
		d := NewDecoder(&chunkReader{p: in, cuts: cuts}, &DecoderOptions{MaxEventSize: int64(max), OnComment: func(string) {}})
		var got []Event
		var err error
		for {
			var ev Event
			ev, err = d.Next()
			if err != nil {
				break
			}
			got = append(got, ev)
			if len(ev.Data) > 3*max {
				t.Fatalf("event of %d bytes passed a limit of %d", len(ev.Data), max)
			}
		}
		if c := cap(d.line); c > 2*(max+decoderBufferSize)+64 {
			t.Fatalf("line buffer cap %d for limit %d", c, max)
		}
		if want.tooLarge != errors.Is(err, ErrEventTooLarge) || !want.tooLarge && err != io.EOF {
			t.Fatalf("err = %v, reference too large: %v", err, want.tooLarge)
		}
		if !reflect.DeepEqual(got, want.events) {
			t.Fatalf("events\n got %q\nwant %q", got, want.events)
		}
		if want.tooLarge {
			return
		}
		if d.LastEventID() != want.lastID {
			t.Fatalf("LastEventID = %q, want %q", d.LastEventID(), want.lastID)
		}
		if r, ok := d.Retry(); ok != want.retrySet || r != want.retry {
			t.Fatalf("Retry = %v %v, want %v %v", r, ok, want.retry, want.retrySet)
		}
	})
}

func FuzzRoundTrip(f *testing.F) {
	f.Add("update", "1", "hello\nworld", uint32(1500), uint8(0), []byte{3, 1, 4, 1, 5}, "second")
	f.Add("", "", "", uint32(0), uint8(1), []byte{}, "")
	f.Add(" spaced", " id", " a\r\nb\rc\n", uint32(0), uint8(1), []byte{7, 0, 1}, "\r\n")
	f.Add("é", "ü:1", "😀", uint32(1), uint8(2), []byte{2, 2, 2}, "x")
	f.Add("a\nb", "1", "", uint32(0), uint8(0), []byte{}, "")
	f.Add("a", "1\x002", "", uint32(0), uint8(0), []byte{}, "")
	f.Fuzz(func(t *testing.T, typ, id, data string, retryMS uint32, lineEnd uint8, cuts []byte, data2 string) {
		for _, s := range []string{typ, id, data, data2} {
			if !utf8.ValidString(s) {
				t.Skip("SSE carries UTF-8; invalid bytes arrive as U+FFFD")
			}
		}
		ev := Event{Type: typ, ID: id, Data: data, Retry: time.Duration(retryMS) * time.Millisecond}
		stream, err := AppendEvent(nil, ev)
		invalid := strings.ContainsAny(typ, "\r\n") || strings.ContainsAny(id, "\r\n\x00")
		if invalid != (err != nil) {
			t.Fatalf("AppendEvent(%q) err = %v", ev, err)
		}
		if invalid {
			if !errors.Is(err, ErrInvalidField) || len(stream) != 0 {
				t.Fatalf("invalid event: %q, %v", stream, err)
			}
			return
		}
		stream = appendComment(stream, "")
		stream, err = AppendEvent(stream, Event{Data: data2})
		if err != nil {
			t.Fatal(err)
		}
		if bytes.IndexByte(stream, '\r') >= 0 {
			t.Fatalf("encoder wrote a CR: %q", stream)
		}
		switch lineEnd % 3 {
		case 1:
			stream = bytes.ReplaceAll(stream, []byte("\n"), []byte("\r\n"))
		case 2:
			stream = bytes.ReplaceAll(stream, []byte("\n"), []byte("\r"))
		}

		wantType := typ
		if wantType == "" {
			wantType = "message"
		}
		want := []Event{
			{Type: wantType, ID: id, Data: normalizeBreaks(data), Retry: ev.Retry},
			{Type: "message", ID: id, Data: normalizeBreaks(data2)},
		}
		for name, r := range map[string]io.Reader{
			"chunked":  &chunkReader{p: stream, cuts: cuts},
			"split CR": &afterEachCR{p: stream},
		} {
			var got []Event
			comments := 0
			d := NewDecoder(r, &DecoderOptions{OnComment: func(string) { comments++ }})
			for {
				ev, err := d.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				got = append(got, ev)
			}
			if !reflect.DeepEqual(got, want) || comments != 1 || d.LastEventID() != id {
				t.Fatalf("%s: stream %q\n got %q (%d comments)\nwant %q", name, stream, got, comments, want)
			}
		}
	})
}

// normalizeBreaks turns CRLF and CR into LF, as sending data does.
func normalizeBreaks(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}
