package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/realtime-go/realtime/eventsource"
	"github.com/realtime-go/realtime/internal/quote"
	"github.com/realtime-go/realtime/proxy"
)

// DefaultRetry is the EventSourceOptions.Retry used when it is zero,
// the reconnection time until the server sets one with "retry:".
const DefaultRetry = 3 * time.Second

const (
	// maxResponseHeader bounds the status line and header of an
	// EventSource response.
	maxResponseHeader = 64 << 10

	// maxErrorBody bounds the body kept from a refused response.
	maxErrorBody = 1 << 10

	// minBackoffStep is where backoff starts doubling when nothing
	// floors the wait and the server asked for an immediate
	// reconnection.
	minBackoffStep = 100 * time.Millisecond
)

// EventSourceOptions configures an EventSource. A nil
// *EventSourceOptions means the zero value, which behaves like a
// browser's EventSource, with a floor, backoff and jitter on the wait to
// reconnect and an idle watchdog added.
type EventSourceOptions struct {
	// Method is the request method; "" means GET. APIs that stream
	// answers as server-sent events often want POST with a Body.
	//
	// Only a GET is sent again to reconnect. A request with another
	// method is sent once: when its stream ends or breaks, the
	// EventSource stops (Next returns io.EOF after a clean end of
	// stream), since repeating a POST may repeat what it did. It is
	// still retried when it could not be sent at all (the error is a
	// *DialError). RepeatNonGet makes it reconnect as a GET does.
	Method string

	// RepeatNonGet makes an EventSource whose Method is not GET send its
	// request again, Body included, after every end of stream and every
	// failure, as it does for a GET. Set it only when repeating the
	// request is harmless.
	RepeatNonGet bool

	// Body is sent with the request (and with every repetition of it,
	// see RepeatNonGet). Set its Content-Type in Header.
	Body []byte

	// Header holds header fields for these requests, on top of
	// Dialer.Header. Accept defaults to text/event-stream and
	// Cache-Control to no-cache; Last-Event-ID is the EventSource's own.
	Header http.Header

	// LastEventID is sent as Last-Event-ID with the first request, to
	// resume a stream that an earlier EventSource read.
	LastEventID string

	// Retry is the reconnection time until the server sends "retry:".
	// 0 means DefaultRetry.
	Retry time.Duration

	// MinDelay is the floor of the wait before reconnecting: a server's
	// "retry:" below it (such as "retry: 0") waits MinDelay instead, so
	// that a misbehaving server cannot make the client reconnect in a
	// tight loop. A reconnection time above it is honoured. 0 means
	// DefaultMinDelay; a negative value sets no floor.
	MinDelay time.Duration

	// MaxDelay bounds the backoff: every connection attempt in a row
	// that delivers no event doubles the wait before the next, up to
	// MaxDelay (never below the reconnection time the server asked
	// for). 0 means DefaultMaxDelay; a negative value turns backoff off,
	// as in browsers: always wait the reconnection time.
	//
	// Whatever the wait, a random part of up to half of it is added
	// (jitter), so that clients that lost the same server do not all
	// come back at the same moment.
	MaxDelay time.Duration

	// IdleTimeout is the idle watchdog: a connection on which nothing
	// arrives for that long, not even a comment, is dropped and a new
	// one made. Keep it a few times above the server's heartbeat
	// (eventsource.DefaultHeartbeat is 15 s). 0 means
	// DefaultIdleTimeout; a negative value means no watchdog, as in
	// browsers: a silent dead connection then waits forever.
	IdleTimeout time.Duration

	// MaxEventSize bounds one event, in bytes (see
	// eventsource.DecoderOptions). A larger event stops the EventSource
	// for good with an error wrapping eventsource.ErrEventTooLarge:
	// reconnecting would meet it again. 0 means
	// eventsource.DefaultMaxEventSize; a negative value means no limit.
	MaxEventSize int64

	// OnOpen, when set, is called with the response of each connection
	// that opened, before its events are read. It must not read the
	// body.
	OnOpen func(resp *http.Response)

	// OnRetry, when set, is called before each wait to reconnect, with
	// why the connection ended (io.EOF for a clean end of stream) and
	// how long the wait will be.
	OnRetry func(err error, delay time.Duration)
}

// EventSource is a client of a server-sent events stream: it connects,
// reads events, and reconnects after network errors and after the
// stream ends, sending the last event id seen as Last-Event-ID, as a
// browser's EventSource does (WHATWG HTML §9.2). It stops for good when
// the server answers 204 No Content, any other status but 200 (after
// redirects, which it follows), or a content type other than
// text/event-stream, and when an event is larger than allowed.
//
// Its requests go through net/http (see Dialer.HTTPClient): they speak
// HTTP/2 with an origin that offers it by ALPN, and a reconnection
// reuses the connection when the stream ended cleanly, or shares it
// over HTTP/2.
//
// An EventSource runs one goroutine, which owns the stream: it
// connects, reads, and waits to reconnect. Events are handed over one at
// a time, so a slow reader slows down the stream rather than buffering
// it. OnOpen and OnRetry run on that goroutine, and must not call Close.
// The goroutine ends when the EventSource stops; Close stops it and
// returns after it has ended.
//
// All methods are safe for concurrent use; concurrent calls to Next
// receive different events.
type EventSource struct {
	d    Dialer
	url  *url.URL
	opts EventSourceOptions

	ctx    context.Context
	cancel context.CancelFunc
	events chan eventsource.Event
	done   chan struct{}

	mu     sync.Mutex
	lastID string
	err    error // the final error, set before done is closed

	// The run goroutine's own: the reconnection time, and the id to
	// resume from, which may run ahead of lastID by an event that is
	// waiting to be handed over.
	retry    time.Duration
	resumeID string

	// client makes the requests; fwd, once made, is the one of the
	// Dialer in forward mode. ours: they are the Dialer's own, not
	// Dialer.HTTPClient's, and the EventSource closes their idle
	// connections when it stops.
	client, fwd *http.Client
	ours        bool

	// forward reports that the last request open made went to the proxy
	// in forward mode; tunnelErr is the refused CONNECT that made the
	// EventSource switch to forward mode.
	forward   bool
	tunnelErr error
}

// EventSource starts reading the server-sent events stream at rawURL
// (http:// or https://), with the proxies, TLS settings, header, cookie
// jar, HTTP client and handshake timeout of d, following redirects as
// Dialer.MaxRedirects says of EventSource requests. It returns at once;
// the first connection is made in the background. An error means a
// malformed URL or options.
//
// When the proxy refuses to tunnel to an http:// URL with CONNECT by
// policy (a 4xx other than 401, 407, 408 and 429), as proxies that
// tunnel to port 443 only do, the EventSource sends its requests to the
// proxy in forward mode from then on, as a browser does (see
// Dialer.ForwardProxy).
//
// The caller must call Close when done, unless the EventSource has
// stopped on its own (Next returned an error other than its ctx's).
func (d *Dialer) EventSource(rawURL string, opts *EventSourceOptions) (*EventSource, error) {
	u, err := parseURL(rawURL, "http", "https")
	if err != nil {
		return nil, err
	}
	var o EventSourceOptions
	if opts != nil {
		o = *opts
	}
	if o.Method == "" {
		o.Method = http.MethodGet
	}
	if !validToken(o.Method) {
		return nil, fmt.Errorf("client: invalid method %q", o.Method)
	}
	o.Header = cloneHeader(o.Header)
	o.Body = bytes.Clone(o.Body)
	if o.Retry <= 0 {
		o.Retry = DefaultRetry
	}
	switch {
	case o.MinDelay == 0:
		o.MinDelay = DefaultMinDelay
	case o.MinDelay < 0:
		o.MinDelay = 0
	}
	if o.MaxDelay == 0 {
		o.MaxDelay = max(DefaultMaxDelay, o.MinDelay)
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	es := &EventSource{
		d:        d.clone(),
		url:      u,
		opts:     o,
		events:   make(chan eventsource.Event),
		done:     make(chan struct{}),
		lastID:   o.LastEventID,
		retry:    o.Retry,
		resumeID: o.LastEventID,
	}
	es.client, es.ours = es.d.newHTTPClient()
	es.ctx, es.cancel = context.WithCancel(context.Background())
	go es.run()
	return es, nil
}

// Next returns the next event. If ctx ends first, Next returns ctx's
// error and the EventSource goes on. Once the EventSource has stopped,
// Next returns why: io.EOF or the error that broke the stream of a
// request that is not repeated (see EventSourceOptions.Method), a
// *ResponseError, an error wrapping
// eventsource.ErrEventTooLarge, one matching proxy.ErrAuth, a
// *DialError that retrying cannot cure, or, after Close, an error
// matching net.ErrClosed.
func (es *EventSource) Next(ctx context.Context) (eventsource.Event, error) {
	select {
	case ev := <-es.events:
		// Set here rather than by the goroutine, which may already hold
		// the next event: LastEventID must not name an event that no
		// caller has had.
		es.mu.Lock()
		es.lastID = ev.ID
		es.mu.Unlock()
		return ev, nil
	case <-es.done:
		return eventsource.Event{}, es.Err()
	case <-ctx.Done():
		return eventsource.Event{}, ctx.Err()
	}
}

// All returns an iterator over the events, for range loops. It yields
// each event with a nil error; on the first error from Next it yields a
// zero Event and that error, and ends.
func (es *EventSource) All(ctx context.Context) iter.Seq2[eventsource.Event, error] {
	return func(yield func(eventsource.Event, error) bool) {
		for {
			ev, err := es.Next(ctx)
			if !yield(ev, err) || err != nil {
				return
			}
		}
	}
}

// LastEventID returns the id of the last event Next returned (the
// stream's last event id when it was dispatched), or
// EventSourceOptions.LastEventID before the first: what a later
// EventSource may resume from. Reconnections send the id of the last
// event read, which is the same unless an event is waiting for Next.
func (es *EventSource) LastEventID() string {
	es.mu.Lock()
	defer es.mu.Unlock()
	return es.lastID
}

// Done returns a channel that is closed when the EventSource has
// stopped, on its own or by Close.
func (es *EventSource) Done() <-chan struct{} { return es.done }

// Err returns why the EventSource stopped, or nil while it runs.
func (es *EventSource) Err() error {
	es.mu.Lock()
	defer es.mu.Unlock()
	return es.err
}

// Close stops the EventSource: it drops the connection or the wait to
// reconnect, and returns once the goroutine has ended. Later calls to
// Next return an error matching net.ErrClosed, unless the EventSource
// had already stopped on its own.
func (es *EventSource) Close() error {
	es.cancel()
	<-es.done
	return nil
}

func (es *EventSource) run() {
	err := es.loop()
	es.mu.Lock()
	es.err = err
	es.mu.Unlock()
	es.cancel()
	if es.ours {
		es.client.CloseIdleConnections()
		if es.fwd != nil {
			es.fwd.CloseIdleConnections()
		}
	}
	close(es.done)
}

func (es *EventSource) loop() error {
	quiet := 0 // connection attempts in a row that delivered no event
	for {
		delivered, err := es.attempt()
		if es.ctx.Err() != nil {
			return closedError{}
		}
		if isFinal(err) {
			return err
		}
		if err == nil {
			err = io.EOF
		}
		var de *DialError
		if !es.repeats() && !errors.As(err, &de) {
			// The request went out: sending it again could do again
			// what it did.
			return err
		}
		if delivered {
			quiet = 0
		}
		quiet++
		delay := es.delay(quiet)
		if es.opts.OnRetry != nil {
			es.opts.OnRetry(err, delay)
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-es.ctx.Done():
			t.Stop()
			return closedError{}
		}
	}
}

// repeats reports whether the request may be sent again once it was
// sent: a GET, or any method with RepeatNonGet.
func (es *EventSource) repeats() bool {
	return es.opts.Method == http.MethodGet || es.opts.RepeatNonGet
}

// delay returns the wait before the next attempt, after quiet attempts
// in a row without an event: the reconnection time, at least MinDelay,
// doubled for every quiet attempt after the first up to MaxDelay, plus
// up to half again at random.
func (es *EventSource) delay(quiet int) time.Duration {
	base := max(es.retry, es.opts.MinDelay)
	d := base
	if limit := es.opts.MaxDelay; limit > 0 && quiet > 1 {
		if d <= 0 {
			d = minBackoffStep / 2 // so the second attempt waits minBackoffStep
		}
		d = max(base, doubled(d, limit, quiet-1))
	}
	if d > math.MaxInt64/3*2 {
		return d // jitter would overflow, and matters no more
	}
	return d + rand.N(d/2+1)
}

// attempt makes one connection and reads it to its end. It reports
// whether any event was handed over; a nil error means a clean end of
// stream.
func (es *EventSource) attempt() (delivered bool, err error) {
	st, err := es.open(es.ctx)
	if err != nil {
		return false, err
	}
	defer st.close()
	if es.opts.OnOpen != nil {
		es.opts.OnOpen(st.resp)
	}
	dec := eventsource.NewDecoder(st, &eventsource.DecoderOptions{
		MaxEventSize: es.opts.MaxEventSize,
		LastEventID:  es.resumeID,
	})
	for {
		ev, err := dec.Next()
		if r, ok := dec.Retry(); ok {
			es.retry = r
		}
		// Blank lines that dispatch nothing may change the id too.
		es.resumeID = dec.LastEventID()
		if err == io.EOF {
			return delivered, nil
		}
		if err != nil {
			return delivered, err
		}
		select {
		case es.events <- ev:
			delivered = true
		case <-es.ctx.Done():
			return delivered, closedError{}
		}
	}
}

// open sends the request, which lives as long as es.ctx; bound and the
// Dialer's HandshakeTimeout bound it until the response header has come.
// It returns the stream of a 200 text/event-stream response, after
// redirects; any other answer is a *ResponseError.
func (es *EventSource) open(bound context.Context) (*stream, error) {
	st, err := es.request(bound)
	if err != nil && es.ours && es.url.Scheme == "http" && !es.d.ForwardProxy && tunnelRefused(err) {
		// Corporate proxies often tunnel to port 443 only; a browser
		// sends http:// requests to them in forward mode, and so does
		// this EventSource from now on.
		es.d.ForwardProxy = true
		es.tunnelErr = err
		if es.fwd == nil {
			es.fwd, _ = es.d.newHTTPClient()
			es.client.CloseIdleConnections()
		}
		es.client = es.fwd
		st, err = es.request(bound)
	}
	return st, err
}

// request makes one request, with the EventSource's header fields and
// its last event id, and checks the answer.
func (es *EventSource) request(bound context.Context) (*stream, error) {
	u := es.url
	h := cloneHeader(es.d.Header)
	for k, v := range es.opts.Header {
		h[k] = v
	}
	if h.Get("Accept") == "" {
		h.Set("Accept", "text/event-stream")
	}
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-cache")
	}
	h.Del("Last-Event-ID")
	if id := es.resumeID; id != "" {
		h.Set("Last-Event-ID", id)
	}
	withUserinfo(h, u)
	var body io.Reader
	if len(es.opts.Body) > 0 {
		body = bytes.NewReader(es.opts.Body)
	}
	req, err := http.NewRequestWithContext(es.ctx, es.opts.Method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("client: EventSource request to %s: %w", u.Redacted(), err)
	}
	req.Header = h
	resp, cancel, err := es.d.roundTrip(es.client, req, bound, "client: EventSource request")
	if err != nil {
		return nil, err
	}
	if es.ours {
		pu, _ := es.d.forwardProxy(resp.Request.URL)
		es.forward = pu != nil
	}
	var reason string
	switch ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); {
	case resp.StatusCode == http.StatusNoContent:
		reason = "204 No Content: the server asked the client to stop"
	case resp.StatusCode != http.StatusOK:
		code := strconv.Itoa(resp.StatusCode)
		reason = "status " + code + " " + quote.Prefix(strings.TrimPrefix(resp.Status, code+" "))
	case ct != "text/event-stream":
		reason = "content type " + quote.Prefix(resp.Header.Get("Content-Type")) + ", want text/event-stream"
	}
	if reason != "" {
		readError(resp)
		cancel()
		return nil, &ResponseError{StatusCode: resp.StatusCode, Response: resp, Reason: reason}
	}
	st := &stream{resp: resp, cancel: cancel}
	if es.opts.IdleTimeout > 0 {
		st.wd = &watchdog{idle: es.opts.IdleTimeout}
		st.wd.start(cancel)
		st.wd.pause()
	}
	return st, nil
}

// stream is the body of an open event stream, read with the idle
// watchdog, which ends the request when a read waits longer than its
// time. Only its owner reads and closes it; cancel, which ends the
// request, may be called by any goroutine.
type stream struct {
	resp   *http.Response
	cancel context.CancelFunc
	wd     *watchdog // nil: none
}

func (st *stream) Read(p []byte) (int, error) {
	st.wd.kick()
	n, err := st.resp.Body.Read(p)
	st.wd.pause()
	if err != nil && st.wd.expired() {
		err = idleTimeoutError(st.wd.idle)
	}
	return n, err
}

// close ends the request and lets go of its connection.
func (st *stream) close() {
	st.cancel()
	st.resp.Body.Close()
	st.wd.stop()
}

// finalError marks an error after which reconnecting cannot help.
type finalError struct{ error }

func (e finalError) Unwrap() error { return e.error }

// isFinal reports whether err stops an EventSource for good, rather than
// make it reconnect.
func isFinal(err error) bool {
	if err == nil {
		return false
	}
	var re *ResponseError
	var de *DialError
	var fe finalError
	var pe *proxy.Error
	var cve *tls.CertificateVerificationError
	var fre *FrameError
	switch {
	case errors.As(err, &re), errors.As(err, &fe), errors.As(err, &cve), errors.As(err, &fre):
		return true
	case errors.As(err, &de) && de.final:
		return true
	case errors.Is(err, eventsource.ErrEventTooLarge), errors.Is(err, proxy.ErrAuth):
		return true
	case errors.As(err, &pe):
		return refusedByPolicy(pe)
	}
	return false
}

// tunnelRefused reports whether err is a proxy's refusal by policy of a
// CONNECT, after which forward mode may get through.
func tunnelRefused(err error) bool {
	var pe *proxy.Error
	return errors.As(err, &pe) && pe.Op == "connect" && refusedByPolicy(pe)
}

// refusedByPolicy reports whether the proxy refused a connection by its
// rules, which retrying will not change: a 4xx but 408 and 429, which
// may pass, and the credentials' 401 and 407.
func refusedByPolicy(pe *proxy.Error) bool {
	return pe.Status >= 400 && pe.Status < 500 && pe.Status != http.StatusRequestTimeout && pe.Status != http.StatusTooManyRequests && !errors.Is(pe, proxy.ErrAuth)
}

// withCtxCause puts ctx's error in front of err when ctx ended: an I/O
// error caused by the interruption says less than "context canceled".
func withCtxCause(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// validToken reports whether s is an HTTP token (RFC 9110 §5.6.2).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}
