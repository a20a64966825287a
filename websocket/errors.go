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
