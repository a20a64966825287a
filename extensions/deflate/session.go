package deflate

import (
	"bufio"
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

	// Write side. mu guards fw and the flags against Close; the writer
	// goroutine owns everything else. A message in progress has taken fw
	// out, so Close cannot pool a compressor in use.
	mu     sync.Mutex
	fw     *flate.Writer // held between messages with context takeover
	broken error         // a failed message left the context unusable
	closed bool
	out    tailWriter
	enc    encoder

	// Read side, owned by the reader goroutine.
	hist history
	dec  decoder
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
	s.dec.s = s
	if !cfg.peerNoCtx {
		// zlib writes 9-bit windows when asked for 8; keep enough history
		// for such peers.
		s.hist.size = 1 << max(cfg.peerBits, 9)
	}
	if cfg.ownNoCtx {
		return &sharedSession{s, fmt.Sprintf("deflate:l=%d,w=%d,t=%d", cfg.level, cfg.ownBits, cfg.threshold)}
	}
	return s
}

var (
	errClosed  = errors.New("deflate: session closed")
	errNoTail  = errors.New("deflate: compressor output does not end with a sync flush")
	finalTails = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}
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

// encoder is the writer Encode returns.
type encoder struct {
	s   *session
	fw  *flate.Writer
	err error
}

func (e *encoder) Write(p []byte) (int, error) {
	if e.fw == nil {
		return 0, errors.New("deflate: write after close")
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
		return errors.New("deflate: close of a closed message")
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
	d := &s.dec
	d.src = msgSource{r: src}
	d.err = nil
	var dict []byte
	if !s.cfg.peerNoCtx {
		dict = s.hist.dict()
	}
	d.in = getInflater(&d.src, dict)
	return d, nil
}

// decoder is the reader Decode returns. It holds a pooled decompressor
// until the message ends.
type decoder struct {
	s   *session
	src msgSource
	in  *inflater
	err error
}

func (d *decoder) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n, err := d.in.fr.Read(p)
	if n > 0 && !d.s.cfg.peerNoCtx {
		d.s.hist.add(p[:n])
	}
	if err == nil {
		return n, nil
	}
	if err == io.EOF {
		// The final block came from our tail, unless the peer ended
		// its data with one: then the rest of the message is padding.
		if d.src.r != nil {
			if _, err = io.Copy(io.Discard, d.src.r); err == nil {
				err = io.EOF
			}
		}
	} else {
		var ce flate.CorruptInputError
		if errors.As(err, &ce) {
			err = errors.New("deflate: corrupt compressed data")
		} else if err == io.ErrUnexpectedEOF && d.src.r == nil {
			err = errors.New("deflate: compressed data truncated")
		}
	}
	d.err = err
	putInflater(d.in)
	d.in = nil
	d.src = msgSource{}
	return n, err
}

// msgSource yields a message's payload followed by the 4 bytes the sender
// removed and an empty final block, which ends the DEFLATE stream.
type msgSource struct {
	r    io.Reader // nil once the payload has ended
	tail []byte
}

func (m *msgSource) Read(p []byte) (int, error) {
	if m.r != nil {
		n, err := m.r.Read(p)
		if err != io.EOF {
			return n, err
		}
		m.r = nil
		m.tail = finalTails
		if n > 0 {
			return n, nil
		}
	}
	if len(m.tail) == 0 {
		return 0, io.EOF
	}
	n := copy(p, m.tail)
	m.tail = m.tail[n:]
	return n, nil
}

// history keeps the last size bytes the peer sent, the dictionary of its
// next message. It buffers up to twice that, so that it copies each byte
// about twice.
type history struct {
	size int
	b    []byte
}

func (h *history) add(q []byte) {
	if len(q) >= h.size {
		if h.b == nil {
			h.b = make([]byte, 0, 2*h.size)
		}
		h.b = append(h.b[:0], q[len(q)-h.size:]...)
		return
	}
	if len(h.b)+len(q) > cap(h.b) {
		if h.b == nil {
			h.b = make([]byte, 0, 2*h.size)
		} else {
			keep := h.size - len(q)
			h.b = h.b[:copy(h.b, h.b[len(h.b)-keep:])]
		}
	}
	h.b = append(h.b, q...)
}

func (h *history) dict() []byte {
	if len(h.b) > h.size {
		return h.b[len(h.b)-h.size:]
	}
	return h.b
}

// Close gives the connection's compressor back to the pool, unless a
// message holds it, in which case that message's end does.
func (s *session) Close() error {
	s.mu.Lock()
	s.closed = true
	fw := s.fw
	s.fw = nil
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

// inflater is a pooled decompressor with its input buffer.
type inflater struct {
	br *bufio.Reader
	fr io.ReadCloser // also a flate.Resetter
}

var inflaters sync.Pool

func getInflater(src io.Reader, dict []byte) *inflater {
	in, ok := inflaters.Get().(*inflater)
	if !ok {
		in = &inflater{br: bufio.NewReaderSize(src, 4096)}
		in.fr = flate.NewReader(in.br)
	}
	in.br.Reset(src)
	in.fr.(flate.Resetter).Reset(in.br, dict)
	return in
}

func putInflater(in *inflater) {
	in.br.Reset(nil)
	inflaters.Put(in)
}
