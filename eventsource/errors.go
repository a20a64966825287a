package eventsource

import (
	"errors"
	"net"
	"strings"
)

var (
	// ErrInvalidField is matched (errors.Is) by the error of encoding an
	// event whose fields cannot be sent: an event type or id with a line
	// break, an id with a NUL byte, or a negative retry. Nothing was
	// written. The error is a *FieldError naming the field.
	ErrInvalidField = errors.New("eventsource: invalid field")

	// ErrEventTooLarge is wrapped by the error of a Decoder that met an
	// event (or a single line) larger than DecoderOptions.MaxEventSize.
	ErrEventTooLarge = errors.New("eventsource: event too large")

	// ErrNotEventSource is wrapped by the error of Accept when the request
	// is not an EventSource request: not a GET (405) or not accepting
	// text/event-stream (406).
	ErrNotEventSource = errors.New("eventsource: not an EventSource request")

	// ErrFlushUnsupported is wrapped by the error of Accept when the
	// ResponseWriter cannot flush, so events would sit in a buffer (500).
	ErrFlushUnsupported = errors.New("eventsource: response writer cannot flush")

	// ErrWriteTimeout is wrapped by the error that ends a stream whose
	// client did not take a write within Options.WriteTimeout.
	ErrWriteTimeout = errors.New("eventsource: write timed out")

	// ErrClientGone is wrapped by the error that ends a stream because the
	// request's context ended: the client disconnected, or the server is
	// closing the connection. It also wraps the context's cause, or, on a
	// hijacked connection (see HijackMode), the error of its read.
	ErrClientGone = errors.New("eventsource: client went away")
)

// FieldError reports an event field that cannot be encoded. It matches
// ErrInvalidField with errors.Is.
type FieldError struct {
	Field  string // "event", "id" or "retry"
	Reason string
}

func (e *FieldError) Error() string {
	return "eventsource: invalid " + e.Field + " field: " + e.Reason
}

// Is makes errors.Is(err, ErrInvalidField) hold.
func (e *FieldError) Is(target error) bool { return target == ErrInvalidField }

// closedError is what sends return once the stream has ended. It
// satisfies errors.Is(err, net.ErrClosed) and unwraps to the cause, so a
// caller can still see ErrWriteTimeout or ErrClientGone.
type closedError struct{ cause error }

func (e *closedError) Error() string {
	if e.cause == nil {
		return "eventsource: use of closed stream"
	}
	return prefix + "stream ended: " + strings.TrimPrefix(e.cause.Error(), prefix)
}

func (e *closedError) Unwrap() error { return e.cause }

func (e *closedError) Is(target error) bool { return target == net.ErrClosed }

// prefix starts every error message of the package, once.
const prefix = "eventsource: "

// opError is the error of an operation: its message is the package
// prefix, op, and the messages of errs, each without a prefix of its own
// ("eventsource: write: write timed out: ..."), and it wraps errs.
type opError struct {
	op   string
	errs []error
}

func newOpError(op string, errs ...error) error { return &opError{op: op, errs: errs} }

func (e *opError) Error() string {
	var b strings.Builder
	b.WriteString(prefix)
	b.WriteString(e.op)
	for _, err := range e.errs {
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(err.Error(), prefix))
	}
	return b.String()
}

func (e *opError) Unwrap() []error { return e.errs }
