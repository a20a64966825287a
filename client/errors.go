package client

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// DialError reports that the origin of a URL could not be reached:
// choosing the proxy, dialing, the exchange with the proxy, or TLS with
// the origin failed. Err is the cause; errors.As finds a *proxy.Error in
// it when a proxy failed, and errors.Is matches proxy.ErrAuth when the
// proxy refused the credentials, or the context's error when the context
// ended the attempt.
type DialError struct {
	URL string // the URL, password redacted
	Err error

	final bool // retrying cannot help (a malformed proxy setting)
}

// Error names the URL and the cause.
func (e *DialError) Error() string { return "client: dial " + e.URL + ": " + unprefixed(e.Err) }

// Unwrap returns Err.
func (e *DialError) Unwrap() error { return e.Err }

// ResponseError is the final error of an EventSource whose server did
// not answer with a 200 text/event-stream response: a 204 (the server's
// way of saying "stop"), any other status after redirects, or the wrong
// content type. An EventSource never reconnects after one.
type ResponseError struct {
	// StatusCode is Response.StatusCode.
	StatusCode int

	// Response has the status, the header and the first 1 KiB of the
	// body, already read and closed.
	Response *http.Response

	// Reason says what was wrong.
	Reason string
}

// Error says what was wrong with the response.
func (e *ResponseError) Error() string {
	return "client: EventSource response refused: " + e.Reason
}

// ErrIdleTimeout is wrapped by the error that ends an EventSource
// connection on which nothing, not even a comment, arrived within
// EventSourceOptions.IdleTimeout. The EventSource reconnects; the error
// reaches EventSourceOptions.OnRetry.
var ErrIdleTimeout = errors.New("client: EventSource idle timeout")

func idleTimeoutError(d time.Duration) error {
	return fmt.Errorf("%w: nothing received for %v", ErrIdleTimeout, d)
}

// closedError is returned once an EventSource was closed. It satisfies
// errors.Is(err, net.ErrClosed).
type closedError struct{}

func (closedError) Error() string { return "client: EventSource closed" }

func (closedError) Is(target error) bool { return target == net.ErrClosed }

// ErrTooManyRedirects and ErrRedirectLoop are matched by the
// *RedirectError of a Dial that stopped following redirects: after
// Dialer.MaxRedirects of them, or at one to a URL already visited.
var (
	ErrTooManyRedirects = errors.New("client: too many redirects")
	ErrRedirectLoop     = errors.New("client: redirect loop")
)

// RedirectError reports that Dial stopped following redirects. It
// matches Err (ErrTooManyRedirects or ErrRedirectLoop) and also, with
// errors.Is and errors.As, the websocket.ErrBadHandshake and
// *websocket.HandshakeError of the last redirect, which, not followed,
// refused the handshake.
type RedirectError struct {
	// URLs are the URLs visited, without userinfo, first to last; for a
	// loop, the last is the one visited again.
	URLs []string

	// Response is the last redirect, as Dial returns it.
	Response *http.Response

	// Err is ErrTooManyRedirects or ErrRedirectLoop.
	Err error

	refusal error
}

// Error names the first URL, the cause and the last URL.
func (e *RedirectError) Error() string {
	return fmt.Sprintf("client: dial %s: %s, at %s", e.URLs[0], unprefixed(e.Err), e.URLs[len(e.URLs)-1])
}

// Unwrap returns Err and the handshake error of the last redirect.
func (e *RedirectError) Unwrap() []error { return []error{e.Err, e.refusal} }
