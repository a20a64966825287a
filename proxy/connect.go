package proxy

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"

	"github.com/realtime-go/realtime/internal/quote"
)

const (
	// MaxResponseHeader bounds the status line and header of a proxy's
	// answer to CONNECT. A proxy that sends more fails the dial rather
	// than make the client buffer without limit.
	MaxResponseHeader = 16 << 10

	// maxErrorBody bounds the body of a refusal kept for the caller.
	maxErrorBody = 1 << 10
)

// errHeaderTooLarge is the cause of a dial whose proxy answered with more
// than MaxResponseHeader bytes of header.
var errHeaderTooLarge = fmt.Errorf("response header exceeds %d bytes", MaxResponseHeader)

// appendConnect appends a CONNECT request for addr (host:port) to b. The
// request-target and Host are both the authority form (RFC 9110 §9.3.6).
func appendConnect(b []byte, addr string, h http.Header) []byte {
	b = append(b, "CONNECT "...)
	b = append(b, addr...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, addr...)
	b = append(b, "\r\n"...)
	var buf bytes.Buffer
	// Header.Write sorts the fields and turns CR and LF in values into
	// spaces, so a caller's value cannot inject fields.
	h.Write(&buf)
	b = append(b, buf.Bytes()...)
	return append(b, "\r\n"...)
}

// connectHeader returns the fields a request to the proxy carries: the
// caller's extra fields, then Proxy-Authorization from u's userinfo,
// which wins over one in extra.
func connectHeader(u *url.URL, extra http.Header) http.Header {
	h := make(http.Header, len(extra)+1)
	for k, v := range extra {
		k = http.CanonicalHeaderKey(k)
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Connection":
			// Framing and routing belong to the dialer.
			continue
		}
		if !validFieldName(k) {
			continue
		}
		h[k] = append([]string(nil), v...)
	}
	if u.User != nil {
		h.Set("Proxy-Authorization", basicAuth(u.User))
	}
	return h
}

func basicAuth(ui *url.Userinfo) string {
	pass, _ := ui.Password()
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(ui.Username()+":"+pass))
}

// validFieldName reports whether s is an HTTP token (RFC 9110 §5.1).
func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), c) >= 0:
		default:
			return false
		}
	}
	return true
}

// readConnectResponse reads a proxy's answer to CONNECT from r, reading
// at most MaxResponseHeader bytes of header. On a 2xx answer it returns
// the bytes it read past the header: they are the first bytes of the
// tunnel. On any other answer it reads up to maxErrorBody bytes of the
// body into resp.Body, and err is nil: the status is the caller's to
// judge.
func readConnectResponse(r io.Reader) (resp *http.Response, tunnel []byte, err error) {
	lr := &io.LimitedReader{R: r, N: MaxResponseHeader}
	br := bufio.NewReaderSize(lr, 4096)
	resp, err = http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		if lr.N == 0 {
			return nil, nil, errHeaderTooLarge
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, nil, fmt.Errorf("malformed response: %w", err)
		}
		// net/http quotes the whole malformed line.
		return nil, nil, errors.New("malformed response: " + quote.Error(err))
	}
	if resp.StatusCode/100 == 2 {
		// A 2xx answer to CONNECT has no body (RFC 9110 §9.3.6): what
		// follows the header belongs to the tunnel, whatever the header
		// says about length.
		if n := br.Buffered(); n > 0 {
			tunnel, _ = br.Peek(n)
			tunnel = bytes.Clone(tunnel)
		}
		resp.Body = http.NoBody
		resp.ContentLength = 0
		return resp, tunnel, nil
	}
	// The limit now covers the body too, which only bounds it further.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil, nil
}

// prefixConn is a net.Conn whose first reads return bytes that were read
// from it before it was handed on. It deliberately hides SyscallConn and
// the like, so nobody reads the socket past the prefix.
type prefixConn struct {
	net.Conn
	mu     sync.Mutex
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		if len(c.prefix) == 0 {
			c.prefix = nil
		}
		c.mu.Unlock()
		return n, nil
	}
	c.mu.Unlock()
	return c.Conn.Read(p)
}
