package eventsource

import (
	"strconv"
	"strings"
	"time"
)

// Event is one server-sent event.
//
// When encoding, empty Type and ID are left out, and Retry is sent only
// when positive. When decoding, Type is "message" if the stream named
// none, ID is the stream's last event id at the time of the event (ids
// persist from one event to the next, as in a browser), and Retry is the
// reconnection time given among the event's own lines, or 0.
type Event struct {
	// Type is the event type, which a browser dispatches to listeners
	// registered for it with addEventListener. It may not contain CR or
	// LF.
	Type string

	// ID is the event id a client sends back in Last-Event-ID when it
	// reconnects. It is an opaque string and may not contain CR, LF or
	// NUL.
	ID string

	// Data is the payload. It may span lines: CR, LF and CRLF each end a
	// line, and a client receives the lines joined by LF.
	Data string

	// Retry asks the client to wait this long before reconnecting, sent
	// in whole milliseconds (rounded down).
	Retry time.Duration
}

// AppendEvent appends the wire form of ev to dst and returns the extended
// buffer. Data is split into one "data:" line per line of text; empty
// Data still yields one "data:" line, so the event is dispatched.
//
// If a field cannot be sent (see ErrInvalidField), AppendEvent returns
// dst unchanged and a *FieldError. A line break or NUL cannot be escaped
// in SSE: sending it would let the text after it inject fields or events,
// or make clients drop the id.
func AppendEvent(dst []byte, ev Event) ([]byte, error) {
	if err := checkEvent(&ev); err != nil {
		return dst, err
	}
	return appendEvent(dst, &ev), nil
}

func checkEvent(ev *Event) error {
	if strings.ContainsAny(ev.Type, "\r\n") {
		return &FieldError{Field: "event", Reason: "contains a line break"}
	}
	if strings.ContainsAny(ev.ID, "\r\n\x00") {
		if strings.IndexByte(ev.ID, 0) >= 0 {
			return &FieldError{Field: "id", Reason: "contains NUL"}
		}
		return &FieldError{Field: "id", Reason: "contains a line break"}
	}
	if ev.Retry < 0 {
		return &FieldError{Field: "retry", Reason: "negative"}
	}
	return nil
}

// appendEvent encodes an event checkEvent accepted. The single space
// after each colon is part of the syntax, so values that themselves
// start with a space arrive intact.
func appendEvent(dst []byte, ev *Event) []byte {
	if ev.Type != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, ev.Type...)
		dst = append(dst, '\n')
	}
	if ev.ID != "" {
		dst = append(dst, "id: "...)
		dst = append(dst, ev.ID...)
		dst = append(dst, '\n')
	}
	if ev.Retry > 0 {
		dst = appendRetry(dst, ev.Retry)
	}
	data := ev.Data
	for {
		dst = append(dst, "data: "...)
		i := indexLineEnd(data)
		if i < 0 {
			dst = append(dst, data...)
			break
		}
		dst = append(dst, data[:i]...)
		dst = append(dst, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	return append(dst, "\n\n"...)
}

func appendRetry(dst []byte, d time.Duration) []byte {
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, int64(d/time.Millisecond), 10)
	return append(dst, '\n')
}

// appendComment appends a comment line and a blank line. The blank line
// keeps the comment out of whatever event comes next, for clients that
// (wrongly) split the stream on blank lines only.
func appendComment(dst []byte, text string) []byte {
	dst = append(dst, ':')
	dst = append(dst, text...)
	return append(dst, "\n\n"...)
}

// indexLineEnd returns the index of the first CR or LF in s, or -1. Two
// IndexByte scans beat a byte loop: both are vectorized, and the second
// only covers the text before the first LF.
func indexLineEnd(s string) int {
	n := strings.IndexByte(s, '\n')
	head := s
	if n >= 0 {
		head = s[:n]
	}
	if r := strings.IndexByte(head, '\r'); r >= 0 {
		return r
	}
	return n
}
