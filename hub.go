package realtime

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/realtime-go/realtime/internal/ctxio"
	"github.com/realtime-go/realtime/websocket"
)

// Defaults for HubOptions fields left zero.
const (
	// DefaultMaxHistory is how many messages of each channel a Hub keeps
	// in its cache (and its own memory broker in its history).
	DefaultMaxHistory = 1000
	// DefaultMaxHistoryBytes bounds the payload bytes of each channel a
	// Hub keeps in its cache (and its own memory broker in its history).
	DefaultMaxHistoryBytes = 4 << 20
	// DefaultPresenceTTL is how long a presence entry lives unless its
	// node refreshes it (every third of it): the bound on how long the
	// entries of a node that died stay listed.
	DefaultPresenceTTL = 30 * time.Second
)

// HubOptions configures a Hub. A nil *HubOptions means the zero value;
// NewHub copies it.
type HubOptions struct {
	// Broker numbers, keeps and carries the messages of the channels,
	// and keeps presence, for every Hub (node) that shares it. Nil means
	// a NewMemoryBroker of the hub's own, whose history has the bounds
	// below: one process, as a Hub was before brokers. The hub does not
	// close a Broker it was given.
	Broker Broker

	// Node is this hub's name among the nodes sharing the broker, which
	// socket ids and session tokens carry so that any node can reach a
	// socket: 1-200 bytes of UTF-8 without spaces, control characters or
	// dots, unique among them. "" means a random name.
	Node string

	// MaxHistory is how many recent messages of each channel the hub
	// keeps in its cache, from which resuming clients are served without
	// asking the broker. 0 means DefaultMaxHistory; a negative value
	// means no bound on the count. Without a Broker, the hub's own
	// memory broker keeps the same history: with MaxHistory 1, a client
	// can only resume when it missed at most the latest message.
	MaxHistory int

	// MaxHistoryBytes bounds the summed payload bytes of each channel's
	// cached messages. Each wire form in use (a realtime.v1 WebSocket
	// frame, a plain WebSocket frame, an EventSource event...) holds one
	// more copy of a message, made once and shared by every socket in
	// one channel only. 0 means DefaultMaxHistoryBytes; a negative value
	// means no bound on the bytes.
	MaxHistoryBytes int64

	// MaxHistoryAge, when positive, drops cached messages older than
	// this; 0 or a negative value means no bound on the age.
	MaxHistoryAge time.Duration

	// PresenceTTL is how long a presence entry lives in the broker
	// unless refreshed: the hub refreshes its sockets' entries every
	// third of it, so the entries of a node that died (and cannot
	// remove them) are gone from Hub.Presence within PresenceTTL, and
	// their leave events are published within PresenceTTL plus a third
	// of it by any node with sockets in the channel. 0 means
	// DefaultPresenceTTL; a negative value means the default too, as
	// presence must always expire.
	PresenceTTL time.Duration

	// OnPresence, when set, is called with every join and leave in the
	// presence of each channel this node has sockets in, from any node,
	// one call at a time, in the order of each channel's presence
	// stream. It must not block for long: events wait for it.
	OnPresence func(PresenceEvent)

	// Observer receives the hub's events (OnPublish) and those of the
	// sockets of every Handler of the hub whose Options.Observer is nil
	// (see Observer). Nil means none.
	Observer *Observer

	// Logger, when set, logs the hub's events (failed publishes, at
	// Warn) and those of the sockets of every Handler of the hub whose
	// Options.Logger is nil (see Options.Logger). Nil logs nothing.
	Logger *slog.Logger
}

// PresenceEvent is a join or a leave in the presence of a channel: a
// socket with a user (Socket.SetPresence) joined it or left it, on any
// node; a leave also comes when the entry of a node that died expired.
type PresenceEvent struct {
	Channel string
	Join    bool
	Entry   PresenceEntry
}

// Hub is one node's side of a set of channels: sockets join channels,
// and Publish sends a message to every socket of a channel, on every
// node sharing the hub's Broker. Sockets come to a hub through
// Options.Hub.
//
// Every message is numbered by the broker and kept, within the broker's
// history, so that a client that reconnects, to any node, with the id
// of the last message it got receives the ones it missed of each of its
// channels, exactly once and in order, before the live ones. The id a
// client keeps is its cursor: one position per channel, opaque to
// clients (see the package documentation). Messages sent to one socket
// with Socket.Send or Hub.SendTo are not numbered and not replayed.
//
// For each channel that has sockets on this node, the hub follows the
// broker from the latest position it had when the first of them joined,
// and delivers each message, in the broker's order, to the channel's
// sockets; its own publishes come back the same way, so every node
// delivers in the same order. It keeps the channel's recent messages in
// a cache bounded by HubOptions, from which resuming clients are served
// under the channel's lock; older ones come from the broker.
//
// A Hub is safe for concurrent use. Close stops its goroutines.
type Hub struct {
	broker     Broker
	own        bool // broker is the hub's: Close closes it
	node       string
	maxN       int   // <0: no bound
	maxBytes   int64 // <0: no bound
	maxAge     time.Duration
	ttl        time.Duration
	onPresence func(PresenceEvent)
	reg        *registry
	observer   *Observer    // HubOptions.Observer, copied, for the handlers
	logger     *slog.Logger // HubOptions.Logger, for the handlers
	obs        observer     // both, for the hub's own events

	ctx    context.Context // ends at Close
	stop   context.CancelFunc
	wg     sync.WaitGroup
	isDone atomic.Bool // Close was called: Publish, Presence and SendTo refuse

	mu       sync.Mutex
	channels map[string]*channel
	sockets  map[*Socket]struct{}
	shutting int // Shutdown calls in progress: refuse new sockets
	closed   bool

	pres presenceWork
}

// Errors of hubs and channels; test them with errors.Is.
var (
	// ErrHubClosed: the hub has been closed.
	ErrHubClosed = errors.New("realtime: hub closed")

	// ErrInvalidChannel: a channel name that breaks the rules (1-200
	// bytes of UTF-8 without spaces or control characters), or one
	// reserved for the library (starting with "$").
	ErrInvalidChannel = errors.New("realtime: invalid channel name")

	// ErrTooManyChannels: a socket is already in Options.MaxChannels
	// channels.
	ErrTooManyChannels = errors.New("realtime: too many channels")

	// ErrNoHub: the socket's handler has no Options.Hub, so it has no
	// channels.
	ErrNoHub = errors.New("realtime: no hub")
)

var errHubShutdown = errors.New("realtime: hub is shutting down")

// maxName bounds channel and node names.
const maxName = 200

// checkName applies the rules of channel and node names: 1-200 bytes of
// UTF-8, no space and no control character.
func checkName(name string) bool {
	if name == "" || len(name) > maxName || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == 0x85 || r == 0xa0 ||
			r == 0x2028 || r == 0x2029 {
			return false
		}
	}
	return true
}

// checkChannel refuses names against the rules and names reserved for
// the library.
func checkChannel(name string) error {
	if !checkName(name) || name[0] == '$' {
		return fmt.Errorf("%w: %s", ErrInvalidChannel, quotePrefix(name))
	}
	return nil
}

// NewHub returns a hub for the node opts.Node of opts.Broker (its own
// memory broker when nil). It answers other nodes' calls (the POSTs and
// Hub.SendTo of its sockets) through the broker until Close. A Node
// that breaks the naming rules panics: it is a mistake in the program,
// not in its input.
func NewHub(opts *HubOptions) *Hub {
	var o HubOptions
	if opts != nil {
		o = *opts
	}
	if o.Node == "" {
		var b [6]byte
		rand.Read(b[:])
		o.Node = base64.RawURLEncoding.EncodeToString(b[:])
	} else if !checkName(o.Node) || containsDot(o.Node) {
		panic("realtime: NewHub: node name " + quotePrefix(o.Node) + " breaks the rules")
	}
	h := &Hub{
		broker:     o.Broker,
		node:       o.Node,
		maxN:       o.MaxHistory,
		maxBytes:   o.MaxHistoryBytes,
		maxAge:     o.MaxHistoryAge,
		ttl:        o.PresenceTTL,
		onPresence: o.OnPresence,
		logger:     o.Logger,
		obs:        newObserver(o.Observer, o.Logger),
		channels:   make(map[string]*channel),
		sockets:    make(map[*Socket]struct{}),
	}
	h.reg = newRegistry(h.node)
	if o.Observer != nil {
		ob := *o.Observer
		h.observer = &ob
	}
	if h.maxN == 0 {
		h.maxN = DefaultMaxHistory
	}
	if h.maxBytes == 0 {
		h.maxBytes = DefaultMaxHistoryBytes
	}
	if h.ttl <= 0 {
		h.ttl = DefaultPresenceTTL
	}
	if h.broker == nil {
		h.broker = NewMemoryBroker(&MemoryBrokerOptions{
			MaxHistory: o.MaxHistory, MaxHistoryBytes: o.MaxHistoryBytes, MaxHistoryAge: o.MaxHistoryAge,
		})
		h.own = true
	}
	h.ctx, h.stop = context.WithCancel(context.Background())
	h.pres.init()
	h.wg.Add(2)
	go h.serveCalls()
	go h.presenceLoop()
	if h.onPresence != nil {
		h.wg.Add(1)
		go h.eventLoop()
	}
	return h
}

func containsDot(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return true
		}
	}
	return false
}

// Node returns the hub's node name.
func (h *Hub) Node() string { return h.node }

// Publish sends text to every socket of channel, on every node, and
// returns its position: one write to the broker, whatever the number of
// sockets. The hub's own sockets get it when the broker delivers it, in
// the broker's order, as every other node's do; Publish returns once it
// is queued for them (or after a second, should this node's delivery
// lag that far behind the broker), so that a publisher is paced by the
// fan-out instead of outrunning the broker's history. CR and CRLF line ends
// become LF. While the broker is unavailable Publish retries, with one
// idempotency key for all its attempts so that the message is appended
// at most once (within the broker's deduplication window), until ctx
// ends: it then fails with an error wrapping ErrBrokerUnavailable and
// ctx's error. Text that is not valid UTF-8 fails with an error matching
// websocket.ErrInvalidUTF8, a name against the rules with one matching
// ErrInvalidChannel.
//
// A message published while no socket is in the channel is kept all the
// same, within the broker's history, and reaches clients that resume.
func (h *Hub) Publish(ctx context.Context, channel, text string) (Position, error) {
	if err := checkChannel(channel); err != nil {
		return Position{}, err
	}
	if !utf8.ValidString(text) {
		return Position{}, errInvalidUTF8
	}
	if h.isDone.Load() {
		return Position{}, ErrHubClosed
	}
	// Until the message is queued for this node's sockets, their
	// writers let it go first (see writerSched.giveWay).
	sched.beginFanout()
	defer sched.endFanout()
	t0 := h.publishStart()
	p, err := h.publish(ctx, channel, normalizeLineEnds(text))
	t1, delivered := h.publishEnd(t0), false
	if err == nil {
		h.mu.Lock()
		c := h.channels[channel]
		h.mu.Unlock()
		if c != nil {
			select {
			case <-c.ready:
				if c.err == nil {
					delivered = c.waitDelivered(ctx, p)
				}
			default:
			}
		}
	}
	h.observePublish(ctx, channel, t0, t1, delivered, err)
	return p, err
}

// publish appends text to channel, retrying while the broker is
// unavailable with one key.
func (h *Hub) publish(ctx context.Context, channel, text string) (Position, error) {
	var k [16]byte
	rand.Read(k[:])
	key := base64.RawURLEncoding.EncodeToString(k[:])
	var b backoff
	for {
		p, err := h.broker.Publish(ctx, channel, text, key)
		if err == nil || !errors.Is(err, ErrBrokerUnavailable) {
			return p, err
		}
		if !b.wait(ctx) {
			return Position{}, errors.Join(err, ctx.Err())
		}
	}
}

// The backoff of the hub's retries while the broker is unavailable.
const (
	minRetry = 10 * time.Millisecond
	maxRetry = time.Second
)

// backoff is the wait between the hub's attempts while the broker is
// unavailable: minRetry, doubling up to maxRetry. The zero value is
// ready to use.
type backoff struct{ delay time.Duration }

// wait sleeps the current delay, then doubles it; it reports false if
// ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	if b.delay == 0 {
		b.delay = minRetry
	}
	ok := ctxio.Sleep(ctx, b.delay)
	b.delay = min(2*b.delay, maxRetry)
	return ok
}

// reset makes the next wait minRetry again.
func (b *backoff) reset() { b.delay = 0 }

// Len returns the number of sockets of the hub on this node.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sockets)
}

// Sockets returns the sockets of this node in channel, in no particular
// order.
func (h *Hub) Sockets(channel string) []*Socket {
	h.mu.Lock()
	c := h.channels[channel]
	h.mu.Unlock()
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Socket, 0, len(c.members))
	for s, mb := range c.members {
		if mb.catch == nil {
			out = append(out, s)
		}
	}
	return out
}

// Shutdown closes every socket of the hub on this node, WebSockets with
// 1001 (going away) and EventSource streams with a realtime.close event
// carrying 1001, after the messages already queued for them; clients
// then reconnect, to this node or another. It waits until the sockets
// are closed or ctx ends; then it cuts the remaining connections at
// once and returns ctx's error. While Shutdown runs, handlers refuse new
// sockets of the hub with 503.
//
// Shutdown does not end the hub: sockets may join again once it has
// returned. With an http.Server, call it from RegisterOnShutdown, which
// runs once the listeners are closed, and Close the hub after:
//
//	srv.RegisterOnShutdown(func() { hub.Shutdown(ctx) })
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.shutting++
	socks := make([]*Socket, 0, len(h.sockets))
	for s := range h.sockets {
		socks = append(socks, s)
	}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.shutting--
		h.mu.Unlock()
	}()
	for _, s := range socks {
		s.startClose(websocket.StatusGoingAway, "going away", nil)
	}
	for _, s := range socks {
		select {
		case <-s.waitEnd(&s.writerEnd, &s.writerDone):
		case <-ctx.Done():
			for _, s := range socks {
				s.abort()
			}
			return ctx.Err()
		}
	}
	return nil
}

// Close ends the hub: it cuts the connections of its sockets still open
// on this node (Shutdown first closes them gracefully), stops following
// channels and answering other nodes' calls, waits for its goroutines,
// and closes the broker when it is the hub's own. Publish, Presence,
// SendTo and joins then fail with ErrHubClosed. Presence entries of its
// sockets are removed when the broker can be reached. Close returns nil,
// or the error of closing its own broker.
func (h *Hub) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.isDone.Store(true)
	socks := make([]*Socket, 0, len(h.sockets))
	for s := range h.sockets {
		socks = append(socks, s)
	}
	h.mu.Unlock()
	for _, s := range socks {
		s.abort()
	}
	// The sockets' leaves have queued their presence removals; the
	// presence loop does them before it ends.
	h.pres.finish()
	h.stop()
	h.wg.Wait()
	if h.own {
		return h.broker.Close()
	}
	return nil
}

// attach adds s to the hub's sockets, unless the hub is shutting down
// or closed.
func (h *Hub) attach(s *Socket) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed:
		return ErrHubClosed
	case h.shutting > 0:
		return errHubShutdown
	}
	h.sockets[s] = struct{}{}
	return nil
}

// detach removes an ended socket from the hub and its channels.
func (h *Hub) detach(s *Socket) {
	h.mu.Lock()
	delete(h.sockets, s)
	h.mu.Unlock()
	s.mu.Lock()
	chans := s.chans
	s.chans = nil
	e := s.presence
	s.mu.Unlock()
	for _, mb := range chans {
		c := mb.ch
		name := c.name
		c.mu.Lock()
		c.removeMember(s)
		c.mu.Unlock()
		h.release(c)
		if e != nil {
			h.pres.remove(name, *e)
		}
	}
}

func (h *Hub) shuttingDown() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.shutting > 0
}
