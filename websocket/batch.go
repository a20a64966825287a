package websocket

import (
	"context"
	"errors"
	"io"

	"github.com/realtime-go/realtime/extensions"
)

// Batch is a list of messages that WriteBatch sends in order with one
// flush, so that a burst of queued messages costs one system call rather
// than one per message, as a broadcast to many connections needs. The
// zero value is an empty batch. A Batch keeps what it is given, not a
// copy: the payloads must not change until WriteBatch has returned.
// Reset empties it for reuse without giving back its memory, so a batch
// reused from burst to burst allocates nothing per message. A Batch is
// not safe for concurrent use, but one batch may be written to several
// connections, one after another or at once.
type Batch struct {
	msgs []batchMessage
}

// batchMessage is one message of a Batch: pm, or else p of type op.
type batchMessage struct {
	op opcode
	p  []byte
	pm *PreparedMessage
}

// Add appends a message of type typ with payload p, as Write would send
// it. An invalid type is refused and the batch is unchanged.
func (b *Batch) Add(typ MessageType, p []byte) error {
	op, err := dataOpcode(typ)
	if err != nil {
		return err
	}
	b.msgs = append(b.msgs, batchMessage{op: op, p: p})
	return nil
}

// AddPrepared appends pm, as WritePrepared would send it.
func (b *Batch) AddPrepared(pm *PreparedMessage) error {
	if pm == nil {
		return errNilPrepared
	}
	b.msgs = append(b.msgs, batchMessage{op: opcode(pm.typ), p: pm.data, pm: pm})
	return nil
}

var errNilPrepared = errors.New("websocket: nil *PreparedMessage")

// Len returns the number of messages in the batch.
func (b *Batch) Len() int { return len(b.msgs) }

// Reset empties the batch and drops its references to the messages,
// keeping its memory for the next ones.
func (b *Batch) Reset() {
	clear(b.msgs)
	b.msgs = b.msgs[:0]
}

// WriteBatch sends the messages of b in order, each as one frame as Write
// and WritePrepared send it, with one flush at the end: the frames reach
// the network together, in as few system calls as the buffer
// (ConnOptions.WriteBufferSize) allows. No other frame goes between
// them: a pong the reader owes waits for the end of the batch, as it
// waits for the end of a frame. An empty batch sends nothing.
//
// ctx bounds the whole batch, as it bounds a message for Write: if it
// ends before any byte of the batch has reached the network, WriteBatch
// returns an error that satisfies errors.Is(err, ctx.Err()), no message
// of the batch is sent and the connection stays usable. If it ends once
// part of the batch has gone, the connection is closed, since the rest
// could not follow in order: the messages before the cut reached the
// network in order, and the error satisfies both errors.Is(err,
// ctx.Err()) and errors.Is(err, net.ErrClosed). When an extension
// encodes a message of the batch with state kept from one message to the
// next (permessage-deflate with context takeover), a ctx that ends once
// encoding has begun closes the connection too. A batch that went out
// whole is reported sent even if ctx has ended meanwhile.
func (c *Conn) WriteBatch(ctx context.Context, b *Batch) error {
	if len(b.msgs) == 0 {
		return nil
	}
	if err := c.lock(ctx, &c.msgLock); err != nil {
		return err
	}
	defer c.msgLock.unlock()
	if ctx.Err() != nil {
		return ctxError("write", ctx)
	}
	key, shared := "", true
	if c.ext != nil {
		key, shared = c.encodingKey()
	}
	// stateful is set once an extension has encoded a message with state
	// that a taken-back batch would leave out of step with the peer.
	stateful := false
	err := c.writeLocked(ctx, func() error {
		for i := range b.msgs {
			if err := c.writeBatched(ctx, &b.msgs[i], key, shared, &stateful); err != nil {
				return err
			}
		}
		return c.flushOrDefer()
	})
	if stateful {
		return c.endFragment(err)
	}
	return err
}

// writeBatched queues one message of a batch, with writeLock held.
func (c *Conn) writeBatched(ctx context.Context, m *batchMessage, key string, shared bool, stateful *bool) error {
	if m.pm != nil && !c.client && shared {
		frame := m.pm.frame
		if key != "" {
			var err error
			if frame, err = c.preparedFrame(ctx, m.pm, key); err != nil {
				return err
			}
		}
		return c.writeRaw(frame)
	}
	if c.ext == nil {
		return c.writeFrame(true, 0, m.op, m.p)
	}
	// As writeEncoded, with the emitter queueing the frame under the
	// writeLock held here rather than taking it and flushing.
	em := &c.streams().emitter
	em.start(ctx, m.op, false)
	em.held = true
	defer func() { em.held = false }()
	w, err := c.encodeChain(extensions.Message{Binary: m.op == opBinary, Size: int64(len(m.p))})
	if err != nil {
		return err
	}
	if w == io.Writer(em) {
		em.release()
		return c.writeFrame(true, 0, m.op, m.p)
	}
	*stateful = true
	if _, err := w.Write(m.p); err != nil {
		c.abortEncoded()
		return err
	}
	return c.finishEncoded()
}
