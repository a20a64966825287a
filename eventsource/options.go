package eventsource

import (
	"net/http"
	"time"
)

// Defaults for Options fields left zero.
const (
	// DefaultHeartbeat is the idle time after which a stream sends a
	// comment line. The WHATWG authoring notes suggest about 15 s, which
	// is shorter than the idle timeouts of common proxies.
	DefaultHeartbeat = 15 * time.Second

	// DefaultWriteTimeout bounds one write to a client. A healthy client
	// takes an event in well under a second; 10 s tolerates a congested
	// mobile link yet frees a stalled stream's goroutine promptly.
	DefaultWriteTimeout = 10 * time.Second

	// DefaultLastEventIDParam is the query parameter Accept reads a last
	// event id from when the request has no Last-Event-ID header. It is
	// the name EventSource polyfills use.
	DefaultLastEventIDParam = "lastEventId"
)

// Options configures a stream. A nil *Options means the zero value, and
// every zero field means its documented default. Accept copies what it
// needs; later changes do not affect the stream.
type Options struct {
	// Retry, when positive, is sent at the start of the stream as the
	// time a client should wait before reconnecting (in milliseconds).
	// Zero leaves the client's default, a few seconds in browsers.
	Retry time.Duration

	// Heartbeat is the idle time after which the stream sends a comment
	// line, so that proxies do not cut a quiet connection and clients
	// with an idle watchdog see it is alive. Every write restarts the
	// wait. 0 means DefaultHeartbeat; a negative value sends none.
	Heartbeat time.Duration

	// WriteTimeout bounds each write, flush included: a client that
	// stops reading ends the stream with ErrWriteTimeout instead of
	// holding the writer forever. It replaces http.Server.WriteTimeout
	// for the stream's response. 0 means DefaultWriteTimeout; a negative
	// value disables the bound (and also clears the server's).
	WriteTimeout time.Duration

	// Header fields are added to the response. They may replace
	// Cache-Control and X-Accel-Buffering; Content-Type and Connection
	// are the stream's own.
	Header http.Header

	// LastEventIDParam names the query parameter that carries a last
	// event id when the Last-Event-ID header is absent. Browsers cannot
	// set the header on their first connection, so pages that resume
	// across reloads put the id in the URL. "" means
	// DefaultLastEventIDParam.
	LastEventIDParam string

	// Padding sends a 2 KiB comment first. Some old EventSource
	// polyfills (for Internet Explorer and old Android browsers) only
	// see data once that much has arrived. Modern clients do not need
	// it.
	Padding bool

	// Hijack chooses whether the stream takes an HTTP/1.1 connection over
	// from net/http. The zero value, HijackAuto, does when the
	// ResponseWriter allows it; HijackNever keeps the connection with
	// net/http, for servers that rely on http.Server.Shutdown to wait
	// for the streams.
	Hijack HijackMode
}

func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.LastEventIDParam == "" {
		c.LastEventIDParam = DefaultLastEventIDParam
	}
	c.Header = nil // applied once by Accept; not retained
	return c
}
