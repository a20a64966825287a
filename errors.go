package realtime

import (
	"github.com/realtime-go/realtime/eventsource"
	"github.com/realtime-go/realtime/internal/quote"
	"github.com/realtime-go/realtime/websocket"
)

// quotePrefix quotes at most a prefix of a peer's input in an error.
func quotePrefix(s string) string { return quote.Prefix(s) }

// errQueueFull is what Socket.Err wraps after the socket was closed
// because its send queue overflowed (by count or by bytes) under
// QueueClose, and what Send returns for the message that overflowed it.
// It matches the module's one queue-full sentinel,
// eventsource.ErrQueueFull.
var errQueueFull error = &wrapped{msg: "realtime: send queue full", err: eventsource.ErrQueueFull}

// errInvalidUTF8 is what Send and Hub.Publish return for text that is
// not valid UTF-8: neither transport can carry it. It matches the
// module's one sentinel, websocket.ErrInvalidUTF8, and reads as an
// error of this package, prefixed once.
var errInvalidUTF8 error = &wrapped{msg: "realtime: text is not valid UTF-8", err: websocket.ErrInvalidUTF8}

// wrapped is an error of this package that matches a sentinel of
// another (errors.Is) under a message of its own, so the message is
// prefixed once, by "realtime: ".
type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.err }

// writeTimeoutError is why a socket ended when its client did not take a
// write within Options.WriteTimeout. It matches
// eventsource.ErrWriteTimeout, the module's one write-timeout sentinel,
// on both transports, and the transport's own error (such as
// os.ErrDeadlineExceeded on WebSocket).
type writeTimeoutError struct{ err error }

func (e *writeTimeoutError) Error() string { return "realtime: write timed out: " + e.err.Error() }
func (e *writeTimeoutError) Unwrap() []error {
	return []error{eventsource.ErrWriteTimeout, e.err}
}
