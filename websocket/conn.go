package websocket

import (
	"context"
	crand "crypto/rand"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/realtime-go/realtime/extensions"
	"github.com/realtime-go/realtime/internal/lazydone"
)

// MessageType is the type of a data message.
type MessageType int

// The data message types (RFC 6455 §5.6).
const (
	MessageText   MessageType = MessageType(opText)
	MessageBinary MessageType = MessageType(opBinary)
)

func (t MessageType) String() string {
	switch t {
	case MessageText:
		return "text"
	case MessageBinary:
		return "binary"
	}
	return "invalid"
}

// Conn is a WebSocket connection, on either side.
//
// Read and Reader (and the io.Reader that Reader returns) must be called
// from one goroutine at a time; every other method is safe for concurrent
// use, and concurrent writers are serialized message by message.
// Control frames are answered while a goroutine reads: pongs to pings,
// the close handshake, and the pongs that Ping waits for.
//
// A Conn starts no goroutines, but over HTTP/2 one that reads the
// stream. Timers (keep-alive pings, deferred flushes) run in the
// runtime's timer goroutines and stop when the connection closes.
//
// Once the connection is closed, every method returns an error for which
// errors.Is(err, net.ErrClosed) holds and which unwraps to the cause: a
// CloseError from the peer, a *ProtocolError, ErrPongTimeout or an I/O
// error.
type Conn struct {
	// The fields every message touches come first, packed into a few
	// cache lines: with many connections a Conn is usually cold, or last
	// used on the other core, when its goroutine wakes for the next
	// message, and each line it touches costs a miss.
	readLock      ctxLock
	writeLock     ctxLock
	isDone        atomic.Bool // set just before closed is closed: cheaper to poll
	closeSent     atomic.Bool // a close frame was sent or is being sent
	inputBuffered atomic.Bool // the reader holds unread input: defer flushes
	flushPending  atomic.Bool
	pongPending   atomic.Bool // pongs wait for the write lock's holder
	client        bool
	version       uint8 // 13 or 8
	msgActive     bool  // a data message has started and not been fully read
	streaming     bool  // a Writer's message is between fragments; guarded by writeLock
	outWait       bool  // rawWrite waits for room in the socket; guarded by writeLock
	msgType       MessageType
	rr, rw        int     // unread bytes are rbuf[rr:rw]
	rbufp         *[]byte // rbuf's pool handle; nil while idle
	rbuf          []byte
	rawN          int   // rawRead's result
	rawErr        error // rawRead's error
	rawReadFn     func(fd uintptr) bool
	rawWriteFn    func(fd uintptr) bool
	wbufp         *[]byte
	wbuf          []byte // pending output; nil when empty
	out           []byte // what rawWrite has still to write; guarded by writeLock
	outErr        error  // rawWrite's error
	nc            net.Conn
	raw           syscall.RawConn // set for TCP and Unix sockets: idle reads hold no buffer
	ext           *extState       // nil without extensions
	opts          *ConnOptions    // with defaults; shared, see sharedOptions

	subprotocol string

	// closed is closed once the connection is closed: made by Done when
	// first asked for (most connections never are), under mu.
	closed    lazydone.Chan
	closeOnce sync.Once
	closeErr  error // a *closedError, set before isDone is

	mu     sync.Mutex     // guards closed, pings, flushTimer, deadlines and timers.Add
	timers sync.WaitGroup // timer callbacks at work on this connection

	// Read side, owned by the holder of readLock.
	frame     header
	remain    int64 // payload bytes of frame not yet read
	maskPos   int
	rules     frameRules
	msgSize   int64
	fragments int
	utf8      utf8State
	reader    messageReader
	rawMsg    rawMessageReader
	rwatch    watcher // a read's context

	// Write side. msgLock is held for a whole data message, writeLock for
	// each frame, so control frames can go between the fragments of a
	// streamed message (RFC 6455 §5.4).
	msgLock      ctxLock
	rng          *rand.ChaCha8 // masking keys, client side only
	closeWritten bool          // our close frame is written; guarded by writeLock
	pongs        [][]byte      // their payloads, oldest first; guarded by mu
	flushTimer   *time.Timer
	stream       *streamState  // made on the first streamed or encoded message; guarded by msgLock
	deadlines    *[2]time.Time // read and write, set through NetConn; nil until then; guarded by mu
	wwatch       watcher       // a write's context; guarded by writeLock
	sent         int64         // bytes handed to the socket; guarded by writeLock
	unsentMark   int64         // sent when the watched write began

	// Pings awaiting their pong, oldest first; guarded by mu.
	pings []*pendingPing
	ka    *keepalive // nil without Heartbeat
}

// streamState is what streamed and extension-encoded writes need; most
// connections never make one.
type streamState struct {
	writer   messageWriter
	emitter  frameEmitter
	encoders []io.WriteCloser // the encoding chain of the message being written
}

// streams returns the connection's streamState, making it on first use.
// Called with msgLock held.
func (c *Conn) streams() *streamState {
	if c.stream == nil {
		c.stream = &streamState{}
		c.stream.writer.c = c
		c.stream.emitter.c = c
	}
	return c.stream
}

// newConn wraps an established connection. buffered holds bytes read past
// the handshake, which belong to the first frames.
func newConn(nc net.Conn, buffered []byte, client bool, version int, subprotocol string, ext extensions.Negotiated, opts ConnOptions) *Conn {
	c := &Conn{
		nc:          nc,
		client:      client,
		version:     uint8(version),
		subprotocol: subprotocol,
		opts:        sharedOptions(opts.withDefaults()),
	}
	if len(ext.Sessions) > 0 {
		c.ext = &extState{header: extensions.Format(ext.Accepted), sessions: ext.Sessions}
	}
	c.rules.client = client
	c.rules.rsvOK = ext.RSV
	c.reader.c = c
	c.rawMsg.c = c
	c.rwatch.c = c
	c.wwatch.c = c
	if sc, ok := nc.(syscall.Conn); ok && haveRawIO {
		if _, isTCP := nc.(*net.TCPConn); isTCP {
			c.raw, _ = sc.SyscallConn()
		} else if _, isUnix := nc.(*net.UnixConn); isUnix {
			c.raw, _ = sc.SyscallConn()
		}
	}
	if c.raw != nil {
		c.rawReadFn = c.rawRead
		c.rawWriteFn = c.rawWrite
	}
	if client {
		var seed [32]byte
		_, _ = crand.Read(seed[:])
		c.rng = rand.NewChaCha8(seed)
	}
	if len(buffered) > 0 {
		size := max(c.opts.ReadBufferSize, len(buffered))
		c.rbufp = getBuf(size)
		c.rbuf = *c.rbufp
		c.rw = copy(c.rbuf, buffered)
	}
	c.mu.Lock() // keep-alive timers read c.ka when they close c
	c.ka = newKeepalive(c)
	c.mu.Unlock()
	return c
}

// Version returns the protocol version negotiated: 13 or 8.
func (c *Conn) Version() int { return int(c.version) }

// Subprotocol returns the subprotocol selected in the handshake, or "".
func (c *Conn) Subprotocol() string { return c.subprotocol }

// Extensions returns the Sec-WebSocket-Extensions value the handshake
// settled on, or "".
func (c *Conn) Extensions() string {
	if c.ext == nil {
		return ""
	}
	return c.ext.header
}

// extState is what a connection with extensions keeps for them; most
// connections have none, and these fields cost each 64 bytes.
type extState struct {
	header   string               // the Sec-WebSocket-Extensions value agreed
	sessions []extensions.Session // negotiated, in the order messages leave
	dec      io.Reader            // the decoded message, when an extension transforms it
	decSize  int64                // bytes read of dec
}

// sessions returns the negotiated extensions' sessions, or nil.
func (c *Conn) sessions() []extensions.Session {
	if c.ext == nil {
		return nil
	}
	return c.ext.sessions
}

// decoding reports whether the message being read passes through an
// extension that transforms it.
func (c *Conn) decoding() bool { return c.ext != nil && c.ext.dec != nil }

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr returns the remote network address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// err returns the error every call returns once the connection is closed.
func (c *Conn) err() error {
	<-c.Done()
	return c.closeErr
}

func (c *Conn) isClosed() bool { return c.isDone.Load() }

// closeConn closes the connection for good, once, recording cause, and
// returns the error calls return from now on.
func (c *Conn) closeConn(cause error) error {
	c.closeOnce.Do(func() {
		if ce, ok := cause.(*closedError); ok {
			cause = ce.cause
		}
		if s, ok := c.nc.(*streamConn); ok {
			// The stream ends when the HTTP/2 handler returns, which
			// it may do once Done is closed: by then nothing may
			// touch the stream, and Close waits for the write under
			// way.
			s.Close()
		}
		c.mu.Lock()
		c.closeErr = &closedError{cause: cause}
		c.isDone.Store(true)
		c.closed.Close()
		if c.flushTimer != nil {
			c.flushTimer.Stop()
		}
		pings := c.pings
		c.pings = nil
		ka := c.ka
		c.mu.Unlock()
		c.nc.Close()
		ka.stop()
		for _, s := range c.sessions() {
			s.Close()
		}
		for _, p := range pings {
			p.finish(0, c.closeErr)
		}
	})
	return c.closeErr
}

// enterTimer registers a timer callback's work, so that Close can wait
// for it; it reports false once the connection is closed.
func (c *Conn) enterTimer() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isClosed() {
		return false
	}
	c.timers.Add(1)
	return true
}

// lock takes l, giving up when ctx ends or the connection closes.
func (c *Conn) lock(ctx context.Context, l *ctxLock) error {
	if l.tryLock() {
		if !c.isClosed() {
			return nil
		}
		l.unlock()
		return c.err()
	}
	return c.lockSlow(ctx, l)
}

func (c *Conn) lockSlow(ctx context.Context, l *ctxLock) error {
	if err := l.lock(ctx, c.Done()); err != nil {
		if err == errLockClosed || c.isClosed() {
			return c.err()
		}
		op := "write"
		if l == &c.readLock {
			op = "read"
		}
		return ctxError(op, ctx)
	}
	if c.isClosed() {
		l.unlock()
		return c.err()
	}
	return nil
}

// aLongTimeAgo is a deadline in the past, used to interrupt blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// newMaskKey returns a fresh masking key (RFC 6455 §5.3). Called with
// writeLock held, which also guards rng.
func (c *Conn) newMaskKey() uint32 { return uint32(c.rng.Uint64()) }
