package eventsource

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"time"
)

// DefaultMaxEventSize is the DecoderOptions.MaxEventSize used when it is
// zero. Events of several hundred KiB are common in practice (LLM
// streams, JSON snapshots); 64 KiB defaults elsewhere have bitten many.
const DefaultMaxEventSize = 1 << 20

// DecoderOptions configures a Decoder. A nil *DecoderOptions means the
// zero value; NewDecoder copies it.
type DecoderOptions struct {
	// MaxEventSize bounds the memory one event may take: its data so far
	// plus the line being read. A stream that exceeds it, be it with many
	// data lines or with one line that never ends, fails with an error
	// wrapping ErrEventTooLarge. In bytes; 0 means DefaultMaxEventSize,
	// a negative value removes the bound.
	MaxEventSize int64

	// LastEventID is the id the stream starts from: the one sent in the
	// Last-Event-ID header of this request. Browsers keep their last
	// event id across reconnections, so events that carry no id report
	// it, and a blank line does not forget it.
	LastEventID string

	// OnComment, when set, is called during Next with the text of each
	// comment line, after the colon. Servers send comments to keep idle
	// connections alive, so this is where an idle watchdog sees them.
	OnComment func(text string)
}

// Decoder reads events from a text/event-stream body, following the
// WHATWG HTML rules for parsing and interpreting event streams exactly:
//
//   - a leading UTF-8 byte order mark is skipped, once;
//   - lines end with CRLF, LF or CR, also when the CR and LF of a CRLF
//     arrive in different reads;
//   - a line starting with a colon is a comment;
//   - a field's name runs to the first colon, and one space after the
//     colon is dropped from its value; a line with no colon is a field
//     with an empty value; unknown fields are ignored;
//   - data lines are joined with LF; "event" sets the type, which is
//     "message" when unset or empty; "id" sets the last event id unless
//     it contains NUL, and an empty id clears it; "retry" sets the
//     reconnection time (milliseconds) when it is all ASCII digits;
//   - a blank line dispatches the event, unless it has no data, and
//     records the last event id either way;
//   - an event still being read at the end of the stream is discarded;
//   - invalid UTF-8 becomes U+FFFD, as a browser's decoder makes it.
//
// A Decoder is not safe for concurrent use.
type Decoder struct {
	r         io.Reader
	max       int64
	onComment func(string)

	buf        []byte // read buffer; unread bytes are buf[start:end]
	start, end int
	readErr    error  // from r, returned once buf is drained
	line       []byte // a line that spans reads
	bomChecked bool
	skipLF     bool // the last line ended with CR: an LF next is part of it
	err        error

	// Buffers of the event being read.
	data       []byte
	typ        []byte
	idBuf      string
	evRetry    time.Duration
	evRetrySet bool

	lastID   string
	retry    time.Duration
	retrySet bool
	lastType string // the previous type, reused to spare an allocation
}

const decoderBufferSize = 8 << 10

// NewDecoder returns a Decoder reading from r. The Decoder buffers its
// reads, so it may read past the last event it returns.
func NewDecoder(r io.Reader, opts *DecoderOptions) *Decoder {
	var o DecoderOptions
	if opts != nil {
		o = *opts
	}
	switch {
	case o.MaxEventSize == 0:
		o.MaxEventSize = DefaultMaxEventSize
	case o.MaxEventSize < 0:
		o.MaxEventSize = math.MaxInt64
	}
	return &Decoder{
		r:         r,
		max:       o.MaxEventSize,
		onComment: o.OnComment,
		buf:       make([]byte, decoderBufferSize),
		idBuf:     o.LastEventID,
		lastID:    o.LastEventID,
	}
}

// Next returns the next event. At the end of the stream it returns
// io.EOF, discarding an event whose blank line never came. Other errors
// come from the reader, or wrap ErrEventTooLarge. Errors are final:
// every later call returns the same one.
func (d *Decoder) Next() (Event, error) {
	if d.err != nil {
		return Event{}, d.err
	}
	for {
		line, err := d.readLine()
		if err != nil {
			d.err = err
			d.data, d.typ, d.line = nil, nil, nil
			d.evRetrySet = false
			return Event{}, err
		}
		if len(line) == 0 {
			if ev, ok := d.dispatch(); ok {
				return ev, nil
			}
			continue
		}
		d.processLine(line)
	}
}

// LastEventID returns the stream's last event id: the id a client should
// send in Last-Event-ID when it reconnects. It changes at each blank
// line, whether or not an event is dispatched.
func (d *Decoder) LastEventID() string { return d.lastID }

// Retry returns the reconnection time the stream asked for most
// recently, and false if it has not asked.
func (d *Decoder) Retry() (time.Duration, bool) { return d.retry, d.retrySet }

func (d *Decoder) dispatch() (Event, bool) {
	d.lastID = d.idBuf
	if len(d.data) == 0 {
		d.typ = d.typ[:0]
		d.evRetry, d.evRetrySet = 0, false
		return Event{}, false
	}
	ev := Event{
		Type: "message",
		ID:   d.lastID,
		Data: string(d.data[:len(d.data)-1]),
	}
	if len(d.typ) > 0 {
		if string(d.typ) != d.lastType {
			d.lastType = string(d.typ)
		}
		ev.Type = d.lastType
	}
	if d.evRetrySet {
		ev.Retry = d.evRetry
	}
	d.data = d.data[:0]
	d.typ = d.typ[:0]
	d.evRetry, d.evRetrySet = 0, false
	return ev, true
}

func (d *Decoder) processLine(line []byte) {
	if line[0] == ':' {
		if d.onComment != nil {
			d.onComment(string(appendText(nil, line[1:])))
		}
		return
	}
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(name) {
	case "data":
		d.data = appendText(d.data, value)
		d.data = append(d.data, '\n')
	case "event":
		d.typ = appendText(d.typ[:0], value)
	case "id":
		if bytes.IndexByte(value, 0) >= 0 {
			return
		}
		if string(value) != d.idBuf {
			d.idBuf = string(appendText(nil, value))
		}
	case "retry":
		if ms, ok := parseDigits(value); ok {
			d.retry, d.retrySet = ms, true
			d.evRetry, d.evRetrySet = ms, true
		}
	}
}

// parseDigits parses a non-empty run of ASCII digits as milliseconds,
// saturating rather than overflowing. A sign, space or any other byte
// makes the field invalid.
func parseDigits(p []byte) (time.Duration, bool) {
	if len(p) == 0 {
		return 0, false
	}
	const maxMS = math.MaxInt64 / int64(time.Millisecond)
	var ms int64
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, false
		}
		if ms <= maxMS {
			ms = ms*10 + int64(c-'0')
		}
	}
	if ms > maxMS {
		return time.Duration(math.MaxInt64), true
	}
	return time.Duration(ms) * time.Millisecond, true
}

// readLine returns the next line without its terminator. The slice is
// valid until the next call.
func (d *Decoder) readLine() ([]byte, error) {
	d.line = d.line[:0]
	partial := false
	for {
		if d.start == d.end {
			if err := d.fill(); err != nil {
				return nil, err
			}
			continue
		}
		if !d.bomChecked {
			if done := d.checkBOM(); !done {
				if err := d.fill(); err != nil {
					d.bomChecked = true // too short for a BOM
				}
				continue
			}
		}
		b := d.buf[d.start:d.end]
		if d.skipLF {
			d.skipLF = false
			if b[0] == '\n' {
				d.start++
				continue
			}
		}
		i := indexLineEndBytes(b)
		if i < 0 {
			d.line = append(d.line, b...)
			partial = true
			d.start = d.end
			if int64(len(d.line)+len(d.data)) > d.max {
				return nil, d.tooLarge()
			}
			continue
		}
		d.skipLF = b[i] == '\r'
		d.start += i + 1
		line := b[:i]
		if partial {
			d.line = append(d.line, line...)
			line = d.line
		}
		if int64(len(line)+len(d.data)) > d.max {
			return nil, d.tooLarge()
		}
		return line, nil
	}
}

func (d *Decoder) tooLarge() error {
	return fmt.Errorf("%w: more than %d bytes", ErrEventTooLarge, d.max)
}

var bom = []byte("\xEF\xBB\xBF")

// checkBOM skips a byte order mark at the start of the stream. It
// reports false while too few bytes have arrived to tell.
func (d *Decoder) checkBOM() bool {
	b := d.buf[d.start:d.end]
	n := min(len(b), len(bom))
	if !bytes.Equal(b[:n], bom[:n]) {
		d.bomChecked = true
		return true
	}
	if n < len(bom) {
		return false
	}
	d.start += len(bom)
	d.bomChecked = true
	return true
}

// fill reads more input after the unread bytes, or returns the reader's
// error once they are gone.
func (d *Decoder) fill() error {
	if d.start == d.end {
		if d.readErr != nil {
			return d.readErr
		}
		d.start, d.end = 0, 0
	}
	if d.readErr != nil {
		return d.readErr
	}
	for range 100 {
		n, err := d.r.Read(d.buf[d.end:])
		if n < 0 || n > len(d.buf)-d.end {
			err = fmt.Errorf("eventsource: reader returned invalid count %d", n)
			n = 0
		}
		d.end += n
		if err != nil {
			d.readErr = err
			if n == 0 {
				return err
			}
			return nil
		}
		if n > 0 {
			return nil
		}
	}
	d.readErr = io.ErrNoProgress
	return d.readErr
}

func indexLineEndBytes(b []byte) int {
	n := bytes.IndexByte(b, '\n')
	head := b
	if n >= 0 {
		head = b[:n]
	}
	if r := bytes.IndexByte(head, '\r'); r >= 0 {
		return r
	}
	return n
}
