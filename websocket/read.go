package websocket

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"syscall"
	"time"
	"unicode/utf8"
)

// Read reads the next data message whole. It allocates only the message
// it returns. Control frames that arrive first are handled on the way.
//
// If ctx ends before the next message has started, Read returns an error
// that satisfies errors.Is(err, ctx.Err()) and the connection stays
// usable. A message has started once the header of its first frame has
// arrived whole; control frames before it do not count. If ctx ends
// while the message is being read, the connection is closed, since the
// rest of the message would be lost: the error then also satisfies
// errors.Is(err, net.ErrClosed), as every later call's does. A message
// that arrives whole is returned even if ctx has ended meanwhile.
func (c *Conn) Read(ctx context.Context) (MessageType, []byte, error) {
	return c.ReadAppend(ctx, nil)
}

// ReadAppend is Read that appends the message to dst and returns the
// extended slice. A server that reuses dst reads without allocating:
//
//	buf := make([]byte, 0, 4096)
//	for {
//		typ, msg, err := c.ReadAppend(ctx, buf[:0])
//		if err != nil {
//			return
//		}
//		// use msg, which is valid until the next call
//		buf = msg
//	}
func (c *Conn) ReadAppend(ctx context.Context, dst []byte) (MessageType, []byte, error) {
	if err := c.lock(ctx, &c.readLock); err != nil {
		return 0, dst, err
	}
	watched := c.rwatch.watch(ctx)
	var err error
	if c.rr == c.rw && !c.msgActive && !c.decoding() && !c.isClosed() {
		// Wait for input here, high on the stack: an idle connection's
		// goroutine then keeps a small stack.
		if err = c.fill(); err != nil {
			err = c.ioError(err)
		}
	}
	typ := MessageType(0)
	if err == nil {
		typ, dst, err = c.readMessage(dst)
	}
	if err != nil {
		if c.msgActive {
			err = c.rwatch.cut(err)
		} else {
			err = c.rwatch.asCtxError(err)
		}
	}
	if watched {
		c.rwatch.unwatch()
	}
	c.readLock.unlock()
	return typ, dst, err
}

func (c *Conn) readMessage(p []byte) (MessageType, []byte, error) {
	if typ, q, ok := c.readBuffered(p); ok {
		return typ, q, nil
	}
	if err := c.startMessage(); err != nil {
		return 0, p, err
	}
	if c.decoding() {
		return c.readDecodedMessage(p)
	}
	for {
		for c.remain > 0 {
			if len(p) == cap(p) {
				p = growMessage(p, c.remain, c.opts.MaxMessageSize-c.msgSize+c.remain)
			}
			end := min(cap(p), len(p)+int(c.remain))
			n, err := c.readPayload(p[len(p):end])
			p = p[:len(p)+n]
			if err != nil {
				return c.msgType, p, err
			}
		}
		if c.frame.fin {
			c.endRaw()
			c.endMessage()
			return c.msgType, p, nil
		}
		if err := c.nextFragment(); err != nil {
			return c.msgType, p, err
		}
	}
}

// readBuffered is the fast path of readMessage for the common case of a
// whole unfragmented message, with a header of at most 16-bit length,
// already buffered and no extension at work. It takes the message only
// when every framing rule is known to hold, and otherwise leaves the
// input to the general path, which applies the rules and reports what
// breaks them.
func (c *Conn) readBuffered(p []byte) (MessageType, []byte, bool) {
	b := c.rbuf[c.rr:c.rw]
	if len(b) < 2 || c.msgActive || c.decoding() || c.ext != nil {
		return 0, p, false
	}
	b0, b1 := b[0], b[1]
	// FIN set, RSV clear, text or binary, masked exactly when we are the
	// server.
	op := opcode(b0 & 0x0F)
	if b0&0xF0 != 0x80 || (op != opText && op != opBinary) || (b1&0x80 != 0) == c.client {
		return 0, p, false
	}
	n, hl := int(b1&0x7F), 2
	switch {
	case n == 127:
		return 0, p, false
	case n == 126:
		if len(b) < 4 {
			return 0, p, false
		}
		n, hl = int(binary.BigEndian.Uint16(b[2:])), 4
		if n < 126 {
			return 0, p, false // not minimal: the general path fails it
		}
	}
	if !c.client {
		hl += 4
	}
	if len(b) < hl+n || int64(n) > c.opts.MaxMessageSize || c.isClosed() {
		return 0, p, false
	}
	start := len(p)
	if c.client {
		p = append(p, b[hl:hl+n]...)
	} else {
		p = slices.Grow(p, n)[:start+n]
		maskCopy(binary.LittleEndian.Uint32(b[hl-4:]), 0, p[start:], b[hl:hl+n])
	}
	if op == opText && !utf8.Valid(p[start:]) {
		// The general path reads the frame again and fails it where the
		// bad byte is.
		return 0, p[:start], false
	}
	c.rr += hl + n
	c.msgType = MessageType(op)
	c.endMessage()
	return c.msgType, p, true
}

// readDecodedMessage reads a message an extension decodes. Its size is
// unknown until the end, so what does not fit in p goes into chunks that
// double up to maxChunk and never reach past the limit; at the end they
// are copied once into a slice of the message's exact size. A message of
// n bytes thus costs at most 2n + maxChunk, and one that inflates past
// the limit at most the limit: nothing is ever copied to grow.
func (c *Conn) readDecodedMessage(p []byte) (MessageType, []byte, error) {
	var chunks [][]byte
	total := 0 // bytes in chunks
	for {
		var n int
		var err error
		if len(p) == cap(p) && len(chunks) == 0 && len(p) < maxGrow {
			// A small message grows p itself: a buffer reused across
			// messages (ReadAppend) then settles at their size, and
			// reading one costs no allocation. Beyond maxGrow the copies
			// that growing makes would add up.
			p = slices.Grow(p, c.chunkSize(len(p)))
		}
		if len(p) < cap(p) {
			n, err = c.readDecoded(p[len(p):cap(p)])
			p = p[:len(p)+n]
		} else {
			if len(chunks) == 0 || len(chunks[len(chunks)-1]) == cap(chunks[len(chunks)-1]) {
				chunks = append(chunks, make([]byte, 0, c.chunkSize(len(p)+total)))
			}
			last := &chunks[len(chunks)-1]
			n, err = c.readDecoded((*last)[len(*last):cap(*last)])
			*last = (*last)[:len(*last)+n]
			total += n
		}
		if err == io.EOF {
			return c.msgType, joinChunks(p, chunks, total), nil
		}
		if err != nil {
			return c.msgType, p, err
		}
	}
}

// maxChunk bounds the chunks readDecodedMessage adds to a message, and
// maxGrow the size up to which it grows the caller's buffer instead.
const (
	maxChunk = 1 << 20
	maxGrow  = 64 << 10
)

// chunkSize is how much room to add to a decoded message of which have
// bytes have been read: as much as those, from 512 bytes to maxChunk,
// but never more than the bytes the limit still allows plus the one
// that shows a message is too big.
func (c *Conn) chunkSize(have int) int {
	size := int64(min(max(have, 512), maxChunk))
	var decoded int64
	if c.ext != nil {
		decoded = c.ext.decSize
	}
	if room := c.opts.MaxMessageSize - decoded; room < size {
		size = room + 1
	}
	return int(size)
}

// joinChunks returns p followed by the bytes of chunks, copied once into
// a slice of the exact size; a message that filled a single chunk is
// returned as it is.
func joinChunks(p []byte, chunks [][]byte, total int) []byte {
	if n := len(chunks); n > 0 && len(chunks[n-1]) == 0 {
		chunks = chunks[:n-1] // added for the end of the message only
	}
	switch {
	case len(chunks) == 0:
		return p
	case len(chunks) == 1 && len(p) == 0:
		return chunks[0]
	}
	out := make([]byte, len(p), len(p)+total)
	copy(out, p)
	for _, b := range chunks {
		out = append(out, b...)
	}
	return out
}

// growMessage makes room for the rest of a frame. It allocates the whole
// frame at once up to 1 MiB, and beyond that never more than twice what
// has arrived, so a header that promises a large payload does not make
// the reader allocate before the bytes come; and never room for more
// than the allowed bytes the message may still bring.
func growMessage(p []byte, remain, allowed int64) []byte {
	need := len(p) + int(remain)
	size := max(need, 2*cap(p))
	size = min(size, len(p)+max(len(p), 1<<20))
	if int64(size-len(p)) > allowed {
		size = len(p) + int(allowed)
	}
	grown := make([]byte, len(p), size)
	copy(grown, p)
	return grown
}

// Reader returns the next data message as a stream. The reader is valid
// until it returns io.EOF or the next call to Read or Reader; calling
// Reader again first discards what is left of the previous message.
// ctx bounds every read from the stream as it does for Read, except that
// a stream interrupted by ctx may go on being read, with another call to
// its Read: the bytes not yet returned are still there. When an
// extension decodes the message, its state is lost with the
// interruption, so the connection is closed instead.
func (c *Conn) Reader(ctx context.Context) (MessageType, io.Reader, error) {
	if err := c.lock(ctx, &c.readLock); err != nil {
		return 0, nil, err
	}
	defer c.readLock.unlock()
	watched := c.rwatch.watch(ctx)
	err := c.rwatch.asCtxError(c.startMessage())
	if watched {
		c.rwatch.unwatch()
	}
	if err != nil {
		return 0, nil, err
	}
	c.reader.ctx = ctx
	return c.msgType, &c.reader, nil
}

// messageReader streams the payload of the current message.
type messageReader struct {
	c   *Conn
	ctx context.Context
}

func (r *messageReader) Read(p []byte) (int, error) {
	c := r.c
	if err := c.lock(r.ctx, &c.readLock); err != nil {
		return 0, err
	}
	defer c.readLock.unlock()
	if !c.msgActive && !c.decoding() {
		return 0, io.EOF
	}
	watched := c.rwatch.watch(r.ctx)
	n, err := c.readMsg(p)
	err = c.rwatch.asCtxError(err)
	if watched {
		c.rwatch.unwatch()
	}
	return n, err
}

// readMsg reads from the current message, decoded or not.
func (c *Conn) readMsg(p []byte) (int, error) {
	if c.decoding() {
		return c.readDecoded(p)
	}
	n, err := c.readStream(p)
	if err == io.EOF {
		c.endMessage()
	}
	return n, err
}

// readStream reads the payload of the current message's frames as they
// came over the wire, unmasked.
func (c *Conn) readStream(p []byte) (int, error) {
	for {
		if c.remain > 0 {
			if len(p) == 0 {
				return 0, nil
			}
			return c.readPayload(p)
		}
		if c.frame.fin {
			c.endRaw()
			return 0, io.EOF
		}
		if err := c.nextFragment(); err != nil {
			return 0, err
		}
	}
}

// startMessage discards what is left of a previous message and reads up
// to the first frame header of the next data message.
func (c *Conn) startMessage() error {
	if c.isClosed() {
		return c.err()
	}
	if c.msgActive || c.decoding() {
		if err := c.discardMessage(); err != nil {
			return err
		}
	}
	h, err := c.nextFrame()
	if err != nil {
		return err
	}
	c.msgActive = true
	c.msgType = MessageType(h.op)
	c.msgSize = 0
	c.fragments = 0
	c.utf8 = utf8State{}
	if err := c.beginFrame(h); err != nil {
		return err
	}
	if c.ext != nil {
		return c.startDecode(h.rsv)
	}
	return nil
}

// startDecode passes a message through the extensions, last to first.
func (c *Conn) startDecode(rsv byte) error {
	var r io.Reader = &c.rawMsg
	for i := len(c.ext.sessions) - 1; i >= 0; i-- {
		var err error
		if r, err = c.ext.sessions[i].Decode(r, rsv); err != nil {
			return c.fail(protocolErr(StatusProtocolError, "extension: "+err.Error()))
		}
	}
	if r != io.Reader(&c.rawMsg) {
		c.ext.dec = r
		c.ext.decSize = 0
	}
	return nil
}

// rawMessageReader is what the first extension decodes from.
type rawMessageReader struct{ c *Conn }

func (r *rawMessageReader) Read(p []byte) (int, error) { return r.c.readStream(p) }

// readDecoded reads the decoded message, applying the size limit and the
// UTF-8 check to what the extensions produce.
func (c *Conn) readDecoded(p []byte) (int, error) {
	n, err := c.ext.dec.Read(p)
	c.ext.decSize += int64(n)
	if c.ext.decSize > c.opts.MaxMessageSize {
		return n, c.fail(&ProtocolError{Code: StatusMessageTooBig, Reason: fmt.Sprintf("decoded message exceeds %d bytes", c.opts.MaxMessageSize), Err: ErrMessageTooBig})
	}
	if c.msgType == MessageText && !c.utf8.valid(p[:n]) {
		return n, c.fail(&ProtocolError{Code: StatusInvalidFramePayloadData, Reason: "invalid UTF-8 in text message", Err: ErrInvalidUTF8})
	}
	switch {
	case err == nil:
		return n, nil
	case err == io.EOF:
		if c.msgActive {
			return n, c.fail(protocolErr(StatusProtocolError, "extension ended the message before its last frame"))
		}
		if c.msgType == MessageText && !c.utf8.complete() {
			return n, c.fail(&ProtocolError{Code: StatusInvalidFramePayloadData, Reason: "text message ends inside a UTF-8 sequence", Err: ErrInvalidUTF8})
		}
		c.ext.dec = nil
		c.endMessage()
		return n, io.EOF
	case c.isClosed():
		return n, c.err()
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The extension's state is lost with the interrupted message.
		return n, c.rwatch.cut(err)
	default:
		return n, c.fail(&ProtocolError{Code: StatusInvalidFramePayloadData, Reason: "extension: " + err.Error(), Err: err})
	}
}

// discardMessage reads the rest of the current message into the void,
// still applying every check.
func (c *Conn) discardMessage() error {
	var scratch [512]byte
	for c.msgActive || c.decoding() {
		if _, err := c.readMsg(scratch[:]); err != nil && err != io.EOF {
			return err
		}
	}
	return nil
}

func (c *Conn) nextFragment() error {
	h, err := c.nextFrame()
	if err != nil {
		return err
	}
	return c.beginFrame(h)
}

// beginFrame accounts for a data frame whose header was just read.
func (c *Conn) beginFrame(h header) error {
	c.frame = h
	c.remain = h.length
	c.maskPos = 0
	c.fragments++
	c.msgSize += h.length
	if c.msgSize > c.opts.MaxMessageSize || c.msgSize < 0 {
		return c.fail(&ProtocolError{Code: StatusMessageTooBig, Reason: fmt.Sprintf("message exceeds %d bytes", c.opts.MaxMessageSize), Err: ErrMessageTooBig})
	}
	if c.fragments > c.opts.MaxFragments {
		return c.fail(&ProtocolError{Code: StatusMessageTooBig, Reason: fmt.Sprintf("message exceeds %d fragments", c.opts.MaxFragments), Err: ErrMessageTooBig})
	}
	c.rules.inMessage = !h.fin
	if h.fin && h.length == 0 && c.msgType == MessageText && !c.decoding() && !c.utf8.complete() {
		return c.fail(&ProtocolError{Code: StatusInvalidFramePayloadData, Reason: "text message ends inside a UTF-8 sequence", Err: ErrInvalidUTF8})
	}
	return nil
}

// endRaw records that the current message's last frame has been read.
func (c *Conn) endRaw() {
	c.msgActive = false
	c.rules.inMessage = false
}

// endMessage records that the application has the whole message.
func (c *Conn) endMessage() {
	// More input already buffered means the application is about to read
	// again: writes it makes meanwhile can share one flush.
	if buffered := c.rr < c.rw; c.inputBuffered.Load() != buffered {
		c.inputBuffered.Store(buffered)
	}
	if c.rr == c.rw && c.rbufp != nil {
		c.releaseReadBuf()
	}
}

// nextFrame reads frame headers, handling control frames, until a data
// frame header arrives.
func (c *Conn) nextFrame() (header, error) {
	for {
		h, err := c.readHeader()
		if err != nil {
			return h, err
		}
		if !h.op.isControl() {
			return h, nil
		}
		if err := c.handleControl(h); err != nil {
			return h, err
		}
	}
}

// readHeader reads and checks the next frame header. A control frame is
// taken only once its payload is buffered too, so a read interrupted by
// its context never leaves one half consumed.
func (c *Conn) readHeader() (header, error) {
	for {
		h, n, err := parseHeader(c.rbuf[c.rr:c.rw])
		if err != nil {
			return h, c.fail(err)
		}
		if n > 0 {
			if err := c.rules.check(h); err != nil {
				return h, c.fail(err)
			}
			if !h.op.isControl() || int64(c.rw-c.rr) >= int64(n)+h.length {
				c.rr += n
				return h, nil
			}
		}
		if err := c.fill(); err != nil {
			return h, c.ioError(err)
		}
	}
}

// readPayload reads up to len(p) bytes of the current frame's payload,
// unmasks them and checks text as it arrives, so invalid UTF-8 fails the
// connection in the read that brings it.
func (c *Conn) readPayload(p []byte) (int, error) {
	if int64(len(p)) > c.remain {
		p = p[:c.remain]
	}
	var n int
	switch {
	case c.rr < c.rw:
		n = c.takeBuffered(p)
	case len(p) >= c.opts.ReadBufferSize:
		// Large reads bypass the buffer.
		c.beforeNetRead()
		var err error
		n, err = c.nc.Read(p)
		if n == 0 && err != nil {
			return 0, c.ioError(err)
		}
		if c.frame.masked {
			c.maskPos = mask(c.frame.key, c.maskPos, p[:n])
		}
	default:
		if err := c.fill(); err != nil {
			return 0, c.ioError(err)
		}
		n = c.takeBuffered(p)
	}
	c.remain -= int64(n)
	if c.msgType == MessageText && !c.decoding() {
		if !c.utf8.valid(p[:n]) {
			return n, c.fail(&ProtocolError{Code: StatusInvalidFramePayloadData, Reason: "invalid UTF-8 in text message", Err: ErrInvalidUTF8})
		}
		if c.remain == 0 && c.frame.fin && !c.utf8.complete() {
			return n, c.fail(&ProtocolError{Code: StatusInvalidFramePayloadData, Reason: "text message ends inside a UTF-8 sequence", Err: ErrInvalidUTF8})
		}
	}
	return n, nil
}

// takeBuffered moves buffered payload into p, unmasking it on the way.
func (c *Conn) takeBuffered(p []byte) int {
	n := min(len(p), c.rw-c.rr)
	src := c.rbuf[c.rr : c.rr+n]
	if c.frame.masked {
		c.maskPos = maskCopy(c.frame.key, c.maskPos, p, src)
	} else {
		copy(p, src)
	}
	c.rr += n
	return n
}

func eofUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (c *Conn) handleControl(h header) error {
	// readHeader buffered the whole payload: it is read where it is, as
	// a buffer of its own per connection, kept from the first control
	// frame on, cost every connection that saw a heartbeat 128 bytes.
	p := c.rbuf[c.rr : c.rr+int(h.length)]
	c.rr += len(p)
	if h.masked {
		mask(h.key, 0, p)
	}
	switch h.op {
	case opPing:
		// Nothing may follow our close frame (RFC 6455 §5.5.1), not even
		// a pong.
		if !c.closeSent.Load() {
			c.queuePong(p)
		}
		if c.opts.OnPing != nil {
			c.opts.OnPing(p)
		}
	case opPong:
		c.gotPong(p)
		if c.opts.OnPong != nil {
			c.opts.OnPong(p)
		}
	case opClose:
		ce, err := parseClosePayload(p)
		if err != nil {
			return c.fail(err)
		}
		return c.peerClosed(ce)
	}
	return nil
}

// fill reads more input into the buffer. It flushes deferred writes
// first, since the application is now waiting on the peer.
func (c *Conn) fill() error {
	if c.rr == c.rw {
		c.rr, c.rw = 0, 0
	} else if c.rr > 0 && c.rw == len(c.rbuf) {
		c.rw = copy(c.rbuf, c.rbuf[c.rr:c.rw])
		c.rr = 0
	}
	c.beforeNetRead()
	if c.raw != nil && c.rw == 0 {
		// Wait for input without a buffer: an idle connection then
		// holds none. rawRead gives it back when the socket has nothing.
		c.rawN, c.rawErr = 0, nil
		if err := c.raw.Read(c.rawReadFn); err != nil {
			return c.netError("read", err)
		}
		if c.rawErr != nil {
			return c.netError("read", c.rawErr)
		}
		if c.rawN == 0 {
			return io.EOF
		}
		c.rw = c.rawN
		return nil
	}
	if c.rbufp == nil {
		c.rbufp = getBuf(c.opts.ReadBufferSize)
		c.rbuf = *c.rbufp
	}
	n, err := c.nc.Read(c.rbuf[c.rw:])
	c.rw += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// rawRead is the callback of syscall.RawConn.Read: it takes a buffer only
// once the socket is readable.
func (c *Conn) rawRead(fd uintptr) bool {
	if c.rbufp == nil {
		c.rbufp = getBuf(c.opts.ReadBufferSize)
		c.rbuf = *c.rbufp
	}
	for {
		n, errno := sysRead(fd, c.rbuf)
		switch errno {
		case 0:
			c.rawN = n
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			c.releaseReadBuf()
			return false
		default:
			c.rawErr = os.NewSyscallError("read", errno)
			return true
		}
	}
}

func (c *Conn) releaseReadBuf() {
	putBuf(c.rbufp)
	c.rbufp, c.rbuf = nil, nil
	c.rr, c.rw = 0, 0
}

// beforeNetRead flushes writes deferred while input was buffered.
func (c *Conn) beforeNetRead() {
	if c.inputBuffered.Load() {
		c.inputBuffered.Store(false)
	}
	if c.flushPending.Load() {
		c.flushFromReader()
	}
}

// ioError turns a read error into the error to return. A deadline that
// passed leaves the connection usable, as far as the reader is concerned:
// a context's end, or a deadline set through NetConn. Anything else
// closes it.
func (c *Conn) ioError(err error) error {
	if c.isClosed() {
		return c.err()
	}
	err = &opError{op: "read", err: eofUnexpected(err)}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	c.finalFlush()
	return c.closeConn(err)
}

// deadline reads a deadline set through NetConn.
func (c *Conn) deadline(write bool) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deadlines == nil {
		return time.Time{}
	}
	if write {
		return c.deadlines[1]
	}
	return c.deadlines[0]
}

// deadlinesLocked returns c.deadlines, made if needed: few connections
// are used through NetConn, and the two deadlines cost each 48 bytes.
// Called with mu held.
func (c *Conn) deadlinesLocked() *[2]time.Time {
	if c.deadlines == nil {
		c.deadlines = new([2]time.Time)
	}
	return c.deadlines
}
