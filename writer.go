package realtime

import (
	"context"
	"errors"
	"os"
	"strconv"
	"sync"

	"github.com/realtime-go/realtime/eventsource"
	"github.com/realtime-go/realtime/websocket"
)

// maxSpare is the largest batch buffer a writer keeps between wake-ups;
// an idle socket should not pin a large one.
const maxSpare = 64

// writeLoop is the socket's writer goroutine: it writes the hello and
// the replay, then whatever is queued, and finally the close. Any
// failure ends the socket.
func (s *Socket) writeLoop() {
	defer close(s.writerDone)
	dl := s.newBatchDeadline()
	defer dl.stop()
	var beat []queued
	if s.proto == protoV2 && s.cfg.beat > 0 {
		beat = []queued{{m: s.cfg.heartbeat}}
	}
	err := s.writeStart(dl, beat)
	if beat != nil && err == nil {
		dl.idleAfter(s.cfg.beat, s.beatDue)
	}
	for err == nil {
		batch, closing, ok := s.next()
		switch {
		case !ok:
			// Ended underneath (the peer left, or an abort): wait until
			// the transport is closed, which the handler's return relies on.
			<-s.done
			return
		case closing:
			s.end(s.writeClose())
			return
		case batch == nil:
			err = s.writeBatch(dl, beat)
		default:
			err = s.writeBatch(dl, batch)
			s.observeOut(batch, err)
			s.recycle(batch)
		}
	}
	s.end(err)
}

// beatDue runs on the writer's timer once the socket was idle for one
// Heartbeat: the writer is to send a heartbeat message.
func (s *Socket) beatDue() {
	s.mu.Lock()
	s.beat = true
	s.mu.Unlock()
	s.ring()
}

// next waits for queued messages, a close to perform, a heartbeat due
// (batch nil), or the end of the socket (ok false).
func (s *Socket) next() (batch []queued, closing, ok bool) {
	var streamDone <-chan struct{}
	if s.es != nil {
		streamDone = s.es.Done()
	}
	s.mu.Lock()
	for len(s.queue) == 0 && !s.closing && !s.ended && !s.beat {
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-s.done:
		case <-streamDone:
			s.end(s.es.Err())
		}
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	s.beat = false // messages, or the close, make the heartbeat needless
	switch {
	case s.ended:
		return nil, false, false
	case len(s.queue) > 0:
		batch = s.queue
		s.queue = s.spare[:0]
		s.spare = nil
		s.free = 0
		return batch, false, true
	case s.closing:
		return nil, true, true
	}
	return nil, false, true
}

// recycle releases a written batch's bytes from the queue's count and
// keeps its array for the next batch.
func (s *Socket) recycle(batch []queued) {
	var n int64
	for _, q := range batch {
		if !q.replay {
			n += int64(len(q.m.text))
		}
	}
	keep := cap(batch) <= maxSpare
	if keep {
		clear(batch)
	}
	s.mu.Lock()
	if !s.ended {
		s.queued -= n
		if keep && s.spare == nil {
			s.spare = batch[:0]
		}
	}
	s.mu.Unlock()
}

// writeStart announces the socket's position: its cursor, made of the
// positions the client presented and those of the channels joined before
// the hello; on EventSource with the session token. The replays of those
// joins are queued, after their marks. A v2 socket's heartbeat message
// follows.
func (s *Socket) writeStart(dl *writeDeadline, beat []queued) error {
	s.mu.Lock()
	if s.proto != protoPlain {
		s.cur = s.presented.clone()
		for _, mb := range s.chans {
			s.cur.set(mb.ch.name, mb.start)
		}
	}
	s.hello = true
	s.mu.Unlock()
	pos := s.cur.encode()
	switch {
	case s.es != nil:
		ev := eventsource.Event{Type: HelloEvent, ID: pos, Data: s.token}
		if err := s.es.Send(s.wctx, ev); err != nil {
			return timeoutError(s.wctx, err)
		}
	case s.proto != protoPlain:
		ctx, cancel := s.writeContext()
		err := s.ws.Write(ctx, websocket.MessageText, []byte(pos))
		cancel()
		if err != nil {
			return timeoutError(ctx, err)
		}
	}
	// A v2 client learns the heartbeat at once, with the position (beat
	// is the heartbeat message then): its idle watchdog is derived from it.
	return s.writeBatch(dl, beat)
}

// writeBatch writes messages in order, with one flush: on a busy socket a
// write system call per message was most of the cost of a delivery. One
// WriteTimeout bounds the batch, on either transport: dl's on WebSocket,
// the stream's own on EventSource.
func (s *Socket) writeBatch(dl *writeDeadline, batch []queued) error {
	if len(batch) == 0 {
		return nil
	}
	out := outBatches.Get().(*outBatch)
	defer out.release()
	var err error
	for _, q := range batch {
		if err = s.write(out, q.m); err != nil {
			break // an event that cannot be encoded: send those before it
		}
	}
	dl.arm()
	var werr error
	if s.es != nil {
		werr = s.es.SendBatch(dl, &out.es)
	} else {
		werr = s.ws.WriteBatch(dl, &out.ws)
	}
	dl.disarm()
	if werr != nil {
		return timeoutError(dl, werr)
	}
	return err
}

// newBatchDeadline returns the context of the socket's batches; see
// writeContext.
func (s *Socket) newBatchDeadline() *writeDeadline {
	if s.es != nil {
		return newWriteDeadline(s.wctx, 0)
	}
	return newWriteDeadline(s.wctx, s.cfg.writeTimeout)
}

// outBatch is a batch of messages in the wire form of either transport.
// Writers share them through outBatches rather than keep one each, so an
// idle socket holds none.
type outBatch struct {
	ws websocket.Batch
	es eventsource.Batch
}

var outBatches = sync.Pool{New: func() any { return new(outBatch) }}

func (b *outBatch) release() {
	b.ws.Reset()
	b.es.Reset()
	outBatches.Put(b)
}

// timeoutError marks a write that failed for lack of time with
// eventsource.ErrWriteTimeout, whichever transport's deadline it hit. An
// EventSource stream's error already carries it. A WebSocket write that
// the deadline of its context cut mid-frame closed the connection with
// context.DeadlineExceeded as the cause, which the reader, whose context
// never ends, may be the first to see.
func timeoutError(ctx context.Context, err error) error {
	if errors.Is(err, eventsource.ErrWriteTimeout) {
		return err
	}
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &writeTimeoutError{err}
	}
	return err
}

func (s *Socket) writeContext() (context.Context, context.CancelFunc) {
	if s.es != nil || s.cfg.writeTimeout <= 0 {
		return s.wctx, func() {}
	}
	return context.WithTimeout(s.wctx, s.cfg.writeTimeout)
}

// write adds one message to out in the socket's wire form, and keeps the
// socket's cursor: every message a socket gets carries its cursor after
// that message as its id. A channel message to a socket whose cursor
// holds that channel only uses the forms shared by every such socket;
// any other is encoded here, once.
func (s *Socket) write(out *outBatch, m *message) error {
	var id string
	switch m.kind {
	case kindChannel:
		if s.proto == protoPlain {
			return out.ws.AddPrepared(m.framedPlain())
		}
		// By the hash the message carries: hashing the name here would
		// cost every socket an allocation per message.
		s.cur.setHash(m.hash, m.pos)
		if len(s.cur) == 1 {
			switch {
			case s.es != nil && s.proto == protoV2:
				return out.es.AddEncoded(m.eventV2())
			case s.es != nil:
				return out.es.AddEncoded(m.event())
			case s.proto == protoV2:
				return out.ws.AddPrepared(m.framedV2())
			default:
				return out.ws.AddPrepared(m.framedV1())
			}
		}
		id = s.cur.encode()
	case kindMark:
		s.cur.set(m.channel, m.pos)
		return nil
	case kindForget:
		s.cur.removeHash(m.hash)
		return nil
	case kindSend, kindJoin, kindLeave, kindPresence, kindError, kindRefused, kindHeartbeat:
		if m.kind != kindSend && s.proto != protoV2 {
			return nil // v1 and plain clients know nothing of these
		}
	case kindSubscribed, kindUnsubscribed, kindLost:
		if s.proto == protoPlain {
			return nil
		}
		switch m.kind {
		case kindUnsubscribed:
			s.cur.remove(m.channel)
		case kindLost:
			s.cur.set(m.channel, m.pos)
		}
		id = s.cur.encode()
		if s.proto == protoV1 {
			if m.early {
				return nil // the hello carried the position
			}
			// The new cursor alone, which a v1 client keeps as its last
			// event id (the first message of a connection has this form).
			if s.es != nil {
				return out.es.Add(eventsource.Event{Type: PositionEvent, ID: id})
			}
			return out.ws.Add(websocket.MessageText, []byte(id))
		}
	}
	data := m.text
	if s.proto == protoV2 {
		data = m.v2Data()
	}
	switch {
	case s.es != nil:
		return out.es.Add(eventsource.Event{ID: id, Data: data})
	case s.proto == protoPlain:
		return out.ws.Add(websocket.MessageText, []byte(data))
	default:
		// An empty id: a message to this socket only, not numbered.
		return out.ws.Add(websocket.MessageText, frame(id, data))
	}
}

// writeClose performs the close asked for and returns what Err should
// report.
func (s *Socket) writeClose() error {
	s.mu.Lock()
	code, reason, cause := s.closeCode, s.closeReason, s.closeErr
	s.mu.Unlock()
	if s.ws != nil {
		// The read goroutine sees the peer's close frame; Close returns
		// once it has, or after CloseTimeout.
		s.ws.Close(code, reason)
		return cause
	}
	data := strconv.Itoa(int(code)) + " " + reason
	s.es.Send(s.wctx, eventsource.Event{Type: CloseEvent, Data: data})
	return cause
}
