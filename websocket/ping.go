package websocket

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"time"
)

// pendingPing is a ping waiting for its pong.
type pendingPing struct {
	payload []byte
	sent    time.Time
	done    chan struct{}              // closed by finish, for Ping
	fn      func(time.Duration, error) // called by finish, for PingFunc
	rtt     time.Duration
	err     error
}

func (p *pendingPing) finish(rtt time.Duration, err error) {
	p.rtt, p.err = rtt, err
	if p.fn != nil {
		p.fn(rtt, err)
		return
	}
	close(p.done)
}

// Ping sends a ping with payload (at most 125 bytes) and returns the
// round-trip time once the pong for this very ping arrives. Pings with
// equal payloads are answered in the order they were sent. A goroutine
// must be reading for the pong to be seen.
func (c *Conn) Ping(ctx context.Context, payload []byte) (time.Duration, error) {
	p := &pendingPing{done: make(chan struct{})}
	if err := c.sendPing(ctx, p, payload); err != nil {
		return 0, err
	}
	select {
	case <-p.done:
		return p.rtt, p.err
	case <-ctx.Done():
		if c.dropPing(p) {
			return 0, ctxError("ping", ctx)
		}
		<-p.done // finished meanwhile
		return p.rtt, p.err
	}
}

// PingFunc sends a ping with payload, as faye-websocket's ping(payload,
// callback) does, and returns without waiting. fn is called once: on the
// reading goroutine with the round-trip time when the matching pong
// arrives, or with an error if the connection closes first.
func (c *Conn) PingFunc(payload []byte, fn func(rtt time.Duration, err error)) error {
	return c.sendPing(context.Background(), &pendingPing{fn: fn}, payload)
}

func (c *Conn) sendPing(ctx context.Context, p *pendingPing, payload []byte) error {
	if len(payload) > maxControlPayload {
		return fmt.Errorf("websocket: ping payload of %d bytes exceeds %d", len(payload), maxControlPayload)
	}
	p.payload = append([]byte(nil), payload...)
	return c.writeLocked(ctx, func() error {
		c.mu.Lock()
		if c.isClosed() {
			c.mu.Unlock()
			return c.err()
		}
		p.sent = time.Now()
		c.pings = append(c.pings, p)
		c.mu.Unlock()
		err := c.writeFrame(true, 0, opPing, p.payload)
		if err == nil {
			err = c.flush()
		}
		if err != nil {
			c.dropPing(p)
		}
		return err
	})
}

// dropPing forgets p, reporting whether it was still waiting.
func (c *Conn) dropPing(p *pendingPing) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, q := range c.pings {
		if q == p {
			c.removePing(i)
			return true
		}
	}
	return false
}

// removePing removes the ping at i from c.pings. Called with mu held.
// An idle connection keeps neither the array nor, in its unused end, the
// last ping and its callback: a heartbeat would otherwise leave both on
// every connection it reached.
func (c *Conn) removePing(i int) {
	c.pings = slices.Delete(c.pings, i, i+1)
	if len(c.pings) == 0 {
		c.pings = nil
	}
}

// gotPong completes the oldest ping with the pong's payload. An
// unsolicited pong is ignored (RFC 6455 §5.5.3).
func (c *Conn) gotPong(payload []byte) {
	c.mu.Lock()
	for i, p := range c.pings {
		if bytes.Equal(p.payload, payload) {
			c.removePing(i)
			c.mu.Unlock()
			p.finish(time.Since(p.sent), nil)
			return
		}
	}
	c.mu.Unlock()
}

// keepalive pings the peer every Heartbeat and closes the connection
// when a pong is later than PongTimeout. One timer does both: it fires
// either to send the next ping or, while a ping waits, as its deadline.
type keepalive struct {
	c       *Conn
	mu      sync.Mutex
	timer   *time.Timer
	waiting bool
	seq     uint64
	stopped bool
}

// newKeepalive starts keep-alive pings, if c's options ask for them.
func newKeepalive(c *Conn) *keepalive {
	if c.opts.Heartbeat <= 0 {
		return nil
	}
	k := &keepalive{c: c}
	k.mu.Lock() // the timer may fire before AfterFunc returns
	k.timer = time.AfterFunc(c.opts.Heartbeat, k.fire)
	k.mu.Unlock()
	return k
}

func (k *keepalive) fire() {
	c := k.c
	if !c.enterTimer() {
		return
	}
	defer c.timers.Done()
	k.mu.Lock()
	if k.stopped {
		k.mu.Unlock()
		return
	}
	if k.waiting {
		k.stopped = true
		k.mu.Unlock()
		c.closeConn(fmt.Errorf("%w: none within %v", ErrPongTimeout, c.opts.PongTimeout))
		return
	}
	k.waiting = true
	k.seq++
	var payload [8]byte
	binary.BigEndian.PutUint64(payload[:], k.seq)
	k.timer.Reset(c.opts.PongTimeout)
	k.mu.Unlock()
	// The timer bounds the ping's write too: should the write still
	// wait (for the write lock, or for room in the socket) when the
	// timer fires, the close it makes ends the wait. A context with that
	// deadline per ping, its timer left in the runtime's timer heap until
	// the deadline, kept 0.2 KiB more of each connection for a while
	// after every heartbeat.
	c.sendPing(context.Background(), &pendingPing{fn: k.pong}, payload[:])
}

func (k *keepalive) pong(rtt time.Duration, err error) {
	if err != nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stopped {
		return
	}
	k.waiting = false
	k.timer.Reset(max(k.c.opts.Heartbeat-rtt, 0))
}

func (k *keepalive) stop() {
	if k == nil {
		return
	}
	k.mu.Lock()
	k.stopped = true
	k.timer.Stop()
	k.mu.Unlock()
}
