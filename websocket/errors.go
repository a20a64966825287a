package websocket

import (
	"errors"
	"fmt"
	"net"
)

var (
	// ErrMessageTooBig is wrapped by the error of a read that failed because
	// a message exceeded ConnOptions.MaxMessageSize or MaxFragments; the
	// connection was closed with StatusMessageTooBig.
	ErrMessageTooBig = errors.New("websocket: message too big")

	// ErrInvalidUTF8 is wrapped by the error of a read that failed because a
	// text message or close reason was not valid UTF-8; the connection was
	// closed with StatusInvalidFramePayloadData.
	ErrInvalidUTF8 = errors.New("websocket: invalid UTF-8")

	// ErrBadHandshake is wrapped by every error of a failed opening
	// handshake.
	ErrBadHandshake = errors.New("websocket: bad handshake")

	// ErrPongTimeout is wrapped by the error that ends a connection whose
	// peer did not answer a keep-alive ping within ConnOptions.PongTimeout.
	ErrPongTimeout = errors.New("websocket: pong timeout")
)

// ProtocolError reports a peer that broke RFC 6455 (or a negotiated
// extension's rules). The connection was failed with Code.
type ProtocolError struct {
	Code   StatusCode // the close code sent to the peer
	Reason string
	Err    error // a sentinel such as ErrMessageTooBig, or nil
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("websocket: protocol error (%d): %s", int(e.Code), e.Reason)
}

func (e *ProtocolError) Unwrap() error { return e.Err }

func protocolErr(code StatusCode, reason string) *ProtocolError {
	return &ProtocolError{Code: code, Reason: reason}
}

// closedError is what every call returns once the connection is closed. It
// satisfies errors.Is(err, net.ErrClosed) and unwraps to the cause, so
// CloseStatus and errors.As still see a CloseError or ProtocolError.
type closedError struct{ cause error }

func (e *closedError) Error() string {
	if e.cause == nil {
		return "websocket: use of closed connection"
	}
	return e.cause.Error()
}

func (e *closedError) Unwrap() error { return e.cause }

func (e *closedError) Is(target error) bool { return target == net.ErrClosed }

// opError is the error of a read or a write on the connection. Its
// message names the package once, then the operation, unless the cause is
// a *net.OpError that names it already:
//
//	websocket: read: context deadline exceeded
//	websocket: write: message cut short: context canceled
//	websocket: read tcp 127.0.0.1:80->127.0.0.1:5000: read: connection reset by peer
//
// It unwraps to the cause and, like the net.Conn errors it may carry,
// implements net.Error, so a timeout is seen as one.
type opError struct {
	op  string // "read" or "write"
	cut bool   // the error cut a message short, which closed the connection
	err error
}

func (e *opError) Error() string {
	s := "websocket: "
	if oe, ok := e.err.(*net.OpError); !ok || oe.Op != e.op {
		s += e.op + ": "
	}
	if e.cut {
		s += "message cut short: "
	}
	return s + e.err.Error()
}

func (e *opError) Unwrap() error { return e.err }

// Timeout reports whether the cause is a timeout: a deadline set through
// NetConn, or a context's deadline.
func (e *opError) Timeout() bool {
	var t interface{ Timeout() bool }
	return errors.As(e.err, &t) && t.Timeout()
}

// Temporary is Timeout, as for the errors of net.Conn.
func (e *opError) Temporary() bool { return e.Timeout() }
