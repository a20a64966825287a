package realtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/realtime-go/realtime/websocket"
)

// Defaults for HubOptions fields left zero.
const (
	// DefaultMaxHistory is how many broadcasts a Hub keeps.
	DefaultMaxHistory = 1000
	// DefaultMaxHistoryBytes bounds the payload bytes a Hub keeps.
	DefaultMaxHistoryBytes = 4 << 20
)

// HubOptions bounds the history a Hub keeps for resuming clients. A nil
// *HubOptions means the zero value; NewHub copies it.
type HubOptions struct {
	// MaxHistory is how many recent broadcasts are kept. 0 means
	// DefaultMaxHistory; a negative value means no bound on the count.
	// (With MaxHistory 1, a client can only resume when it missed at
	// most the latest broadcast.)
	MaxHistory int

	// MaxHistoryBytes bounds the summed payload bytes of the broadcasts
	// kept. Each wire form in use (a realtime.v1 WebSocket frame, a plain
	// WebSocket frame, an EventSource event) holds one more copy of a
	// broadcast, made once and shared by every socket. 0 means
	// DefaultMaxHistoryBytes; a negative value means no bound on the
	// bytes.
	MaxHistoryBytes int64

	// MaxHistoryAge, when positive, drops broadcasts older than this;
	// 0 or a negative value means no bound on the age.
	MaxHistoryAge time.Duration
}

// Hub is a set of sockets that receive the same broadcasts: a chat room,
// a feed. Sockets join it through Options.Hub.
//
// Every broadcast is numbered and kept, within HubOptions' bounds, so
// that a client that reconnects with the id of the last message it got
// receives the ones it missed, exactly once, before the live ones. Ids
// have the form EPOCH-SEQ: EPOCH is random per Hub, so ids issued by
// another Hub (such as one before a process restart) are never mistaken
// for this one's; SEQ counts broadcasts from 1. Clients treat ids as
// opaque strings. Messages sent to one socket with Socket.Send are not
// numbered and not replayed: replaying them would need a store per
// client, and broadcasts could not then be encoded once for everyone.
//
// A Hub is safe for concurrent use.
type Hub struct {
	epoch    string
	maxN     int   // <0: no bound
	maxBytes int64 // <0: no bound
	maxAge   time.Duration

	mu       sync.Mutex
	seq      uint64     // the last broadcast's number; 0 before the first
	hist     []*message // kept broadcasts, oldest first, from hist[head]
	head     int
	bytes    int64
	members  map[*Socket]struct{}
	shutting int // Shutdown calls in progress: refuse new sockets
}

// NewHub returns an empty Hub.
func NewHub(opts *HubOptions) *Hub {
	var o HubOptions
	if opts != nil {
		o = *opts
	}
	var e [4]byte
	rand.Read(e[:])
	h := &Hub{
		epoch:    hex.EncodeToString(e[:]),
		maxN:     o.MaxHistory,
		maxBytes: o.MaxHistoryBytes,
		maxAge:   o.MaxHistoryAge,
		members:  make(map[*Socket]struct{}),
	}
	if h.maxN == 0 {
		h.maxN = DefaultMaxHistory
	}
	if h.maxBytes == 0 {
		h.maxBytes = DefaultMaxHistoryBytes
	}
	return h
}

// Broadcast sends text to every socket in the hub and keeps it for
// resuming clients. It returns the id the message was given. It never
// blocks on a client: each socket's copy goes to its send queue, where
// the queue policy applies. CR and CRLF line ends become LF. Text that
// is not valid UTF-8 fails with an error matching
// websocket.ErrInvalidUTF8.
//
// A broadcast made while no socket is connected (during a restart of
// the server's listener, say) is kept all the same, and reaches clients
// that resume.
func (h *Hub) Broadcast(text string) (id string, err error) {
	m, err := newMessage(text)
	if err != nil {
		return "", err
	}
	m.shared = true
	m.at = time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	m.seq = h.seq
	m.id = h.formatID(h.seq)
	h.keep(m)
	// Queued under the lock, so every socket sees broadcasts in the order
	// of their numbers, and a joining socket sees each one either in its
	// replay or in its queue, never both.
	for s := range h.members {
		s.enqueue(m)
	}
	return m.id, nil
}

// Len returns the number of sockets in the hub.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.members)
}

// Sockets returns the sockets in the hub, in no particular order.
func (h *Hub) Sockets() []*Socket {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*Socket, 0, len(h.members))
	for s := range h.members {
		out = append(out, s)
	}
	return out
}

// LastID returns the id of the latest broadcast: the position a new
// client starts from.
func (h *Hub) LastID() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.formatID(h.seq)
}

// Shutdown closes every socket in the hub, WebSockets with 1001 (going
// away) and EventSource streams with a realtime.close event carrying
// 1001, after the messages already queued for them; clients then
// reconnect. It waits until the sockets are closed or ctx ends; then it
// cuts the remaining connections at once and returns ctx's error.
// While Shutdown runs, handlers refuse new sockets of the hub with 503.
//
// Shutdown does not end the hub: broadcasts go on being numbered and
// kept, and sockets may join again once it has returned. A server that
// restarts its listener but keeps its Hub resumes its clients from the
// same history. With an http.Server, call it from RegisterOnShutdown,
// which runs once the listeners are closed:
//
//	srv.RegisterOnShutdown(func() { hub.Shutdown(ctx) })
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.shutting++
	socks := make([]*Socket, 0, len(h.members))
	for s := range h.members {
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
		case <-s.writerDone:
		case <-ctx.Done():
			for _, s := range socks {
				s.abort()
			}
			return ctx.Err()
		}
	}
	return nil
}

var errHubShutdown = errors.New("realtime: hub is shutting down")

// join adds s to the hub. When resume is set and lastID names a
// broadcast the hub still holds (or the latest), the broadcasts after it
// are returned for replay and pos is lastID; otherwise nothing is
// replayed and pos is the latest id, with failed set if lastID was not
// empty. Done under the hub's lock, so no broadcast falls between the
// replay and the queue.
func (h *Hub) join(s *Socket, lastID string, resume bool) (replay []*message, pos string, failed bool, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.shutting > 0 {
		return nil, "", false, errHubShutdown
	}
	h.evictOld(time.Now())
	pos = h.formatID(h.seq)
	if resume && lastID != "" {
		if missed, ok := h.since(lastID); ok {
			replay, pos = missed, lastID
		} else {
			failed = true
		}
	}
	h.members[s] = struct{}{}
	return replay, pos, failed, nil
}

func (h *Hub) leave(s *Socket) {
	h.mu.Lock()
	delete(h.members, s)
	h.mu.Unlock()
}

func (h *Hub) shuttingDown() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.shutting > 0
}

func (h *Hub) formatID(seq uint64) string {
	return h.epoch + "-" + strconv.FormatUint(seq, 10)
}

// since returns the broadcasts after the one with id, if the hub can
// tell them all. Called with mu held.
func (h *Hub) since(id string) ([]*message, bool) {
	epoch, num, ok := strings.Cut(id, "-")
	if !ok || epoch != h.epoch {
		return nil, false
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n > h.seq {
		return nil, false
	}
	first := h.seq + 1 // the oldest broadcast kept
	if h.head < len(h.hist) {
		first = h.hist[h.head].seq
	}
	if n+1 < first {
		return nil, false // evicted: the client missed messages we no longer have
	}
	from := h.head + int(n+1-first)
	return append([]*message(nil), h.hist[from:]...), true
}

// keep adds m to the history and applies the bounds. Called with mu held.
func (h *Hub) keep(m *message) {
	h.hist = append(h.hist, m)
	h.bytes += int64(len(m.text))
	h.evict(m.at)
}

func (h *Hub) evictOld(now time.Time) {
	if h.maxAge > 0 {
		h.evict(now)
	}
}

// evict drops the oldest broadcasts until the bounds hold. Only the
// oldest go, so the kept numbers stay contiguous, which since relies on.
func (h *Hub) evict(now time.Time) {
	for h.head < len(h.hist) {
		m := h.hist[h.head]
		n := len(h.hist) - h.head
		if (h.maxN < 0 || n <= h.maxN) && (h.maxBytes < 0 || h.bytes <= h.maxBytes) &&
			(h.maxAge <= 0 || now.Sub(m.at) <= h.maxAge) {
			break
		}
		h.bytes -= int64(len(m.text))
		h.hist[h.head] = nil
		h.head++
	}
	// Reclaim the evicted prefix once it is half the slice, so memory
	// stays proportional to what is kept.
	if h.head > 0 && h.head >= len(h.hist)/2 {
		n := copy(h.hist, h.hist[h.head:])
		clear(h.hist[n:])
		h.hist = h.hist[:n]
		h.head = 0
	}
}
