package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"
)

// presencePrefix names the stream of a channel's presence events in the
// broker: "$presence:" + channel. Names starting with "$" are refused to
// applications and clients, so none can publish to it.
const presencePrefix = "$presence:"

// presenceRecord is a presence event as published on a presence stream.
type presenceRecord struct {
	Join  bool          `json:"join"`
	Entry PresenceEntry `json:"entry"`
}

// presenceOp is a change of presence to make in the broker.
type presenceOp struct {
	add     bool
	channel string
	entry   PresenceEntry
}

// presenceWork is the queue of a hub's presence loop: changes to make in
// the broker, in order, and events for OnPresence.
type presenceWork struct {
	mu        sync.Mutex
	ops       []presenceOp
	events    []PresenceEvent
	finishing bool
	wake      chan struct{} // the loop's doorbell, capacity 1
	evWake    chan struct{} // the event loop's doorbell, capacity 1
	done      chan struct{} // closed when the loop has ended
}

func (w *presenceWork) init() {
	w.wake = make(chan struct{}, 1)
	w.evWake = make(chan struct{}, 1)
	w.done = make(chan struct{})
}

func ring(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (w *presenceWork) push(op presenceOp) {
	w.mu.Lock()
	if !w.finishing {
		w.ops = append(w.ops, op)
	}
	w.mu.Unlock()
	ring(w.wake)
}

func (w *presenceWork) add(channel string, e PresenceEntry) {
	w.push(presenceOp{add: true, channel: channel, entry: e})
}

// remove takes e out of channel's presence; its leave event carries e.
func (w *presenceWork) remove(channel string, e PresenceEntry) {
	w.push(presenceOp{channel: channel, entry: e})
}

// take returns the changes queued, and whether the loop should end
// once they are made.
func (w *presenceWork) take() ([]presenceOp, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ops := w.ops
	w.ops = nil
	return ops, w.finishing
}

// finish makes the loop end once the changes queued are made, and waits
// for it.
func (w *presenceWork) finish() {
	w.mu.Lock()
	w.finishing = true
	w.mu.Unlock()
	ring(w.wake)
	<-w.done
}

// presenceLoop makes the hub's presence changes in the broker, in the
// order they were made, and every third of the TTL refreshes the entries
// of its sockets and sweeps the expired entries of its channels,
// publishing their leaves.
func (h *Hub) presenceLoop() {
	defer h.wg.Done()
	defer close(h.pres.done)
	tick := time.NewTicker(max(h.ttl/3, time.Millisecond))
	defer tick.Stop()
	for {
		ops, finishing := h.pres.take()
		for _, op := range ops {
			h.applyPresence(op)
		}
		if finishing && len(ops) == 0 {
			return
		}
		if len(ops) > 0 {
			continue
		}
		select {
		case <-h.pres.wake:
		case <-tick.C:
			h.refreshPresence()
		case <-h.ctx.Done():
			return
		}
	}
}

// presenceCallTimeout is the least time a presence call to the broker
// is given.
const presenceCallTimeout = time.Second

// presenceContext bounds one presence call to the broker.
func (h *Hub) presenceContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(h.ctx, max(h.ttl/3, presenceCallTimeout))
}

func (h *Hub) applyPresence(op presenceOp) {
	ctx, cancel := h.presenceContext()
	defer cancel()
	if op.add {
		if added, err := h.broker.AddPresence(ctx, op.channel, op.entry, h.ttl); err == nil && added {
			h.publishPresence(ctx, op.channel, true, op.entry)
		}
		return
	}
	if removed, err := h.broker.RemovePresence(ctx, op.channel, op.entry.Socket); err == nil && removed {
		h.publishPresence(ctx, op.channel, false, op.entry)
	}
}

// publishPresence publishes a join or a leave on channel's presence
// stream. A failure loses the event, not the entry: Hub.Presence stays
// right.
func (h *Hub) publishPresence(ctx context.Context, channel string, join bool, e PresenceEntry) {
	b, _ := json.Marshal(presenceRecord{Join: join, Entry: e})
	h.publish(ctx, presencePrefix+channel, string(b))
}

// refreshPresence refreshes the entries of the hub's sockets, and sweeps
// the expired entries of its channels.
func (h *Hub) refreshPresence() {
	type entry struct {
		channel string
		e       PresenceEntry
	}
	var entries []entry
	h.mu.Lock()
	socks := make([]*Socket, 0, len(h.sockets))
	for s := range h.sockets {
		socks = append(socks, s)
	}
	channels := make([]string, 0, len(h.channels))
	for name := range h.channels {
		channels = append(channels, name)
	}
	h.mu.Unlock()
	for _, s := range socks {
		s.mu.Lock()
		if s.presence != nil {
			for _, mb := range s.chans {
				entries = append(entries, entry{mb.ch.name, *s.presence})
			}
		}
		s.mu.Unlock()
	}
	for _, e := range entries {
		h.applyPresence(presenceOp{add: true, channel: e.channel, entry: e.e})
	}
	for _, name := range channels {
		ctx, cancel := h.presenceContext()
		h.Presence(ctx, name)
		cancel()
	}
}

// Presence returns who is in channel, on every node: the entries of the
// sockets with a user (Socket.SetPresence) that are in it. Entries of a
// node that died are gone within HubOptions.PresenceTTL; Presence
// publishes the leave events of those it finds expired.
func (h *Hub) Presence(ctx context.Context, channel string) ([]PresenceEntry, error) {
	if err := checkChannel(channel); err != nil {
		return nil, err
	}
	if h.isDone.Load() {
		return nil, ErrHubClosed
	}
	live, expired, err := h.broker.Presence(ctx, channel)
	if err != nil {
		return nil, err
	}
	for _, e := range expired {
		h.publishPresence(ctx, channel, false, e)
	}
	return live, nil
}

// SetPresence lists the socket in the presence of each channel it is
// in, and of those it joins later, as user with info (both free text of
// the application, which other clients may see); user "" takes it out of
// presence. Joins and leaves are published as presence events. The
// entries are written to the broker in the background, in order.
func (s *Socket) SetPresence(user, info string) {
	s.mu.Lock()
	old := s.presence
	s.presence = nil
	if user != "" {
		s.presence = &PresenceEntry{Socket: s.id, User: user, Info: info}
	}
	names := make([]string, 0, len(s.chans))
	for _, mb := range s.chans {
		names = append(names, mb.ch.name)
	}
	s.mu.Unlock()
	if s.hub == nil {
		return
	}
	for _, name := range names {
		switch {
		case user != "":
			s.hub.pres.add(name, PresenceEntry{Socket: s.id, User: user, Info: info})
		case old != nil:
			s.hub.pres.remove(name, *old)
		}
	}
}

// followPresence delivers the presence events of the channel to its v2
// sockets and to OnPresence until ctx ends, from pos.
func (c *channel) followPresence(ctx context.Context, pos Position) {
	h := c.hub
	defer h.wg.Done()
	name := presencePrefix + c.name
	var b backoff
	for {
		err := h.broker.Follow(ctx, name, pos, func(e Entry) {
			pos = e.Position
			c.presenceEvent(e)
		})
		if ctx.Err() != nil || errors.Is(err, ErrBrokerClosed) {
			return
		}
		if errors.Is(err, ErrPositionLost) {
			// Presence events have no replay: go on from the latest.
			last, ok := h.latest(ctx, name)
			if !ok {
				return
			}
			pos = last
			continue
		}
		if !b.wait(ctx) {
			return
		}
	}
}

// presenceEvent queues one presence event for the v2 members and
// OnPresence. It runs in the broker's deliver: nothing here calls it.
func (c *channel) presenceEvent(e Entry) {
	var rec presenceRecord
	if json.Unmarshal([]byte(e.Text), &rec) != nil {
		return
	}
	b, _ := json.Marshal(rec.Entry)
	k := kindLeave
	if rec.Join {
		k = kindJoin
	}
	m := &message{kind: k, channel: c.name, text: string(b)}
	c.mu.Lock()
	for s, mb := range c.members {
		if s.proto == protoV2 && mb.catch == nil {
			s.enqueue(m)
		}
	}
	c.mu.Unlock()
	if h := c.hub; h.onPresence != nil {
		w := &h.pres
		w.mu.Lock()
		w.events = append(w.events, PresenceEvent{Channel: c.name, Join: rec.Join, Entry: rec.Entry})
		w.mu.Unlock()
		ring(w.evWake)
	}
}

// eventLoop calls OnPresence with the events, one at a time, until the
// hub closes.
func (h *Hub) eventLoop() {
	defer h.wg.Done()
	w := &h.pres
	for {
		w.mu.Lock()
		evs := w.events
		w.events = nil
		w.mu.Unlock()
		for _, ev := range evs {
			h.onPresence(ev)
		}
		select {
		case <-w.evWake:
		case <-h.ctx.Done():
			return
		}
	}
}
