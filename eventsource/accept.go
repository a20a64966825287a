package eventsource

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/realtime-go/realtime/internal/quote"
)

// Accept starts an event stream in answer to r. It sends the response
// head (200, Content-Type: text/event-stream; charset=utf-8,
// Cache-Control: no-cache, X-Accel-Buffering: no, Connection: keep-alive
// on HTTP/1.x only, and Options.Header), then the padding and retry
// lines if configured, and flushes them at once, so the client sees the
// stream open before the first event.
//
// Over HTTP/1.1 Accept takes the connection over from net/http when
// it can (see HijackMode and Options.Hijack): the stream then writes a
// chunked response to the connection itself, with Connection: close in
// the head, and the handler may return at once (see Stream.Hijacked).
// Otherwise, over HTTP/2 or HTTP/1.0, or behind middleware that hides
// the connection, writes and flushes go through
// http.ResponseController, which follows the Unwrap of middleware.
//
// If r is not an EventSource request (see IsEventSource), Accept answers
// 405 (not a GET) or 406 (text/event-stream not accepted) and returns an
// error wrapping ErrNotEventSource; if w cannot flush, it answers 500 and
// returns one wrapping ErrFlushUnsupported. Either way it has written the
// response.
//
// Unless the stream is hijacked, the handler must not return until the
// stream is done: the ResponseWriter is invalid after the handler
// returns. Block on
// [Stream.Done], and defer [Stream.Close] so that no send is in progress
// when the handler returns:
//
//	s, err := eventsource.Accept(w, r, nil)
//	if err != nil {
//		return
//	}
//	defer s.Close()
//	broker.Serve(r.Context(), s) // returns when the stream ends
func Accept(w http.ResponseWriter, r *http.Request, opts *Options) (*Stream, error) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "eventsource: method not allowed; use GET", http.StatusMethodNotAllowed)
		return nil, fmt.Errorf("%w: method %s", ErrNotEventSource, quote.Prefix(r.Method))
	}
	if !acceptsEventStream(r.Header) {
		http.Error(w, "eventsource: the Accept header must list text/event-stream", http.StatusNotAcceptable)
		return nil, fmt.Errorf("%w: Accept does not list text/event-stream", ErrNotEventSource)
	}
	o := opts.withDefaults()
	conn := hijack(w, r, o.Hijack)
	if conn == nil && !canFlush(w) {
		http.Error(w, "eventsource: streaming unsupported", http.StatusInternalServerError)
		return nil, ErrFlushUnsupported
	}
	s := newStream(w, r, &o, conn)
	setHeaders(w.Header(), r, opts)
	if conn != nil {
		s.head = responseHead(w.Header())
	} else {
		w.WriteHeader(http.StatusOK)
		if o.WriteTimeout < 0 {
			// Clear a deadline http.Server.WriteTimeout set for the whole
			// response; it would cut the stream however healthy.
			s.rc.SetWriteDeadline(time.Time{})
		}
	}
	var head []byte
	if o.Padding {
		head = appendComment(head, padding)
	}
	if o.Retry > 0 {
		head = appendRetry(head, o.Retry)
		head = append(head, '\n')
	}
	s.lockNow()
	err := s.writeLocked(context.Background(), head)
	s.unlock()
	if err != nil {
		return nil, err
	}
	s.start()
	return s, nil
}

// padding is 2 KiB of spaces, sent as a comment.
var padding = strings.Repeat(" ", 2048)

// setHeaders writes the response head's fields. Connection is a
// hop-by-hop field that HTTP/2 forbids, so it is only set on HTTP/1.x,
// where it tells HTTP/1.0 proxies not to close an idle stream.
func setHeaders(h http.Header, r *http.Request, opts *Options) {
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx would otherwise buffer the stream
	if opts != nil {
		for k, vs := range opts.Header {
			switch http.CanonicalHeaderKey(k) {
			case "Content-Type", "Connection", "Content-Length", "Transfer-Encoding":
				continue
			}
			h.Del(k)
			for _, v := range vs {
				h.Add(k, v)
			}
		}
	}
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Del("Content-Length")
	if r.ProtoMajor == 1 {
		h.Set("Connection", "keep-alive")
	} else {
		h.Del("Connection")
	}
}

// canFlush reports whether w, or a ResponseWriter it wraps, can flush.
// It follows Unwrap as http.ResponseController does, but answers before
// anything is written, so Accept can still send a 500.
func canFlush(w http.ResponseWriter) bool {
	for {
		switch t := w.(type) {
		case interface{ FlushError() error }:
			return true
		case http.Flusher:
			return true
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return false
		}
	}
}
