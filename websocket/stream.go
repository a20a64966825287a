package websocket

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/realtime-go/realtime/extensions"
	"github.com/realtime-go/realtime/internal/quote"
)

// streamConn is a net.Conn over an HTTP/2 stream (RFC 8441): reads come
// from one body, writes go to the other side's writer.
//
// HTTP/2 deadlines cannot serve as net.Conn deadlines: the server's
// SetReadDeadline closes the request body for good when it passes, and
// SetWriteDeadline resets the stream, while a Conn moves a deadline into
// the past to interrupt a call and expects the connection to survive.
// So a goroutine reads the body ahead, one chunk at a time, and Read
// waits for it under a deadline of its own; a write deadline ends the
// stream only when it interrupts a write under way, which would leave a
// frame half sent and close the Conn anyway.
type streamConn struct {
	body       io.ReadCloser
	write      func(p []byte) (int, error) // writes and flushes
	abortWrite func()                      // ends a blocked write, and the stream's sending side, for good
	closeWrite func() error                // ends the sending side after the close frame; nil when it cannot
	finish     func()                      // frees the stream once closed; may be nil
	closeGrace time.Duration               // how long Close lets a write under way finish
	local      net.Addr
	remote     net.Addr

	in       chan streamChunk // from pump
	consumed chan struct{}    // to pump: the chunk's buffer may be reused
	done     chan struct{}    // closed by Close
	pumped   chan struct{}    // closed when pump returns

	readMu sync.Mutex
	cur    []byte // the unread rest of the current chunk
	rerr   error  // the body's error, once cur is read

	writeMu sync.Mutex // held through a write, so Close can wait for it

	mu       sync.Mutex // guards what follows
	writing  bool
	aborted  bool
	isClosed bool

	rdl, wdl deadline
}

type streamChunk struct {
	b   []byte
	err error
}

// streamBufferSize is the size of the chunks the body is read in.
const streamBufferSize = 16 << 10

// streamCloseGrace is the closeGrace of a streamConn.
const streamCloseGrace = 100 * time.Millisecond

func newStreamConn(body io.ReadCloser, write func([]byte) (int, error), abortWrite func(), local, remote net.Addr) *streamConn {
	s := &streamConn{
		body:       body,
		write:      write,
		abortWrite: abortWrite,
		closeGrace: streamCloseGrace,
		local:      local,
		remote:     remote,
		in:         make(chan streamChunk),
		consumed:   make(chan struct{}),
		done:       make(chan struct{}),
		pumped:     make(chan struct{}),
	}
	s.rdl.init(nil)
	s.wdl.init(s.writeExpired)
	go s.pump()
	return s
}

// pump reads the body ahead of Read, which a deadline may then leave
// without harm to the stream.
func (s *streamConn) pump() {
	defer close(s.pumped)
	buf := make([]byte, streamBufferSize)
	for {
		n, err := s.body.Read(buf)
		select {
		case s.in <- streamChunk{buf[:n], err}:
		case <-s.done:
			return
		}
		if err != nil {
			return
		}
		select {
		case <-s.consumed:
		case <-s.done:
			return
		}
	}
}

func (s *streamConn) Read(p []byte) (int, error) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	for len(s.cur) == 0 {
		if s.rerr != nil {
			return 0, s.rerr
		}
		select {
		case <-s.done:
			return 0, s.opError("read", net.ErrClosed)
		default:
		}
		select {
		case c := <-s.in:
			s.cur = c.b
			if c.err != nil {
				s.rerr = c.err
				if c.err != io.EOF {
					s.rerr = s.opError("read", c.err)
				}
			} else if len(c.b) == 0 {
				s.release()
			}
		case <-s.rdl.wait():
			return 0, s.opError("read", os.ErrDeadlineExceeded)
		case <-s.done:
			return 0, s.opError("read", net.ErrClosed)
		}
	}
	n := copy(p, s.cur)
	s.cur = s.cur[n:]
	if len(s.cur) == 0 && s.rerr == nil {
		s.release()
	}
	return n, nil
}

// release hands the chunk's buffer back to pump.
func (s *streamConn) release() {
	s.cur = nil
	select {
	case s.consumed <- struct{}{}:
	case <-s.done:
	}
}

func (s *streamConn) Write(p []byte) (int, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	switch {
	case s.isClosed:
		s.mu.Unlock()
		return 0, s.opError("write", net.ErrClosed)
	case s.aborted, isClosedChan(s.wdl.wait()):
		s.mu.Unlock()
		return 0, s.opError("write", os.ErrDeadlineExceeded)
	}
	s.writing = true
	s.mu.Unlock()
	n, err := s.write(p)
	s.mu.Lock()
	s.writing = false
	aborted := s.aborted
	s.mu.Unlock()
	if err != nil {
		if aborted {
			err = os.ErrDeadlineExceeded
		}
		return n, s.opError("write", err)
	}
	return n, nil
}

// writeExpired interrupts the write under way, if any, when the write
// deadline passes.
func (s *streamConn) writeExpired() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writing && !s.aborted {
		s.aborted = true
		s.abortWrite()
	}
}

// CloseWrite ends the sending side, so that the peer reads the end of
// the stream after our close frame.
func (s *streamConn) CloseWrite() error {
	if s.closeWrite == nil {
		return nil
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.closeWrite()
}

// Close ends both directions and waits for the write under way and the
// reading goroutine, so that nothing touches the stream, which may end
// as soon as Close returns, any more.
//
// A write under way gets closeGrace to finish before it is aborted: it
// is most often a flush whose data has gone already, and aborting it
// would reset the stream (RST_STREAM with INTERNAL_ERROR from net/http's
// server) that a closing handshake just ended cleanly. One that flow
// control holds, because the peer reads nothing, is aborted then.
func (s *streamConn) Close() error {
	s.mu.Lock()
	if s.isClosed {
		s.mu.Unlock()
		return nil
	}
	s.isClosed = true
	var grace *time.Timer
	if s.writing && !s.aborted {
		grace = time.AfterFunc(s.closeGrace, s.writeExpired)
	}
	s.mu.Unlock()
	close(s.done)
	s.body.Close()
	s.writeMu.Lock()
	if grace != nil {
		grace.Stop()
	}
	if s.closeWrite != nil {
		s.closeWrite()
	}
	s.writeMu.Unlock()
	<-s.pumped
	s.rdl.set(time.Time{})
	s.wdl.set(time.Time{})
	if s.finish != nil {
		s.finish()
	}
	return nil
}

func (s *streamConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: s.local.Network(), Source: s.local, Addr: s.remote, Err: err}
}

func (s *streamConn) LocalAddr() net.Addr  { return s.local }
func (s *streamConn) RemoteAddr() net.Addr { return s.remote }

func (s *streamConn) SetDeadline(t time.Time) error {
	s.rdl.set(t)
	s.wdl.set(t)
	return nil
}

func (s *streamConn) SetReadDeadline(t time.Time) error {
	s.rdl.set(t)
	return nil
}

func (s *streamConn) SetWriteDeadline(t time.Time) error {
	s.wdl.set(t)
	return nil
}

// deadline is a channel closed when a time passes, which can be moved
// back and forth, as net.Pipe's deadlines.
type deadline struct {
	mu      sync.Mutex
	timer   *time.Timer
	expired chan struct{}
	onPass  func() // called once the deadline passes; may be nil
}

func (d *deadline) init(onPass func()) {
	d.expired = make(chan struct{})
	d.onPass = onPass
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.expired // the callback is closing it
	}
	d.timer = nil
	passed := isClosedChan(d.expired)
	if passed {
		d.expired = make(chan struct{})
	}
	if t.IsZero() {
		d.mu.Unlock()
		return
	}
	if dur := time.Until(t); dur > 0 {
		ch := d.expired
		d.timer = time.AfterFunc(dur, func() {
			close(ch)
			if d.onPass != nil {
				d.onPass()
			}
		})
		d.mu.Unlock()
		return
	}
	close(d.expired)
	d.mu.Unlock()
	if d.onPass != nil {
		d.onPass()
	}
}

func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.expired
}

func isClosedChan(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// streamAddr is the address of an end of a stream that net/http does
// not describe with a net.Addr.
type streamAddr string

func (a streamAddr) Network() string { return "tcp" }
func (a streamAddr) String() string  { return string(a) }

// streamResponseHeader returns the fields of the 200 response to an
// extended CONNECT.
func streamResponseHeader(protocol, extensions string, extra http.Header) http.Header {
	h := http.Header{}
	for name, values := range extra {
		if !handshakeField(name) {
			h[http.CanonicalHeaderKey(name)] = append([]string(nil), values...)
		}
	}
	if protocol != "" {
		h.Set("Sec-WebSocket-Protocol", protocol)
	}
	if extensions != "" {
		h.Set("Sec-WebSocket-Extensions", extensions)
	}
	return h
}

// acceptStream answers an extended CONNECT and makes the connection over
// its stream.
func acceptStream(w http.ResponseWriter, r *http.Request, hs handshake, o *AcceptOptions) (*Conn, error) {
	for name, values := range hs.header {
		w.Header()[name] = values
	}
	rc := http.NewResponseController(w)
	// Reading the body while the response streams needs full duplex on
	// HTTP/1.1 only; HTTP/2 always has it, so the error is not one.
	_ = rc.EnableFullDuplex()
	// The server's ReadTimeout and WriteTimeout would end the stream.
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		hs.ext.Close()
		return nil, &net.OpError{Op: "write", Net: "tcp", Addr: streamAddr(r.RemoteAddr), Err: err}
	}
	var local net.Addr = streamAddr("")
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		local = a
	}
	write := func(p []byte) (int, error) {
		n, err := w.Write(p)
		if err == nil {
			err = rc.Flush()
		}
		return n, err
	}
	abort := func() { rc.SetWriteDeadline(aLongTimeAgo) }
	s := newStreamConn(r.Body, write, abort, local, streamAddr(r.RemoteAddr))
	return newConn(s, nil, false, hs.version, hs.subprotocol, hs.ext, o.ConnOptions), nil
}

// NewClientHTTP2 performs the client side of the opening handshake of
// RFC 8441: it sends an HTTP/2 extended CONNECT for u through rt and runs
// the connection over the request's stream. rt must speak HTTP/2 and
// send extended CONNECT, as golang.org/x/net/http2.Transport does (Go's
// http.Transport refuses the :protocol field); several connections made
// through one rt share its HTTP/2 connections. ctx bounds the handshake
// only. The options are those of [NewClient], but Version must be 13.
//
// The response is returned whenever one came. A status other than 2xx,
// or fields the client cannot accept, fail with an error wrapping
// ErrBadHandshake, and the response's Body holds the first 1 KiB of the
// server's body. A server that does not allow extended CONNECT fails
// with rt's error ("extended connect not supported by peer" from
// x/net/http2), before any request is sent: the caller may then dial
// HTTP/1.1.
//
// Such a connection reads through a goroutine of its own, which ends
// when it closes.
func NewClientHTTP2(ctx context.Context, rt http.RoundTripper, u *url.URL, opts *ClientOptions) (*Conn, *http.Response, error) {
	var o ClientOptions
	if opts != nil {
		o = *opts
	}
	if o.Version != 0 && o.Version != 13 {
		return nil, nil, fmt.Errorf("websocket: version %d over HTTP/2", o.Version)
	}
	target := *u
	switch u.Scheme {
	case "wss", "https":
		target.Scheme = "https"
	case "ws", "http":
		target.Scheme = "http"
	default:
		return nil, nil, fmt.Errorf("websocket: unsupported URL scheme %q", u.Scheme)
	}
	target.User = nil
	// The stream lives as long as its request's context: ctx may only
	// cut the handshake short.
	life, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, cancel)
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(life, http.MethodConnect, target.String(), pr)
	if err != nil {
		stop()
		cancel()
		return nil, nil, fmt.Errorf("websocket: %w", err)
	}
	req.Header = streamRequestHeader(u, &o)
	req.Host = o.Host
	resp, err := rt.RoundTrip(req)
	if !stop() || err != nil {
		cancel()
		pw.Close()
		if err == nil {
			resp.Body.Close()
			return nil, nil, fmt.Errorf("websocket: handshake: %w", ctx.Err())
		}
		return nil, nil, fmt.Errorf("websocket: handshake: %w", handshakeCause(ctx, err))
	}
	var protocol string
	var ext extensions.Negotiated
	if resp.StatusCode/100 != 2 {
		err = refuse(resp.StatusCode, "server answered "+quote.Prefix(resp.Status))
	} else if protocol, err = checkSubprotocol(resp, o.Subprotocols); err == nil {
		ext, err = activateExtensions(resp, o.Extensions)
	}
	if err != nil {
		keepRefusedBody(resp)
		pw.Close()
		cancel()
		return nil, resp, err
	}
	abort := func() { pw.CloseWithError(os.ErrDeadlineExceeded) }
	s := newStreamConn(resp.Body, pw.Write, abort, streamAddr(""), streamAddr(u.Host))
	s.closeWrite = pw.Close
	s.finish = cancel
	return newConn(s, nil, true, 13, protocol, ext, o.ConnOptions), resp, nil
}

// streamRequestHeader returns the fields of an extended CONNECT.
func streamRequestHeader(u *url.URL, o *ClientOptions) http.Header {
	h := http.Header{}
	for name, values := range o.Header {
		if !handshakeField(name) {
			h[http.CanonicalHeaderKey(name)] = append([]string(nil), values...)
		}
	}
	h[":protocol"] = []string{"websocket"}
	h.Set("Sec-WebSocket-Version", "13")
	if o.Origin != "" {
		h.Set("Origin", o.Origin)
	}
	if len(o.Extensions) > 0 {
		h.Set("Sec-WebSocket-Extensions", extensions.Format(extensions.ClientOffers(o.Extensions)))
	}
	if len(o.Subprotocols) > 0 {
		h.Set("Sec-WebSocket-Protocol", strings.Join(o.Subprotocols, ", "))
	}
	if u.User != nil && h.Get("Authorization") == "" {
		pass, _ := u.User.Password()
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pass)))
	}
	return h
}
