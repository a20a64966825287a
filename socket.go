package realtime

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/realtime-go/realtime/eventsource"
	"github.com/realtime-go/realtime/internal/eshook"
	"github.com/realtime-go/realtime/internal/lazydone"
	"github.com/realtime-go/realtime/websocket"
)

// Transport tells which transport a Socket uses. Package client names
// the same idea client.Transport, with the same String values.
type Transport int

const (
	TransportWebSocket   Transport = iota + 1 // a WebSocket connection
	TransportEventSource                      // an EventSource stream, plus POSTs from the client
)

// String returns "websocket" or "eventsource".
func (t Transport) String() string {
	switch t {
	case TransportWebSocket:
		return "websocket"
	case TransportEventSource:
		return "eventsource"
	}
	return "invalid"
}

// Socket is the server side of one client connection, on either
// transport. A Handler makes it and passes it to its serve function.
//
// All methods are safe for concurrent use. Send never blocks: it puts
// the message on the socket's bounded queue, which the socket's writer
// goroutine drains, so a slow client never slows the code sending to it
// (see QueuePolicy for what happens when the queue is full).
//
// # Goroutines
//
// A socket has a writer only while it has something to write (queued
// messages, its position, a heartbeat, the close): the first Send to an
// idle socket hands it to a few writer goroutines shared by every
// socket, which write each socket's whole queue at once, so that an
// idle socket holds no parked goroutine and no grown stack. On
// WebSocket the socket also owns a read goroutine, which runs
// Options.OnMessage. Both end when the socket ends, which Close brings
// about; Close waits for them, except that it does not wait for a read
// goroutine that is running OnMessage, so that OnMessage may call Close.
type Socket struct {
	id    string
	req   atomic.Pointer[http.Request] // until the transport opens; see Request
	rq    *requestCopy                 // WebSocket: what Request returns from then on
	ws    *websocket.Conn
	es    *eventsource.Stream
	token string // EventSource only
	hnd   *handler
	hub   *Hub // cfg.hub: nil when the handler has none

	lastEventID string
	presented   cursor // decoded lastEventID; the positions to resume from
	cur         cursor // the writer's: the cursor after the last message written

	vals context.Context // the request context's values, not its lifetime

	mu       sync.Mutex
	queue    []queued
	counted  int            // messages in queue within the count bound: all but the replayed ones
	queued   int64          // payload bytes in queue and in the batch being written
	spare    []queued       // the writer's previous batch, reused
	dl       *writeDeadline // the writers' batch deadline and idle timer; set by run and kickLocked
	seq      uint64         // EventSource: the highest Realtime-Seq delivered
	dropped  uint64
	dropSeen uint64         // dropped, as reported to Observer.OnDrop
	opened   time.Duration  // when the socket opened, if observed: since epoch, plus 1; else 0
	chans    memberships    // the channels joined
	presence *PresenceEntry // SetPresence; nil: none
	x        *socketExtra   // rarely needed state, made on first use; under mu

	done       lazydone.Chan // closed once isEnded is set
	err        error         // set before isEnded is
	readerDone chan struct{} // closed when readerEnd is set; made by a wait before, under mu
	writerDone chan struct{} // the same for writerEnd

	endOnce sync.Once
	joinMu  sync.Mutex // serializes Join and Leave
	msgMu   sync.Mutex // serializes OnMessage for POSTs

	// The small fields last, packed: the Socket is most of an idle
	// socket's memory of its own.
	transport Transport
	inMessage atomic.Bool // the read goroutine is in OnMessage
	isEnded   atomic.Bool // done is closed: the socket has ended (set under mu)
	closeCode uint16      // a websocket.StatusCode; under mu, as the flags below but the first three
	proto     protocol
	badCursor bool // lastEventID was given but is not a cursor: every join fails
	hello     bool // the writer has announced the position: joins send their own
	closing   bool // a close was asked for; it follows the queued messages
	ended     bool
	beat      bool // a heartbeat message is due
	started   bool // the transport is open: writers may start
	writing   bool // a writer runs, or the socket ended without one (none may start)
	ctxDone   bool // the context's AfterFunc registrations ran
	aborted   bool // abort cut the writes: a batch deadline starts expired
	hasReader bool // a WebSocket's read goroutine runs, or ran
	readerEnd bool // it has ended
	writerEnd bool // the last writer has ended
}

// socketExtra holds what most sockets never need, so that they do not
// pay for it: made by extra on first use.
type socketExtra struct {
	failed      map[string]bool // channels whose latest join could not resume
	closeReason string
	closeErr    error          // what Err reports after that close
	overflow    uint64         // messages dropped by the overflow that closed the socket
	afters      []*socketAfter // the context's AfterFunc registrations
}

// extra returns s.x, made if needed. Called with mu held.
func (s *Socket) extra() *socketExtra {
	if s.x == nil {
		s.x = new(socketExtra)
	}
	return s.x
}

// queued is a message in a socket's queue, or a run of a channel's
// messages delivered live one after the other: m, then the more that
// followed it (m.next, and so on). A burst of broadcasts costs a socket
// one entry, which each delivery extends, rather than an entry each and
// the growth of the queue's array. A replayed message is not
// counted against the queue's bounds: a join's replay is bounded by the
// history already, and counting it would close a socket that resumes
// after a long absence before it could catch up.
type queued struct {
	m      *message
	more   uint32
	replay bool
}

// messages yields the messages of q in order: m, then the more that
// followed it.
func (q queued) messages(yield func(*message) bool) {
	for m, i := q.m, uint32(0); yield(m) && i < q.more; m, i = m.next, i+1 {
	}
}

// runBytes is the payload bytes of the counted messages of q.
func runBytes(q []queued) int64 {
	var n int64
	for _, e := range q {
		if e.replay {
			continue
		}
		for m := range e.messages {
			n += int64(len(m.text))
		}
	}
	return n
}

// protocol is the wire protocol a socket speaks.
type protocol uint8

const (
	protoPlain protocol = iota // a WebSocket without a subprotocol: data only
	protoV1                    // realtime.v1
	protoV2                    // realtime.v2
)

func newSocket(h *handler, transport Transport, r *http.Request) *Socket {
	s := &Socket{
		id:        h.reg.newID(),
		transport: transport,
		hnd:       h,
		hub:       h.cfg.hub,
	}
	s.req.Store(r)
	// Keep the request's values (authentication, tracing), not its
	// lifetime: the socket's is its own.
	s.vals = h.requestValues(r.Context())
	return s
}

// cfg returns the socket's configuration, its handler's.
func (s *Socket) cfg() *config { return &s.hnd.cfg }

// epoch is what Socket.opened counts from: a time.Time per socket would
// cost it 16 bytes more.
var epoch = time.Now()

// ID returns an identifier for the socket, unique across the nodes of
// its hub's broker and fixed for the socket's life: NODE.RANDOM, where
// NODE is the hub's node name (Hub.SendTo uses it to reach the socket
// from any node), or RANDOM alone for a handler without a hub. It is not a secret: unlike the session token of an
// EventSource socket it grants nothing, so it may be shown to other
// users (presence lists it).
func (s *Socket) ID() string { return s.id }

// Transport returns the transport in use.
func (s *Socket) Transport() Transport { return s.transport }

// Request returns the request that opened the socket: its method, URL,
// headers, host, remote address, TLS state and path values. Before the
// socket opens (in OnConnect) it is the request itself. From then on it
// is a new copy at each call, which the caller may change, with no body
// and context.Background() as its context: net/http's parse of the
// request would cost every socket about 1 KiB for its life, and the
// request's own context has ended by then anyway (the handler of a
// WebSocket, and of an EventSource stream on a hijacked connection,
// returns once the socket opens). The socket's context, given to serve
// and OnMessage, keeps the request context's values.
func (s *Socket) Request() *http.Request {
	if r := s.req.Load(); r != nil {
		return r
	}
	if s.rq != nil {
		return s.rq.request()
	}
	// An EventSource stream keeps its request: a shallow copy, under
	// the same terms.
	r := s.es.Request()
	r2 := r.WithContext(context.Background())
	r2.Header = r.Header.Clone()
	if r.URL != nil {
		u := *r.URL
		r2.URL = &u
	}
	return r2
}

// LastEventID returns the id the client presented to resume from, or ""
// for a fresh client.
func (s *Socket) LastEventID() string { return s.lastEventID }

// ResumeFailed reports whether the socket's latest join of channel could
// not resume from the position the client presented: the broker no
// longer holds the messages after it (evicted by the history bounds), or
// it is of another epoch of the channel (the broker lost the stream), or
// the presented id was not a cursor. Such a client may have missed
// messages of that channel; send it whatever it needs to catch up, such
// as the full state. A v2 client is told too ("subscribed CHANNEL"
// with "failed").
func (s *Socket) ResumeFailed(channel string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.x != nil && s.x.failed[channel]
}

// Done returns a channel that is closed when the socket has ended.
func (s *Socket) Done() <-chan struct{} {
	// Made when first asked for: most sockets never are, and a channel
	// each cost every idle socket 96 bytes.
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done.Get(s.isEnded.Load())
}

// Err returns nil while the socket is open and after a close the server
// asked for (Close, CloseWith, Hub.Shutdown). Otherwise it tells why the
// socket ended: the peer's close (websocket.CloseStatus gives its code),
// a missed pong (websocket.ErrPongTimeout), a write timeout
// (eventsource.ErrWriteTimeout, on both transports), a client
// that went away, or an error matching eventsource.ErrQueueFull.
func (s *Socket) Err() error {
	if s.isDone() {
		return s.err
	}
	return nil
}

// isDone reports whether done is closed.
func (s *Socket) isDone() bool { return s.isEnded.Load() }

// Dropped returns how many messages QueueDropOldest has dropped.
func (s *Socket) Dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// WebSocket returns the underlying connection of a TransportWebSocket socket.
// Writing to it bypasses the send queue and the message ids; reading
// from it competes with the socket's read goroutine and must not be done.
func (s *Socket) WebSocket() (*websocket.Conn, bool) { return s.ws, s.ws != nil }

// EventSource returns the underlying stream of a TransportEventSource socket.
// Events sent on it bypass the send queue and the message ids; an event
// with an id of its own changes the client's last event id, which
// breaks resuming.
func (s *Socket) EventSource() (*eventsource.Stream, bool) { return s.es, s.es != nil }

var errSocketClosed = fmt.Errorf("realtime: socket closed: %w", net.ErrClosed)

// Send queues text for the client and returns without waiting for it to
// be written. On WebSocket it arrives as one text message, on
// EventSource as one event of the default type, with CR and CRLF line
// ends turned into LF on both. It is not numbered and a resuming client
// does not get it again; see Hub.Publish for messages that must
// survive reconnections. A v2 client gets it as "message" without a
// channel.
//
// Send fails with an error matching websocket.ErrInvalidUTF8, with an
// error matching net.ErrClosed once the socket is closing or closed, or
// with an error matching eventsource.ErrQueueFull when the message overflowed the queue (by count or
// by bytes) and QueueClose is closing the socket.
func (s *Socket) Send(text string) error {
	m, err := newMessage(text)
	if err != nil {
		return err
	}
	return s.enqueue(m)
}

// enqueue puts m on the queue, applying the queue policy when m would
// exceed MaxQueue or MaxQueueBytes. It never blocks: a channel's
// delivery calls it under the channel's lock.
func (s *Socket) enqueue(m *message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.enqueueLocked(m)
}

func (s *Socket) enqueueLocked(m *message) error {
	n := int64(len(m.text))
	if s.closing || s.ended {
		return errSocketClosed
	}
	for s.full(n) {
		if s.cfg().policy != QueueDropOldest {
			var msgs uint64
			for _, q := range s.queue {
				msgs += uint64(q.more) + 1
			}
			s.queued -= runBytes(s.queue)
			s.extra().overflow = msgs + 1
			s.queue, s.counted = nil, 0
			s.startCloseLocked(websocket.StatusTryAgainLater, "send queue full", errQueueFull)
			return errQueueFull
		}
		if s.counted == 0 {
			// Only the batch being written and the replay are in the way,
			// and they cannot be dropped: the newest message goes in, as
			// the policy wants.
			break
		}
		// Drop the oldest counted message; a replay is never dropped,
		// since the client could not tell it missed it.
		i := 0
		for s.queue[i].replay {
			i++
		}
		q := &s.queue[i]
		s.queued -= int64(len(q.m.text))
		if q.more > 0 {
			q.m, q.more = q.m.next, q.more-1
		} else {
			k := i + copy(s.queue[i:], s.queue[i+1:])
			s.queue[k] = queued{}
			s.queue = s.queue[:k]
		}
		s.counted--
		s.dropped++
	}
	s.queued += n
	s.counted++
	if k := len(s.queue); k > 0 && m.seq != 0 {
		// The next message of the channel whose run ends the queue:
		// the run takes it, with neither a new entry nor a lock of
		// anything else.
		if q := &s.queue[k-1]; !q.replay && q.more < math.MaxUint32 && q.m.seq+uint64(q.more)+1 == m.seq {
			q.more++
			return nil // the queue was not empty: a writer is on its way
		}
	}
	s.queue = append(s.queue, queued{m: m})
	s.kickLocked()
	return nil
}

// enqueueReplay puts ms on the queue outside its bounds (see queued).
// Called with mu held.
func (s *Socket) enqueueReplay(ms []*message) {
	if s.closing || s.ended || len(ms) == 0 {
		return
	}
	for _, m := range ms {
		s.queue = append(s.queue, queued{m: m, replay: true})
	}
	s.kickLocked()
}

// full reports whether a message of n bytes would exceed a bound of the
// queue. The byte bound counts the batch being written too, which the
// socket pins just the same; a message always fits when nothing is
// queued or being written, so one larger than the bound goes alone.
// Called with mu held.
func (s *Socket) full(n int64) bool {
	if c := s.cfg().maxQueue; c >= 0 && s.counted >= c {
		return true
	}
	b := s.cfg().maxQueueB
	return b >= 0 && s.queued > 0 && s.queued+n > b
}

// kickLocked starts a writer unless one runs: there is something to
// write. Before the transport opens (while joins queue their replays),
// run starts the first one. Called with mu held.
func (s *Socket) kickLocked() {
	if s.writing || !s.started {
		return
	}
	s.writing = true
	if s.dl == nil {
		s.dl = s.newBatchDeadline()
	}
	startWriter(s)
}

// Ping probes the client and returns when it answered: on WebSocket a
// ping whose pong arrived, on EventSource a comment line written and
// flushed (a stream has no answers; a dead client shows up as a failed
// or timed-out write). ctx bounds the wait.
func (s *Socket) Ping(ctx context.Context) error {
	if s.ws != nil {
		_, err := s.ws.Ping(ctx, nil)
		return err
	}
	return s.es.Ping(ctx)
}

// Close closes the socket with code 1000 (normal closure), after the
// messages already queued. See CloseWith.
func (s *Socket) Close() error {
	return s.CloseWith(websocket.StatusNormalClosure, "")
}

// CloseWith closes the socket once the messages already queued are
// written: a WebSocket with the closing handshake and code and reason,
// an EventSource stream with a realtime.close event carrying them, after
// which the response ends. Messages sent after CloseWith are refused.
// Clients reconnect after 1001, 1011, 1012, 1013 and 1014, and stop
// after any other code (see the package documentation).
//
// CloseWith waits for the socket's goroutines to end, which
// WriteTimeout and the WebSocket CloseTimeout bound, except for a read
// goroutine running OnMessage (which may be the caller). It returns nil,
// or the error that had already ended the socket. The code must be one
// an endpoint may send (1000-1003, 1007-1014, 3000-4999) and the reason
// at most 123 bytes of UTF-8; otherwise CloseWith returns an error and
// does nothing.
func (s *Socket) CloseWith(code websocket.StatusCode, reason string) error {
	if err := checkClose(code, reason); err != nil {
		return err
	}
	s.startClose(code, reason, nil)
	s.wait(false)
	return s.Err()
}

func checkClose(code websocket.StatusCode, reason string) error {
	c := int(code)
	if !(c >= 1000 && c <= 1003 || c >= 1007 && c <= 1014 || c >= 3000 && c <= 4999) {
		return fmt.Errorf("realtime: close code %d may not be sent", c)
	}
	if len(reason) > 123 || !utf8.ValidString(reason) {
		return fmt.Errorf("realtime: close reason must be at most 123 bytes of UTF-8")
	}
	return nil
}

// startClose asks the writer to close after the queued messages.
func (s *Socket) startClose(code websocket.StatusCode, reason string, cause error) {
	s.mu.Lock()
	s.startCloseLocked(code, reason, cause)
	s.mu.Unlock()
}

func (s *Socket) startCloseLocked(code websocket.StatusCode, reason string, cause error) {
	if s.closing || s.ended {
		return
	}
	s.closing = true
	s.closeCode = uint16(code)
	if reason != "" || cause != nil {
		x := s.extra()
		x.closeReason, x.closeErr = reason, cause
	}
	s.kickLocked()
}

// closeErr returns what Err reports after the close asked for. Called
// with mu held.
func (s *Socket) closeErr() error {
	if s.x == nil {
		return nil
	}
	return s.x.closeErr
}

// wait waits for the writer and the reader, skipping a reader inside
// OnMessage unless all is set.
func (s *Socket) wait(all bool) {
	<-s.waitEnd(&s.writerEnd, &s.writerDone)
	s.mu.Lock()
	reader := s.hasReader
	s.mu.Unlock()
	if reader && (all || !s.inMessage.Load()) {
		<-s.waitEnd(&s.readerEnd, &s.readerDone)
	}
}

// waitEnd returns a channel closed once *end is set: done, made now if
// nobody waited before. Two channels per socket, made for every socket
// and waited on for few, cost an idle socket 0.2 KiB.
func (s *Socket) waitEnd(end *bool, done *chan struct{}) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if *end {
		return closedChan
	}
	if *done == nil {
		*done = make(chan struct{})
	}
	return *done
}

// setEnded sets *end and closes done if a wait made it.
func (s *Socket) setEnded(end *bool, done *chan struct{}) {
	s.mu.Lock()
	*end = true
	if *done != nil {
		close(*done)
	}
	s.mu.Unlock()
}

var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// abort ends the socket at once, cutting writes in progress.
func (s *Socket) abort() {
	s.mu.Lock()
	s.aborted = true
	if s.dl != nil {
		// Under mu: an idle writer may otherwise give it to another
		// socket meanwhile (see release).
		s.dl.expire(context.Canceled, false) // see newBatchDeadline
	}
	if s.es != nil && !s.ended {
		// Its batches are not bound to dl (see encodeAndFlush). Under
		// mu, before the end: the handler has not returned.
		eshook.Interrupt(s.es, context.Canceled)
	}
	s.mu.Unlock()
	s.end(errSocketClosed)
}

// discard ends a socket whose writer never started.
func (s *Socket) discard() { s.abort() }

// end ends the socket, once, with cause unless a close was asked for.
func (s *Socket) end(cause error) {
	s.endOnce.Do(func() {
		s.mu.Lock()
		if s.closing {
			cause = s.closeErr()
		}
		s.ended = true
		s.queue, s.spare, s.queued, s.counted = nil, nil, 0, 0
		// Without a writer running, none will start: writerDone is
		// closed here, once the transport is. A running writer closes
		// it when it sees the end.
		noWriter := !s.writing
		s.writing = true
		s.mu.Unlock()
		// Leave before done closes, so code woken by done sees the hub
		// and its channels without this socket.
		if s.hub != nil {
			s.hub.detach(s)
		}
		s.hnd.reg.forget(s)
		s.err = cause
		// The transport is closed before done is, so that once done is
		// closed nothing writes to the connection or ResponseWriter any
		// more (a keep-alive comment, a Ping) and the handler may return.
		switch {
		case s.ws != nil:
			s.ws.CloseNow()
		case s.es != nil:
			s.es.Close()
		}
		s.mu.Lock()
		s.isEnded.Store(true)
		s.done.Close()
		s.mu.Unlock()
		s.endContext()
		s.observeEnd(cause)
		if noWriter {
			s.writerExit()
		}
	})
}
