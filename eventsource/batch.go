package eventsource

import "context"

// Batch is a list of events that Stream.SendBatch writes in order with
// one write and one flush, so that a burst of events costs one system
// call rather than one per event. The zero value is an empty batch. A
// Batch holds its events in wire form, copied as they are added; Reset
// empties it for reuse without giving back its memory (up to 64 KiB), so
// a batch reused from burst to burst allocates nothing per event. A Batch
// is not safe for concurrent use, but one batch may be sent to several
// streams, one after another or at once.
type Batch struct {
	b []byte
	n int
}

// Add appends ev, encoded as Send encodes it. An event that cannot be
// encoded (see ErrInvalidField) is refused and the batch is unchanged.
func (b *Batch) Add(ev Event) error {
	if err := checkEvent(&ev); err != nil {
		return err
	}
	b.b = appendEvent(b.b, &ev)
	b.n++
	return nil
}

// AddEncoded appends an event encoded beforehand.
func (b *Batch) AddEncoded(e *EncodedEvent) error {
	if e == nil {
		return errNilEvent
	}
	b.b = append(b.b, e.b...)
	b.n++
	return nil
}

// Len returns the number of events in the batch.
func (b *Batch) Len() int { return b.n }

// Reset empties the batch. It keeps the batch's memory for the next
// events, unless one large burst made it larger than a stream's own
// encoding buffer may grow.
func (b *Batch) Reset() {
	if cap(b.b) > maxKeptBuffer {
		b.b = nil
	}
	b.b, b.n = b.b[:0], 0
}

// SendBatch writes the events of b in order and flushes them to the
// client once. No other send's event goes between them.
//
// It works as Send does, for the batch as a whole: ctx bounds the wait
// for other sends; if ctx ends while the batch is being written and the
// write is cut short, the stream ends, since a partly written event
// cannot be taken back (the events before the cut went out whole and in
// order); Options.WriteTimeout bounds the write of the whole batch and
// its flush, and a batch that takes longer ends the stream with
// ErrWriteTimeout. An empty batch writes nothing and returns nil. Once
// the stream has ended, SendBatch returns an error matching
// net.ErrClosed.
func (s *Stream) SendBatch(ctx context.Context, b *Batch) error {
	if b.n == 0 {
		return nil
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.unlock()
	return s.writeLocked(ctx, b.b)
}
