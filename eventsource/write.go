package eventsource

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/realtime-go/realtime/internal/ctxio"
)

// Send writes ev and flushes it to the client.
//
// ctx bounds the wait for other sends. If ctx ends while the event is
// being written and the write is cut short, the stream ends too, since a
// partly written event cannot be taken back; if the write completed, it
// returns nil and the stream stays usable. A write that takes longer than
// Options.WriteTimeout ends the stream with ErrWriteTimeout.
//
// An event that cannot be encoded (see ErrInvalidField) is refused
// before anything is written, and the stream stays usable. Once the
// stream has ended, Send returns an error matching net.ErrClosed.
func (s *Stream) Send(ctx context.Context, ev Event) error {
	if err := checkEvent(&ev); err != nil {
		return err
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.unlock()
	s.buf = appendEvent(s.buf[:0], &ev)
	err := s.writeLocked(ctx, s.buf)
	if cap(s.buf) > maxKeptBuffer {
		s.buf = nil // one large event should not pin its buffer
	}
	return err
}

// maxKeptBuffer is the largest encoding buffer a stream keeps for reuse.
const maxKeptBuffer = 64 << 10

// SendData sends an event of the default type ("message") carrying
// data, like Send(ctx, Event{Data: data}).
func (s *Stream) SendData(ctx context.Context, data string) error {
	return s.Send(ctx, Event{Data: data})
}

// SendEncoded writes an event encoded beforehand, as Send does. Encoding
// once and sending to many streams saves the encoding per stream.
func (s *Stream) SendEncoded(ctx context.Context, e *EncodedEvent) error {
	if e == nil {
		return errNilEvent
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.unlock()
	return s.writeLocked(ctx, e.b)
}

var errNilEvent = errors.New("eventsource: nil *EncodedEvent")

// sendEncodedBatch writes events and flushes once, so a replay or a
// Broker's queue of many events costs one flush and one deadline.
func (s *Stream) sendEncodedBatch(ctx context.Context, events []*EncodedEvent) error {
	if len(events) == 0 {
		return nil
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.unlock()
	return s.writeEventsLocked(ctx, nil, events)
}

// Ping writes a comment line and flushes it: it tells proxies and the
// client that the connection is alive without dispatching an event.
// Streams send these by themselves when idle (Options.Heartbeat); Ping
// is for callers that want one now. ctx works as for Send.
func (s *Stream) Ping(ctx context.Context) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.unlock()
	return s.writeLocked(ctx, keepAliveComment)
}

var keepAliveComment = appendComment(nil, "")

// sendKeepAlive runs on the keep-alive timer.
func (s *Stream) sendKeepAlive() {
	if s.closing.Load() {
		return
	}
	s.lockNow()
	defer s.unlock()
	if s.ended || s.closing.Load() {
		return
	}
	// A send may have written while this callback waited for the lock;
	// it has already pushed the timer back.
	if idle := time.Since(s.lastWrite); idle < s.keepAlive {
		s.kaTimer.Reset(s.keepAlive - idle)
		return
	}
	if s.writeLocked(context.Background(), keepAliveComment) == nil {
		s.kaTimer.Reset(s.keepAlive)
	}
}

// writeLocked writes p and flushes, holding the write lock. A failure
// ends the stream.
func (s *Stream) writeLocked(ctx context.Context, p []byte) error {
	return s.writeEventsLocked(ctx, p, nil)
}

// writeEventsLocked writes p, then events, and flushes once, holding the
// write lock. The events go through the ResponseWriter's buffer one by
// one rather than being copied into one slice first. A failure ends the
// stream.
func (s *Stream) writeEventsLocked(ctx context.Context, p []byte, events []*EncodedEvent) error {
	if s.ended {
		return &closedError{cause: s.err}
	}
	if s.closing.Load() {
		// Close is waiting for the lock: it wins over queued sends.
		return &closedError{}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	start := time.Now()
	if s.timeout > 0 {
		// The deadline also covers the flush, which is where a stalled
		// client blocks once its socket buffers are full.
		s.setWriteDeadline(start.Add(s.timeout))
	}
	if cut := s.cut.Load(); cut != nil {
		// After the deadline is set: an interrupt from now on moves it.
		err := newOpError("write", *cut)
		s.broken = true
		s.endLocked(err)
		return err
	}
	var stop func() bool
	if ctx.Done() != nil {
		s.aborts.Add(1)
		stop = ctxio.AfterFunc(ctx, s.abortFn)
	}
	var err error
	if s.conn != nil {
		err = s.writeConn(p, events)
	} else {
		if len(p) > 0 {
			_, err = s.w.Write(p)
		}
		for _, e := range events {
			if err != nil {
				break
			}
			_, err = s.w.Write(e.b)
		}
		if err == nil {
			err = s.rc.Flush()
		}
	}
	if stop != nil {
		if stop() {
			s.aborts.Done()
		} else {
			// abortWrite has started: wait until it has moved the
			// deadline into the past, so that it cannot do so after the
			// deadline is restored (or after the handler returns).
			s.aborts.Wait()
			if err != nil {
				// Cut short: part of the event may be on the wire.
				err = newOpError("write", context.Cause(ctx))
				s.broken = true
				s.endLocked(err)
				return err
			}
			// The write and flush were complete when ctx ended: the
			// stream is intact once the deadline is restored.
			s.setWriteDeadline(time.Time{})
		}
	}
	if err != nil {
		if cut := s.cut.Load(); cut != nil {
			err = newOpError("write", *cut, err)
		} else if errors.Is(err, os.ErrDeadlineExceeded) || (s.timeout > 0 && time.Since(start) >= s.timeout) {
			err = newOpError("write", ErrWriteTimeout, err)
		} else {
			err = newOpError("write", err)
		}
		s.broken = true
		s.endLocked(err)
		return err
	}
	if s.timeout > 0 && s.conn == nil {
		// Over HTTP/2 a deadline fires whether or not a write is under
		// way, so an idle stream must not keep one. A connection's
		// deadline only bounds writes, and the next one sets its own.
		s.rc.SetWriteDeadline(time.Time{})
	}
	// The keep-alive timer is not reset here, which would cost a timer
	// operation per event: when it fires, sendKeepAlive sees how long the
	// stream has really been idle and re-arms itself for the rest.
	s.lastWrite = start
	return nil
}

// abortWrite interrupts the write in progress when its context ends.
func (s *Stream) abortWrite() {
	defer s.aborts.Done()
	s.setWriteDeadline(time.Now())
}
