package websocket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/realtime-go/realtime/extensions"
)

// flushDelay bounds how long a coalesced write may wait for its flush
// when the reader does not come back for more input.
const flushDelay = time.Millisecond

var errCloseSent = errors.New("websocket: close frame already sent")

// Write sends p as one message of type typ.
//
// A Write made while unread input is buffered (the peer has pipelined
// messages the application is about to read) is coalesced with the
// writes that follow: all reach the network together in one system call
// before the next read waits for the peer, and at the latest after 1 ms.
// If ctx ends before any byte of the message has reached the network,
// Write returns an error that satisfies errors.Is(err, ctx.Err()), the
// message is not sent and the connection stays usable. If ctx ends once
// part of the frame has gone, the connection is closed, since a partly
// written frame cannot be taken back: the error then also satisfies
// errors.Is(err, net.ErrClosed), as every later call's does. A message
// that went out whole is reported sent even if ctx has ended meanwhile.
// When an extension encodes the message, a ctx that ends once encoding
// has begun closes the connection too: the extension's state cannot be
// taken back.
func (c *Conn) Write(ctx context.Context, typ MessageType, p []byte) error {
	return c.write(ctx, typ, p, true)
}

// WriteUncompressed sends p as one message of type typ without passing it
// through the negotiated extensions, as for a payload that is already
// compressed. Without extensions it is Write.
func (c *Conn) WriteUncompressed(ctx context.Context, typ MessageType, p []byte) error {
	return c.write(ctx, typ, p, false)
}

func (c *Conn) write(ctx context.Context, typ MessageType, p []byte, encode bool) error {
	op, err := dataOpcode(typ)
	if err != nil {
		return err
	}
	if !encode || c.ext == nil {
		return c.writeSingle(ctx, op, p)
	}
	return c.writeThroughExtensions(ctx, op, p)
}

// writeThroughExtensions is write when extensions encode the message.
// It is a function of its own so that write, on the path of every
// message, keeps a small frame: a goroutine that wrote then waits in Read
// with a stack that has not grown past the 2 KiB it started with.
func (c *Conn) writeThroughExtensions(ctx context.Context, op opcode, p []byte) error {
	if err := c.lock(ctx, &c.msgLock); err != nil {
		return err
	}
	defer c.msgLock.unlock()
	if ctx.Err() != nil {
		// Before the encoders change state for this message.
		return ctxError("write", ctx)
	}
	done, err := c.writeEncoded(ctx, op, p)
	if done || err != nil {
		return err
	}
	return c.writeLocked(ctx, func() error { return c.writeMessageFrame(op, p) })
}

// writeSingle sends a message as one frame. A single frame cannot
// interleave with another message, so only a streamed message in progress
// makes it wait for msgLock; otherwise writeLock alone orders it.
func (c *Conn) writeSingle(ctx context.Context, op opcode, p []byte) error {
	if err := c.lock(ctx, &c.writeLock); err != nil {
		return err
	}
	if !c.streaming {
		var err error
		if ctx.Done() == nil && !c.closeSent.Load() {
			// writeHeld's work when nothing can interrupt the write,
			// without its frame and the closure's (see
			// writeThroughExtensions).
			err = c.writeMessageFrame(op, p)
		} else {
			err = c.writeHeld(ctx, func() error { return c.writeMessageFrame(op, p) })
		}
		c.unlockWrite()
		return err
	}
	return c.writeAfterStream(ctx, op, p)
}

// writeAfterStream is writeSingle while a streamed message holds msgLock,
// in a function of its own for writeSingle's frame to stay small.
func (c *Conn) writeAfterStream(ctx context.Context, op opcode, p []byte) error {
	c.unlockWrite()
	if err := c.lock(ctx, &c.msgLock); err != nil {
		return err
	}
	defer c.msgLock.unlock()
	return c.writeLocked(ctx, func() error { return c.writeMessageFrame(op, p) })
}

func (c *Conn) writeMessageFrame(op opcode, p []byte) error {
	if err := c.writeFrame(true, 0, op, p); err != nil {
		return err
	}
	return c.flushOrDefer()
}

func dataOpcode(typ MessageType) (opcode, error) {
	if typ != MessageText && typ != MessageBinary {
		return 0, fmt.Errorf("websocket: invalid message type %d", int(typ))
	}
	return opcode(typ), nil
}

// writeLocked runs write holding writeLock, with ctx able to interrupt it.
func (c *Conn) writeLocked(ctx context.Context, write func() error) error {
	if err := c.lock(ctx, &c.writeLock); err != nil {
		return err
	}
	defer c.unlockWrite()
	return c.writeHeld(ctx, write)
}

// writeHeld runs write, which writeLock already guards, with ctx able to
// interrupt it. When ctx interrupts it before any byte reached the
// socket, what it queued is taken back and the connection stays usable.
func (c *Conn) writeHeld(ctx context.Context, write func() error) error {
	if c.closeSent.Load() {
		return &closedError{cause: errCloseSent}
	}
	if ctx.Done() == nil {
		return write()
	}
	if ctx.Err() != nil {
		return ctxError("write", ctx)
	}
	mark := -1 // no buffer
	if c.wbufp != nil {
		mark = len(c.wbuf)
	}
	c.unsentMark = c.sent
	c.wwatch.watch(ctx)
	err := write()
	if err == errUnsent {
		c.unsend(mark)
		err = ctxError("write", ctx)
	}
	c.wwatch.unwatch()
	return err
}

// errUnsent is writeError's report that the watched context interrupted a
// write before any of it reached the socket; writeHeld turns it into the
// context's error.
var errUnsent = errors.New("websocket: write interrupted before it began")

// unsend takes back what an interrupted write queued after the first mark
// bytes of the buffer (-1: there was no buffer). The output queued before
// it still waits for its flush.
func (c *Conn) unsend(mark int) {
	if mark <= 0 {
		if c.wbufp != nil {
			c.releaseWriteBuf()
		}
		return
	}
	c.wbuf = c.wbuf[:mark]
	c.flushPending.Store(true)
	c.armFlushTimer(flushDelay)
}

func (c *Conn) releaseWriteBuf() {
	putBuf(c.wbufp)
	c.wbufp, c.wbuf = nil, nil
}

// writeFrame queues one frame. Unmasked payloads that do not fit the
// buffer go out with the buffer in one vectored write, uncopied.
func (c *Conn) writeFrame(fin bool, rsv byte, op opcode, p []byte) error {
	h := header{fin: fin, rsv: rsv, op: op, masked: c.client, length: int64(len(p))}
	if c.client {
		h.key = c.newMaskKey()
	}
	if c.wbufp == nil {
		c.wbufp = getBuf(c.opts.WriteBufferSize)
		c.wbuf = (*c.wbufp)[:0]
	}
	if len(c.wbuf)+maxHeaderSize > cap(c.wbuf) {
		if err := c.flush(); err != nil {
			return err
		}
		c.wbufp = getBuf(c.opts.WriteBufferSize)
		c.wbuf = (*c.wbufp)[:0]
	}
	n := putHeader(c.wbuf[len(c.wbuf):len(c.wbuf)+maxHeaderSize], h)
	c.wbuf = c.wbuf[:len(c.wbuf)+n]
	if len(c.wbuf)+len(p) <= cap(c.wbuf) {
		if !c.client {
			c.wbuf = append(c.wbuf, p...)
			return nil
		}
		start := len(c.wbuf)
		c.wbuf = c.wbuf[:start+len(p)]
		maskCopy(h.key, 0, c.wbuf[start:], p)
		return nil
	}
	if !c.client {
		n, err := writev(c.nc, c.wbuf, p)
		c.sent += n
		if err != nil {
			return c.writeError(err)
		}
		c.wbuf = c.wbuf[:0]
		return nil
	}
	pos := 0
	for len(p) > 0 {
		if len(c.wbuf) == cap(c.wbuf) {
			if err := c.writeOut(c.wbuf); err != nil {
				return c.writeError(err)
			}
			c.wbuf = c.wbuf[:0]
		}
		start := len(c.wbuf)
		k := min(len(p), cap(c.wbuf)-start)
		c.wbuf = c.wbuf[:start+k]
		pos = maskCopy(h.key, pos, c.wbuf[start:], p[:k])
		p = p[k:]
	}
	return nil
}

// writeRaw queues bytes that are already framed.
func (c *Conn) writeRaw(b []byte) error {
	if c.wbufp != nil && len(c.wbuf)+len(b) <= cap(c.wbuf) {
		c.wbuf = append(c.wbuf, b...)
		return nil
	}
	if err := c.flush(); err != nil {
		return err
	}
	if len(b) <= c.opts.WriteBufferSize {
		c.wbufp = getBuf(c.opts.WriteBufferSize)
		c.wbuf = append((*c.wbufp)[:0], b...)
		return nil
	}
	n, err := c.nc.Write(b)
	c.sent += int64(n)
	if err != nil {
		return c.writeError(err)
	}
	return nil
}

// flush writes the buffered output and gives the buffer back to the pool.
func (c *Conn) flush() error {
	if c.flushPending.Load() {
		c.flushPending.Store(false)
		if c.flushTimer != nil {
			c.flushTimer.Stop()
		}
	}
	if c.wbufp == nil {
		return nil
	}
	if len(c.wbuf) > 0 {
		if err := c.writeOut(c.wbuf); err != nil {
			if err = c.writeError(err); err != errUnsent {
				c.releaseWriteBuf()
			}
			return err
		}
	}
	c.releaseWriteBuf()
	return nil
}

// flushOrDefer flushes, unless the reader holds unread input: then the
// application is about to write again, and the flush waits for the
// reader to need the network (or for flushDelay).
func (c *Conn) flushOrDefer() error {
	if !c.inputBuffered.Load() {
		return c.flush()
	}
	if !c.flushPending.Load() {
		c.flushPending.Store(true)
		c.armFlushTimer(flushDelay)
	}
	return nil
}

// flushFromReader sends writes deferred while input was buffered, now that
// the reader is about to wait for input. The reader must never block on a
// write: if the peer is itself blocked writing to us, nobody would read
// and both connections would hang. So it only writes what the socket
// takes at once, and leaves the rest, and a lock held by a writer, to the
// flush timer's goroutine.
func (c *Conn) flushFromReader() {
	if !c.writeLock.tryLock() {
		return // the holder flushes, as input is no longer buffered
	}
	if c.flushPending.Load() && !c.isClosed() {
		if c.tryWrite() {
			c.flush() // nothing left: releases the buffer, stops the timer
		} else {
			c.armFlushTimer(0)
		}
	}
	c.unlockRead()
}

// unlockRead releases writeLock for the reader, which leaves a queued pong
// to the flush timer rather than write it.
func (c *Conn) unlockRead() {
	c.writeLock.unlock()
	if c.pongPending.Load() {
		c.armFlushTimer(0)
	}
}

// writeOut writes b, at most a buffer's worth, whole: it waits for the
// socket as net.Conn.Write does. Called with writeLock held.
func (c *Conn) writeOut(b []byte) error {
	if c.raw == nil {
		n, err := c.nc.Write(b)
		c.sent += int64(n)
		return err
	}
	_, err := c.sendRaw(b, true)
	return err
}

// sendRaw writes b through the RawConn and returns what did not go; with
// wait it waits for room in the socket until all went, else it writes
// only what the socket takes at once. Called with writeLock held.
func (c *Conn) sendRaw(b []byte, wait bool) (rest []byte, err error) {
	c.out, c.outWait, c.outErr = b, wait, nil
	err = c.raw.Write(c.rawWriteFn)
	rest, c.out = c.out, nil
	c.sent += int64(len(b) - len(rest))
	if err == nil {
		err = c.outErr
	}
	if err != nil {
		err = c.netError("write", err)
	}
	return rest, err
}

// tryWrite writes as much of the buffered output as the socket takes
// without waiting and reports whether it all went. Only raw TCP and Unix
// sockets allow that; for others it writes nothing.
func (c *Conn) tryWrite() bool {
	if c.raw == nil {
		return len(c.wbuf) == 0
	}
	rest, err := c.sendRaw(c.wbuf, false)
	if err != nil {
		c.writeError(err)
		return true
	}
	c.wbuf = c.wbuf[:copy(c.wbuf, rest)]
	return len(c.wbuf) == 0
}

// rawWrite is the callback of syscall.RawConn.Write. It writes c.out until
// all of it went or the socket is full; then, if c.outWait, it has
// RawConn wait for room, and otherwise it gives up.
func (c *Conn) rawWrite(fd uintptr) bool {
	for len(c.out) > 0 {
		n, errno := sysWrite(fd, c.out)
		switch errno {
		case 0:
			if n == 0 {
				c.outErr = io.ErrShortWrite
				return true
			}
			c.out = c.out[n:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			return !c.outWait
		default:
			c.outErr = os.NewSyscallError("write", errno)
			return true
		}
	}
	return true
}

// armFlushTimer makes the flush timer fire after d. flushTimer is written
// with both writeLock and mu held, so holders of either may read it.
func (c *Conn) armFlushTimer(d time.Duration) {
	if c.flushTimer == nil {
		c.mu.Lock()
		c.flushTimer = time.AfterFunc(d, c.flushOnTimer)
		c.mu.Unlock()
		return
	}
	c.flushTimer.Reset(d)
}

func (c *Conn) flushOnTimer() {
	if !c.enterTimer() {
		return
	}
	defer c.timers.Done()
	if err := c.lock(context.Background(), &c.writeLock); err != nil {
		return
	}
	if c.flushPending.Load() {
		c.flush()
	}
	c.unlockWrite()
}

// unlockWrite releases writeLock, then sends pongs the reader left
// behind while the lock was held. Writers and the flush timer may block
// on the write; the reader uses unlockRead.
func (c *Conn) unlockWrite() {
	c.writeLock.unlock()
	for c.pongPending.Load() && c.writeLock.tryLock() {
		if c.writePongs(false) {
			c.flushOrDefer()
		}
		c.writeLock.unlock()
	}
}

// maxQueuedPongs bounds the pongs waiting for the write lock; past it the
// oldest are dropped, which RFC 6455 §5.5.3 allows.
const maxQueuedPongs = 32

// queuePong answers a ping from the reader, which must never wait for the
// write lock (see flushFromReader). The pong goes into the output buffer
// when the lock is free and there is room, and the reader sends it as
// flushFromReader would; otherwise the lock's holder, or the flush timer,
// sends it.
func (c *Conn) queuePong(payload []byte) {
	c.mu.Lock()
	if len(c.pongs) == maxQueuedPongs {
		c.pongs = append(c.pongs[:0], c.pongs[1:]...)
	}
	c.pongs = append(c.pongs, append([]byte(nil), payload...))
	c.mu.Unlock()
	c.pongPending.Store(true)
	if !c.writeLock.tryLock() {
		return
	}
	if c.writePongs(true) {
		switch {
		case c.inputBuffered.Load():
			c.flushOrDefer() // goes with the next read's flush
		case c.tryWrite():
			c.flush()
		default:
			c.flushPending.Store(true)
			c.armFlushTimer(0)
		}
	}
	c.unlockRead()
}

// writePongs moves the queued pongs into the output buffer, with writeLock
// held, and reports whether it wrote any. For the reader it writes only
// what fits without a flush, since a flush could block.
func (c *Conn) writePongs(reader bool) bool {
	c.mu.Lock()
	pongs := c.pongs
	if reader {
		free := c.opts.WriteBufferSize
		if c.wbufp != nil {
			free = cap(c.wbuf) - len(c.wbuf)
		}
		n := 0
		for _, p := range pongs {
			if free -= maxHeaderSize + len(p); free < 0 {
				break
			}
			n++
		}
		pongs = pongs[:n]
	}
	c.pongs = c.pongs[len(pongs):]
	if len(c.pongs) == 0 {
		// Not the drained array, which would keep the payloads of the
		// last pongs for the connection's life.
		c.pongs = nil
	}
	c.pongPending.Store(len(c.pongs) > 0)
	c.mu.Unlock()
	if len(pongs) == 0 || c.closeWritten || c.isClosed() {
		return false // nothing may follow a close frame
	}
	for _, p := range pongs {
		if c.writeFrame(true, 0, opPong, p) != nil {
			return false
		}
	}
	return true
}

// finalFlush gives output still waiting (coalesced writes, a queued pong)
// one bounded chance to leave before the connection closes for a read
// error: the peer may have half-closed and still be reading.
func (c *Conn) finalFlush() {
	// The lock is taken even when nothing seems pending: the flush timer
	// may be in the middle of writing.
	limit := min(c.opts.CloseTimeout, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	if c.lock(ctx, &c.writeLock) != nil {
		return
	}
	c.nc.SetWriteDeadline(time.Now().Add(limit))
	c.flush()
	c.unlockWrite() // sends a queued pong
}

// writeError closes the connection: after a failed or partial write the
// stream cannot be trusted. Only a write the watched context interrupted
// before any of it reached the socket leaves it open, reported as
// errUnsent.
func (c *Conn) writeError(err error) error {
	if c.wwatch.interrupted(err) && !c.isClosed() {
		if c.sent == c.unsentMark {
			return errUnsent
		}
		return c.wwatch.cut(err)
	}
	return c.closeConn(&opError{op: "write", err: err})
}

// Writer returns a writer for one message of type typ, sent as fragments
// as its buffer fills; Close sends the final fragment. Other data
// messages wait until the writer is closed, while control frames may go
// between its fragments.
//
// ctx bounds the whole message. If it ends before Writer returns, the
// connection stays usable; once the message has begun, a ctx that ends
// before Close has sent the last fragment closes the connection, since
// the message could not be finished, and the writer's error satisfies
// both errors.Is(err, ctx.Err()) and errors.Is(err, net.ErrClosed).
func (c *Conn) Writer(ctx context.Context, typ MessageType) (io.WriteCloser, error) {
	op, err := dataOpcode(typ)
	if err != nil {
		return nil, err
	}
	if err := c.lock(ctx, &c.msgLock); err != nil {
		return nil, err
	}
	if c.closeSent.Load() {
		c.msgLock.unlock()
		return nil, &closedError{cause: errCloseSent}
	}
	if ctx.Err() != nil {
		c.msgLock.unlock()
		return nil, ctxError("write", ctx)
	}
	if err := c.lock(ctx, &c.writeLock); err != nil {
		c.msgLock.unlock()
		return nil, err
	}
	c.streaming = true // single-frame writes now queue behind this message
	c.unlockWrite()
	w := &c.streams().writer
	w.ctx, w.op, w.active = ctx, op, true
	w.enc = nil
	if c.ext != nil {
		c.stream.emitter.start(ctx, op, true)
		enc, err := c.encodeChain(extensions.Message{Binary: op == opBinary, Size: -1})
		if err != nil {
			c.endStreaming()
			c.msgLock.unlock()
			return nil, err
		}
		if enc != io.Writer(&c.stream.emitter) {
			w.enc = enc
			return w, nil
		}
		c.stream.emitter.release()
	}
	w.bufp = getBuf(c.opts.WriteBufferSize)
	w.buf = (*w.bufp)[:0]
	return w, nil
}

// messageWriter streams one message; Conn.Writer hands out the
// connection's single instance while it holds msgLock.
type messageWriter struct {
	c      *Conn
	ctx    context.Context
	op     opcode // opcode of the next frame: the type, then continuation
	active bool
	enc    io.Writer // head of the encoding chain, when extensions encode
	bufp   *[]byte
	buf    []byte
}

var errWriterClosed = errors.New("websocket: write to a closed message writer")

func (w *messageWriter) Write(p []byte) (int, error) {
	if !w.active {
		return 0, errWriterClosed
	}
	if w.enc != nil {
		return w.enc.Write(p)
	}
	n := 0
	for len(p) > 0 {
		if len(w.buf) == 0 && len(p) >= cap(w.buf) {
			if err := w.emit(false, p); err != nil {
				return n, err
			}
			return n + len(p), nil
		}
		k := min(len(p), cap(w.buf)-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		n += k
		p = p[k:]
		if len(w.buf) == cap(w.buf) {
			if err := w.emit(false, w.buf); err != nil {
				return n, err
			}
			w.buf = w.buf[:0]
		}
	}
	return n, nil
}

func (w *messageWriter) emit(fin bool, p []byte) error {
	c := w.c
	op := w.op
	w.op = opContinuation
	return c.endFragment(c.writeLocked(w.ctx, func() error {
		if err := c.writeFrame(fin, 0, op, p); err != nil {
			return err
		}
		if fin {
			return c.flushOrDefer()
		}
		// A fragment goes out whole: the peer may be waiting for it.
		return c.flush()
	}))
}

// endFragment returns the error of a frame of a message written in parts:
// streamed by a Writer, or encoded by an extension that keeps state from
// one message to the next. Such a message cannot be taken back, so a
// context that ended before the frame went closes the connection.
func (c *Conn) endFragment(err error) error {
	if err == nil || errors.Is(err, net.ErrClosed) {
		return err
	}
	return c.wwatch.cut(err)
}

// Close sends the final fragment and releases the connection to other
// writers.
func (w *messageWriter) Close() error {
	if !w.active {
		return errWriterClosed
	}
	var err error
	if w.enc != nil {
		err = w.c.finishEncoded()
		w.enc = nil
	} else {
		err = w.emit(true, w.buf)
		putBuf(w.bufp)
		w.bufp, w.buf = nil, nil
	}
	w.active = false
	w.c.endStreaming()
	w.c.msgLock.unlock()
	return err
}

// endStreaming lets single-frame writes past msgLock again.
func (c *Conn) endStreaming() {
	c.writeLock.lock(context.Background(), nil)
	c.streaming = false
	c.unlockWrite()
}

// PreparedMessage is a message framed once to be written to many
// connections, as a broadcast does. It is safe for concurrent use.
type PreparedMessage struct {
	typ   MessageType
	data  []byte // the payload: frame's tail, never modified
	frame []byte // the unmasked frame every server connection sends

	mu      sync.Mutex
	encoded map[string][]byte // frames encoded by extensions, by encoding key
}

// NewPreparedMessage frames a copy of data as a message of type typ.
func NewPreparedMessage(typ MessageType, data []byte) (*PreparedMessage, error) {
	op, err := dataOpcode(typ)
	if err != nil {
		return nil, err
	}
	var hdr [maxHeaderSize]byte
	n := putHeader(hdr[:], header{fin: true, op: op, length: int64(len(data))})
	frame := append(append(make([]byte, 0, n+len(data)), hdr[:n]...), data...)
	// The payload is the frame's tail: a broadcast kept for resuming
	// clients holds its bytes once.
	return &PreparedMessage{typ: typ, data: frame[n:len(frame):len(frame)], frame: frame}, nil
}

// WritePrepared sends pm. A server connection without extensions sends
// the shared frame; a client masks its own copy, as RFC 6455 requires.
//
// With extensions, a server connection whose sessions all implement
// extensions.SharedEncoder shares the encoded frame with every connection
// that negotiated the same parameters: a broadcast compresses once per
// parameter set. Other connections encode the message themselves.
func (c *Conn) WritePrepared(ctx context.Context, pm *PreparedMessage) error {
	if c.client {
		return c.Write(ctx, pm.typ, pm.data)
	}
	key, shared := c.encodingKey()
	if !shared {
		return c.Write(ctx, pm.typ, pm.data)
	}
	if err := c.lock(ctx, &c.msgLock); err != nil {
		return err
	}
	defer c.msgLock.unlock()
	frame := pm.frame
	if key != "" {
		var err error
		if frame, err = c.preparedFrame(ctx, pm, key); err != nil {
			return err
		}
	}
	return c.writeLocked(ctx, func() error {
		if err := c.writeRaw(frame); err != nil {
			return err
		}
		return c.flushOrDefer()
	})
}

// encodingKey joins the sessions' encoding keys; shared is false when a
// session's encoding depends on the connection's history.
func (c *Conn) encodingKey() (key string, shared bool) {
	for _, s := range c.sessions() {
		se, ok := s.(extensions.SharedEncoder)
		if !ok {
			return "", false
		}
		key += se.EncodingKey() + "\x00"
	}
	return key, true
}

// preparedFrame returns pm framed by this connection's extensions,
// encoding it on the first request for key.
func (c *Conn) preparedFrame(ctx context.Context, pm *PreparedMessage, key string) ([]byte, error) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	if f, ok := pm.encoded[key]; ok {
		return f, nil
	}
	op := opcode(pm.typ)
	c.streams().emitter.start(ctx, op, false)
	c.stream.emitter.collect = true
	w, err := c.encodeChain(extensions.Message{Binary: op == opBinary, Size: int64(len(pm.data))})
	if err == nil {
		_, err = w.Write(pm.data)
	}
	if err == nil {
		err = c.finishEncoded()
	}
	em := &c.stream.emitter
	if err != nil {
		em.release()
		return nil, err
	}
	var hdr [maxHeaderSize]byte
	n := putHeader(hdr[:], header{fin: true, rsv: em.rsv, op: op, length: int64(len(em.buf))})
	f := append(append(make([]byte, 0, n+len(em.buf)), hdr[:n]...), em.buf...)
	em.release()
	if pm.encoded == nil {
		pm.encoded = map[string][]byte{}
	}
	pm.encoded[key] = f
	return f, nil
}

// iovec is the two buffers of a large write, which WriteTo consumes: a
// Conn kept one of its own, 72 bytes of every idle connection, where a
// large write can afford a pool.
type iovec struct {
	arr  [2][]byte
	bufs net.Buffers
}

var iovecs = sync.Pool{New: func() any { return new(iovec) }}

// writev writes a, then b, to w in one call where w can (writev).
func writev(w io.Writer, a, b []byte) (int64, error) {
	v := iovecs.Get().(*iovec)
	v.arr = [2][]byte{a, b}
	v.bufs = v.arr[:]
	n, err := v.bufs.WriteTo(w)
	v.arr, v.bufs = [2][]byte{}, nil
	iovecs.Put(v)
	return n, err
}
