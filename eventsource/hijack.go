package eventsource

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// HijackMode tells Accept whether to take an HTTP/1.1 connection over
// from net/http and write the stream to it directly.
//
// A stream served through net/http keeps, for its whole life, the
// handler's goroutine, net/http's goroutine reading the connection in
// the background and its buffers: about 20 KiB per idle stream. On a
// hijacked connection the handler may return at once (see
// Stream.Hijacked); the stream then costs its own state and one small
// goroutine reading the connection, to see the client leave.
type HijackMode uint8

const (
	// HijackAuto hijacks an HTTP/1.1 connection whose ResponseWriter
	// allows it (through Unwrap, as http.ResponseController finds it),
	// and otherwise, over HTTP/2 or HTTP/1.0 or behind middleware that
	// hides http.Hijacker, writes through http.ResponseController.
	HijackAuto HijackMode = iota
	// HijackNever always writes through http.ResponseController, leaving
	// the connection to net/http, which then tracks it for
	// http.Server.Shutdown and Close.
	HijackNever
)

// String returns "auto" or "never".
func (m HijackMode) String() string {
	switch m {
	case HijackAuto:
		return "auto"
	case HijackNever:
		return "never"
	}
	return "HijackMode(" + strconv.Itoa(int(m)) + ")"
}

// hijack takes r's connection over from net/http when mode allows,
// and returns it, or nil when the stream is to be written through w.
// Nothing has been written to w yet.
func hijack(w http.ResponseWriter, r *http.Request, mode HijackMode) net.Conn {
	if mode != HijackAuto || r.ProtoMajor != 1 || r.ProtoMinor != 1 {
		return nil
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil
	}
	// The buffered reader and writer Hijack returns are dropped: what
	// the reader may hold past the request is a pipelined request,
	// which a stream never answers, and the writer is empty. The
	// server's ReadTimeout and WriteTimeout deadlines are for requests;
	// the stream sets its own.
	conn.SetDeadline(time.Time{})
	return conn
}

// responseHead returns the head of a hijacked stream's response: what
// net/http would have sent for h, with a chunked body (so that the
// client tells the end of the stream from a cut) and Connection: close,
// since the connection is not given back to net/http.
func responseHead(h http.Header) []byte {
	h.Set("Connection", "close")
	h.Set("Transfer-Encoding", "chunked")
	if _, ok := h["Date"]; !ok {
		h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\n")
	h.Write(&b)
	b.WriteString("\r\n")
	return b.Bytes()
}

// lastChunk ends a chunked body.
var lastChunk = []byte("0\r\n\r\n")

// lastChunkTimeout bounds the write of the last chunk where it cannot
// be tried without waiting (TLS), so that closing a stream whose client
// stopped reading does not wait for it.
const lastChunkTimeout = 50 * time.Millisecond

// connBufs are the buffers a hijacked stream assembles a write in: the
// chunk, its framing, and first the response head. Streams share them
// rather than keep one each, so an idle stream holds none.
var connBufs = sync.Pool{New: func() any { return new([]byte) }}

// writeConn writes p, then events, as one chunk, with one write, after
// the response head if it is still to be sent. A small chunk is
// assembled in a pooled buffer; a large one is written from where it
// lies (writev), as copying it would delay its first bytes.
func (s *Stream) writeConn(p []byte, events []*EncodedEvent) error {
	n := len(p)
	for _, e := range events {
		n += len(e.b)
	}
	if n > maxKeptBuffer {
		return s.writeConnv(n, p, events)
	}
	bp := connBufs.Get().(*[]byte)
	b := append((*bp)[:0], s.head...)
	if n > 0 {
		b = appendChunkSize(b, n)
		b = append(b, p...)
		for _, e := range events {
			b = append(b, e.b...)
		}
		b = append(b, '\r', '\n')
	}
	var err error
	if len(b) > 0 {
		_, err = s.conn.Write(b)
	}
	if err == nil {
		s.head = nil
	}
	*bp = b
	connBufs.Put(bp)
	return err
}

// writeConnv is writeConn for a chunk of n bytes, too large to copy.
func (s *Stream) writeConnv(n int, p []byte, events []*EncodedEvent) error {
	bufs := make(net.Buffers, 0, len(events)+3)
	bufs = append(bufs, appendChunkSize(s.head, n), p)
	for _, e := range events {
		bufs = append(bufs, e.b)
	}
	bufs = append(bufs, crlf)
	_, err := bufs.WriteTo(s.conn)
	if err == nil {
		s.head = nil
	}
	return err
}

var crlf = []byte("\r\n")

// appendChunkSize appends the line that starts a chunk of n bytes.
func appendChunkSize(b []byte, n int) []byte {
	b = strconv.AppendInt(b, int64(n), 16)
	return append(b, '\r', '\n')
}

// watchConn is a hijacked stream's reading goroutine: a client sends
// nothing on an event stream, so a read ends only when the client has
// gone away, or when the stream, ending, closed the connection.
func (s *Stream) watchConn() {
	var b [16]byte
	for {
		if _, err := s.conn.Read(b[:]); err != nil {
			s.end(newOpError("read", ErrClientGone, err))
			return
		}
	}
}

// endConn ends a hijacked stream's response, as net/http ends one when
// the handler returns: with the last chunk, so that the client sees a
// complete response, unless a write failed or the client left, or the
// connection cannot take it at once. Called with the write lock held.
func (s *Stream) endConn(cause error) {
	if !s.broken && s.head == nil && !errors.Is(cause, ErrClientGone) && !tryWrite(s.conn, lastChunk) {
		s.conn.SetWriteDeadline(time.Now().Add(lastChunkTimeout))
		s.conn.Write(lastChunk)
	}
	s.conn.Close()
}

// setWriteDeadline sets the deadline of the stream's writes.
func (s *Stream) setWriteDeadline(t time.Time) {
	if s.conn != nil {
		s.conn.SetWriteDeadline(t)
	} else {
		s.rc.SetWriteDeadline(t)
	}
}

// Hijacked reports whether the stream is written to a connection taken
// over from net/http (see HijackMode). The handler may then return at
// once: the stream no longer needs the ResponseWriter, and ends when the
// client goes away, a write fails, or Close is called. Its request's
// context then ends with the handler, not with the client, and
// http.Server.Shutdown and Close neither wait for the stream nor end it:
// close it, or have a Broker's or a realtime.Hub's shutdown do it.
func (s *Stream) Hijacked() bool { return s.conn != nil }
