package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/realtime-go/realtime/eventsource"
	"github.com/realtime-go/realtime/internal/ctxio"
	"github.com/realtime-go/realtime/internal/quote"
	"github.com/realtime-go/realtime/websocket"
)

// The names of the realtime.v1 wire protocol (see package realtime),
// which realtime.v2 keeps. They
// are repeated here so that a client does not link the server package;
// a test checks that both agree.
const (
	socketSubprotocol = "realtime.v1"
	tokenHeader       = "Realtime-Token"
	seqHeader         = "Realtime-Seq"
	helloEvent        = "realtime.hello"
	closeEvent        = "realtime.close"
	positionEvent     = "realtime.position"
)

// Defaults for SocketOptions fields left zero.
const (
	// DefaultConnectTimeout bounds one connection attempt of a Socket,
	// until the server has announced the position, as in the browser
	// client.
	DefaultConnectTimeout = 5 * time.Second

	// DefaultMinDelay and DefaultMaxDelay bound the wait before a
	// Socket or an EventSource reconnects (SocketOptions.MinDelay,
	// EventSourceOptions.MinDelay and their MaxDelay), as in the
	// browser client.
	DefaultMinDelay = 500 * time.Millisecond
	DefaultMaxDelay = 30 * time.Second

	// DefaultIdleTimeout is how long a connection of a Socket or an
	// EventSource may stay silent, unless a realtime.v2 server announced
	// its heartbeat to the Socket. realtime and eventsource servers send
	// a heartbeat every 15 s by default, so this allows for three lost.
	DefaultIdleTimeout = 60 * time.Second

	// framingSlack is added to MaxMessageSize for what comes with the
	// text: the id, field names.
	framingSlack = 4 << 10
)

// Transport is the kind of connection a Socket uses.
type Transport int

const (
	// TransportWebSocket is a WebSocket offering the realtime.v2 and
	// realtime.v1 subprotocols.
	TransportWebSocket Transport = iota + 1

	// TransportEventSource is an event stream from a GET, with a POST for
	// each message sent.
	TransportEventSource
)

// String returns "websocket", "eventsource", the names the browser
// client and the server use, or "none" for the zero Transport.
func (t Transport) String() string {
	switch t {
	case 0:
		return "none"
	case TransportWebSocket:
		return "websocket"
	case TransportEventSource:
		return "eventsource"
	}
	return "Transport(" + strconv.Itoa(int(t)) + ")"
}

// SocketOptions configures a Socket. A nil *SocketOptions means the zero
// value, which behaves like the browser client: WebSocket first, then
// EventSource, with its timeouts and backoff.
type SocketOptions struct {
	// Transport, when set, is the only transport the Socket uses. 0 means
	// both: a WebSocket first, falling back to EventSource, and then
	// whichever last opened first.
	Transport Transport

	// Protocol is the wire protocol to ask for: "" for realtime.v2, with
	// realtime.v1 for servers that have only that (the server selects),
	// or "realtime.v1" alone, for a Socket that wants no channels and
	// none of their news.
	Protocol string

	// LastEventID is the id to resume from on the first connection,
	// saved by an earlier Socket with LastEventID. Empty means a fresh
	// start from the server's current position.
	LastEventID string

	// Header holds header fields for every request of the Socket, on top
	// of Dialer.Header.
	Header http.Header

	// ConnectTimeout bounds one connection attempt, from dialing until
	// the server has announced the position (the first WebSocket
	// message, or the realtime.hello event). A WebSocket that has not
	// opened by then is given up for EventSource. 0 means
	// DefaultConnectTimeout; a negative value sets no bound (a WebSocket
	// that never opens is then never given up). Dialer.HandshakeTimeout
	// applies as well.
	ConnectTimeout time.Duration

	// MinDelay and MaxDelay bound the wait before reconnecting, which is
	// drawn at random from [0, min(MaxDelay, MinDelay·2ⁿ)) (full jitter,
	// so that clients that lost the same server come back spread out),
	// n counting the attempts since the last healthy connection: one
	// that stayed open 10 s. Opening alone does not reset n, so a server
	// that accepts and closes at once is not hammered; after a close
	// with 1012 (service restart) or 1013 (try again later) n grows by
	// 3, a window eight times wider. The browser client does the same.
	// 0 means DefaultMinDelay and DefaultMaxDelay. A negative MinDelay
	// sets no floor (every wait is 0, which makes reconnects as fast as
	// failures come); a negative MaxDelay turns backoff off, so every
	// wait is drawn from [0, MinDelay).
	MinDelay time.Duration
	MaxDelay time.Duration

	// IdleTimeout is the watchdog: a connection on which nothing arrives
	// for this long (no message, heartbeat, WebSocket ping or event
	// stream comment) is dropped, and the Socket reconnects. The error
	// OnRetry then gets matches ErrIdleTimeout. 0 means twice the
	// heartbeat a realtime.v2 server announces, plus a second (31 s with
	// the server's default 15 s), and DefaultIdleTimeout until it has
	// (or with a server that announces none). A positive value is kept
	// whatever the server announces: keep it above the server's
	// heartbeat. Negative turns the watchdog off.
	IdleTimeout time.Duration

	// MaxMessageSize bounds the text of a message received on either
	// transport, in bytes (the id and framing may add 4 KiB); a larger
	// one stops the Socket, since reconnecting would meet it again. It
	// overrides Dialer.ConnOptions.MaxMessageSize. 0 means
	// websocket.DefaultMaxMessageSize; a negative value means no limit,
	// which lets a server make the process allocate without bound.
	MaxMessageSize int64

	// OnOpen, when set, is called each time a connection opens, before
	// its messages are handed to Next. The connection is already in
	// use: Send may be called from OnOpen.
	OnOpen func(OpenInfo)

	// OnRetry, when set, is called before each wait to reconnect, with
	// why the connection ended or why the attempts failed (joined, when
	// both transports were tried), and the wait.
	// websocket.CloseStatus(err) gives the close code when the server
	// closed the connection. OnRetry must not call Send, which would
	// wait for a connection that only the Socket's goroutine, running
	// OnRetry, can make.
	OnRetry func(err error, delay time.Duration)
}

// OpenInfo describes a connection that opened.
type OpenInfo struct {
	// Transport is the connection's transport.
	Transport Transport

	// Position is the id the server starts from, which becomes the
	// Socket's last event id; empty when the server numbers nothing
	// (no hub, or a WebSocket without a subprotocol).
	Position string

	// Protocol is the wire protocol the server selected: "realtime.v2",
	// "realtime.v1" (a server without channels: channel calls return
	// ErrNoChannels), or "" (a WebSocket without a subprotocol: plain
	// text messages).
	Protocol string

	// Resumed reports that the server resumed from the id the Socket
	// presented: the messages missed since follow, then the live ones,
	// each once. Under realtime.v2 a server resumes channel by channel,
	// and says how in each channel's KindSubscribed message; Resumed and
	// ResumeFailed then only compare the position with the id presented.
	Resumed bool

	// ResumeFailed reports that the Socket presented an id the server
	// could not resume from (its history no longer reaches back that
	// far, or it is a new server): messages may have been lost, and the
	// program should catch up by other means, such as fetching the
	// current state.
	ResumeFailed bool

	// ForwardProxy reports that the connection went through an HTTP
	// proxy in forward mode (see Dialer.ForwardProxy): because the
	// Dialer asks for it, or because the proxy refused to tunnel with
	// CONNECT, as TunnelErr then says.
	ForwardProxy bool

	// TunnelErr, on a connection in forward mode that the Dialer did not
	// ask for, is the proxy's refusal of a CONNECT that made the Socket
	// switch to forward mode: a *DialError wrapping the *proxy.Error with
	// the proxy's status. Behind a proxy that allows CONNECT to port 443
	// only, as corporate proxies often do, the Socket does what a browser
	// does for http:// URLs: it sends its requests to the proxy in
	// absolute form, where the WebSocket handshake usually loses its
	// Upgrade header and EventSource with POSTs gets through.
	TunnelErr error

	// WebSocketErr is why the WebSocket was not used, when it was tried
	// before this EventSource connection in the same round: a
	// websocket.ErrBadHandshake (a proxy dropped the Upgrade header and
	// the server answered 426, say), ErrConnectTimeout or a *DialError.
	WebSocketErr error

	// Response is the server's answer that opened the connection: 101
	// for a WebSocket, 200 for an event stream. Its body must not be
	// read.
	Response *http.Response
}

// Message is a message from the server. Under realtime.v2 it is also
// news of the Socket's channels: see Kind.
type Message struct {
	// ID is the message's id, which the Socket resumes from once Next
	// has returned it; empty for a message the server sent to this
	// client only, which is not numbered and is not resent, and for news
	// of presence. It is opaque: under realtime.v2 a cursor holding the
	// Socket's place in each of its channels.
	ID string

	// Kind is what the message is; KindMessage under realtime.v1.
	Kind Kind

	// Channel is the channel the message is about; empty for a message
	// sent to this client only, for KindError, and under realtime.v1.
	Channel string

	// Data is the text, with line ends as LF: a message's text, the
	// status of KindSubscribed, the reason of KindUnsubscribed, the
	// explanation of KindError, the JSON of KindJoin, KindLeave and
	// KindPresence.
	Data string

	// Status is how a KindSubscribed subscription started.
	Status SubscribeStatus

	// Entry is who joined or left, for KindJoin and KindLeave.
	Entry PresenceEntry
}

// Socket is a client of a realtime server: it connects over WebSocket,
// or over EventSource with POSTs when a WebSocket cannot be had, and
// reconnects after a lost connection, resuming from the last message
// received so that every missed message arrives exactly once. It follows
// the realtime.v2 protocol as the browser client does (see package
// realtime), with its channels (Subscribe, Publish, Presence), or
// realtime.v1 with a server that has only that, through the Dialer's
// proxies.
//
// Each round of connection attempts tries the WebSocket first, and falls
// back to EventSource when the handshake is refused (any answer but 101)
// or the position does not arrive within ConnectTimeout; after an
// EventSource connection has opened, later rounds try EventSource first.
// After a failed round, or when a connection ends with close code 1001,
// 1006 (the connection broke), 1011, 1012, 1013 or 1014, the Socket waits
// (see SocketOptions.MinDelay) and tries again. After any other close
// code it stops, and Err reports the code. It also stops when a round
// fails in a way that retrying cannot mend: the event stream's request
// was refused with a 4xx status, a proxy refused (and forward mode, see
// below, cannot help), a certificate failed verification.
//
// # Proxies that refuse CONNECT
//
// Many corporate HTTP proxies tunnel with CONNECT to port 443 only. When
// the proxy refuses a CONNECT by policy (a 4xx other than 401, 407, 408
// and 429) for an http:// or ws:// URL, the Socket switches to forward
// mode for the rest of its life, as Dialer.ForwardProxy would, and tries
// the round again at once: the WebSocket handshake, in absolute form
// through the proxy, and then EventSource and its POSTs, which such
// proxies pass as they pass a browser's plain HTTP. OpenInfo.ForwardProxy
// and OpenInfo.TunnelErr report it. A https:// or wss:// URL must tunnel,
// and a Socket limited to TransportWebSocket gains little from forward
// mode, where most proxies strip Upgrade: both stop with the refusal.
//
// # Goroutines
//
// A Socket runs one goroutine, which owns its connections: it connects,
// reads, hands messages to Next one at a time, waits to reconnect, and
// calls OnOpen and OnRetry. Until Next takes a message the connection is
// not read, so a program that stops reading makes the server drop the
// connection in time, and the Socket resume when reading goes on. Send
// runs on its caller's goroutine. The goroutine ends when the Socket
// stops, on its own or by Close; before it ends it waits for calls to
// Send in progress to return, and closes every connection. Close returns
// after that. OnOpen and OnRetry must not call Close.
//
// All methods are safe for concurrent use; concurrent calls to Next
// receive different messages, and concurrent calls to Send are made one
// after the other.
type Socket struct {
	d       Dialer
	fwd     Dialer      // d in forward mode, once the proxy refused a CONNECT
	forward atomic.Bool // use fwd rather than d: see dialer
	httpURL *url.URL    // http:// or https://, for event streams and POSTs
	wsURL   string      // ws:// or wss://
	opts    SocketOptions

	ctx     context.Context // ends when the Socket stops
	cancel  context.CancelFunc
	msgs    chan delivery
	done    chan struct{}
	sendSem chan struct{} // held by the Send in progress

	mu       sync.Mutex
	cur      *link         // the open connection, or nil
	ready    chan struct{} // closed once cur is set; a new one after it is lost
	lastID   string
	lastSeq  uint64 // orders updates of lastID
	stopping bool   // no more Sends may start
	sending  sync.WaitGroup
	err      error // why the Socket stopped, set before done is closed

	// The run goroutine's own.
	resumeID  string    // the last id handed over or announced
	seq       uint64    // counts hand-overs and positions
	worked    Transport // the transport that last opened
	tunnelErr error     // the refused CONNECT that made the Socket switch to forward mode

	// The clock and the random source of the backoff; tests set their own.
	now   func() time.Time
	randN func(time.Duration) time.Duration

	// The HTTP clients of the EventSource transport: hc for s.d, hcFwd
	// for s.fwd. hcOurs: they are the Dialer's own, not
	// Dialer.HTTPClient's, and the Socket closes their idle connections
	// when it stops.
	hc, hcFwd *http.Client
	hcOurs    bool

	// subs are the channels to subscribe to after each reconnection,
	// guarded by mu; changed by the holder of sendSem.
	subs []string
}

// delivery is a message on its way to Next.
type delivery struct {
	m   Message
	seq uint64
}

// link is one open connection.
type link struct {
	transport Transport
	proto     protocol
	ws        *websocket.Conn // TransportWebSocket
	es        *stream         // TransportEventSource: the event stream
	gone      chan struct{}   // closed once the run goroutine has let go of it
	primed    bool            // the subscriptions were asked for; guarded by sendSem
	postSeq   uint64          // realtime.v2 over EventSource: the Realtime-Seq of the last POST; guarded by sendSem
	wd        *watchdog       // the idle watchdog, or nil

	mu      sync.Mutex
	token   string // TransportEventSource: the session token
	dropErr error  // why drop was called
	ended   bool
	waiters []presenceWaiter // presence requests, oldest first
}

// drop closes the connection from outside the run goroutine, which then
// sees its read fail and reports cause.
func (l *link) drop(cause error) {
	l.mu.Lock()
	first := l.dropErr == nil
	if first {
		l.dropErr = cause
	}
	l.mu.Unlock()
	if !first {
		return
	}
	if l.ws != nil {
		l.ws.CloseNow()
	} else {
		l.es.cancel()
	}
}

func (l *link) dropped() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropErr
}

func (l *link) sessionToken() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.token
}

func (l *link) setToken(tok string) {
	l.mu.Lock()
	l.token = tok
	l.mu.Unlock()
}

// Socket starts a realtime socket on rawURL (http://, https://, ws:// or
// wss://; the scheme's security applies to both transports), with the
// proxies, TLS settings, header, cookie jar and handshake timeout of d.
// Its Subprotocols are replaced by realtime.v2 and realtime.v1. Socket
// returns at once;
// the first connection is made in the background, and Send waits for
// it. An error means a malformed URL or options.
//
// The caller must call Close when done.
func (d *Dialer) Socket(rawURL string, opts *SocketOptions) (*Socket, error) {
	u, err := parseURL(rawURL, "http", "https", "ws", "wss")
	if err != nil {
		return nil, err
	}
	var o SocketOptions
	if opts != nil {
		o = *opts
	}
	if o.Transport < 0 || o.Transport > TransportEventSource {
		return nil, fmt.Errorf("client: invalid transport %d", int(o.Transport))
	}
	if o.Protocol != "" && o.Protocol != socketSubprotocol && o.Protocol != socketSubprotocolV2 {
		return nil, fmt.Errorf("client: unknown protocol %s", quote.Prefix(o.Protocol))
	}
	if strings.ContainsAny(o.LastEventID, "\r\n\x00") {
		return nil, errors.New("client: LastEventID may not contain CR, LF or NUL")
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	switch {
	case o.MinDelay == 0:
		o.MinDelay = DefaultMinDelay
	case o.MinDelay < 0:
		o.MinDelay = 0
	}
	switch {
	case o.MaxDelay == 0:
		o.MaxDelay = DefaultMaxDelay
	case o.MaxDelay < 0:
		o.MaxDelay = o.MinDelay
	}
	o.MaxDelay = max(o.MaxDelay, o.MinDelay)
	switch {
	case o.MaxMessageSize == 0:
		o.MaxMessageSize = websocket.DefaultMaxMessageSize
	case o.MaxMessageSize < 0, o.MaxMessageSize > math.MaxInt32:
		// No limit, or one the framing slack would overflow: either way
		// none that an int on every platform can hold.
		o.MaxMessageSize = -1
	}
	o.Header = cloneHeader(o.Header)

	hu := httpURL(u)
	wu := *hu
	wu.Scheme = "ws"
	if hu.Scheme == "https" {
		wu.Scheme = "wss"
	}
	s := &Socket{
		d:        d.clone(),
		httpURL:  hu,
		wsURL:    wu.String(),
		opts:     o,
		msgs:     make(chan delivery),
		done:     make(chan struct{}),
		sendSem:  make(chan struct{}, 1),
		ready:    make(chan struct{}),
		lastID:   o.LastEventID,
		resumeID: o.LastEventID,
		now:      time.Now,
		randN:    backoffRand,
	}
	s.d.Subprotocols = []string{socketSubprotocolV2, socketSubprotocol}
	if o.Protocol == socketSubprotocol {
		s.d.Subprotocols = []string{socketSubprotocol}
	}
	// Shares what s.d points to, which neither changes.
	s.fwd = s.d
	s.fwd.ForwardProxy = true
	s.hc, s.hcOurs = s.d.newHTTPClient()
	s.hcFwd, _ = s.fwd.newHTTPClient()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.run()
	return s, nil
}

// Next returns the next message. If ctx ends first, Next returns ctx's
// error and the Socket goes on. Once the Socket has stopped, Next returns
// why (see Err).
func (s *Socket) Next(ctx context.Context) (Message, error) {
	select {
	case dv := <-s.msgs:
		if dv.m.ID != "" {
			s.setLastID(dv.m.ID, dv.seq)
		}
		return dv.m, nil
	case <-s.done:
		return Message{}, s.Err()
	case <-ctx.Done():
		return Message{}, ctx.Err()
	}
}

// All returns an iterator over the messages, for range loops. It yields
// each message with a nil error; on the first error from Next it yields
// a zero Message and that error, and ends.
func (s *Socket) All(ctx context.Context) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		for {
			m, err := s.Next(ctx)
			if !yield(m, err) || err != nil {
				return
			}
		}
	}
}

// Send sends text to the server: over WebSocket as a text message, over
// EventSource as the body of a POST carrying the session token (under
// realtime.v2 as a direct message, "message\nTEXT"). Messages
// are sent one at a time, in the order of the calls (of Send and of the
// channel calls, Subscribe, Publish...), so they arrive in order; on a
// new connection the Socket's subscriptions are asked for first. While
// the Socket is connecting Send waits for a connection; ctx bounds the
// whole call.
//
// Send returns nil once the message is written to the WebSocket, or once
// the server has answered the POST with 204, which means it has handled
// the message. Under realtime.v2 each POST carries Realtime-Seq, its
// number in the stream's session, and a POST whose answer did not come
// (a network error, a 5xx) is sent again, up to 3 times, with the same
// token and number, which the server delivers once. When it still has no
// answer, Send drops the connection and, from the next one, asks the old
// session again (its node remembers for 2 minutes what it delivered):
// the message is neither lost nor delivered twice, unless the node died
// right after delivering it, when it may come twice. A POST answered 404
// or 410 (the stream it belongs to has ended) was not delivered: Send
// drops that stream and sends the message again on the next connection.
// Otherwise Send returns an error wrapping websocket.ErrInvalidUTF8 for
// text that is not valid UTF-8, ctx's error, an error matching
// net.ErrClosed once the Socket has stopped, or a *SendError. A
// *SendError with a StatusCode of 400 or 413 means the server refused
// this message and the connection goes on; any other means the
// connection failed, the message may or may not have arrived, and the
// Socket reconnects (as the browser client does after a failed POST).
func (s *Socket) Send(ctx context.Context, text string) error {
	if !utf8.ValidString(text) {
		return errInvalidUTF8
	}
	return s.do(ctx, &request{kind: reqSend, text: text})
}

// do sends r, as Send describes.
func (s *Socket) do(ctx context.Context, r *request) error {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return s.stoppedErr()
	}
	s.sending.Add(1)
	s.mu.Unlock()
	defer s.sending.Done()

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	select {
	case s.sendSem <- struct{}{}:
	case <-sctx.Done():
		return s.interrupted(ctx)
	}
	defer func() { <-s.sendSem }()

	var prev *link
	for {
		l, err := s.waitLink(sctx, prev)
		if err != nil {
			return s.interrupted(ctx)
		}
		if r.kind != reqSend && l.proto != protoV2 {
			return ErrNoChannels
		}
		if l.proto == protoV2 && !l.primed {
			ok := s.prime(sctx, l)
			if sctx.Err() != nil {
				return s.interrupted(ctx)
			}
			if !ok {
				prev = l // dropped: the request goes on the next connection
				continue
			}
			if r.kind == reqSubscribe && r.applied {
				return nil // sent again, and asked for with the others
			}
		}
		s.apply(r)
		if r.waiter != nil && !l.addWaiter(r.channel, r.waiter) {
			prev = l
			continue
		}
		again, err := s.sendOn(sctx, l, r.wire(l.proto), &r.unsure)
		if r.waiter != nil && (again || err != nil) {
			l.removeWaiter(r.waiter)
		}
		if err != nil && s.ctx.Err() != nil {
			return s.stoppedErr()
		}
		if !again {
			return err
		}
		prev = l
	}
}

// interrupted is Send's error when its context ended: ctx's error, or
// the Socket's end.
func (s *Socket) interrupted(ctx context.Context) error {
	if s.ctx.Err() != nil {
		return s.stoppedErr()
	}
	return ctx.Err()
}

// waitLink returns the open connection, waiting for one; not prev, which
// failed.
func (s *Socket) waitLink(ctx context.Context, prev *link) (*link, error) {
	for {
		s.mu.Lock()
		l, ready := s.cur, s.ready
		s.mu.Unlock()
		wait := ready
		switch {
		case l != nil && l != prev:
			return l, nil
		case l != nil:
			wait = l.gone
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// sendOn sends text on l. again reports that the message was not
// delivered, or may not have been (see unsure), and must go on the next
// connection. pending, when not nil, carries that doubt from one call
// to the next.
func (s *Socket) sendOn(ctx context.Context, l *link, text string, pending *unsure) (again bool, err error) {
	if pending != nil && pending.token != "" {
		if again, done, err := s.settle(ctx, l, text, pending); again || done || err != nil {
			return again, err
		}
	}
	if l.transport == TransportWebSocket {
		if err := l.ws.Write(ctx, websocket.MessageText, []byte(text)); err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			return false, &SendError{Transport: TransportWebSocket, Err: err}
		}
		return false, nil
	}
	// A realtime.v2 POST is numbered, so that one whose answer did not
	// come can be sent again: the server delivers each number once.
	var seq uint64
	if l.proto == protoV2 {
		l.postSeq++
		seq = l.postSeq
	}
	tok := l.sessionToken()
	status, body, err := s.postRetried(ctx, tok, seq, text)
	if ctx.Err() != nil && (err != nil || status >= 500) {
		return false, ctx.Err()
	}
	if seq != 0 && pending != nil && (err != nil || status >= 500) {
		// Delivered or not, nobody can tell now: ask the session again
		// from the next connection, rather than lose the message or
		// deliver it twice.
		*pending = unsure{token: tok, seq: seq}
		if err == nil {
			err = statusError(status, body)
		}
		l.drop(&SendError{Transport: TransportEventSource, StatusCode: status, Err: err})
		return true, nil
	}
	if err != nil {
		err = &SendError{Transport: TransportEventSource, Err: err}
		l.drop(err)
		return false, err
	}
	switch {
	case status >= 200 && status < 300:
		return false, nil
	case status == http.StatusNotFound || status == http.StatusGone:
		// Not delivered (a retry of a delivered message gets 204).
		l.drop(fmt.Errorf("client: the server answered a POST with %d %s: the stream has ended", status, http.StatusText(status)))
		return true, nil
	}
	err = &SendError{Transport: TransportEventSource, StatusCode: status, Err: statusError(status, body)}
	if refusedOnly(status) {
		// The server refused the message before its number counted: the
		// next message takes it.
		if seq != 0 {
			l.postSeq--
		}
	} else {
		l.drop(err)
	}
	return false, err
}

// unsure is a numbered POST whose answer never came, after its retries:
// the server may have delivered it. Its session's node keeps the numbers
// it delivered for a while after the stream ends, so the same POST asked
// again tells: 204 if it was delivered, 404 or 410 if not.
type unsure struct {
	token string
	seq   uint64
}

// settle asks the session of pending whether it delivered text, before
// the message goes on l. done: it was delivered. again: the question
// could not be put, or the server could not answer yet (a 5xx): l is
// dropped, and the next connection asks again. Neither: it was not
// delivered, or the session's node has ended (so a message it delivered
// just before it died may come twice), and the message goes on l as a
// new one.
func (s *Socket) settle(ctx context.Context, l *link, text string, pending *unsure) (again, done bool, err error) {
	status, body, err := s.postRetried(ctx, pending.token, pending.seq, text)
	switch {
	case ctx.Err() != nil && (err != nil || status >= 500):
		return false, false, ctx.Err()
	case err == nil && status >= 500:
		err = statusError(status, body)
		fallthrough
	case err != nil:
		l.drop(&SendError{Transport: l.transport, StatusCode: status, Err: err})
		return true, false, nil
	}
	*pending = unsure{}
	return false, status >= 200 && status < 300, nil
}

// postRetried POSTs text, and sends a numbered POST again (same token,
// same number) while its answer does not come: a network error or a 5xx.
func (s *Socket) postRetried(ctx context.Context, tok string, seq uint64, text string) (int, string, error) {
	status, body, err := s.post(ctx, tok, seq, text)
	for try := 0; seq != 0 && try < maxPostRetries && (err != nil || status >= 500) && ctx.Err() == nil; try++ {
		if !s.sleep(ctx, doubled(s.opts.MinDelay, s.opts.MaxDelay, try)) {
			break
		}
		status, body, err = s.post(ctx, tok, seq, text)
	}
	return status, body, err
}

// maxPostRetries is how many times a numbered POST whose answer did not
// come (a network error, a 5xx) is sent again, after waits drawn as the
// reconnection's.
const maxPostRetries = 3

// sleep waits for a wait drawn from [0, window), and reports false when
// ctx ended first.
func (s *Socket) sleep(ctx context.Context, window time.Duration) bool {
	if window <= 0 {
		return ctx.Err() == nil
	}
	return ctxio.Sleep(ctx, s.randN(window))
}

// statusError is the error of a POST answered with status; it quotes
// the start of the body.
func statusError(status int, body string) error {
	msg := strconv.Itoa(status) + " " + http.StatusText(status)
	if body = strings.TrimSpace(body); body != "" {
		msg += ": " + quote.Prefix(body)
	}
	return errors.New(msg)
}

// Transport returns the transport of the open connection, or 0 while the
// Socket is connecting or after it has stopped.
func (s *Socket) Transport() Transport {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return 0
	}
	return s.cur.transport
}

// LastEventID returns the id the Socket would resume from: that of the
// last numbered message Next returned, or the position the server
// announced after it, or SocketOptions.LastEventID at first. Save it to
// resume with a later Socket.
func (s *Socket) LastEventID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastID
}

func (s *Socket) setLastID(id string, seq uint64) {
	s.mu.Lock()
	if seq > s.lastSeq {
		s.lastID, s.lastSeq = id, seq
	}
	s.mu.Unlock()
}

// Done returns a channel that is closed when the Socket has stopped, on
// its own or by Close.
func (s *Socket) Done() <-chan struct{} { return s.done }

// Err returns nil while the Socket runs, and then why it stopped: after
// Close, an error matching net.ErrClosed; after the server closed with a
// code that does not call for reconnecting, an error wrapping the
// websocket.CloseError with the code and reason (on both transports, so
// websocket.CloseStatus works); after a failed round that retrying
// cannot mend, the attempts' errors, joined (a *ResponseError, a
// *DialError with a *proxy.Error, ...); an error wrapping
// websocket.ErrMessageTooBig or eventsource.ErrEventTooLarge, or another
// *websocket.ProtocolError, when the server broke a limit or the
// protocol.
func (s *Socket) Err() error {
	select {
	case <-s.done:
	default:
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close stops the Socket: it closes the connection (a WebSocket with
// code 1000 and the closing handshake, within the Dialer's
// CloseTimeout) or ends the wait to reconnect, interrupts calls to Send
// and Next, and returns once the Socket's goroutine has ended.
// Messages not yet taken by Next are dropped. Close always returns nil.
func (s *Socket) Close() error {
	s.cancel()
	<-s.done
	return nil
}

func (s *Socket) stoppedErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil || s.err == errSocketClosed {
		return errSocketClosed
	}
	return &stoppedError{cause: s.err}
}

// run is the Socket's goroutine.
func (s *Socket) run() {
	err := s.loop()
	s.mu.Lock()
	s.err = err
	s.stopping = true
	s.mu.Unlock()
	s.cancel()
	s.sending.Wait()
	if s.hcOurs {
		s.hc.CloseIdleConnections()
		s.hcFwd.CloseIdleConnections()
	}
	close(s.done)
}

// order returns the transports to try in the next round.
func (s *Socket) order() []Transport {
	switch {
	case s.opts.Transport != 0:
		return []Transport{s.opts.Transport}
	case s.worked == TransportEventSource:
		return []Transport{TransportEventSource, TransportWebSocket}
	}
	return []Transport{TransportWebSocket, TransportEventSource}
}

func (s *Socket) loop() error {
	b := backoff{min: s.opts.MinDelay, max: s.opts.MaxDelay}
	for {
		var why error
		var wsErr, esErr, tunnelErr error
		opened := false
		var open time.Duration // how long the connection stayed open
		ts := s.order()
		for i := 0; i < len(ts); i++ {
			t := ts[i]
			presented := s.resumeID
			var a *attempt
			var err error
			if t == TransportWebSocket {
				a, err = s.openWebSocket(presented)
			} else {
				a, err = s.openEventSource(presented, wsErr != nil)
			}
			if s.ctx.Err() != nil {
				if a != nil {
					a.abort()
				}
				return errSocketClosed
			}
			if err != nil && s.mayForward(err) {
				// The round starts again in forward mode, which stays.
				s.tunnelErr, tunnelErr = err, err
				s.forward.Store(true)
				ts, i = s.order(), -1
				continue
			}
			if err != nil {
				if t == TransportWebSocket {
					wsErr = err
				} else {
					esErr = err
				}
				continue
			}
			opened = true
			s.worked = t
			info := OpenInfo{
				Transport:    t,
				Protocol:     a.link.proto.String(),
				Position:     a.pos,
				Resumed:      presented != "" && a.pos == presented,
				ResumeFailed: presented != "" && a.pos != presented,
				Response:     a.resp,
				ForwardProxy: a.forward,
			}
			if a.forward && s.forward.Load() {
				info.TunnelErr = s.tunnelErr
			}
			if t == TransportEventSource {
				info.WebSocketErr = wsErr
			}
			start := s.now()
			err, final := s.serve(a, info)
			open = s.now().Sub(start)
			if s.ctx.Err() != nil {
				return errSocketClosed
			}
			if final {
				return err
			}
			why = err
			break
		}
		if !opened {
			why = errors.Join(tunnelErr, wsErr, esErr)
			decisive := esErr
			if decisive == nil {
				decisive = wsErr
			}
			if finalAttempt(decisive) {
				return why
			}
		}
		b.ended(open, websocket.CloseStatus(why))
		delay := b.next(s.randN)
		if s.opts.OnRetry != nil {
			s.opts.OnRetry(why, delay)
		}
		if !ctxio.Sleep(s.ctx, delay) {
			return errSocketClosed
		}
	}
}

// dialer returns the Dialer of the Socket's next request: s.d, or s.d in
// forward mode once the proxy has refused a CONNECT.
func (s *Socket) dialer() *Dialer {
	if s.forward.Load() {
		return &s.fwd
	}
	return &s.d
}

// client returns the HTTP client of the Socket's next request: hc, or
// hcFwd once the proxy has refused a CONNECT.
func (s *Socket) client() *http.Client {
	if s.forward.Load() {
		return s.hcFwd
	}
	return s.hc
}

// mayForward reports whether err, from a connection attempt, is a
// proxy's refusal to tunnel by policy after which forward mode may get
// through: for a plain http:// URL, with EventSource allowed, not in
// forward mode already.
func (s *Socket) mayForward(err error) bool {
	if s.forward.Load() || s.d.ForwardProxy || s.httpURL.Scheme != "http" || s.opts.Transport == TransportWebSocket {
		return false
	}
	return tunnelRefused(err)
}

// finalAttempt reports whether a failed connection attempt means that
// retrying cannot help. A refused WebSocket handshake and a server error
// never do.
func finalAttempt(err error) bool {
	if err == nil || errors.Is(err, websocket.ErrBadHandshake) || errors.Is(err, ErrConnectTimeout) {
		return false
	}
	var re *ResponseError
	if errors.As(err, &re) {
		switch st := re.StatusCode; {
		case st >= 500, st == http.StatusRequestTimeout, st == http.StatusTooEarly, st == http.StatusTooManyRequests:
			return false
		}
		return true
	}
	return isFinal(err)
}

// retryCode reports whether a connection that ended with code is to be
// followed by a reconnection.
func retryCode(code websocket.StatusCode) bool {
	switch code {
	case websocket.StatusGoingAway, websocket.StatusAbnormalClosure, websocket.StatusInternalError,
		websocket.StatusServiceRestart, websocket.StatusTryAgainLater, websocket.StatusBadGateway:
		return true
	}
	return false
}

// attempt is a connection that opened: the server announced its
// position.
type attempt struct {
	link  *link
	resp  *http.Response
	pos   string
	first *Message             // data that came with the position
	list  []PresenceEntry      // first's presence list
	dec   *eventsource.Decoder // TransportEventSource
	wd    *watchdog            // TransportWebSocket

	forward bool // the request went to the proxy in forward mode
}

// abort closes a connection that will not be used.
func (a *attempt) abort() {
	if a.link.ws != nil {
		a.link.ws.CloseNow()
		a.wd.stop()
	} else {
		a.link.es.close()
	}
}

// header returns the header fields of the Socket's requests.
func (s *Socket) header() http.Header {
	h := cloneHeader(s.d.Header)
	for k, v := range s.opts.Header {
		h[k] = slices.Clone(v)
	}
	return h
}

// attemptErr marks an error caused by the end of the attempt's time.
func (s *Socket) attemptErr(ctx context.Context, err error) error {
	if s.ctx.Err() == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && !errors.Is(err, ErrConnectTimeout) {
		return &connectTimeoutError{timeout: s.opts.ConnectTimeout, err: err}
	}
	return err
}

// maxReceived is the bound on a received message with its framing, or
// -1 for none.
func (s *Socket) maxReceived() int64 {
	if s.opts.MaxMessageSize < 0 {
		return -1
	}
	return s.opts.MaxMessageSize + framingSlack
}

// attemptContext bounds one connection attempt by ConnectTimeout, when
// it is positive.
func (s *Socket) attemptContext() (context.Context, context.CancelFunc) {
	return timeoutContext(s.ctx, s.opts.ConnectTimeout)
}

// openWebSocket makes one WebSocket attempt: the handshake and the
// position.
func (s *Socket) openWebSocket(presented string) (*attempt, error) {
	ctx, cancel := s.attemptContext()
	defer cancel()
	d := *s.dialer()
	d.Header = s.header()
	if presented != "" {
		d.Header.Set("Last-Event-ID", presented)
	}
	var wd *watchdog
	if idle := s.idleTimeout(); idle > 0 {
		wd = &watchdog{idle: idle}
	}
	// Pings and pongs are read on the run goroutine, like the watchdog's
	// other calls.
	onPing, onPong := d.ConnOptions.OnPing, d.ConnOptions.OnPong
	d.ConnOptions.OnPing = func(p []byte) {
		wd.kick()
		if onPing != nil {
			onPing(p)
		}
	}
	d.ConnOptions.OnPong = func(p []byte) {
		wd.kick()
		if onPong != nil {
			onPong(p)
		}
	}
	d.ConnOptions.MaxMessageSize = s.maxReceived()
	c, resp, forward, err := d.dial(ctx, s.wsURL)
	if err != nil {
		return nil, s.attemptErr(ctx, err)
	}
	a := &attempt{link: &link{transport: TransportWebSocket, ws: c, wd: wd, gone: make(chan struct{})}, resp: resp, wd: wd, forward: forward}
	switch c.Subprotocol() {
	case socketSubprotocolV2:
		a.link.proto = protoV2
	case socketSubprotocol:
		a.link.proto = protoV1
	}
	// Without a subprotocol the server speaks neither: plain messages,
	// no position, no resuming.
	if a.link.proto != protoPlain {
		typ, p, err := c.Read(ctx)
		if err != nil {
			c.CloseNow()
			return nil, s.attemptErr(ctx, fmt.Errorf("client: waiting for the position: %w", err))
		}
		if typ != websocket.MessageText {
			c.Close(websocket.StatusUnsupportedData, "binary messages are not supported")
			return nil, errors.New("client: the server's first message is binary, not the position")
		}
		id, data, ok := strings.Cut(string(p), "\n")
		a.pos = id
		if ok {
			m, list, err := parseMessage(a.link.proto, id, data)
			if err != nil {
				c.Close(websocket.StatusProtocolError, "malformed message")
				return nil, err
			}
			a.first, a.list = &m, list
		}
	}
	wd.start(func() { c.CloseNow() })
	return a, nil
}

// openEventSource makes one EventSource attempt: the request and the
// realtime.hello event.
func (s *Socket) openEventSource(presented string, fallback bool) (*attempt, error) {
	ctx, cancel := s.attemptContext()
	defer cancel()
	u := *s.httpURL
	if s.opts.Protocol != socketSubprotocol {
		addQuery(&u, protocolParam+"="+socketSubprotocolV2)
		if fallback {
			// The server counts the fallbacks (realtime.v2's fallback=1).
			addQuery(&u, fallbackParam+"=1")
		}
	}
	req := &EventSource{
		d:   *s.dialer(),
		url: &u,
		opts: EventSourceOptions{
			Method:      http.MethodGet,
			Header:      s.opts.Header,
			IdleTimeout: s.idleTimeout(),
		},
		ctx:      s.ctx,
		resumeID: presented,
		client:   s.client(),
		fwd:      s.hcFwd,
		ours:     s.hcOurs,
	}
	st, err := req.open(ctx)
	if req.tunnelErr != nil && !s.forward.Load() {
		// The stream switched to forward mode itself (the WebSocket was
		// not tried first): the POSTs follow.
		s.tunnelErr = req.tunnelErr
		s.forward.Store(true)
	}
	if err != nil {
		return nil, s.attemptErr(ctx, err)
	}
	stop := context.AfterFunc(ctx, st.cancel)
	// The decoder starts without an id, so that an event without an id
	// field shows as one: a hello without a position, a message sent to
	// this client only.
	dec := eventsource.NewDecoder(st, &eventsource.DecoderOptions{
		MaxEventSize: s.maxReceived(),
	})
	for {
		ev, err := dec.Next()
		if err != nil {
			stop()
			st.close()
			if err == io.EOF {
				err = errStreamEnded
			}
			return nil, s.attemptErr(ctx, fmt.Errorf("client: waiting for the %s event: %w", helloEvent, err))
		}
		if ev.Type != helloEvent {
			continue // nothing counts before the hello
		}
		if !stop() {
			st.close()
			return nil, s.attemptErr(ctx, ctx.Err())
		}
		l := &link{transport: TransportEventSource, proto: eventStreamProtocol(st.resp), es: st, wd: st.wd, token: ev.Data, gone: make(chan struct{})}
		return &attempt{link: l, resp: st.resp, pos: ev.ID, dec: dec, forward: req.forward}, nil
	}
}

// serve makes an opened connection the Socket's, reads it until it ends
// and reports why, and whether the Socket must stop.
func (s *Socket) serve(a *attempt, info OpenInfo) (err error, final bool) {
	if a.pos != "" {
		s.resumeID = a.pos
		s.seq++
		s.setLastID(a.pos, s.seq)
	}
	s.mu.Lock()
	s.cur = a.link
	close(s.ready)
	resubscribe := a.link.proto == protoV2 && len(s.subs) > 0
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.cur = nil
		s.ready = make(chan struct{})
		s.mu.Unlock()
		a.link.end()
		close(a.link.gone)
	}()
	if resubscribe {
		s.sending.Add(1)
		go s.primeSoon(a.link)
	}
	if s.opts.OnOpen != nil {
		s.opts.OnOpen(info)
	}
	if a.link.ws != nil {
		return s.readWebSocket(a)
	}
	return s.readEventSource(a)
}

// parseMessage parses the data of a message with its id under p, and
// the entries of a presence list.
func parseMessage(p protocol, id, data string) (Message, []PresenceEntry, error) {
	if p == protoV2 {
		return parseFrame(id, data)
	}
	return Message{ID: id, Data: data}, nil, nil
}

// position takes id, which came alone, as the id to resume from.
func (s *Socket) position(id string) {
	if id != "" {
		s.resumeID = id
		s.seq++
		s.setLastID(id, s.seq)
	}
}

// handle passes on a message: a presence answer to the Presence call
// that waits for it, anything else to Next. It reports false when the
// Socket stops first.
func (s *Socket) handle(l *link, m Message, list []PresenceEntry) bool {
	switch m.Kind {
	case kindHeartbeat:
		s.heartbeat(l, m.Data)
		return true
	case kindUnknown:
		return true
	case KindPresence, KindError:
		if l.answer(m, list) {
			s.position(m.ID)
			return true
		}
	case KindUnsubscribed:
		// The server took the Socket out of the channel, or refused it:
		// it is not asked for again (see KindUnsubscribed).
		s.forget(m.Channel)
	}
	return s.deliver(m)
}

// idleTimeout returns the idle watchdog's time for a new connection:
// SocketOptions.IdleTimeout, or DefaultIdleTimeout for 0 until the server
// announces its heartbeat. Negative: none.
func (s *Socket) idleTimeout() time.Duration {
	if s.opts.IdleTimeout == 0 {
		return DefaultIdleTimeout
	}
	return s.opts.IdleTimeout
}

// heartbeat takes note of a heartbeat on l, whose data is the server's
// interval: with IdleTimeout 0, the first sets l's watchdog to twice the
// interval plus a second, so a dead link is noticed within that.
func (s *Socket) heartbeat(l *link, data string) {
	beat, _ := parseHeartbeat(data) // checked by parseFrame
	if s.opts.IdleTimeout != 0 {
		return
	}
	idle := 2*beat + time.Second
	if l.wd != nil {
		l.wd.idle = idle // the next kick uses it
	}
}

// deliver hands m to Next. It reports false when the Socket stops first.
func (s *Socket) deliver(m Message) bool {
	s.seq++
	select {
	case s.msgs <- delivery{m: m, seq: s.seq}:
		if m.ID != "" {
			s.resumeID = m.ID
		}
		return true
	case <-s.ctx.Done():
		return false
	}
}

func (s *Socket) readWebSocket(a *attempt) (error, bool) {
	c, wd := a.link.ws, a.wd
	defer wd.stop()
	defer c.CloseNow()
	if a.first != nil && !s.handle(a.link, *a.first, a.list) {
		c.Close(websocket.StatusNormalClosure, "")
		return errSocketClosed, true
	}
	for {
		wd.kick()
		typ, p, err := c.Read(s.ctx)
		wd.pause()
		if err != nil {
			if s.ctx.Err() != nil {
				c.Close(websocket.StatusNormalClosure, "")
				return errSocketClosed, true
			}
			return s.webSocketEnd(a, err)
		}
		if typ != websocket.MessageText {
			continue // the protocol has none; the browser client ignores them too
		}
		m := Message{Data: string(p)}
		var list []PresenceEntry
		if a.link.proto != protoPlain {
			id, data, ok := strings.Cut(m.Data, "\n")
			if !ok {
				// A position alone: the id to resume from.
				s.position(id)
				continue
			}
			if m, list, err = parseMessage(a.link.proto, id, data); err != nil {
				c.Close(websocket.StatusProtocolError, "malformed message")
				return err, true
			}
		}
		if !s.handle(a.link, m, list) {
			c.Close(websocket.StatusNormalClosure, "")
			return errSocketClosed, true
		}
	}
}

// webSocketEnd tells why a WebSocket read failed, and whether the Socket
// must stop.
func (s *Socket) webSocketEnd(a *attempt, err error) (error, bool) {
	if a.wd.expired() {
		return webSocketIdleError{a.wd.idle}, false
	}
	if d := a.link.dropped(); d != nil {
		return d, false
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Code == websocket.StatusNoStatusRcvd {
			return serverClosed(ce.Code, ""), true
		}
		return serverClosed(ce.Code, ce.Reason), !retryCode(ce.Code)
	}
	var pe *websocket.ProtocolError
	if errors.As(err, &pe) {
		return err, true // the server broke a limit or the protocol: it would again
	}
	return err, false // 1006
}

func (s *Socket) readEventSource(a *attempt) (error, bool) {
	l := a.link
	// The stream's request ends with s.ctx.
	defer l.es.close()
	streamID := a.pos
	for {
		ev, err := a.dec.Next()
		if err != nil {
			switch {
			case s.ctx.Err() != nil:
				return errSocketClosed, true
			case l.dropped() != nil:
				return l.dropped(), false
			case errors.Is(err, eventsource.ErrEventTooLarge):
				return err, true
			case err == io.EOF:
				return errStreamEnded, false
			}
			return err, false
		}
		switch ev.Type {
		case "message":
			// The decoder keeps the last id for events without one: an
			// unchanged id means none came.
			id := ""
			if ev.ID != "" && ev.ID != streamID {
				id = ev.ID
			}
			streamID = ev.ID
			m, list, err := parseMessage(l.proto, id, ev.Data)
			if err != nil {
				return err, true
			}
			if !s.handle(l, m, list) {
				return errSocketClosed, true
			}
		case helloEvent:
			l.setToken(ev.Data)
			streamID = ev.ID
		case positionEvent:
			// A new last event id, from a join or a leave that no
			// message carried (realtime.v1).
			if ev.ID != streamID {
				s.position(ev.ID)
			}
			streamID = ev.ID
		case closeEvent:
			codeText, reason, _ := strings.Cut(ev.Data, " ")
			code, perr := strconv.Atoi(codeText)
			if perr != nil || code < 1000 || code > 4999 {
				return fmt.Errorf("client: malformed %s event %s", closeEvent, quote.Prefix(ev.Data)), true
			}
			return serverClosed(websocket.StatusCode(code), reason), !retryCode(websocket.StatusCode(code))
		}
	}
}

// watchdog drops a connection (a WebSocket, an event stream) on which a
// read waits longer than idle. All its methods but the timer's function
// run on the goroutine that reads, the Socket's or the EventSource's; a
// nil watchdog does nothing.
type watchdog struct {
	idle  time.Duration
	timer *time.Timer
	armed bool          // the timer runs, or its function has started
	hit   atomic.Bool   // the timer's function has started
	fired chan struct{} // closed when the timer's function has run
}

func (w *watchdog) start(expire func()) {
	if w == nil {
		return
	}
	w.fired = make(chan struct{})
	w.timer = time.AfterFunc(w.idle, func() {
		w.hit.Store(true) // before the read it interrupts returns
		expire()
		close(w.fired)
	})
	w.armed = true
}

// kick restarts the wait, unless the timer has already fired.
func (w *watchdog) kick() {
	if w == nil || w.timer == nil {
		return
	}
	if w.armed && !w.timer.Stop() {
		return
	}
	w.timer.Reset(w.idle)
	w.armed = true
}

// pause stops the wait while nothing is read.
func (w *watchdog) pause() {
	if w == nil || w.timer == nil || !w.armed {
		return
	}
	if w.timer.Stop() {
		w.armed = false
	}
}

// stop stops the watchdog and waits for its function, if it started.
func (w *watchdog) stop() {
	if w == nil || w.timer == nil {
		return
	}
	if w.armed && !w.timer.Stop() {
		<-w.fired
	}
	w.armed = false
}

func (w *watchdog) expired() bool { return w != nil && w.hit.Load() }

// addQuery appends a key=value pair, already escaped, to u's query.
func addQuery(u *url.URL, kv string) {
	if u.RawQuery != "" {
		u.RawQuery += "&"
	}
	u.RawQuery += kv
}
