package client

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/realtime-go/realtime/websocket"
)

// ErrConnectTimeout is wrapped by the error of a Socket's connection
// attempt that did not open within SocketOptions.ConnectTimeout.
var ErrConnectTimeout = errors.New("client: connection did not open in time")

// errInvalidUTF8 is Socket.Send's error for text that is not valid
// UTF-8, which neither transport can carry. It wraps the module's one
// sentinel for it, websocket.ErrInvalidUTF8.
var errInvalidUTF8 error = invalidUTF8Error{}

type invalidUTF8Error struct{}

func (invalidUTF8Error) Error() string { return "client: send: text is not valid UTF-8" }

func (invalidUTF8Error) Unwrap() error { return websocket.ErrInvalidUTF8 }

// SendError reports a message that Socket.Send could not deliver.
type SendError struct {
	// Transport is the transport the message was sent on.
	Transport Transport

	// StatusCode is the status the server answered a POST with, or 0
	// when no answer came (and on WebSocket). 400 and 413 refuse this
	// message only; otherwise the connection failed and the Socket
	// reconnects.
	StatusCode int

	// Err is the cause.
	Err error
}

// Error names the transport and the cause.
func (e *SendError) Error() string {
	if e.Transport == TransportEventSource {
		return "client: sending a message over eventsource (POST): " + e.Err.Error()
	}
	return "client: sending a message over " + e.Transport.String() + ": " + e.Err.Error()
}

// Unwrap returns Err.
func (e *SendError) Unwrap() error { return e.Err }

// stoppedError is what Send returns once the Socket has stopped, and
// what Err and Next return after Close (with no cause). It satisfies
// errors.Is(err, net.ErrClosed) and unwraps to why the Socket stopped.
type stoppedError struct{ cause error }

func (e *stoppedError) Error() string {
	if e.cause == nil {
		return "client: socket closed"
	}
	return "client: socket stopped: " + unprefixed(e.cause)
}

// connectTimeoutError is a Socket's connection attempt that did not open
// within ConnectTimeout. It matches ErrConnectTimeout and unwraps to the
// error the attempt ended with.
type connectTimeoutError struct {
	timeout time.Duration
	err     error
}

func (e *connectTimeoutError) Error() string {
	return "client: connection did not open in time (" + e.timeout.String() + "): " + unprefixed(e.err)
}

func (e *connectTimeoutError) Unwrap() []error { return []error{ErrConnectTimeout, e.err} }

// unprefixed returns err's text without this package's prefix, for an
// error that puts it in its own text after the prefix: each message
// names the package once.
func unprefixed(err error) string {
	return strings.TrimPrefix(err.Error(), "client: ")
}

func (e *stoppedError) Unwrap() error { return e.cause }

func (e *stoppedError) Is(target error) bool { return target == net.ErrClosed }

var errSocketClosed error = &stoppedError{}

// errStreamEnded is the end of an event stream without a realtime.close
// event, which counts as code 1006: reconnect.
var errStreamEnded = errors.New("client: the event stream ended without " + closeEvent)

// serverClosed is the error of a connection the server closed with code,
// on either transport.
func serverClosed(code websocket.StatusCode, reason string) error {
	return &closedByServer{websocket.CloseError{Code: code, Reason: reason}}
}

type closedByServer struct{ ce websocket.CloseError }

func (e *closedByServer) Error() string {
	msg := "client: the server closed the socket with " + strconv.Itoa(int(e.ce.Code)) + " (" + e.ce.Code.String() + ")"
	if e.ce.Reason != "" {
		msg += ": " + e.ce.Reason
	}
	return msg
}

func (e *closedByServer) Unwrap() error { return e.ce }

// webSocketIdleError ends a WebSocket on which nothing arrived within
// SocketOptions.IdleTimeout. It matches ErrIdleTimeout.
type webSocketIdleError struct{ idle time.Duration }

func (e webSocketIdleError) Error() string {
	return "client: WebSocket idle timeout: nothing received for " + e.idle.String()
}

func (e webSocketIdleError) Is(target error) bool { return target == ErrIdleTimeout }
