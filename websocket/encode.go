package websocket

import (
	"context"
	"io"

	"github.com/realtime-go/realtime/extensions"
)

// writeEncoded sends a whole message through the extensions. done is
// false when no extension transforms it, and the caller frames p itself.
func (c *Conn) writeEncoded(ctx context.Context, op opcode, p []byte) (done bool, err error) {
	c.streams().emitter.start(ctx, op, false)
	w, err := c.encodeChain(extensions.Message{Binary: op == opBinary, Size: int64(len(p))})
	if err != nil {
		return true, err
	}
	if w == io.Writer(&c.stream.emitter) {
		c.stream.emitter.release()
		return false, nil
	}
	if _, err := w.Write(p); err != nil {
		c.abortEncoded()
		return true, err
	}
	return true, c.finishEncoded()
}

// encodeChain builds the encoders for one message: it passes the
// extensions in negotiation order, so the last one writes to the
// emitter. It returns the emitter itself when no extension transforms.
func (c *Conn) encodeChain(m extensions.Message) (io.Writer, error) {
	c.stream.encoders = c.stream.encoders[:0]
	var w io.Writer = &c.stream.emitter
	exts := c.sessions()
	for i := len(exts) - 1; i >= 0; i-- {
		enc, rsv, err := exts[i].Encode(w, m)
		if err != nil {
			c.abortEncoded()
			return nil, err
		}
		if enc == nil {
			continue
		}
		c.stream.emitter.rsv |= rsv
		c.stream.encoders = append(c.stream.encoders, enc)
		w = enc
	}
	return w, nil
}

// finishEncoded closes the encoders, first extension first, and sends the
// final frame.
func (c *Conn) finishEncoded() error {
	var err error
	for i := len(c.stream.encoders) - 1; i >= 0; i-- {
		if cerr := c.stream.encoders[i].Close(); err == nil {
			err = cerr
		}
	}
	c.stream.encoders = c.stream.encoders[:0]
	if err != nil {
		c.stream.emitter.release()
		return err
	}
	return c.stream.emitter.finish()
}

func (c *Conn) abortEncoded() {
	for i := len(c.stream.encoders) - 1; i >= 0; i-- {
		c.stream.encoders[i].Close()
	}
	c.stream.encoders = c.stream.encoders[:0]
	c.stream.emitter.release()
}

// frameEmitter turns the output of the encoding chain into frames: one
// frame for a whole message, fragments as the buffer fills for a
// streamed one, or, when collecting, nothing but the bytes.
type frameEmitter struct {
	c        *Conn
	ctx      context.Context
	op       opcode
	rsv      byte // RSV bits for the first frame
	fragment bool
	collect  bool
	held     bool // WriteBatch holds writeLock and flushes the batch itself
	bufp     *[]byte
	buf      []byte
}

func (e *frameEmitter) start(ctx context.Context, op opcode, fragment bool) {
	e.ctx, e.op, e.rsv, e.fragment, e.collect = ctx, op, 0, fragment, false
	e.bufp = getBuf(e.c.opts.WriteBufferSize)
	e.buf = (*e.bufp)[:0]
}

func (e *frameEmitter) Write(p []byte) (int, error) {
	e.buf = append(e.buf, p...)
	if e.fragment && len(e.buf) >= e.c.opts.WriteBufferSize {
		if err := e.emit(false); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (e *frameEmitter) emit(fin bool) error {
	c := e.c
	op, rsv := e.op, e.rsv
	e.op, e.rsv = opContinuation, 0
	if e.held {
		err := c.writeFrame(fin, rsv, op, e.buf)
		e.buf = e.buf[:0]
		return err
	}
	err := c.endFragment(c.writeLocked(e.ctx, func() error {
		if err := c.writeFrame(fin, rsv, op, e.buf); err != nil {
			return err
		}
		if fin {
			return c.flushOrDefer()
		}
		return c.flush() // a fragment goes out whole
	}))
	e.buf = e.buf[:0]
	return err
}

// finish sends the final frame, unless collecting, and releases the
// buffer when not collecting.
func (e *frameEmitter) finish() error {
	if e.collect {
		return nil
	}
	err := e.emit(true)
	e.release()
	return err
}

func (e *frameEmitter) release() {
	if e.bufp != nil {
		putBuf(e.bufp)
	}
	e.bufp, e.buf = nil, nil
}
