package websocket

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

	"github.com/realtime-go/realtime/extensions"
)

// ClientOptions configures the client side of the opening handshake and
// the connection it yields. A nil *ClientOptions means the zero value.
// NewClient keeps nothing of the options once it returns, so later
// changes do not affect a connection.
type ClientOptions struct {
	ConnOptions

	// Version is the protocol version to request: 13 (0 means 13) or 8.
	Version int

	// Header holds extra request header fields, such as Authorization or
	// Cookie. The handshake's own fields cannot be overridden.
	Header http.Header

	// Host overrides the Host header, which defaults to the URL's host.
	Host string

	// Origin, when set, is sent as Origin (version 13) or
	// Sec-WebSocket-Origin (version 8).
	Origin string

	// Subprotocols to offer, in order of preference. The server's choice
	// must be one of them.
	Subprotocols []string

	// Extensions to offer, in order. The server may accept some; a
	// response the client cannot accept fails the handshake.
	Extensions []extensions.Extension
}

// maxResponseBody bounds the body of a refused handshake kept for the
// caller.
const maxResponseBody = 1024

// NewClient performs the client side of the opening handshake over nc,
// which is already connected (and wrapped in TLS, for wss) to the server
// of u. ctx bounds the handshake only.
//
// The response is returned whenever one was read. On a refused handshake
// its Body holds the first 1 KiB of the server's body, the error wraps
// ErrBadHandshake, and nc is closed.
func NewClient(ctx context.Context, nc net.Conn, u *url.URL, opts *ClientOptions) (*Conn, *http.Response, error) {
	var o ClientOptions
	if opts != nil {
		o = *opts
	}
	if o.Version == 0 {
		o.Version = 13
	}
	if o.Version != 13 && o.Version != 8 {
		nc.Close()
		return nil, nil, fmt.Errorf("websocket: unsupported version %d", o.Version)
	}
	switch u.Scheme {
	case "ws", "wss", "http", "https":
	default:
		nc.Close()
		return nil, nil, fmt.Errorf("websocket: unsupported URL scheme %q", u.Scheme)
	}
	key := newKey()
	stop := interruptOnDone(ctx, nc)
	if _, err := nc.Write(appendRequest(nil, u, key, &o)); err != nil {
		stop()
		nc.Close()
		return nil, nil, fmt.Errorf("websocket: write handshake request: %w", handshakeCause(ctx, err))
	}
	br := bufio.NewReaderSize(&io.LimitedReader{R: nc, N: maxRequestSize}, 4096)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet, URL: u})
	if err != nil {
		stop()
		nc.Close()
		return nil, nil, fmt.Errorf("websocket: read handshake response: %w", handshakeCause(ctx, err))
	}
	protocol, err := checkResponse(resp, key, o.Subprotocols)
	var ext extensions.Negotiated
	if err == nil {
		ext, err = activateExtensions(resp, o.Extensions)
	}
	if err != nil {
		keepRefusedBody(resp)
		stop()
		nc.Close()
		return nil, resp, err
	}
	var buffered []byte
	if n := br.Buffered(); n > 0 {
		buffered, _ = br.Peek(n)
	}
	if !stop() {
		ext.Close()
		nc.Close()
		return nil, resp, fmt.Errorf("websocket: handshake: %w", ctx.Err())
	}
	return newConn(nc, buffered, true, o.Version, protocol, ext, o.ConnOptions), resp, nil
}

// activateExtensions activates the extensions the server accepted in
// resp, a response that has passed every other check.
func activateExtensions(resp *http.Response, offered []extensions.Extension) (extensions.Negotiated, error) {
	ext, err := extensions.ClientActivate(offered, resp.Header.Values("Sec-WebSocket-Extensions"))
	if err != nil {
		return ext, refuse(resp.StatusCode, err.Error())
	}
	return ext, nil
}

// keepRefusedBody replaces the body of a refused handshake's response
// with its first maxResponseBody bytes, for the caller, and closes the
// original.
func keepRefusedBody(resp *http.Response) {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
}

// appendRequest appends the opening handshake request (RFC 6455 §4.1).
func appendRequest(b []byte, u *url.URL, key string, o *ClientOptions) []byte {
	host := o.Host
	if host == "" {
		host = u.Host
	}
	b = append(b, "GET "...)
	b = append(b, u.RequestURI()...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "...)
	b = append(b, key...)
	b = fmt.Appendf(b, "\r\nSec-WebSocket-Version: %d\r\n", o.Version)
	if o.Origin != "" {
		if o.Version == 8 {
			b = append(b, "Sec-WebSocket-Origin: "...)
		} else {
			b = append(b, "Origin: "...)
		}
		b = append(b, o.Origin...)
		b = append(b, "\r\n"...)
	}
	if len(o.Extensions) > 0 {
		b = append(b, "Sec-WebSocket-Extensions: "...)
		b = append(b, extensions.Format(extensions.ClientOffers(o.Extensions))...)
		b = append(b, "\r\n"...)
	}
	if len(o.Subprotocols) > 0 {
		b = append(b, "Sec-WebSocket-Protocol: "...)
		for i, p := range o.Subprotocols {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = append(b, p...)
		}
		b = append(b, "\r\n"...)
	}
	if u.User != nil && o.Header.Get("Authorization") == "" {
		pass, _ := u.User.Password()
		b = append(b, "Authorization: Basic "...)
		b = append(b, base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pass))...)
		b = append(b, "\r\n"...)
	}
	b = appendHeader(b, o.Header)
	return append(b, "\r\n"...)
}
