package websocket

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	"github.com/realtime-go/realtime/internal/origin"
	"github.com/realtime-go/realtime/internal/quote"
)

// acceptGUID is the key suffix of RFC 6455 §1.3.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// supportedVersions is sent with every refusal over the version.
const supportedVersions = "13, 8"

// acceptKey computes Sec-WebSocket-Accept for a Sec-WebSocket-Key.
func acceptKey(key string) string {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte(acceptGUID))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// newKey returns a fresh Sec-WebSocket-Key.
func newKey() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// HandshakeError is a refused opening handshake: the HTTP status the
// server answered (or, on the client, received) and why. It wraps
// ErrBadHandshake.
type HandshakeError struct {
	Status int
	Reason string
	header http.Header // extra response headers, server side
	body   *string     // response body instead of Reason, server side
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("websocket: bad handshake (%d): %s", e.Status, e.Reason)
}

func (e *HandshakeError) Unwrap() error { return ErrBadHandshake }

func refuse(status int, reason string) *HandshakeError {
	return &HandshakeError{Status: status, Reason: reason}
}

// upgradeRequest is what the server learns from a valid opening request.
type upgradeRequest struct {
	version int
	key     string // "" over HTTP/2, which has no key
	origin  string
	stream  bool // an HTTP/2 extended CONNECT (RFC 8441)
}

// isExtendedConnect reports whether r is an HTTP/2 extended CONNECT for
// a WebSocket (RFC 8441 §4).
func isExtendedConnect(r *http.Request) bool {
	return r.Method == http.MethodConnect && r.ProtoMajor == 2 && strings.EqualFold(r.Header.Get(":protocol"), "websocket")
}

// checkRequest validates an opening handshake request: an HTTP/1.1
// upgrade (RFC 6455 §4.2.1) or an HTTP/2 extended CONNECT (RFC 8441 §5),
// which has neither Upgrade, Connection nor Sec-WebSocket-Key.
func checkRequest(r *http.Request) (upgradeRequest, *HandshakeError) {
	var u upgradeRequest
	if isExtendedConnect(r) {
		u.stream = true
		if e := checkVersionOrigin(r, &u); e != nil {
			return u, e
		}
		if u.version != 13 {
			// RFC 8441 §5 knows version 13 only.
			e := refuse(http.StatusBadRequest, "Sec-WebSocket-Version 13 required over HTTP/2")
			e.header = http.Header{"Sec-Websocket-Version": {"13"}}
			return u, e
		}
		return u, nil
	}
	if r.Method != http.MethodGet {
		e := refuse(http.StatusMethodNotAllowed, "method must be GET")
		e.header = http.Header{"Allow": {"GET"}}
		return u, e
	}
	// Upgrade comes first: a proxy that dropped it (often speaking HTTP/1.0
	// upstream, as nginx does) should still get 426, the answer a client
	// falls back on.
	if !hasToken(r.Header, "Upgrade", "websocket") {
		e := refuse(http.StatusUpgradeRequired, `Upgrade header must include "websocket"`)
		e.header = http.Header{"Upgrade": {"websocket"}, "Sec-Websocket-Version": {supportedVersions}}
		return u, e
	}
	if r.ProtoMajor != 1 || r.ProtoMinor < 1 {
		return u, refuse(http.StatusBadRequest, "HTTP/1.1 required")
	}
	if !hasToken(r.Header, "Connection", "upgrade") {
		return u, refuse(http.StatusBadRequest, `Connection header must include "upgrade"`)
	}
	if e := checkVersionOrigin(r, &u); e != nil {
		return u, e
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return u, refuse(http.StatusBadRequest, "exactly one Sec-WebSocket-Key required")
	}
	if b, err := base64.StdEncoding.DecodeString(keys[0]); err != nil || len(b) != 16 {
		return u, refuse(http.StatusBadRequest, "Sec-WebSocket-Key must be 16 bytes in base64")
	}
	u.key = keys[0]
	return u, nil
}

// checkVersionOrigin reads the version and the origin, the fields both
// HTTP versions share.
func checkVersionOrigin(r *http.Request, u *upgradeRequest) *HandshakeError {
	switch v := r.Header.Values("Sec-WebSocket-Version"); {
	case len(v) == 1 && v[0] == "13":
		u.version = 13
	case len(v) == 1 && v[0] == "8":
		u.version = 8
	default:
		e := refuse(http.StatusBadRequest, "unsupported Sec-WebSocket-Version")
		e.header = http.Header{"Sec-Websocket-Version": {supportedVersions}}
		return e
	}
	// Version 8 browsers sent the origin as Sec-WebSocket-Origin.
	u.origin = r.Header.Get("Origin")
	if u.version == 8 && u.origin == "" {
		u.origin = r.Header.Get("Sec-WebSocket-Origin")
	}
	return nil
}

// checkOrigin allows a request without Origin (not from a browser), one
// from the request's own host, and one matching a pattern. A pattern is
// matched with path.Match against the origin's host, or against
// scheme://host when it contains "://"; case is ignored.
func checkOrigin(r *http.Request, o string, patterns []string) *HandshakeError {
	switch ok, malformed := origin.Check(r.Host, o, patterns); {
	case malformed:
		return refuse(http.StatusForbidden, "malformed Origin")
	case !ok:
		return refuse(http.StatusForbidden, "origin "+quote.Prefix(o)+" not allowed")
	}
	return nil
}

// selectSubprotocol returns the first protocol the client offered that
// the server supports, or "".
func selectSubprotocol(h http.Header, supported []string) string {
	for _, offered := range tokens(h, "Sec-WebSocket-Protocol") {
		for _, s := range supported {
			if offered == s {
				return s
			}
		}
	}
	return ""
}

// tokens splits the comma-separated values of a header field.
func tokens(h http.Header, name string) []string {
	var out []string
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// hasToken reports whether a header field lists token, ignoring case.
func hasToken(h http.Header, name, token string) bool {
	for _, t := range tokens(h, name) {
		if strings.EqualFold(t, token) {
			return true
		}
	}
	return false
}

// appendResponse appends the 101 response that completes a handshake.
func appendResponse(b []byte, key, protocol, extensions string, extra http.Header) []byte {
	b = append(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	b = append(b, acceptKey(key)...)
	b = append(b, "\r\n"...)
	if protocol != "" {
		b = append(b, "Sec-WebSocket-Protocol: "...)
		b = append(b, protocol...)
		b = append(b, "\r\n"...)
	}
	if extensions != "" {
		b = append(b, "Sec-WebSocket-Extensions: "...)
		b = append(b, extensions...)
		b = append(b, "\r\n"...)
	}
	b = appendHeader(b, extra)
	return append(b, "\r\n"...)
}

// appendHeader appends header fields given by the application, leaving
// out those the handshake sets itself.
func appendHeader(b []byte, h http.Header) []byte {
	for name := range h {
		if !handshakeField(name) {
			b = appendField(b, name, h[name])
		}
	}
	return b
}

// handshakeField reports whether the handshake sets the header field
// name itself, so the application's value must not be sent.
func handshakeField(name string) bool {
	switch http.CanonicalHeaderKey(name) {
	case "Upgrade", "Connection", "Sec-Websocket-Accept", "Sec-Websocket-Key",
		"Sec-Websocket-Version", "Sec-Websocket-Protocol", "Sec-Websocket-Extensions", "Host":
		return true
	}
	return strings.HasPrefix(name, ":")
}

// appendField appends a header field, leaving out values that would break
// the header block.
func appendField(b []byte, name string, values []string) []byte {
	for _, v := range values {
		if strings.ContainsAny(name, "\r\n: ") || strings.ContainsAny(v, "\r\n") {
			continue
		}
		b = append(b, name...)
		b = append(b, ": "...)
		b = append(b, v...)
		b = append(b, "\r\n"...)
	}
	return b
}

// checkResponse validates the server's answer to our opening handshake
// (RFC 6455 §4.1) and returns the selected subprotocol.
func checkResponse(resp *http.Response, key string, offered []string) (string, error) {
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return "", refuse(resp.StatusCode, "server answered "+quote.Prefix(resp.Status))
	}
	if !hasToken(resp.Header, "Upgrade", "websocket") {
		return "", refuse(resp.StatusCode, `response Upgrade header lacks "websocket"`)
	}
	if !hasToken(resp.Header, "Connection", "upgrade") {
		return "", refuse(resp.StatusCode, `response Connection header lacks "upgrade"`)
	}
	if got := resp.Header.Values("Sec-WebSocket-Accept"); len(got) != 1 || got[0] != acceptKey(key) {
		return "", refuse(resp.StatusCode, "wrong Sec-WebSocket-Accept")
	}
	return checkSubprotocol(resp, offered)
}

// checkSubprotocol returns the subprotocol the server selected, which
// must be one the client offered.
func checkSubprotocol(resp *http.Response, offered []string) (string, error) {
	protos := resp.Header.Values("Sec-WebSocket-Protocol")
	if len(protos) > 1 {
		return "", refuse(resp.StatusCode, "several Sec-WebSocket-Protocol values")
	}
	if len(protos) == 1 {
		for _, o := range offered {
			if o == protos[0] {
				return o, nil
			}
		}
		return "", refuse(resp.StatusCode, "server chose subprotocol "+quote.Prefix(protos[0])+", which was not offered")
	}
	return "", nil
}
