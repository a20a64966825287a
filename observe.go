package realtime

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/realtime-go/realtime/eventsource"
	"github.com/realtime-go/realtime/websocket"
)

// FallbackParam is the query parameter by which an EventSource client
// tells the server that it fell back from WebSocket: the browser client
// and package client add "fallback=1" to an EventSource request that
// follows a failed WebSocket attempt in the same connection round (see
// the package documentation). The server only reports it
// (Observer.OnFallback); nothing else depends on it.
const FallbackParam = "fallback"

// Observer receives the events of sockets and hubs, for metrics and
// traces (modules prometheus and otel of this repository adapt it). Every
// field is optional: a nil one costs one nil check where its event
// happens, and no allocation. Events are small values passed by value.
//
// The hooks are called synchronously, on the goroutine where the event
// happens (a socket's writer or reader, a request's, a Publish caller's),
// possibly from many goroutines at once: they must be safe for
// concurrent use, must not block (count, then return) and must not call
// the socket's Close or CloseWith. They run with no lock of the package
// held.
//
// An Observer is set on HubOptions (the usual single place: every
// handler of the hub reports to it, and the hub's own events, OnPublish,
// only go there) or on Options, for a handler without a hub or one that
// reports elsewhere. Both copy the Observer; changing it afterwards
// changes nothing.
type Observer struct {
	// OnConnect: a socket opened, its transport accepted (after the
	// WebSocket upgrade, or the event stream's response header).
	OnConnect func(ConnectEvent)

	// OnDisconnect: a socket that OnConnect reported ended.
	OnDisconnect func(DisconnectEvent)

	// OnRefuse: a request for a socket (a WebSocket upgrade or an
	// EventSource GET, or a GET whose Upgrade header a proxy dropped)
	// was refused before the socket opened.
	OnRefuse func(RefuseEvent)

	// OnFallback: an EventSource socket opened whose client fell back
	// from WebSocket (FallbackParam). It comes just before its
	// OnConnect, with the same event.
	OnFallback func(ConnectEvent)

	// OnResume: a join that resumed from the position the client
	// presented for the channel (its last event id), or failed to (the
	// history no longer reaches back, the cursor was malformed): the
	// client may have missed messages. A join without a presented
	// position is no resume and not reported. Joins of Options.Channels
	// and OnConnect come before OnConnect.
	OnResume func(ResumeEvent)

	// OnMessageIn: a message from a client: on realtime.v2 every request
	// (a message, a publish, a subscribe...), counted once as received.
	OnMessageIn func(MessageEvent)

	// OnMessageOut: messages written to a socket: once per write of the
	// socket's writer for each run of consecutive messages of one
	// channel in it (Messages and Bytes the run's), so that a broadcast
	// costs one call per socket, not per message. Only messages count
	// (channel messages and Socket.Send's), not the protocol's frames
	// (positions, heartbeats, subscribed...).
	OnMessageOut func(MessageEvent)

	// OnDrop: messages of a socket's queue were dropped, by
	// QueueDropOldest (reported by the writer, soon after) or because
	// the queue overflowed under QueueClose and the socket closed with
	// 1013 (the queued messages and the one refused).
	OnDrop func(DropEvent)

	// OnHeartbeatMissed: a socket ended because its peer did not answer
	// in time: a WebSocket heartbeat's pong did not come within the
	// PongTimeout, or a write did not finish within WriteTimeout (on
	// EventSource, where a heartbeat is a write, the only sign). It
	// comes before the socket's OnDisconnect.
	OnHeartbeatMissed func(HeartbeatEvent)

	// OnPublish: a Hub.Publish returned: how long the broker took to
	// append the message (retries included) and, when this node has
	// sockets in the channel, how long the node's follow of the broker
	// then took to deliver it to them: the node's follow lag.
	OnPublish func(PublishEvent)
}

// ConnectEvent is a socket that opened.
type ConnectEvent struct {
	Socket    *Socket
	Transport Transport
	// Protocol is the wire protocol: "realtime.v2", "realtime.v1", or ""
	// for a WebSocket without a subprotocol.
	Protocol string
	// Fallback: an EventSource socket whose client fell back from
	// WebSocket (FallbackParam).
	Fallback bool
	// Reconnect: the client presented a last event id, so it is coming
	// back (a reconnection, or a page that saved its id); see OnResume
	// for whether it resumed.
	Reconnect bool
}

// DisconnectEvent is a socket that ended.
type DisconnectEvent struct {
	Socket    *Socket
	Transport Transport
	Protocol  string
	// Code is the close code: the server's (Close, CloseWith, 1001 by
	// Hub.Shutdown, 1013 by a queue overflow), else the WebSocket
	// client's, else 1006, a connection that ended without a close (an
	// EventSource client that went away, a write that failed).
	Code websocket.StatusCode
	// Duration is how long the socket was open.
	Duration time.Duration
	// Err is the cause, what Socket.Err returns: nil for a close the
	// server asked for.
	Err error
}

// RefuseReason says why a socket was refused.
type RefuseReason uint8

// The reasons of a refusal; String gives their names, usable as metric
// labels.
const (
	RefuseOrigin    RefuseReason = iota + 1 // a foreign origin not allowed: 403
	RefuseShutdown                          // the hub is shutting down or closed: 503
	RefuseChannel                           // a channel of Options.Channels could not be joined: 503
	RefuseForbidden                         // Options.OnConnect refused: 403
	RefuseHandshake                         // the WebSocket or EventSource handshake failed (a GET without Upgrade gets 426)
)

// String returns "origin", "shutdown", "channel", "forbidden" or
// "handshake".
func (r RefuseReason) String() string {
	switch r {
	case RefuseOrigin:
		return "origin"
	case RefuseShutdown:
		return "shutdown"
	case RefuseChannel:
		return "channel"
	case RefuseForbidden:
		return "forbidden"
	case RefuseHandshake:
		return "handshake"
	}
	return "invalid"
}

// RefuseEvent is a request for a socket that was refused.
type RefuseEvent struct {
	Request   *http.Request
	Transport Transport
	Reason    RefuseReason
	Err       error // the handshake's or the join's error, OnConnect's; nil for the others
}

// ResumeEvent is a join that resumed, or failed to, from the position
// the client presented.
type ResumeEvent struct {
	Socket  *Socket
	Channel string
	Resumed bool // false: the resume failed, messages may be missing
}

// MessageEvent is messages from or to a socket.
type MessageEvent struct {
	Socket *Socket
	// Channel is the messages' channel: "" for those to or from this
	// socket alone (Socket.Send, a client's message; a v2 "publish"
	// request counts in its channel).
	Channel  string
	Messages int
	Bytes    int64 // the payload, the text alone
}

// DropReason says why messages were dropped.
type DropReason uint8

const (
	DropOldest DropReason = iota + 1 // QueueDropOldest made room
	DropClose                        // the queue overflowed under QueueClose: the socket closed
)

// String returns "oldest" or "close".
func (r DropReason) String() string {
	switch r {
	case DropOldest:
		return "oldest"
	case DropClose:
		return "close"
	}
	return "invalid"
}

// DropEvent is messages dropped from a socket's queue.
type DropEvent struct {
	Socket   *Socket
	Reason   DropReason
	Messages uint64
}

// HeartbeatEvent is a peer that did not answer in time.
type HeartbeatEvent struct {
	Socket    *Socket
	Transport Transport
	// Pong: a heartbeat's pong was late; false: a write timed out.
	Pong bool
}

// PublishEvent is a Hub.Publish that returned.
type PublishEvent struct {
	// Context is the one Publish was called with: a tracer finds the
	// caller's span in it.
	Context context.Context
	Channel string
	// Start is when Publish started.
	Start time.Time
	// Duration is the broker's append, retries included.
	Duration time.Duration
	// Delivered is how long after the append this node delivered the
	// message to its sockets in the channel; 0 when it has none there,
	// or the wait for it was given up (see Hub.Publish).
	Delivered time.Duration
	Err       error
}

// observer is an Observer with Logger's logging folded into its hooks,
// so that an event costs one nil check whether it is observed, logged,
// or neither.
type observer Observer

// newObserver returns o, with log's records added: connects and
// disconnects at Debug, fallbacks and failed resumes at Info, refusals,
// drops and missed heartbeats at Warn, failed publishes at Warn.
// Messages are not logged.
func newObserver(o *Observer, log *slog.Logger) observer {
	var ob observer
	if o != nil {
		ob = observer(*o)
	}
	if log == nil {
		return ob
	}
	ob.OnConnect = also(ob.OnConnect, func(e ConnectEvent) {
		log.Debug("realtime: socket opened", "socket", e.Socket.ID(), "transport", e.Transport.String(), "protocol", e.Protocol, "fallback", e.Fallback)
	})
	ob.OnDisconnect = also(ob.OnDisconnect, func(e DisconnectEvent) {
		log.Debug("realtime: socket ended", "socket", e.Socket.ID(), "transport", e.Transport.String(), "code", int(e.Code), "duration", e.Duration, "err", e.Err)
	})
	ob.OnRefuse = also(ob.OnRefuse, func(e RefuseEvent) {
		log.Warn("realtime: socket refused", "reason", e.Reason.String(), "transport", e.Transport.String(), "remote", e.Request.RemoteAddr, "err", e.Err)
	})
	ob.OnFallback = also(ob.OnFallback, func(e ConnectEvent) {
		log.Info("realtime: client fell back to EventSource", "socket", e.Socket.ID(), "remote", e.Socket.Request().RemoteAddr)
	})
	ob.OnResume = also(ob.OnResume, func(e ResumeEvent) {
		if !e.Resumed {
			log.Info("realtime: resume failed", "socket", e.Socket.ID(), "channel", e.Channel)
		}
	})
	ob.OnDrop = also(ob.OnDrop, func(e DropEvent) {
		log.Warn("realtime: messages dropped", "socket", e.Socket.ID(), "reason", e.Reason.String(), "messages", e.Messages)
	})
	ob.OnHeartbeatMissed = also(ob.OnHeartbeatMissed, func(e HeartbeatEvent) {
		log.Warn("realtime: peer did not answer in time", "socket", e.Socket.ID(), "transport", e.Transport.String(), "pong", e.Pong)
	})
	ob.OnPublish = also(ob.OnPublish, func(e PublishEvent) {
		if e.Err != nil {
			log.Warn("realtime: publish failed", "channel", e.Channel, "duration", e.Duration, "err", e.Err)
		}
	})
	return ob
}

// also returns a hook that calls f, then g.
func also[E any](f, g func(E)) func(E) {
	if f == nil {
		return g
	}
	return func(e E) { f(e); g(e) }
}

// protocolName is the name of a socket's wire protocol.
func (s *Socket) protocolName() string {
	switch s.proto {
	case protoV2:
		return SubprotocolV2
	case protoV1:
		return Subprotocol
	}
	return ""
}

// observeOpen reports a socket whose transport was accepted; called
// once, before its goroutines start.
func (s *Socket) observeOpen() {
	ob := &s.cfg().obs
	if ob.OnConnect == nil && ob.OnFallback == nil && ob.OnDisconnect == nil && ob.OnDrop == nil && ob.OnHeartbeatMissed == nil {
		return
	}
	s.mu.Lock()
	if s.ended {
		// Hub.Close cut it during the handshake: it never opened.
		s.mu.Unlock()
		return
	}
	s.opened = time.Since(epoch) + 1 // never 0
	s.mu.Unlock()
	e := ConnectEvent{Socket: s, Transport: s.transport, Protocol: s.protocolName(), Reconnect: s.lastEventID != ""}
	if r := s.req.Load(); s.transport == TransportEventSource && r.URL != nil && strings.Contains(r.URL.RawQuery, FallbackParam) {
		e.Fallback = r.URL.Query().Get(FallbackParam) != ""
	}
	if e.Fallback && ob.OnFallback != nil {
		ob.OnFallback(e)
	}
	if ob.OnConnect != nil {
		ob.OnConnect(e)
	}
}

// observeEnd reports the end of a socket that observeOpen reported,
// with its cause: drops by the queue, a missed heartbeat, the
// disconnect.
func (s *Socket) observeEnd(cause error) {
	ob := &s.cfg().obs
	s.mu.Lock()
	opened, closing, code := s.opened, s.closing, websocket.StatusCode(s.closeCode)
	var overflow uint64
	if s.x != nil {
		overflow = s.x.overflow
	}
	s.mu.Unlock()
	if opened == 0 {
		return // refused, or not observed
	}
	s.observeDropped()
	if overflow > 0 && ob.OnDrop != nil {
		ob.OnDrop(DropEvent{Socket: s, Reason: DropClose, Messages: overflow})
	}
	if ob.OnHeartbeatMissed != nil {
		pong := errors.Is(cause, websocket.ErrPongTimeout)
		if pong || errors.Is(cause, eventsource.ErrWriteTimeout) {
			ob.OnHeartbeatMissed(HeartbeatEvent{Socket: s, Transport: s.transport, Pong: pong})
		}
	}
	if ob.OnDisconnect == nil {
		return
	}
	if !closing {
		code = websocket.StatusAbnormalClosure
		if c := websocket.CloseStatus(cause); c > 0 && s.ws != nil {
			code = c
		}
	}
	ob.OnDisconnect(DisconnectEvent{
		Socket: s, Transport: s.transport, Protocol: s.protocolName(),
		Code: code, Duration: time.Since(epoch) - (opened - 1), Err: cause,
	})
}

// observeDropped reports the messages QueueDropOldest dropped since the
// last report.
func (s *Socket) observeDropped() {
	if s.cfg().obs.OnDrop == nil {
		return
	}
	s.mu.Lock()
	n := s.dropped - s.dropSeen
	s.dropSeen = s.dropped
	s.mu.Unlock()
	if n > 0 {
		s.cfg().obs.OnDrop(DropEvent{Socket: s, Reason: DropOldest, Messages: n})
	}
}

// observeOut reports a batch the writer wrote (err nil), and the drops
// since the last one.
func (s *Socket) observeOut(batch []queued, err error) {
	ob := &s.cfg().obs
	if ob.OnDrop != nil {
		s.observeDropped()
	}
	if ob.OnMessageOut == nil || err != nil {
		return
	}
	e := MessageEvent{Socket: s}
	for _, q := range batch {
		m := q.m
		if m.kind != kindChannel && m.kind != kindSend {
			continue
		}
		if e.Messages > 0 && m.channel != e.Channel {
			ob.OnMessageOut(e)
			e.Messages, e.Bytes = 0, 0
		}
		e.Channel = m.channel
		for i := uint32(0); ; m, i = m.next, i+1 {
			e.Messages++
			e.Bytes += int64(len(m.text))
			if i == q.more {
				break
			}
		}
	}
	if e.Messages > 0 {
		ob.OnMessageOut(e)
	}
}

// observeIn reports a message from the client.
func (s *Socket) observeIn(text string) {
	f := s.cfg().obs.OnMessageIn
	if f == nil {
		return
	}
	e := MessageEvent{Socket: s, Messages: 1, Bytes: int64(len(text))}
	if s.proto == protoV2 {
		head, _, _ := strings.Cut(text, "\n")
		if word, channel, ok := strings.Cut(head, " "); ok && word == "publish" {
			e.Channel = channel
		}
	}
	f(e)
}

// observeJoin reports the outcome of a join that had a position to
// resume from.
func (s *Socket) observeJoin(channel, status string) {
	if f := s.cfg().obs.OnResume; f != nil && status != statusFresh {
		f(ResumeEvent{Socket: s, Channel: channel, Resumed: status == statusResumed})
	}
}

// observeRefuse reports a refused request for a socket; requests for
// anything else (a POST, a preflight) are not sockets and not reported.
func (h *handler) observeRefuse(r *http.Request, reason RefuseReason, err error) {
	f := h.cfg.obs.OnRefuse
	if f == nil {
		return
	}
	var t Transport
	switch {
	case websocket.IsWebSocket(r):
		t = TransportWebSocket
	case eventsource.IsEventSource(r):
		t = TransportEventSource
	case r.Method == http.MethodGet && reason == RefuseHandshake:
		t = TransportWebSocket // a GET whose Upgrade header was dropped
	default:
		return
	}
	f(RefuseEvent{Request: r, Transport: t, Reason: reason, Err: err})
}

// publishStart returns the time a publish starts, when it is observed.
func (h *Hub) publishStart() time.Time {
	if h.obs.OnPublish == nil {
		return time.Time{}
	}
	return time.Now()
}

// publishEnd returns the time a publish's append ended, when observed.
func (h *Hub) publishEnd(t0 time.Time) time.Time {
	if t0.IsZero() {
		return t0
	}
	return time.Now()
}

// observePublish reports a publish that started at t0 (zero: not
// observed) and whose append ended at t1.
func (h *Hub) observePublish(ctx context.Context, channel string, t0, t1 time.Time, delivered bool, err error) {
	if t0.IsZero() {
		return
	}
	e := PublishEvent{Context: ctx, Channel: channel, Start: t0, Duration: t1.Sub(t0), Err: err}
	if delivered {
		e.Delivered = time.Since(t1)
	}
	h.obs.OnPublish(e)
}
