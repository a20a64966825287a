package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/realtime-go/realtime/internal/quote"
)

// ErrAuth is matched (errors.Is) by the error of a dial that the proxy
// refused for want of valid credentials: an HTTP proxy's 407, or its 401
// (tinyproxy answers a wrong password with 401 rather than 407), or a
// SOCKS5 server that rejected the username and password or accepts no
// method the dialer offered.
var ErrAuth = errors.New("proxy: authentication failed")

// Error reports a dial through a proxy that failed. It matches ErrAuth
// when the proxy refused the credentials.
type Error struct {
	// Op is the step that failed: "dial" (reaching the proxy), "tls" (the
	// handshake with an https:// proxy), "connect" (the CONNECT exchange)
	// or "socks5".
	Op string

	// Proxy is the proxy's URL with any password redacted.
	Proxy string

	// Addr is the address the tunnel was for.
	Addr string

	// Status is the HTTP status the proxy answered a CONNECT with, or 0
	// when it gave none.
	Status int

	// Response is the proxy's answer when it refused a CONNECT: status,
	// header and at most the first 1 KiB of the body, already read and
	// closed. It is nil when there was no answer.
	Response *http.Response

	// Err is the cause, when there is one beyond the status.
	Err error

	auth bool // a SOCKS5 authentication failure
}

// Error describes the failure; a password in the proxy URL is redacted.
func (e *Error) Error() string {
	var msg string
	if e.Err != nil {
		msg = e.Err.Error()
		// A *net.OpError of the same step names it again: "proxy: dial
		// 10.0.0.1:80 via http://p: dial tcp ...". Keep the one with
		// the details.
		if strings.HasPrefix(msg, e.Op+" ") && (e.Addr != "" || e.Proxy != "") {
			return "proxy: " + e.stepless(msg)
		}
	}
	var b strings.Builder
	b.WriteString("proxy: ")
	b.WriteString(e.Op)
	if e.Addr != "" {
		b.WriteString(" ")
		b.WriteString(e.Addr)
	}
	if e.Proxy != "" {
		b.WriteString(" via ")
		b.WriteString(e.Proxy)
	}
	if e.Response != nil {
		b.WriteString(": proxy answered ")
		b.WriteString(quote.Prefix(e.Response.Status))
	} else if e.Status != 0 {
		fmt.Fprintf(&b, ": proxy answered %d", e.Status)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(msg, "proxy: "))
	}
	return b.String()
}

// stepless is the message of an error whose cause names the step (msg).
func (e *Error) stepless(msg string) string {
	var b strings.Builder
	if e.Addr != "" {
		b.WriteString(e.Addr)
		b.WriteString(" ")
	}
	if e.Proxy != "" {
		b.WriteString("via ")
		b.WriteString(e.Proxy)
		b.WriteString(": ")
	}
	b.WriteString(msg)
	return b.String()
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrAuth) hold for authentication failures.
func (e *Error) Is(target error) bool {
	if target != ErrAuth {
		return false
	}
	return e.auth || e.Status == http.StatusProxyAuthRequired || e.Status == http.StatusUnauthorized
}
