package realtime

import "errors"

var (
	// ErrQueueFull is what Socket.Err wraps after the socket was closed
	// because its send queue overflowed under QueueClose, and what Send
	// returns for the message that overflowed it.
	ErrQueueFull = errors.New("realtime: send queue full")

	// ErrInvalidUTF8 is returned by Send and Hub.Broadcast for text that
	// is not valid UTF-8: neither transport can carry it.
	ErrInvalidUTF8 = errors.New("realtime: text is not valid UTF-8")

	// ErrWriteTimeout is what Socket.Err wraps after the socket was
	// closed because a client did not take a write within
	// Options.WriteTimeout, on either transport.
	ErrWriteTimeout = errors.New("realtime: write timed out")
)
