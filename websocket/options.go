package websocket

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Defaults for ConnOptions fields left zero.
const (
	DefaultMaxMessageSize = 1<<26 - 1 // faye-websocket's maxLength
	DefaultMaxFragments   = 1 << 17   // Autobahn 9.3/9.4 send 65,536 fragments per message
	DefaultCloseTimeout   = 5 * time.Second
	defaultBufferSize     = 4096
)

// ConnOptions tunes an established connection; AcceptOptions and
// ClientOptions embed it. The zero value gives the documented defaults.
type ConnOptions struct {
	// MaxMessageSize bounds a received message, summed over its
	// fragments (after decompression, when an extension compresses).
	// A larger message fails the connection with StatusMessageTooBig:
	// at the header of the frame that would pass the limit, before that
	// frame's payload is read, or, for a compressed message, as soon as
	// the decompressed bytes pass it. The buffer Read fills therefore
	// never grows beyond MaxMessageSize. 0 means DefaultMaxMessageSize; a
	// negative value removes the limit, which lets a peer make the process
	// allocate without bound.
	MaxMessageSize int64

	// MaxFragments bounds the frames of one received message, so empty
	// fragments cannot keep a reader busy forever. 0 means
	// DefaultMaxFragments; a negative value removes the bound.
	MaxFragments int

	// Heartbeat, when positive, is how often the connection probes the
	// peer: a ping goes out every Heartbeat and must be answered within
	// PongTimeout. A goroutine must be reading for the
	// pongs to be seen. Unlike packages realtime and eventsource, this
	// package has no default heartbeat: 0, like a negative value, means
	// no pings.
	Heartbeat time.Duration

	// PongTimeout is how long a heartbeat ping may wait for its pong.
	// When it passes, the connection is closed and reads fail with an
	// error wrapping ErrPongTimeout. 0 or a negative value means
	// Heartbeat.
	PongTimeout time.Duration

	// CloseTimeout bounds the closing handshake: writing the close frame
	// and waiting for the peer's. 0 means DefaultCloseTimeout. A closing
	// handshake is always bounded, so a negative value means the default
	// too (the one exception to the module's "negative is off" rule).
	CloseTimeout time.Duration

	// OnPing and OnPong, when set, are called on the reading goroutine
	// with the payload of each ping or pong received. The payload is only
	// valid during the call. A pong is sent for every ping whether or not
	// OnPing is set.
	OnPing func(payload []byte)
	OnPong func(payload []byte)

	// ReadBufferSize and WriteBufferSize size the I/O buffers. A
	// connection holds them only while it has data in flight; an idle
	// TCP connection holds none. They are sizes, not limits: 0 or a
	// negative value means 4096, and a size is rounded up to its pool's
	// size class (by less than half) so buffers of every size are reused.
	ReadBufferSize  int
	WriteBufferSize int
}

func (o ConnOptions) withDefaults() ConnOptions {
	if o.MaxMessageSize == 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	} else if o.MaxMessageSize < 0 {
		o.MaxMessageSize = 1<<63 - 1
	}
	if o.MaxFragments == 0 {
		o.MaxFragments = DefaultMaxFragments
	} else if o.MaxFragments < 0 {
		o.MaxFragments = math.MaxInt
	}
	if o.Heartbeat > 0 && o.PongTimeout <= 0 {
		o.PongTimeout = o.Heartbeat
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = DefaultCloseTimeout
	}
	if o.ReadBufferSize <= 0 {
		o.ReadBufferSize = defaultBufferSize
	}
	if o.ReadBufferSize < maxHeaderSize+maxControlPayload {
		o.ReadBufferSize = maxHeaderSize + maxControlPayload
	}
	if o.WriteBufferSize <= 0 {
		o.WriteBufferSize = defaultBufferSize
	}
	if o.WriteBufferSize < maxHeaderSize+maxControlPayload {
		o.WriteBufferSize = maxHeaderSize + maxControlPayload
	}
	return o
}

// sharedOptions returns o, with its defaults, for a Conn to keep: the
// same *ConnOptions for equal options, so that the connections of a
// server share one rather than keep 72 bytes each. Options with OnPing
// or OnPong, functions that cannot be compared, get one of their own, as
// do all once sharedMax different ones are shared.
func sharedOptions(o ConnOptions) *ConnOptions {
	if o.OnPing != nil || o.OnPong != nil {
		return copyOptions(o)
	}
	k := optionsKey{o.MaxMessageSize, o.MaxFragments, o.Heartbeat, o.PongTimeout, o.CloseTimeout, o.ReadBufferSize, o.WriteBufferSize}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if p := shared.m[k]; p != nil {
		return p
	}
	p := copyOptions(o)
	if len(shared.m) < sharedMax {
		if shared.m == nil {
			shared.m = make(map[optionsKey]*ConnOptions)
		}
		shared.m[k] = p
	}
	return p
}

// copyOptions returns a copy of o on the heap: o itself does not escape,
// so that sharedOptions allocates nothing when it shares.
func copyOptions(o ConnOptions) *ConnOptions {
	p := new(ConnOptions)
	*p = o
	return p
}

// optionsKey is the comparable fields of ConnOptions: all but the
// functions (TestOptionsKey checks that none is missing).
type optionsKey struct {
	maxMessageSize                       int64
	maxFragments                         int
	heartbeat, pongTimeout, closeTimeout time.Duration
	readBufferSize, writeBufferSize      int
}

// sharedMax bounds the options sharedOptions keeps: a program uses a
// few.
const sharedMax = 64

var shared struct {
	mu sync.Mutex
	m  map[optionsKey]*ConnOptions
}

// Clone returns a deep copy of o: its slices and header are new, so later
// changes to either do not show in the other. Extensions and functions
// are shared. A nil o gives the zero value.
func (o *AcceptOptions) Clone() *AcceptOptions {
	if o == nil {
		return &AcceptOptions{}
	}
	c := *o
	c.Subprotocols = slices.Clone(o.Subprotocols)
	c.OriginPatterns = slices.Clone(o.OriginPatterns)
	c.Header = o.Header.Clone()
	c.Extensions = slices.Clone(o.Extensions)
	return &c
}

// Clone returns a deep copy of o: its slices and header are new, so later
// changes to either do not show in the other. Extensions and functions
// are shared. A nil o gives the zero value.
func (o *ClientOptions) Clone() *ClientOptions {
	if o == nil {
		return &ClientOptions{}
	}
	c := *o
	c.Header = o.Header.Clone()
	c.Subprotocols = slices.Clone(o.Subprotocols)
	c.Extensions = slices.Clone(o.Extensions)
	return &c
}
