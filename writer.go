package realtime

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"strconv"

	"github.com/realtime-go/realtime/eventsource"
	"github.com/realtime-go/realtime/websocket"
)

// maxSpare is the largest batch buffer a writer keeps between wake-ups;
// an idle socket should not pin a large one.
const maxSpare = 64

func newSocketID() string {
	var b [8]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// writeLoop is the socket's writer goroutine: it writes the hello and
// the replay, then whatever is queued, and finally the close. Any
// failure ends the socket.
func (s *Socket) writeLoop() {
	defer close(s.writerDone)
	err := s.writeStart()
	for err == nil {
		batch, closing, ok := s.next()
		if !ok {
			// Ended underneath (the peer left, or an abort): wait until
			// the transport is closed, which the handler's return relies on.
			<-s.done
			return
		}
		if closing {
			s.end(s.writeClose())
			return
		}
		err = s.writeBatch(batch)
		s.recycle(batch)
	}
	s.end(err)
}

// next waits for queued messages, a close to perform, or the end of the
// socket (ok false).
func (s *Socket) next() (batch []*message, closing, ok bool) {
	var streamDone <-chan struct{}
	if s.es != nil {
		streamDone = s.es.Done()
	}
	s.mu.Lock()
	for len(s.queue) == 0 && !s.closing && !s.ended {
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
	switch {
	case s.ended:
		return nil, false, false
	case len(s.queue) > 0:
		batch = s.queue
		s.queue = s.spare[:0]
		s.spare = nil
		return batch, false, true
	}
	return nil, true, true
}

// recycle releases a written batch's bytes from the queue's count and
// keeps its array for the next batch.
func (s *Socket) recycle(batch []*message) {
	var n int64
	for _, m := range batch {
		n += int64(len(m.text))
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

// writeStart announces the socket's position (with the session token on
// EventSource) and replays what the client missed.
func (s *Socket) writeStart() error {
	switch {
	case s.es != nil:
		ev := eventsource.Event{Type: HelloEvent, ID: s.hello, Data: s.token}
		if err := s.es.Send(s.wctx, ev); err != nil {
			return timeoutError(s.wctx, err)
		}
	case s.ids:
		ctx, cancel := s.writeContext()
		err := s.ws.Write(ctx, websocket.MessageText, []byte(s.hello))
		cancel()
		if err != nil {
			return timeoutError(ctx, err)
		}
	}
	err := s.writeBatch(s.replay)
	s.replay = nil
	return err
}

// writeBatch writes messages in order. On WebSocket one WriteTimeout
// bounds the batch; an EventSource stream bounds each write itself.
func (s *Socket) writeBatch(batch []*message) error {
	if len(batch) == 0 {
		return nil
	}
	ctx, cancel := s.writeContext()
	defer cancel()
	for _, m := range batch {
		if err := s.write(ctx, m); err != nil {
			return timeoutError(ctx, err)
		}
	}
	return nil
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

// write sends one message in the socket's wire form. Broadcasts use the
// forms shared by all sockets; a Send is encoded here, once.
func (s *Socket) write(ctx context.Context, m *message) error {
	switch {
	case s.es != nil && m.shared:
		return s.es.SendEncoded(ctx, m.event())
	case s.es != nil:
		return s.es.Send(ctx, eventsource.Event{Data: m.text})
	case m.shared && s.ids:
		return s.ws.WritePrepared(ctx, m.framedV1())
	case m.shared:
		return s.ws.WritePrepared(ctx, m.framedPlain())
	case s.ids:
		// An empty id: the message is not numbered.
		b := make([]byte, 0, 1+len(m.text))
		return s.ws.Write(ctx, websocket.MessageText, append(append(b, '\n'), m.text...))
	default:
		return s.ws.Write(ctx, websocket.MessageText, []byte(m.text))
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
