package deflate

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"

	"github.com/realtime-go/realtime/extensions"
)

// config is what a negotiation settled for one connection.
type config struct {
	level     int
	threshold int  // < 0: compress everything
	ownNoCtx  bool // our compressor starts afresh for every message
	ownBits   int  // our compressor's window, 8-15
	peerNoCtx bool // the peer's compressor starts afresh: keep no history
	peerBits  int  // the peer's window, 8-15
}

// session is permessage-deflate on one connection. The driver calls
// Encode and Decode from one goroutine each (the writer and the reader),
// and Close from any goroutine.
type session struct {
	cfg config

	// Write side. mu guards the compressor state and the flags against
	// Close; the writer goroutine owns everything else. A message in
	// progress has taken the state out, so Close cannot pool a
	// compressor in use.
	mu     sync.Mutex
	lz     *lz           // our compressor's state, kept with context takeover
	fw     *flate.Writer // a klauspost compressor (Level 2-9 or HuffmanOnly), kept with context takeover
	broken error         // a failed message left the context unusable
	closed bool
	out    tailWriter
	enc    encoder
	lzEnc  lzEncoder

	// Read side, owned by the reader goroutine.
	win *window // the peer's history, kept with context takeover
	dec decoder
}

// sharedSession is a session whose output depends on nothing but the
// message and the parameters in key.
type sharedSession struct {
	*session
	key string
}

func (s *sharedSession) EncodingKey() string { return s.key }

func newSession(cfg config) extensions.Session {
	s := &session{cfg: cfg}
	s.enc.s = s
	s.lzEnc.s = s
	s.dec.s = s
	if cfg.ownNoCtx {
		return &sharedSession{s, fmt.Sprintf("deflate:l=%d,w=%d,t=%d", cfg.level, cfg.ownBits, cfg.threshold)}
	}
	return s
}

// ownLZ reports whether our own compressor serves the session's level.
func (cfg *config) ownLZ() bool { return cfg.level == DefaultLevel }

// peerWindow is the history to keep of what the peer sends: zlib writes
// 9-bit windows when asked for 8, so keep enough for such peers.
func (cfg *config) peerWindow() int { return 1 << max(cfg.peerBits, 9) }

var (
	errClosed          = errors.New("deflate: session closed")
	errNoTail          = errors.New("deflate: compressor output does not end with a sync flush")
	errWriteAfterClose = errors.New("deflate: write after close")
	errCloseClosed     = errors.New("deflate: close of a closed message")
)

// Encode compresses one message (RFC 7692 §7.2.1). A message whose size
// is known and below the threshold is not transformed.
func (s *session) Encode(dst io.Writer, m extensions.Message) (io.WriteCloser, byte, error) {
	if s.cfg.threshold > 0 && m.Size >= 0 && m.Size < int64(s.cfg.threshold) {
		return nil, 0, nil
	}
	s.mu.Lock()
	if s.closed || s.broken != nil {
		err := s.broken
		if s.closed {
			err = errClosed
		}
		s.mu.Unlock()
		return nil, 0, err
	}
	if s.cfg.ownLZ() {
		z := s.lz
		s.lz = nil
		s.mu.Unlock()
		if z == nil {
			if s.cfg.ownNoCtx {
				z = getLZ(s.cfg.ownBits)
			} else {
				z = newLZ(s.cfg.ownBits, ctxBlock)
			}
		}
		e := &s.lzEnc
		e.z, e.dst, e.err = z, dst, nil
		e.sc = encScratchPool.Get().(*encScratch)
		return e, extensions.RSV1, nil
	}
	fw := s.fw
	s.fw = nil
	s.mu.Unlock()

	// With context takeover fw is the connection's compressor, which
	// writes to this message's destination through s.out.
	s.out = tailWriter{w: dst}
	if fw == nil {
		fw = getWriter(s.cfg.level, s.cfg.ownBits, &s.out)
	}
	s.enc.fw = fw
	s.enc.err = nil
	return &s.enc, extensions.RSV1, nil
}

// endLZ takes back our compressor's state after a message.
func (s *session) endLZ(z *lz, err error) {
	s.mu.Lock()
	if err != nil && !s.cfg.ownNoCtx {
		// The peer did not get what the compressor remembers.
		s.broken = fmt.Errorf("deflate: an earlier message failed: %w", err)
	}
	if s.cfg.ownNoCtx || s.closed || err != nil {
		s.mu.Unlock()
		if s.cfg.ownNoCtx {
			putLZ(z)
		}
		return
	}
	s.lz = z
	s.mu.Unlock()
}

// encoder is the writer Encode returns for a klauspost compressor.
type encoder struct {
	s   *session
	fw  *flate.Writer
	err error
}

func (e *encoder) Write(p []byte) (int, error) {
	if e.fw == nil {
		return 0, errWriteAfterClose
	}
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.fw.Write(p)
	if err != nil {
		e.err = err
	}
	return n, err
}

// Close ends the message with a sync flush, whose final 4 bytes
// 0x00 0x00 0xff 0xff are left out of the output (RFC 7692 §7.2.1).
func (e *encoder) Close() error {
	fw := e.fw
	if fw == nil {
		return errCloseClosed
	}
	e.fw = nil
	s := e.s
	err := e.err
	if err == nil {
		err = fw.Flush()
	}
	if err == nil && !s.out.syncTail() {
		err = errNoTail
	}
	s.out = tailWriter{}

	s.mu.Lock()
	if err != nil && !s.cfg.ownNoCtx {
		// The peer did not get what the compressor remembers.
		s.broken = fmt.Errorf("deflate: an earlier message failed: %w", err)
	}
	if s.cfg.ownNoCtx || s.closed || err != nil {
		s.mu.Unlock()
		putWriter(s.cfg.level, s.cfg.ownBits, fw)
		return err
	}
	s.fw = fw
	s.mu.Unlock()
	return nil
}

// tailWriter passes on everything written to it except the last 4 bytes.
type tailWriter struct {
	w    io.Writer
	tail [4]byte
	n    int
}

func (t *tailWriter) Write(p []byte) (int, error) {
	total := t.n + len(p)
	if total <= len(t.tail) {
		t.n += copy(t.tail[t.n:], p)
		return len(p), nil
	}
	out := total - len(t.tail) // bytes that leave now, tail first
	if t.n > 0 {
		k := min(t.n, out)
		if _, err := t.w.Write(t.tail[:k]); err != nil {
			return 0, err
		}
		t.n = copy(t.tail[:], t.tail[k:t.n])
		out -= k
	}
	if out > 0 {
		if _, err := t.w.Write(p[:out]); err != nil {
			return 0, err
		}
	}
	t.n += copy(t.tail[t.n:], p[out:])
	return len(p), nil
}

// syncTail reports whether the bytes held back are a sync flush's.
func (t *tailWriter) syncTail() bool {
	return t.n == 4 && t.tail == [4]byte{0x00, 0x00, 0xff, 0xff}
}

// Decode decompresses a message with RSV1 set (RFC 7692 §7.2.2); others
// pass through.
func (s *session) Decode(src io.Reader, rsv byte) (io.Reader, error) {
	if rsv&extensions.RSV1 == 0 {
		return src, nil
	}
	var w *window
	if s.cfg.peerNoCtx {
		w = getWindow(s.cfg.peerWindow())
	} else {
		if s.win == nil {
			s.win = newWindow(s.cfg.peerWindow(), true)
		}
		w = s.win
	}
	d := &s.dec
	d.err = nil
	d.f = inflaterPool.Get().(*inflater)
	d.f.reset(src, w)
	return d, nil
}

// decoder is the reader Decode returns. It holds a pooled decompressor
// until the message ends.
type decoder struct {
	s   *session
	f   *inflater
	err error
}

func (d *decoder) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	f := d.f
	for {
		if f.w.pos > f.rd {
			n := f.w.read(f.rd, p)
			f.rd += uint64(n)
			return n, nil
		}
		if f.state == stDone {
			d.finish(io.EOF)
			return 0, io.EOF
		}
		if len(p) == 0 {
			return 0, nil
		}
		if err := f.inflate(len(p)); err != nil {
			d.finish(err)
			return 0, err
		}
	}
}

// finish gives back what the message borrowed.
func (d *decoder) finish(err error) {
	f := d.f
	if d.s.cfg.peerNoCtx {
		putWindow(f.w)
	}
	f.src, f.w, f.srcErr = nil, nil, nil
	inflaterPool.Put(f)
	d.f = nil
	d.err = err
}

// Close gives the connection's compressor back to the pool, unless a
// message holds it, in which case that message's end does.
func (s *session) Close() error {
	s.mu.Lock()
	s.closed = true
	fw := s.fw
	s.fw = nil
	s.lz = nil
	s.mu.Unlock()
	if fw != nil {
		putWriter(s.cfg.level, s.cfg.ownBits, fw)
	}
	return nil
}

// Compressors are pooled per (level, window): windows below 15 bits use
// the windowed encoder whatever the level.
var writerPools [7 + 12]sync.Pool

func writerPool(level, bits int) *sync.Pool {
	if bits < 15 {
		return &writerPools[bits-8]
	}
	return &writerPools[7+level-flate.HuffmanOnly]
}

func getWriter(level, bits int, dst io.Writer) *flate.Writer {
	if fw, ok := writerPool(level, bits).Get().(*flate.Writer); ok {
		fw.Reset(dst)
		return fw
	}
	var fw *flate.Writer
	var err error
	if bits < 15 {
		fw, err = flate.NewWriterWindow(dst, 1<<bits)
	} else {
		fw, err = flate.NewWriter(dst, level)
	}
	if err != nil {
		panic("deflate: " + err.Error()) // levels and windows are validated
	}
	return fw
}

func putWriter(level, bits int, fw *flate.Writer) {
	fw.Reset(nil)
	writerPool(level, bits).Put(fw)
}
