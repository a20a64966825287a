package realtime

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/realtime-go/realtime/eventsource"
	"github.com/realtime-go/realtime/websocket"
)

// Subprotocol is the WebSocket subprotocol of the wire protocol
// realtime.v1, under which server messages carry ids (see the package
// documentation). Clients of the previous releases offer it.
const Subprotocol = "realtime.v1"

// SubprotocolV2 is the WebSocket subprotocol of the wire protocol
// realtime.v2, which adds channels, client requests and presence (see
// the package documentation). The server selects it when offered. An
// EventSource client asks for it with the query parameter
// protocol=realtime.v2 ([ProtocolParam]).
const SubprotocolV2 = "realtime.v2"

// ProtocolParam is the query parameter by which an EventSource client
// asks for a protocol version: ?protocol=realtime.v2. Without it a
// stream speaks realtime.v1.
const ProtocolParam = "protocol"

// ProtocolHeader is the response header field by which the server of
// an EventSource stream tells that it speaks realtime.v2
// ("Realtime-Protocol: realtime.v2"); a stream without it speaks
// realtime.v1.
const ProtocolHeader = "Realtime-Protocol"

// TokenHeader is the request header that carries an EventSource socket's
// session token on a POST.
const TokenHeader = "Realtime-Token"

// SeqHeader is the request header that numbers a realtime.v2 client's
// POSTs: 1, 2, 3, ... per session token, so that a POST retried after
// its answer was lost is not delivered twice (see the package
// documentation).
const SeqHeader = "Realtime-Seq"

// The EventSource event types of the wire protocol (see the package
// documentation): the first event of every stream, carrying the session
// token and the position, and the last one of a stream the server
// closes, carrying the close code and reason.
const (
	HelloEvent = "realtime.hello"
	CloseEvent = "realtime.close"

	// PositionEvent carries, as its id, a realtime.v1 client's new last
	// event id when a join or a leave changed it and no message did; its
	// data is empty. (A v2 client gets "subscribed" and "unsubscribed"
	// messages instead.)
	PositionEvent = "realtime.position"
)

// Defaults for Options fields left zero. A message from a client is
// bounded by websocket.DefaultMaxMessageSize, the module's one default
// for that limit.
const (
	// DefaultHeartbeat is how long a connection may stay idle before it
	// is probed: a WebSocket ping (whose pong must come within the same
	// time) or an EventSource comment line. 15 s, as in package
	// eventsource, stays well under the 30-60 s idle timeouts common in
	// proxies and load balancers.
	DefaultHeartbeat = 15 * time.Second

	// DefaultWriteTimeout bounds one write to a client, so a client that
	// stops reading is let go instead of pinning its writer.
	DefaultWriteTimeout = 10 * time.Second

	// DefaultMaxQueue is how many messages may wait for a socket's
	// writer. A browser on a healthy link drains a queue faster than a
	// chat fills it; 256 absorbs bursts of channel messages.
	DefaultMaxQueue = 256

	// DefaultMaxQueueBytes bounds the payload bytes waiting for (or being
	// written by) a socket's writer: 256 chat-sized messages fit many
	// times over, while a client that stalls under large messages pins
	// at most this much (plus one message) instead of 256 of them.
	DefaultMaxQueueBytes = 4 << 20

	// DefaultMaxChannels is how many channels a socket may be in. It
	// bounds the cursor a client keeps: about 30 bytes per channel.
	DefaultMaxChannels = 64
)

// QueuePolicy says what happens when a message is sent to a socket
// whose send queue is full, by count (Options.MaxQueue) or by bytes
// (Options.MaxQueueBytes): its client reads slower than messages come.
type QueuePolicy int

const (
	// QueueClose closes the socket: a WebSocket with 1013 (try again
	// later), an EventSource stream with a realtime.close event carrying
	// 1013. Messages still queued are dropped. A client that reconnects
	// with its last event id gets what it missed from the hub's history,
	// so nothing is lost while the history reaches back far enough.
	QueueClose QueuePolicy = iota

	// QueueDropOldest drops the oldest queued message to make room, and
	// counts it (Socket.Dropped). The client never learns which messages
	// it lost; use it for streams where only the latest state matters.
	QueueDropOldest
)

func (p QueuePolicy) String() string {
	switch p {
	case QueueClose:
		return "close"
	case QueueDropOldest:
		return "drop-oldest"
	}
	return "invalid"
}

// Options configures a Handler. A nil *Options means the zero value, and
// every zero field means its documented default. Handler copies the
// options deeply (slices, headers, the nested WebSocket and EventSource
// options); later changes do not affect it, and the caller's slices and
// maps are never modified. Hub is shared, not copied, and extensions are
// kept as the values given.
type Options struct {
	// Hub, when set, is the hub of every socket of the handler: sockets
	// join its channels (Channels, OnConnect, Socket.Join, client
	// subscribes) and leave them when they end, and Hub.Shutdown and
	// Hub.SendTo reach them. Channel messages are numbered, so clients
	// can resume; without a hub sockets have no channels and messages
	// carry no ids.
	Hub *Hub

	// Channels are joined by every socket before its position is
	// announced, each resuming from the client's last event id: the
	// one-room chat is Channels: []string{"chat"}. A channel that cannot
	// be joined (the broker is unavailable) refuses the socket with 503.
	Channels []string

	// OnConnect, when set, is called with each new socket before its
	// position is announced, after it joined Channels: the place to
	// authorize the request (Socket.Request) and Join the channels and
	// SetPresence it is entitled to. An error refuses the socket with 403
	// Forbidden (before the WebSocket upgrade or the event stream). ctx
	// is the socket's.
	OnConnect func(ctx context.Context, s *Socket) error

	// OnSubscribe decides whether a v2 client may join channel, which it
	// asked for with "subscribe CHANNEL": nil error accepts, and the
	// socket joins, resuming from the client's last event id. An error
	// refuses ("unsubscribed CHANNEL" with the error's text, which the
	// client sees). Nil refuses every request. It runs as OnMessage
	// does, in order with the client's messages.
	OnSubscribe func(ctx context.Context, s *Socket, channel string) error

	// OnPublish decides whether a v2 client may publish text to channel,
	// which it asked for with "publish CHANNEL": nil error publishes it
	// (Hub.Publish, with the socket's context), an error refuses (an
	// "error" message with its text). The socket need not be in the
	// channel. Nil refuses every request.
	OnPublish func(ctx context.Context, s *Socket, channel, text string) error

	// MaxChannels bounds the channels a socket is in at once, and the
	// entries of its cursor. 0 means DefaultMaxChannels; a negative
	// value means the default too, since the cursor must stay bounded.
	MaxChannels int

	// OnMessage is called with every text message a client sends: on
	// WebSocket from the socket's read goroutine, on EventSource from the
	// goroutine serving the POST that carried it. Calls for one socket
	// never overlap, and the next message is not read (WebSocket) or the
	// POST is not answered (EventSource) until the call returns, so a
	// slow OnMessage slows that client only. ctx ends when the socket
	// ends. OnMessage may call any Socket method, Close included. Nil
	// means messages are read and dropped.
	OnMessage func(ctx context.Context, s *Socket, text string)

	// Heartbeat is the idle time after which a connection is probed, so
	// that dead peers are noticed: a WebSocket ping that must be answered
	// within the same time (unless the WebSocket options set their own
	// heartbeat and PongTimeout), an EventSource comment line (unless the
	// EventSource options set their own heartbeat) whose write must
	// finish within WriteTimeout. A realtime.v2 socket also gets a
	// "heartbeat" message, which its client sees, after its position
	// and whenever nothing was written to it for one Heartbeat; on
	// EventSource it replaces the comment lines. 0 means
	// DefaultHeartbeat; a negative value sends none.
	Heartbeat time.Duration

	// WriteTimeout bounds every write to a client on either transport; a
	// client that does not take a write in time is disconnected and the
	// socket's Err wraps eventsource.ErrWriteTimeout, on both
	// transports. On WebSocket the bound covers the messages the writer
	// takes from the queue at once (one context per batch is cheaper
	// than one per message). 0 means DefaultWriteTimeout; negative means
	// no bound.
	WriteTimeout time.Duration

	// MaxQueue bounds the messages waiting for a socket's writer. 0
	// means DefaultMaxQueue; a negative value means no bound on the
	// count.
	MaxQueue int

	// MaxQueueBytes bounds the payload bytes of the messages waiting for
	// a socket's writer or being written by it, so a stalled client pins
	// a bounded amount of memory. A message is always accepted by an
	// empty queue, so one larger than the bound is still delivered, on
	// its own: the queue then holds at most MaxQueueBytes plus one
	// message. A channel message counts in full for each socket, although its
	// bytes are shared. 0 means DefaultMaxQueueBytes; a negative value
	// means no bound on the bytes.
	MaxQueueBytes int64

	// QueuePolicy is applied when a message would exceed MaxQueue or
	// MaxQueueBytes.
	QueuePolicy QueuePolicy

	// MaxMessageSize bounds a message from a client, in bytes: a
	// WebSocket message (unless WebSocket.MaxMessageSize is set), or the
	// body of a POST. 0 means websocket.DefaultMaxMessageSize; a negative
	// value means no bound.
	MaxMessageSize int64

	// WebSocket configures the WebSocket handshake and connections:
	// origin checks, extensions, extra subprotocols, limits.
	// SubprotocolV2 and Subprotocol are always supported in addition to
	// those listed.
	WebSocket websocket.AcceptOptions

	// OriginPatterns allows browser pages of other origins on every
	// transport: the WebSocket upgrade, the EventSource GET, the POST and
	// its CORS preflight (OPTIONS). A request without Origin, or from
	// the request's own host, is always allowed. A pattern is matched as
	// in websocket.AcceptOptions.OriginPatterns (path.Match against the
	// origin's host, or against "scheme://host" when it contains "://"),
	// and the patterns of WebSocket.OriginPatterns apply too; so does
	// WebSocket.InsecureSkipOriginCheck, which allows every origin. An
	// allowed origin gets the CORS headers (without credentials: the
	// session token is the credential); any other gets 403.
	OriginPatterns []string

	// EventSource configures event streams: retry, padding, headers.
	// Its LastEventIDParam also names the query parameter a WebSocket
	// client resumes with.
	EventSource eventsource.Options

	// Observer receives the events of the handler's sockets (see
	// Observer): connects, disconnects, refusals, messages, drops... Nil
	// means the Hub's HubOptions.Observer, or none without a hub.
	Observer *Observer

	// Logger, when set, logs the events of the handler's sockets
	// (connects and disconnects at Debug, fallbacks and failed resumes at
	// Info, refusals, drops and missed heartbeats at Warn; never
	// messages). Nil means the Hub's HubOptions.Logger, or nothing
	// logged without a hub.
	Logger *slog.Logger
}

// config is Options with the defaults applied, ready for both transports.
type config struct {
	hub          *Hub
	channels     []string
	onConnect    func(context.Context, *Socket) error
	onSubscribe  func(context.Context, *Socket, string) error
	onPublish    func(context.Context, *Socket, string, string) error
	maxChannels  int
	onMessage    func(context.Context, *Socket, string)
	writeTimeout time.Duration // <= 0: none
	maxQueue     int           // <0: no bound
	maxQueueB    int64         // <0: no bound
	policy       QueuePolicy
	maxMessage   int64
	ws           websocket.AcceptOptions
	es           eventsource.Options
	esV2         eventsource.Options // es without comment lines, when beat > 0
	idParam      string
	beat         time.Duration // <= 0: no heartbeat messages
	heartbeat    *message      // the heartbeat message of v2 sockets
	origins      []string      // Options.OriginPatterns and WebSocket.OriginPatterns
	anyOrigin    bool          // WebSocket.InsecureSkipOriginCheck
	obs          observer      // Observer and Logger, or the hub's
}

func newConfig(opts *Options) config {
	var o Options
	if opts != nil {
		o = *opts
	}
	c := config{
		hub:          o.Hub,
		channels:     slices.Clone(o.Channels),
		onConnect:    o.OnConnect,
		onSubscribe:  o.OnSubscribe,
		onPublish:    o.OnPublish,
		maxChannels:  o.MaxChannels,
		onMessage:    o.OnMessage,
		writeTimeout: o.WriteTimeout,
		maxQueue:     o.MaxQueue,
		maxQueueB:    o.MaxQueueBytes,
		policy:       o.QueuePolicy,
		maxMessage:   o.MaxMessageSize,
		ws:           *o.WebSocket.Clone(),
		es:           cloneEventSource(o.EventSource),
		idParam:      o.EventSource.LastEventIDParam,
	}
	if c.writeTimeout == 0 {
		c.writeTimeout = DefaultWriteTimeout
	}
	if c.maxQueue == 0 {
		c.maxQueue = DefaultMaxQueue
	}
	if c.maxQueueB == 0 {
		c.maxQueueB = DefaultMaxQueueBytes
	}
	if c.maxMessage == 0 {
		c.maxMessage = websocket.DefaultMaxMessageSize
	}
	if c.maxChannels <= 0 {
		c.maxChannels = DefaultMaxChannels
	}
	if c.idParam == "" {
		c.idParam = eventsource.DefaultLastEventIDParam
	}
	beat := o.Heartbeat
	if beat == 0 {
		beat = DefaultHeartbeat
	}

	for _, p := range []string{SubprotocolV2, Subprotocol} {
		if !slices.Contains(c.ws.Subprotocols, p) {
			c.ws.Subprotocols = append(c.ws.Subprotocols, p)
		}
	}
	if c.ws.MaxMessageSize == 0 {
		c.ws.MaxMessageSize = c.maxMessage
	}
	if c.ws.Heartbeat == 0 && beat > 0 {
		c.ws.Heartbeat = beat
	}
	if c.es.Heartbeat == 0 {
		c.es.Heartbeat = beat // negative turns them off, as there
	}
	if c.es.WriteTimeout == 0 {
		c.es.WriteTimeout = c.writeTimeout
	}
	c.beat = beat
	c.heartbeat = &message{kind: kindHeartbeat, text: strconv.FormatInt(beat.Milliseconds(), 10)}
	c.esV2 = c.es
	if beat > 0 {
		// The heartbeat messages of a v2 stream keep it busy instead.
		c.esV2.Heartbeat = -1
	}
	c.ws.OriginPatterns = append(c.ws.OriginPatterns, o.OriginPatterns...)
	c.origins = c.ws.OriginPatterns
	c.anyOrigin = c.ws.InsecureSkipOriginCheck
	obs, log := o.Observer, o.Logger
	if h := o.Hub; h != nil {
		if obs == nil {
			obs = h.observer
		}
		if log == nil {
			log = h.logger
		}
	}
	c.obs = newObserver(obs, log)
	return c
}

// cloneEventSource copies o deeply, so that the caller's later changes to
// its header do not reach the handler.
func cloneEventSource(o eventsource.Options) eventsource.Options {
	o.Header = o.Header.Clone()
	return o
}
