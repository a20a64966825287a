package eventsource

import (
	"context"
	"sync"
	"time"
)

// Defaults for HistoryOptions fields left zero. They are the values of
// the root package's HubOptions, under the same names.
const (
	// DefaultMaxHistory is how many events a History keeps.
	DefaultMaxHistory = 1000

	// DefaultMaxHistoryBytes bounds the wire size of the events a
	// History keeps: 4 MiB.
	DefaultMaxHistoryBytes = 4 << 20
)

// HistoryOptions bounds a History. A nil *HistoryOptions means the zero
// value; NewHistory copies it. The fields have the names, units and
// meanings of the root package's HubOptions.
type HistoryOptions struct {
	// MaxHistory is how many events are kept. 0 means DefaultMaxHistory;
	// a negative value removes the bound.
	MaxHistory int

	// MaxHistoryBytes bounds the summed wire size of the events kept. 0
	// means DefaultMaxHistoryBytes; a negative value removes the bound.
	// An event larger than MaxHistoryBytes is not kept at all.
	MaxHistoryBytes int64

	// MaxHistoryAge, when positive, drops events older than this. 0 or a
	// negative value keeps events however old.
	MaxHistoryAge time.Duration
}

// History keeps the most recent events, encoded, so that a client that
// reconnects with a Last-Event-ID can be sent what it missed. It is
// bounded by count, bytes and age, oldest events leaving first. A
// History is safe for concurrent use.
//
// Every event kept has an id, since a client can only resume from an id.
// Ids are opaque strings compared for equality; they should be unique,
// and if one repeats, its newest use counts.
type History struct {
	maxEvents int
	maxBytes  int64
	maxAge    time.Duration

	mu      sync.Mutex
	entries []historyEntry // oldest first; entries[:head] are evicted
	head    int
	bytes   int64
	next    uint64            // sequence number of the next event
	seqOf   map[string]uint64 // id -> sequence number of its newest event
}

type historyEntry struct {
	ev  *EncodedEvent
	seq uint64
	at  time.Time
}

// NewHistory returns an empty History.
func NewHistory(opts *HistoryOptions) *History {
	var o HistoryOptions
	if opts != nil {
		o = *opts
	}
	h := &History{maxEvents: o.MaxHistory, maxBytes: o.MaxHistoryBytes, maxAge: o.MaxHistoryAge, seqOf: make(map[string]uint64)}
	if h.maxEvents == 0 {
		h.maxEvents = DefaultMaxHistory
	}
	if h.maxBytes == 0 {
		h.maxBytes = DefaultMaxHistoryBytes
	}
	return h
}

// Add encodes ev, keeps it, and returns it encoded, ready to be sent to
// the live streams with SendEncoded. It fails if ev cannot be encoded or
// has no id.
func (h *History) Add(ev Event) (*EncodedEvent, error) {
	if ev.ID == "" {
		return nil, &FieldError{Field: "id", Reason: "empty; a History keeps only events with an id"}
	}
	e, err := Encode(ev)
	if err != nil {
		return nil, err
	}
	h.add(e)
	return e, nil
}

// AddEncoded keeps an event encoded beforehand. It fails if e has no id.
func (h *History) AddEncoded(e *EncodedEvent) error {
	if e == nil {
		return errNilEvent
	}
	if e.id == "" {
		return &FieldError{Field: "id", Reason: "empty; a History keeps only events with an id"}
	}
	h.add(e)
	return nil
}

func (h *History) add(e *EncodedEvent) {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.entries = append(h.entries, historyEntry{ev: e, seq: h.next, at: now})
	h.seqOf[e.id] = h.next
	h.next++
	h.bytes += int64(len(e.b))
	h.evict(now)
}

// evict drops the oldest events until the bounds hold. Called with mu
// held.
func (h *History) evict(now time.Time) {
	for h.head < len(h.entries) {
		e := &h.entries[h.head]
		n := len(h.entries) - h.head
		tooMany := h.maxEvents > 0 && n > h.maxEvents
		tooBig := h.maxBytes > 0 && h.bytes > h.maxBytes
		tooOld := h.maxAge > 0 && now.Sub(e.at) > h.maxAge
		if !tooMany && !tooBig && !tooOld {
			break
		}
		h.bytes -= int64(len(e.ev.b))
		if h.seqOf[e.ev.id] == e.seq {
			delete(h.seqOf, e.ev.id)
		}
		*e = historyEntry{}
		h.head++
	}
	// Reclaim the evicted prefix once it is half the slice, so memory
	// stays proportional to what is kept.
	if h.head > 0 && h.head >= len(h.entries)/2 {
		n := copy(h.entries, h.entries[h.head:])
		clear(h.entries[n:])
		h.entries = h.entries[:n]
		h.head = 0
	}
}

// Since returns, oldest first, the events added after the one with id
// lastEventID.
//
// ok is false when the History does not hold that id, because it was
// evicted or never added: the client has missed events that can no
// longer be told apart from those it saw. The caller decides what to do:
// send Events() and let the client cope with duplicates, or send an event
// telling it to reload its state. An empty lastEventID means a client
// that has seen no event with an id; Since returns nothing and ok.
func (h *History) Since(lastEventID string) (events []*EncodedEvent, ok bool) {
	if lastEventID == "" {
		return nil, true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.evict(time.Now())
	seq, ok := h.seqOf[lastEventID]
	if !ok {
		return nil, false
	}
	first := h.entries[h.head].seq
	return h.collect(h.head + int(seq-first) + 1), true
}

// Events returns every event held, oldest first.
func (h *History) Events() []*EncodedEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.evict(time.Now())
	return h.collect(h.head)
}

func (h *History) collect(from int) []*EncodedEvent {
	if from >= len(h.entries) {
		return nil
	}
	out := make([]*EncodedEvent, 0, len(h.entries)-from)
	for _, e := range h.entries[from:] {
		out = append(out, e.ev)
	}
	return out
}

// Len returns how many events are held.
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.evict(time.Now())
	return len(h.entries) - h.head
}

// Replay sends s the events of h that follow s.LastEventID(), in one
// write and one flush. It reports false, having sent nothing, when h no
// longer holds that id (see History.Since); the caller then sends
// h.Events() or an event that makes the client reset. A client with no
// last event id gets nothing, and true.
//
// Replay alone suits a stream that gets no live events. Events published
// while it runs may reach a stream that also gets live ones twice or not
// at all; do not cure that by holding the lock that guards a broadcast
// while calling Replay: a client that stops reading would then hold up
// every broadcast for up to Options.WriteTimeout. A [Broker] with a
// History takes the replay and subscribes the stream under its lock, and
// writes the replay afterwards from the stream's own writer.
func Replay(ctx context.Context, s *Stream, h *History) (ok bool, err error) {
	events, ok := h.Since(s.LastEventID())
	if !ok {
		return false, nil
	}
	return true, s.sendEncodedBatch(ctx, events)
}
