package websocket

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"time"

	"github.com/realtime-go/realtime/extensions"
)

// AcceptOptions configures the server side of the opening handshake and
// the connection it yields. A nil *AcceptOptions means the zero value.
// Accept and AcceptConn keep nothing of the options once they return, and
// Server copies them deeply, so later changes do not affect a connection
// or a server.
type AcceptOptions struct {
	ConnOptions

	// Subprotocols the server supports. The first protocol the client
	// offers that is listed here is selected; with none in common, the
	// connection has no subprotocol.
	Subprotocols []string

	// OriginPatterns allows browsers on other origins. By default only
	// requests without an Origin header or from the request's own host
	// are accepted (others get 403), which stops other sites' pages from
	// using the visitor's cookies on this endpoint. A pattern is matched
	// with path.Match against the origin's host ("*.example.com"), or
	// against "scheme://host" when it contains "://".
	OriginPatterns []string

	// InsecureSkipOriginCheck accepts every origin. Only safe when the
	// endpoint authorizes requests by something other than cookies.
	InsecureSkipOriginCheck bool

	// Header is added to the 101 response. The handshake's own fields
	// cannot be overridden.
	Header http.Header

	// OnHandshake, when set, is called with a valid upgrade request after
	// the origin check. It may add fields to respHeader, which is sent
	// with the 101 response, or return a non-nil *Rejection to refuse the
	// upgrade with that response.
	OnHandshake func(r *http.Request, respHeader http.Header) *Rejection

	// Extensions the server supports, in its order of preference; none
	// by default. Extensions claiming the same RSV bit are a
	// configuration error, answered with 500.
	Extensions []extensions.Extension
}

// Rejection is the response OnHandshake sends instead of upgrading.
type Rejection struct {
	Status int // 0 means 403
	Header http.Header
	Body   string
}

// Accept completes the server side of the opening handshake and returns
// the connection. On failure it has already written an error response
// (400, 403, 405, 426, or OnHandshake's) and returns an error wrapping
// ErrBadHandshake.
//
// On an HTTP/1.1 upgrade request, Accept takes over the request's
// connection, and the handler may return at once. The request's context
// ends when the handler returns, so it must not govern the connection's
// lifetime. Reading the connection on a goroutine of its own and
// returning from the handler lets net/http free what it keeps for the
// request: an idle connection then costs 5.6 KiB instead of 13.9 (see
// Memory in the package documentation).
//
// On an HTTP/2 extended CONNECT with :protocol websocket (RFC 8441),
// Accept answers 200 and the connection runs over the request's stream:
// reads from r.Body, writes to w. The stream ends when the handler
// returns, so the handler must not return before the connection is
// closed: wait for [Conn.Done]. Such a connection reads through a
// goroutine of its own, and an idle one holds a read buffer. Go's
// net/http server accepts extended CONNECT only when the program runs
// with GODEBUG=http2xconnect=1 in its environment (Go 1.26: the setting
// is read once at start-up and cannot be set by a //go:debug line);
// without it, browsers and clients use HTTP/1.1 for WebSockets.
func Accept(w http.ResponseWriter, r *http.Request, opts *AcceptOptions) (*Conn, error) {
	o := acceptDefaults(opts)
	hs, herr := negotiate(r, &o)
	if herr != nil {
		writeRefusal(w, herr)
		return nil, herr
	}
	if hs.stream {
		return acceptStream(w, r, hs, &o)
	}
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		hs.ext.Close()
		herr := refuse(http.StatusInternalServerError, "connection cannot be taken over: "+err.Error())
		writeRefusal(w, herr)
		return nil, herr
	}
	// The server may have set deadlines; the connection now owns them.
	nc.SetDeadline(time.Time{})
	var buffered []byte
	if n := brw.Reader.Buffered(); n > 0 {
		buffered, _ = brw.Reader.Peek(n)
	}
	if _, err := nc.Write(hs.response); err != nil {
		hs.ext.Close()
		nc.Close()
		return nil, fmt.Errorf("websocket: write handshake response: %w", err)
	}
	c := newConn(nc, buffered, false, hs.version, hs.subprotocol, hs.ext, o.ConnOptions)
	releaseHijacked(brw)
	return c, nil
}

// releaseHijacked lets go of the buffers of the bufio.ReadWriter that
// Hijack returned, once newConn has copied the bytes buffered in it.
// net/http's connection state keeps pointers to the same bufio.Reader
// and Writer, and stays alive for as long as the handler runs, which is
// the connection's whole life when the handler goes on to read it: their
// 4 KiB buffers would cost 8 KiB per connection for nothing. The taken
// over connection is the caller's alone (net/http no longer uses them),
// so they get 16-byte buffers on a reader and a writer that fail.
func releaseHijacked(brw *bufio.ReadWriter) {
	if brw == nil {
		return
	}
	if brw.Reader != nil {
		*brw.Reader = *bufio.NewReaderSize(takenOver{}, 16)
	}
	if brw.Writer != nil {
		*brw.Writer = *bufio.NewWriterSize(takenOver{}, 16)
	}
}

// takenOver is the reader and writer of a released bufio.ReadWriter.
type takenOver struct{}

var errTakenOver = errors.New("websocket: the connection was taken over by Accept")

func (takenOver) Read([]byte) (int, error)  { return 0, errTakenOver }
func (takenOver) Write([]byte) (int, error) { return 0, errTakenOver }

// maxRequestSize bounds the opening request AcceptConn reads.
const maxRequestSize = 16 << 10

// AcceptConn performs the server side of the opening handshake on a raw
// connection, such as one from a net.Listener: it reads the request,
// answers it, and returns the connection with the request. ctx bounds
// the handshake only. On failure an error response has been written and
// nc is closed.
//
// The handshake runs on a short-lived goroutine of its own while the
// caller waits: parsing the request grows a goroutine's stack to 8 KiB,
// and the runtime does not give that back while the goroutine lives, so
// a caller that goes on to read the connection for its whole life would
// keep it. The caller's stack stays as small as what it does itself; the
// extra goroutine costs one or two microseconds and three allocations,
// against some 15 µs for the handshake itself (BenchmarkAcceptConn). A panic in OnHandshake is raised again in the caller, and a
// runtime.Goexit ends the caller too.
func AcceptConn(ctx context.Context, nc net.Conn, opts *AcceptOptions) (*Conn, *http.Request, error) {
	type result struct {
		c     *Conn
		r     *http.Request
		err   error
		panic any
		ok    bool // acceptConn returned
	}
	done := make(chan result, 1)
	go func() {
		var res result
		defer func() {
			if p := recover(); p != nil {
				res.panic = p
			}
			done <- res
		}()
		res.c, res.r, res.err = acceptConn(ctx, nc, opts)
		res.ok = true
	}()
	res := <-done
	switch {
	case res.panic != nil:
		panic(res.panic)
	case !res.ok:
		runtime.Goexit() // OnHandshake called it, as t.FailNow does
	}
	return res.c, res.r, res.err
}

// acceptConn is AcceptConn on the calling goroutine, for callers that
// hand the connection to a fresh goroutine anyway (Server).
func acceptConn(ctx context.Context, nc net.Conn, opts *AcceptOptions) (*Conn, *http.Request, error) {
	o := acceptDefaults(opts)
	stop := interruptOnDone(ctx, nc)
	br := bufio.NewReaderSize(&io.LimitedReader{R: nc, N: maxRequestSize}, 4096)
	r, err := http.ReadRequest(br)
	if err != nil {
		stop()
		nc.Close()
		return nil, nil, fmt.Errorf("websocket: read handshake request: %w", handshakeCause(ctx, err))
	}
	r.RemoteAddr = nc.RemoteAddr().String()
	hs, herr := negotiate(r, &o)
	if herr != nil {
		writeRawRefusal(nc, herr)
		stop()
		nc.Close()
		return nil, r, herr
	}
	var buffered []byte
	if n := br.Buffered(); n > 0 {
		buffered, _ = br.Peek(n)
	}
	_, err = nc.Write(hs.response)
	if !stop() || err != nil {
		hs.ext.Close()
		nc.Close()
		return nil, r, fmt.Errorf("websocket: write handshake response: %w", handshakeCause(ctx, err))
	}
	return newConn(nc, buffered, false, hs.version, hs.subprotocol, hs.ext, o.ConnOptions), r, nil
}

func acceptDefaults(opts *AcceptOptions) AcceptOptions {
	if opts == nil {
		return AcceptOptions{}
	}
	return *opts
}

// handshake is the server's decision on a valid request.
type handshake struct {
	version     int
	subprotocol string
	ext         extensions.Negotiated
	response    []byte      // the 101 response, over HTTP/1.1
	header      http.Header // the 200 response's extra fields, over HTTP/2
	stream      bool        // an HTTP/2 extended CONNECT
}

// negotiate checks r against o and builds the 101 response.
func negotiate(r *http.Request, o *AcceptOptions) (handshake, *HandshakeError) {
	u, herr := checkRequest(r)
	if herr != nil {
		return handshake{}, herr
	}
	if !o.InsecureSkipOriginCheck {
		if herr := checkOrigin(r, u.origin, o.OriginPatterns); herr != nil {
			return handshake{}, herr
		}
	}
	hs := handshake{version: u.version, subprotocol: selectSubprotocol(r.Header, o.Subprotocols), stream: u.stream}
	header := o.Header
	if o.OnHandshake != nil {
		header = o.Header.Clone()
		if header == nil {
			header = http.Header{}
		}
		if rej := o.OnHandshake(r, header); rej != nil {
			status := rej.Status
			if status == 0 {
				status = http.StatusForbidden
			}
			return handshake{}, &HandshakeError{Status: status, Reason: "rejected: " + rej.Body, header: rej.Header, body: &rej.Body}
		}
	}
	ext, err := extensions.ServerNegotiate(o.Extensions, r.Header.Values("Sec-WebSocket-Extensions"))
	switch {
	case errors.Is(err, extensions.ErrSyntax):
		return handshake{}, refuse(http.StatusBadRequest, err.Error())
	case err != nil:
		return handshake{}, refuse(http.StatusInternalServerError, err.Error())
	}
	hs.ext = ext
	if u.stream {
		hs.header = streamResponseHeader(hs.subprotocol, extensions.Format(ext.Accepted), header)
	} else {
		hs.response = appendResponse(nil, u.key, hs.subprotocol, extensions.Format(ext.Accepted), header)
	}
	return hs, nil
}

func writeRefusal(w http.ResponseWriter, e *HandshakeError) {
	for k, v := range e.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.Status)
	io.WriteString(w, e.responseBody())
}

func writeRawRefusal(nc net.Conn, e *HandshakeError) {
	body := e.responseBody()
	b := fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n",
		e.Status, http.StatusText(e.Status), len(body))
	for name, values := range e.header {
		b = appendField(b, name, values)
	}
	b = append(b, "\r\n"...)
	b = append(b, body...)
	nc.SetWriteDeadline(time.Now().Add(time.Second))
	nc.Write(b)
}

func (e *HandshakeError) responseBody() string {
	if e.body != nil {
		return *e.body
	}
	return e.Reason + "\n"
}

// interruptOnDone makes ctx's end interrupt I/O on nc until stop, which
// reports whether ctx had not ended by then. When it had, the callback
// may not have moved the deadline into the past yet, and may do so at any
// later moment: the caller must not use nc any more, and every caller
// closes it. So a handshake either hands over a connection whose
// deadline ctx never touched or fails.
func interruptOnDone(ctx context.Context, nc net.Conn) (stop func() bool) {
	if ctx.Done() == nil {
		return func() bool { return true }
	}
	return context.AfterFunc(ctx, func() { nc.SetDeadline(aLongTimeAgo) })
}

// handshakeCause reports ctx's error in place of the deadline it caused.
func handshakeCause(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		return errors.New("interrupted")
	}
	return err
}
