package eventsource

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// decodeAll decodes every event from r and returns them with the final
// error (io.EOF for a clean end) and the comments seen.
func decodeAll(r io.Reader, opts DecoderOptions) (events []Event, comments []string, d *Decoder, err error) {
	opts.OnComment = func(c string) { comments = append(comments, c) }
	d = NewDecoder(r, &opts)
	for {
		ev, err := d.Next()
		if err != nil {
			return events, comments, d, err
		}
		events = append(events, ev)
	}
}

// chunkings returns readers that deliver s in different pieces: whole,
// a byte at a time, halves, with the error on the last data, and split
// in two at every position.
func chunkings(s string) map[string]func() io.Reader {
	m := map[string]func() io.Reader{
		"whole":    func() io.Reader { return strings.NewReader(s) },
		"onebyte":  func() io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
		"half":     func() io.Reader { return iotest.HalfReader(strings.NewReader(s)) },
		"dataerr":  func() io.Reader { return iotest.DataErrReader(strings.NewReader(s)) },
		"timeout0": func() io.Reader { return &emptyReads{r: strings.NewReader(s)} },
	}
	for i := 1; i < len(s) && len(s) < 64; i++ {
		m["split"+string(rune('0'+i%10))+"@"+itoa(i)] = func() io.Reader {
			return io.MultiReader(strings.NewReader(s[:i]), strings.NewReader(s[i:]))
		}
	}
	return m
}

func itoa(i int) string { return string(appendInt(nil, i)) }

func appendInt(b []byte, i int) []byte {
	if i >= 10 {
		b = appendInt(b, i/10)
	}
	return append(b, byte('0'+i%10))
}

// emptyReads returns (0, nil) before every real read, which io.Reader
// allows and a decoder must tolerate.
type emptyReads struct {
	r    io.Reader
	flip bool
}

func (e *emptyReads) Read(p []byte) (int, error) {
	e.flip = !e.flip
	if e.flip {
		return 0, nil
	}
	return e.r.Read(p)
}

func msg(data string) Event { return Event{Type: "message", Data: data} }

// One case per WHATWG parsing or interpretation rule.
var decodeTests = []struct {
	name     string
	in       string
	opts     DecoderOptions
	want     []Event
	lastID   string
	retry    time.Duration // -1: none
	comments []string
	err      error // nil means io.EOF
}{
	{name: "simple", in: "data: hello\n\n", want: []Event{msg("hello")}, retry: -1},
	{name: "BOM stripped", in: "\xEF\xBB\xBFdata: a\n\n", want: []Event{msg("a")}, retry: -1},
	{name: "only one BOM stripped", in: "\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\ndata: b\n\n",
		// The second BOM is part of the first field's name, so that
		// field is unknown and ignored.
		want: []Event{msg("b")}, retry: -1},
	{name: "BOM later is not stripped", in: "data: a\n\n\xEF\xBB\xBFdata: b\n\ndata: c\n\n", want: []Event{msg("a"), msg("c")}, retry: -1},
	{name: "partial BOM is data", in: "\xEF\xBBdata: a\n\ndata: b\n\n", want: []Event{msg("b")}, retry: -1},
	{name: "short stream", in: "\xEF", retry: -1},
	{name: "empty stream", in: "", retry: -1},
	{name: "LF", in: "data: a\ndata: b\n\n", want: []Event{msg("a\nb")}, retry: -1},
	{name: "CRLF", in: "data: a\r\ndata: b\r\n\r\n", want: []Event{msg("a\nb")}, retry: -1},
	{name: "CR", in: "data: a\rdata: b\r\r", want: []Event{msg("a\nb")}, retry: -1},
	{name: "mixed", in: "data: a\rdata: b\ndata: c\r\n\n", want: []Event{msg("a\nb\nc")}, retry: -1},
	{name: "LF CR is a blank line", in: "data: a\n\rdata: b\n\n", want: []Event{msg("a"), msg("b")}, retry: -1},
	{name: "CR CR is a blank line", in: "data: a\r\rdata: b\n\n", want: []Event{msg("a"), msg("b")}, retry: -1},
	{name: "CRLF CRLF", in: "data: a\r\n\r\ndata: b\r\n\r\n", want: []Event{msg("a"), msg("b")}, retry: -1},
	{name: "CRLF CR", in: "data: a\r\n\rdata: b\r\n\r\n", want: []Event{msg("a"), msg("b")}, retry: -1},
	{name: "CR LF LF", in: "data: a\r\n\n", want: []Event{msg("a")}, retry: -1},
	{name: "comment", in: ": hi\ndata: a\n:\n\n", want: []Event{msg("a")}, comments: []string{" hi", ""}, retry: -1},
	{name: "comment only stream", in: ":\n\n:\n\n", comments: []string{"", ""}, retry: -1},
	{name: "first colon splits", in: "data:a:b: c\n\n", want: []Event{msg("a:b: c")}, retry: -1},
	{name: "one space removed", in: "data:  two\n\n", want: []Event{msg(" two")}, retry: -1},
	{name: "no space", in: "data:x\n\n", want: []Event{msg("x")}, retry: -1},
	{name: "tab kept", in: "data:\tx\n\n", want: []Event{msg("\tx")}, retry: -1},
	{name: "no colon: empty value", in: "data\ndata\ndata: x\n\n", want: []Event{msg("\n\nx")}, retry: -1},
	{name: "data alone dispatches empty", in: "data\n\n", want: []Event{msg("")}, retry: -1},
	{name: "data colon dispatches empty", in: "data:\n\n", want: []Event{msg("")}, retry: -1},
	{name: "two empty data lines", in: "data\ndata\n\n", want: []Event{msg("\n")}, retry: -1},
	{name: "one trailing LF dropped", in: "data: a\ndata:\n\n", want: []Event{msg("a\n")}, retry: -1},
	{name: "field names case-sensitive", in: "Data: a\nDATA: b\ndata: c\n\n", want: []Event{msg("c")}, retry: -1},
	{name: "field name with space is unknown", in: "data : a\n data: b\ndata: c\n\n", want: []Event{msg("c")}, retry: -1},
	{name: "unknown field ignored", in: "foo: bar\ndata: a\nbaz\n\n", want: []Event{msg("a")}, retry: -1},
	{name: "event type", in: "event: add\ndata: 1\n\ndata: 2\n\n",
		want: []Event{{Type: "add", Data: "1"}, msg("2")}, retry: -1},
	{name: "empty event type is message", in: "event: x\nevent:\ndata: 1\n\n", want: []Event{msg("1")}, retry: -1},
	{name: "last event type wins", in: "event: a\nevent: b\ndata: 1\n\n", want: []Event{{Type: "b", Data: "1"}}, retry: -1},
	{name: "type without data is dropped", in: "event: a\n\ndata: 1\n\n", want: []Event{msg("1")}, retry: -1},
	{name: "id", in: "id: 1\ndata: a\n\n", want: []Event{{Type: "message", ID: "1", Data: "a"}}, lastID: "1", retry: -1},
	{name: "id persists", in: "id: 1\ndata: a\n\ndata: b\n\n",
		want: []Event{{Type: "message", ID: "1", Data: "a"}, {Type: "message", ID: "1", Data: "b"}}, lastID: "1", retry: -1},
	{name: "empty id resets", in: "id: 1\ndata: a\n\nid\ndata: b\n\n",
		want: []Event{{Type: "message", ID: "1", Data: "a"}, msg("b")}, lastID: "", retry: -1},
	{name: "empty id with colon resets", in: "id: 1\n\nid:\ndata: b\n\n", want: []Event{msg("b")}, retry: -1},
	{name: "id with NUL ignored", in: "id: 1\n\nid: 2\x003\ndata: a\n\n",
		want: []Event{{Type: "message", ID: "1", Data: "a"}}, lastID: "1", retry: -1},
	{name: "id after data applies", in: "data: a\nid: 7\n\n", want: []Event{{Type: "message", ID: "7", Data: "a"}}, lastID: "7", retry: -1},
	{name: "id set without dispatch", in: "id: 9\n\n", lastID: "9", retry: -1},
	{name: "id pending at EOF is lost", in: "id: 1\n\nid: 2\n", lastID: "1", retry: -1},
	{name: "id opaque", in: "id:  spaced:id\n\n", lastID: " spaced:id", retry: -1},
	{name: "initial last event id persists", in: "data: a\n\n", opts: DecoderOptions{LastEventID: "5"},
		want: []Event{{Type: "message", ID: "5", Data: "a"}}, lastID: "5", retry: -1},
	{name: "initial last event id survives blank line", in: "\n\n", opts: DecoderOptions{LastEventID: "5"}, lastID: "5", retry: -1},
	{name: "retry", in: "retry: 1500\n\n", retry: 1500 * time.Millisecond},
	{name: "retry on event", in: "retry: 10\ndata: a\n\ndata: b\n\n",
		want: []Event{{Type: "message", Data: "a", Retry: 10 * time.Millisecond}, msg("b")}, retry: 10 * time.Millisecond},
	{name: "retry zero", in: "retry: 0\n\n", retry: 0},
	{name: "retry leading zeros", in: "retry: 0011\n\n", retry: 11 * time.Millisecond},
	{name: "retry bogus ignored", in: "retry: 5\n\nretry: 1x\nretry: -1\nretry: +2\nretry: 1.5\nretry:  3\nretry: 3 \nretry: 0x10\nretry:\nretry\n\n",
		retry: 5 * time.Millisecond},
	{name: "retry huge saturates", in: "retry: 99999999999999999999999\n\n", retry: time.Duration(1<<63 - 1)},
	{name: "pending event discarded at EOF", in: "data: a\n\ndata: b\n", want: []Event{msg("a")}, retry: -1},
	{name: "pending line discarded at EOF", in: "data: a\n\ndata: b", want: []Event{msg("a")}, retry: -1},
	{name: "pending CR-ended data discarded", in: "data: a\r", retry: -1},
	{name: "blank line ends with CR at EOF", in: "data: a\r\r", want: []Event{msg("a")}, retry: -1},
	{name: "NUL in data kept", in: "data: a\x00b\n\n", want: []Event{msg("a\x00b")}, retry: -1},
	{name: "invalid UTF-8 replaced", in: "data: a\xffb\xE2\x82c\xED\xA0\x80\n\n",
		want: []Event{msg("a\uFFFDb\uFFFDc\uFFFD\uFFFD\uFFFD")}, retry: -1},
	{name: "truncated sequence before LF", in: "data: \xF0\x9F\x98\nevent: \xC3\n\n",
		want: []Event{{Type: "\uFFFD", Data: "\uFFFD"}}, retry: -1},
	{name: "valid multibyte", in: "data: 😀é\n\n", want: []Event{msg("😀é")}, retry: -1},
	{name: "U+FFFD itself", in: "data: \uFFFD\n\n", want: []Event{msg("\uFFFD")}, retry: -1},
	{name: "too large line", in: "data: 0123456789\n\n", opts: DecoderOptions{MaxEventSize: 10}, retry: -1, err: ErrEventTooLarge},
	{name: "too large over lines", in: "data: 0123\ndata: 0123\ndata: 0123\n\n", opts: DecoderOptions{MaxEventSize: 12}, retry: -1, err: ErrEventTooLarge},
	{name: "limit resets per event", in: "data: 0123\n\ndata: 0123\n\ndata: 0123\n\n", opts: DecoderOptions{MaxEventSize: 12},
		want: []Event{msg("0123"), msg("0123"), msg("0123")}, retry: -1},
	{name: "events before the large one arrive", in: "data: a\n\n:" + strings.Repeat("c", 100), opts: DecoderOptions{MaxEventSize: 50},
		want: []Event{msg("a")}, retry: -1, err: ErrEventTooLarge},
}

func TestDecoderRules(t *testing.T) {
	t.Parallel()
	for _, tc := range decodeTests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for how, mk := range chunkings(tc.in) {
				events, comments, d, err := decodeAll(mk(), tc.opts)
				wantErr := tc.err
				if wantErr == nil {
					wantErr = io.EOF
				}
				if !errors.Is(err, wantErr) {
					t.Errorf("%s: err = %v, want %v", how, err, wantErr)
				}
				if !reflect.DeepEqual(events, tc.want) {
					t.Errorf("%s: events\n got %q\nwant %q", how, events, tc.want)
				}
				if tc.err == nil && d.LastEventID() != tc.lastID {
					t.Errorf("%s: LastEventID = %q, want %q", how, d.LastEventID(), tc.lastID)
				}
				retry, ok := d.Retry()
				if tc.retry < 0 && ok || tc.retry >= 0 && (!ok || retry != tc.retry) {
					t.Errorf("%s: Retry = %v, %v; want %v", how, retry, ok, tc.retry)
				}
				if !reflect.DeepEqual(comments, tc.comments) {
					t.Errorf("%s: comments = %q, want %q", how, comments, tc.comments)
				}
			}
		})
	}
}

func TestDecoderCRLFAcrossReads(t *testing.T) {
	t.Parallel()
	// A CR ending one read and an LF starting the next are one line end:
	// otherwise the LF would be a blank line, dispatching "a" alone.
	r := io.MultiReader(strings.NewReader("data: a\r"), strings.NewReader("\ndata: b\r"), strings.NewReader("\n\r\n"))
	events, _, _, err := decodeAll(r, DecoderOptions{})
	if err != io.EOF || !reflect.DeepEqual(events, []Event{msg("a\nb")}) {
		t.Errorf("got %q, %v", events, err)
	}
}

func TestDecoderDoesNotWaitAfterCR(t *testing.T) {
	t.Parallel()
	// The event ends at the CR; the decoder must return it without
	// waiting to see whether an LF follows.
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("data: a\r\r"))
	d := NewDecoder(pr, nil)
	ev, err := d.Next()
	if err != nil || ev != msg("a") {
		t.Fatalf("got %q, %v", ev, err)
	}
	go pw.Write([]byte("\ndata: b\n\n"))
	ev, err = d.Next()
	if err != nil || ev != msg("b") {
		t.Fatalf("got %q, %v", ev, err)
	}
}

func TestDecoderErrorsAreFinal(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	d := NewDecoder(io.MultiReader(strings.NewReader("data: a\n\ndata: b\n"), iotest.ErrReader(boom)), nil)
	if ev, err := d.Next(); err != nil || ev.Data != "a" {
		t.Fatalf("first: %q, %v", ev, err)
	}
	for range 2 {
		if _, err := d.Next(); err != boom {
			t.Fatalf("err = %v, want boom", err)
		}
	}
	d = NewDecoder(strings.NewReader("data: "+strings.Repeat("x", 100)), &DecoderOptions{MaxEventSize: 10})
	for range 2 {
		if _, err := d.Next(); !errors.Is(err, ErrEventTooLarge) {
			t.Fatalf("err = %v, want ErrEventTooLarge", err)
		}
	}
}

func TestDecoderNoProgress(t *testing.T) {
	t.Parallel()
	d := NewDecoder(iotest.ErrReader(nil), nil) // always (0, nil)
	if _, err := d.Next(); err != io.ErrNoProgress {
		t.Errorf("err = %v, want io.ErrNoProgress", err)
	}
}

// endless is a reader of one line that never ends.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	e.n += int64(len(p))
	return len(p), nil
}

func TestDecoderEndlessLineBoundedMemory(t *testing.T) {
	t.Parallel()
	r := &endless{}
	d := NewDecoder(io.MultiReader(strings.NewReader("data: "), r), &DecoderOptions{MaxEventSize: 1 << 16})
	_, err := d.Next()
	if !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("err = %v", err)
	}
	if r.n > 1<<16+decoderBufferSize {
		t.Errorf("read %d bytes before failing", r.n)
	}
	if c := cap(d.line); c > 2*(1<<16+decoderBufferSize) {
		t.Errorf("line buffer grew to %d", c)
	}
}

func TestDecoderEndlessDataBoundedMemory(t *testing.T) {
	t.Parallel()
	line := []byte("data: " + strings.Repeat("y", 1000) + "\n")
	r := &repeatReader{p: line}
	d := NewDecoder(r, &DecoderOptions{MaxEventSize: 1 << 16})
	if _, err := d.Next(); !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("err = %v", err)
	}
	if r.n > 1<<16+decoderBufferSize+len(line) {
		t.Errorf("read %d bytes before failing", r.n)
	}
}

type repeatReader struct {
	p   []byte
	off int
	n   int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.p[r.off:])
		n += c
		r.off = (r.off + c) % len(r.p)
	}
	r.n += n
	return n, nil
}

func TestDecoderLargeEventWithinLimit(t *testing.T) {
	t.Parallel()
	data := strings.Repeat("z", 200<<10)
	in := "data: " + data + "\ndata: " + data + "\n\n"
	events, _, _, err := decodeAll(iotest.HalfReader(strings.NewReader(in)), DecoderOptions{})
	if err != io.EOF || len(events) != 1 || events[0].Data != data+"\n"+data {
		t.Errorf("got %d events, err %v", len(events), err)
	}
}

func TestDecoderReadsEncoder(t *testing.T) {
	t.Parallel()
	var stream bytes.Buffer
	in := []Event{
		{Type: "a", ID: "1", Data: "x\ny", Retry: time.Second},
		{Data: ""},
		{ID: "2", Data: "\r\n z \r"},
	}
	for _, ev := range in {
		b, err := AppendEvent(nil, ev)
		if err != nil {
			t.Fatal(err)
		}
		stream.Write(b)
	}
	stream.Write(keepAliveComment)
	events, comments, d, err := decodeAll(&stream, DecoderOptions{})
	want := []Event{
		{Type: "a", ID: "1", Data: "x\ny", Retry: time.Second},
		{Type: "message", ID: "1", Data: ""},
		{Type: "message", ID: "2", Data: "\n z \n"},
	}
	if err != io.EOF || !reflect.DeepEqual(events, want) || len(comments) != 1 || d.LastEventID() != "2" {
		t.Errorf("got %q %q %v", events, comments, err)
	}
}

func TestDecoderAllocs(t *testing.T) {
	ev, _ := AppendEvent(nil, Event{Type: "update", ID: "7", Data: strings.Repeat("d", 100)})
	r := &repeatReader{p: ev}
	d := NewDecoder(r, nil)
	d.Next()
	allocs := testing.AllocsPerRun(1000, func() { d.Next() })
	if allocs > 1 { // the Data string
		t.Errorf("Next allocates %v times per event", allocs)
	}
}

// A negative MaxEventSize removes the bound, as everywhere in the module;
// it used to mean the default.
func TestDecoderNegativeMaxEventSize(t *testing.T) {
	big := strings.Repeat("x", DefaultMaxEventSize+10)
	d := NewDecoder(strings.NewReader("data: "+big+"\n\n"), &DecoderOptions{MaxEventSize: -1})
	ev, err := d.Next()
	if err != nil || len(ev.Data) != len(big) {
		t.Fatalf("got %d bytes, %v", len(ev.Data), err)
	}
}
