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

// maxSpare is the largest batch buffer a writer keeps between batches;
// an idle socket keeps at most idleQueueCap.
const (
	maxSpare     = 64
	idleQueueCap = 4
)

// writeLoop is a shared writer's turn at the socket (see writerSched):
// one at a time, under the writing flag that kickLocked sets. The first
// writes the hello and the replay; each writes whatever is queued, a
// heartbeat that is due, and finally the close, and ends once the queue
// is empty, so that an idle socket holds no writer, or after a batch
// when other sockets wait, putting the socket back in the list. Any
// failure ends the socket.
func (s *Socket) writeLoop() {
	s.mu.Lock()
	first := !s.hello
	s.mu.Unlock()
	var err error
	if first {
		err = s.writeStart(s.dl, s.beatBatch())
		if err == nil && s.proto == protoV2 && s.cfg().beat > 0 {
			s.dl.idleAfter(s.cfg().beat, s.beatDue)
		}
	}
	for err == nil {
		batch, step := s.next()
		switch step {
		case stepIdle:
			return // the next Send starts a writer
		case stepEnded:
			// Ended underneath (the peer left, or an abort): wait until
			// the transport is closed, which the handler's return relies
			// on; on a goroutine of its own if it takes a while, so that
			// the shared writer goes on with the other sockets.
			if s.isDone() {
				s.writerExit()
			} else {
				go func() {
					<-s.Done()
					s.writerExit()
				}()
			}
			return
		case stepClose:
			// A closing handshake waits for the client, up to
			// CloseTimeout: not on a shared writer, which a shutdown of
			// many sockets with dead clients would hold up for each in
			// turn.
			go func() {
				s.end(s.writeClose())
				s.writerExit()
			}()
			return
		case stepBeat:
			err = s.writeBatch(s.dl, s.beatBatch())
		default:
			err = s.writeBatch(s.dl, batch)
			s.observeOut(batch, err)
			s.recycle(batch)
		}
		if err == nil && sched.waiting() && s.more() {
			// Others waited longer: s goes after them, its writing flag
			// still set, with whatever was queued meanwhile. With nothing
			// more, s goes idle at once instead: taken again after them,
			// only to find that out, it cost every socket of a broadcast
			// a second turn.
			sched.requeue(s)
			return
		}
	}
	s.end(err)
	s.writerExit()
}

// writerExit is the end of the last writer, or of a socket that ended
// with none running: nothing writes from now on.
func (s *Socket) writerExit() {
	if s.dl != nil {
		s.dl.stop()
	}
	s.setEnded(&s.writerEnd, &s.writerDone)
}

// beatBatch is the batch of a heartbeat message: nil unless the socket
// speaks realtime.v2 and has a Heartbeat.
func (s *Socket) beatBatch() []queued {
	if s.proto == protoV2 && s.cfg().beat > 0 {
		return []queued{{m: s.cfg().heartbeat}}
	}
	return nil
}

// beatDue runs on the socket's idle timer once the socket was idle for
// one Heartbeat: a writer is to send a heartbeat message.
func (s *Socket) beatDue() {
	s.mu.Lock()
	if !s.ended {
		s.beat = true
		s.kickLocked()
	}
	s.mu.Unlock()
}

// writeStep is what next gives a writer to do.
type writeStep uint8

const (
	stepIdle  writeStep = iota // nothing: the writer ends
	stepBatch                  // write the queued messages
	stepBeat                   // write a heartbeat message
	stepClose                  // perform the close asked for
	stepEnded                  // the socket has ended
)

// next takes what the writer is to do. With nothing to do, the writer
// is no longer running once next returns: the next Send starts another.
func (s *Socket) next() ([]queued, writeStep) {
	s.mu.Lock()
	defer s.mu.Unlock()
	beat := s.beat
	s.beat = false // messages, or the close, make the heartbeat needless
	switch {
	case s.ended:
		return nil, stepEnded
	case len(s.queue) > 0:
		batch := s.queue
		s.queue = s.spare[:0]
		s.spare = nil
		s.counted = 0
		return batch, stepBatch
	case s.closing:
		return nil, stepClose
	case beat:
		return nil, stepBeat
	}
	s.writing = false
	if s.dl.release() {
		s.dl = nil // kickLocked gets one
	}
	// An idle socket keeps one small array for the next message, and
	// pins none for bursts that may not come.
	if cap(s.queue) == 0 {
		s.queue = s.spare
	}
	s.spare = nil
	if cap(s.queue) > idleQueueCap {
		s.queue = nil
	}
	return nil, stepIdle
}

// more reports whether next has something for the writer to do.
func (s *Socket) more() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended || len(s.queue) > 0 || s.closing || s.beat
}

// recycle releases a written batch's bytes from the queue's count and
// keeps its array for the next batch.
func (s *Socket) recycle(batch []queued) {
	n := runBytes(batch)
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
	// The position goes in one write with the heartbeat message, bound
	// by the batches' deadline: a context of its own per socket would
	// cost an idle socket its memory.
	out := outBatches.Get().(*outBatch)
	defer out.release()
	switch {
	case s.es != nil:
		if err := out.es.Add(eventsource.Event{Type: HelloEvent, ID: pos, Data: s.token}); err != nil {
			return err
		}
	case s.proto != protoPlain:
		if err := out.ws.Add(websocket.MessageText, []byte(pos)); err != nil {
			return err
		}
	}
	// A v2 client learns the heartbeat at once, with the position (beat
	// is the heartbeat message then): its idle watchdog is derived from it.
	return s.encodeAndFlush(dl, out, beat)
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
	return s.encodeAndFlush(dl, out, batch)
}

// encodeAndFlush adds batch to out and writes out, under dl's deadline.
func (s *Socket) encodeAndFlush(dl *writeDeadline, out *outBatch, batch []queued) error {
	var err error
batch:
	for _, q := range batch {
		for m := range q.messages {
			if err = s.write(out, m); err != nil {
				break batch // an event that cannot be encoded: send those before it
			}
		}
	}
	if out.ws.Len() == 0 && out.es.Len() == 0 {
		return err
	}
	dl.arm()
	var werr error
	if s.es != nil {
		// abort interrupts the stream itself, so a batch needs no context
		// that can end, whose watch would cost every write a
		// registration with dl, unless dl has ended already.
		var ctx context.Context = dl
		if dl.Err() == nil {
			ctx = s.vals
		}
		werr = s.es.SendBatch(ctx, &out.es)
	} else {
		werr = s.ws.WriteBatch(dl, &out.ws)
	}
	dl.disarm()
	if werr != nil {
		return timeoutError(dl, werr)
	}
	return err
}

// newBatchDeadline returns the context of the socket's batches, whose
// deadline is WriteTimeout on WebSocket (an EventSource stream bounds
// its own writes). Its parent is the request context's values alone,
// which never end: abort ends it directly.
// Called with mu held, so that abort either sees it or came first.
func (s *Socket) newBatchDeadline() *writeDeadline {
	timeout := s.cfg().writeTimeout
	if s.es != nil {
		timeout = 0 // the stream bounds its own writes
	}
	dl := getWriteDeadline(s.vals, timeout)
	if s.aborted {
		dl.expire(context.Canceled, false)
	}
	return dl
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
	code, reason, cause := websocket.StatusCode(s.closeCode), "", s.closeErr()
	if s.x != nil {
		reason = s.x.closeReason
	}
	s.mu.Unlock()
	if s.ws != nil {
		// The read goroutine sees the peer's close frame; Close returns
		// once it has, or after CloseTimeout.
		s.ws.Close(code, reason)
		return cause
	}
	data := strconv.Itoa(int(code)) + " " + reason
	s.es.Send(s.dl, eventsource.Event{Type: CloseEvent, Data: data}) // abort cuts it
	return cause
}
