package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/realtime-go/realtime/eventsource"
	"github.com/realtime-go/realtime/internal/ctxio"
	"github.com/realtime-go/realtime/internal/quote"
	"github.com/realtime-go/realtime/proxy"
)

// DefaultRetry is the EventSourceOptions.Retry used when it is zero,
// the reconnection time until the server sets one with "retry:".
const DefaultRetry = 3 * time.Second

const (
	// maxRedirects bounds the redirects followed by one connection
	// attempt, as browsers and net/http do.
	maxRedirects = 10

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
// An EventSource runs one goroutine, which owns the connection: it
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

	// The reader of the last connection open made, whose idle
	// watchdog a Socket adjusts to the heartbeat its server announces.
	cr *connReader

	// forward reports that the last request open made went to the proxy
	// in forward mode; tunnelErr is the refused CONNECT that made the
	// EventSource switch to forward mode.
	forward   bool
	tunnelErr error
}

// EventSource starts reading the server-sent events stream at rawURL
// (http:// or https://), with the proxies, TLS settings, header, cookie
// jar and handshake timeout of d. It returns at once; the first
// connection is made in the background. An error means a malformed URL
// or options.
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

// malformedResponse bounds the error of http.ReadResponse, which quotes
// the whole malformed line, when the response itself was at fault.
func malformedResponse(ctx context.Context, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || ctx.Err() != nil {
		return err
	}
	return errors.New("malformed response: " + quote.Error(err))
}

// attempt makes one connection and reads it to its end. It reports
// whether any event was handed over; a nil error means a clean end of
// stream.
func (es *EventSource) attempt() (delivered bool, err error) {
	resp, nc, err := es.open()
	if err != nil {
		return false, err
	}
	defer nc.Close()
	// Close interrupts a read by closing the connection, which this
	// attempt is done with anyway.
	stop := context.AfterFunc(es.ctx, func() { nc.Close() })
	defer stop()
	if es.opts.OnOpen != nil {
		es.opts.OnOpen(resp)
	}
	dec := eventsource.NewDecoder(resp.Body, &eventsource.DecoderOptions{
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

// open connects and sends the request, following redirects, and returns
// a response whose body is the event stream.
func (es *EventSource) open() (*http.Response, net.Conn, error) {
	ctx, cancel := es.d.attemptContext(es.ctx)
	defer cancel()
	u, method, body := es.url, es.opts.Method, es.opts.Body
	header := cloneHeader(es.d.Header)
	for k, v := range es.opts.Header {
		header[k] = v
	}
	for redirects := 0; ; redirects++ {
		resp, nc, err := es.request(ctx, u, method, body, header)
		if err != nil {
			return nil, nil, err
		}
		if !isRedirect(resp.StatusCode) || resp.Header.Get("Location") == "" {
			return resp, nc, nil
		}
		nc.Close()
		refuse := func(reason string) error {
			return &ResponseError{StatusCode: resp.StatusCode, Response: resp, Reason: reason}
		}
		if redirects == maxRedirects {
			return nil, nil, refuse(fmt.Sprintf("stopped after %d redirects", maxRedirects))
		}
		next, err := u.Parse(resp.Header.Get("Location"))
		if err != nil || (next.Scheme != "http" && next.Scheme != "https") || next.Hostname() == "" {
			return nil, nil, refuse("bad redirect to " + quote.Prefix(resp.Header.Get("Location")))
		}
		switch resp.StatusCode {
		case http.StatusMovedPermanently, http.StatusFound:
			if method == http.MethodPost {
				method, body = http.MethodGet, nil
			}
		case http.StatusSeeOther:
			if method != http.MethodHead {
				method, body = http.MethodGet, nil
			}
		}
		if body == nil {
			header.Del("Content-Type")
		}
		if next.Host != u.Host {
			// Credentials were meant for the first host.
			header.Del("Authorization")
		}
		u = next
	}
}

func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// request makes one HTTP/1.1 exchange and checks the answer. It returns
// the response of a redirect, with its connection, for open to follow;
// any other answer but a 200 text/event-stream is a *ResponseError.
func (es *EventSource) request(ctx context.Context, u *url.URL, method string, body []byte, header http.Header) (*http.Response, net.Conn, error) {
	nc, fwd, err := es.d.connect(ctx, u, u.Scheme == "https")
	if err != nil && u.Scheme == "http" && !es.d.ForwardProxy && tunnelRefused(err) {
		// Corporate proxies often tunnel to port 443 only; a browser
		// sends http:// requests to them in forward mode, and so does
		// this EventSource from now on.
		es.d.ForwardProxy = true
		es.tunnelErr = err
		nc, fwd, err = es.d.connect(ctx, u, false)
	}
	if err != nil {
		return nil, nil, err
	}
	es.forward = fwd != nil
	h := header.Clone()
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
	if u.User != nil && h.Get("Authorization") == "" {
		pass, _ := u.User.Password()
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pass)))
	}
	es.d.addCookies(h, u)
	for k, v := range fwd {
		h[k] = v
	}
	req := &http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       u.Host,
	}
	if len(body) > 0 {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
	}

	fail := func(err error) (*http.Response, net.Conn, error) {
		nc.Close()
		return nil, nil, fmt.Errorf("client: EventSource request to %s: %w", u.Redacted(), withCtxCause(ctx, err))
	}
	stop := ctxio.Interrupt(ctx, nc)
	if err := writeRequest(nc, req, fwd != nil); err != nil {
		stop()
		return fail(err)
	}
	cr := &connReader{nc: nc, limit: maxResponseHeader}
	resp, err := http.ReadResponse(bufio.NewReader(cr), req)
	if err != nil {
		stop()
		if cr.limit == 0 {
			return fail(finalError{fmt.Errorf("response header exceeds %d bytes", maxResponseHeader)})
		}
		return fail(malformedResponse(ctx, err))
	}
	if es.d.Jar != nil {
		if cs := resp.Cookies(); len(cs) > 0 {
			es.d.Jar.SetCookies(u, cs)
		}
	}
	if isRedirect(resp.StatusCode) && resp.Header.Get("Location") != "" {
		stop()
		resp.Body.Close()
		resp.Body = http.NoBody
		return resp, nc, nil
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
		cr.limit = -1 // the body has its own bound
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		stop()
		nc.Close()
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(b))
		return nil, nil, &ResponseError{StatusCode: resp.StatusCode, Response: resp, Reason: reason}
	}
	if !stop() {
		return fail(ctx.Err())
	}
	cr.limit = -1
	cr.idle = es.opts.IdleTimeout
	es.cr = cr
	return resp, nc, nil
}

// connReader reads a connection: first the response header, within a
// byte limit; then the stream, with the idle watchdog's deadline renewed
// before every read.
type connReader struct {
	nc    net.Conn
	limit int64         // bytes the header may still take; -1 once it is read
	idle  time.Duration // the watchdog, once streaming; 0 for none
}

func (r *connReader) Read(p []byte) (int, error) {
	if r.limit >= 0 {
		if r.limit == 0 {
			return 0, errors.New("response header too large")
		}
		if int64(len(p)) > r.limit {
			p = p[:r.limit]
		}
		n, err := r.nc.Read(p)
		r.limit -= int64(n)
		return n, err
	}
	if r.idle <= 0 {
		return r.nc.Read(p)
	}
	r.nc.SetReadDeadline(time.Now().Add(r.idle))
	n, err := r.nc.Read(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		err = idleTimeoutError(r.idle)
	}
	return n, err
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

// writeRequest sends req on w, in the absolute form a forwarding proxy
// needs when toProxy is set.
func writeRequest(w io.Writer, req *http.Request, toProxy bool) error {
	bw := bufio.NewWriter(w)
	var err error
	if toProxy {
		err = req.WriteProxy(bw)
	} else {
		err = req.Write(bw)
	}
	if err != nil {
		return err
	}
	return bw.Flush()
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
