package websocket

import (
	"context"
	"fmt"
	"net/http"
)

// Done returns a channel that is closed once the connection is closed,
// for whatever reason: by either side, a failure, a heartbeat without
// its pong. A goroutine that only writes can select on it, as on a
// context's Done, to learn that its writes have become pointless.
func (c *Conn) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed.Get(c.isDone.Load())
}

// Err returns nil while the connection is open; once Done is closed, it
// returns the error every method returns from then on, which matches
// net.ErrClosed and unwraps to the cause (a CloseError from the peer, a
// *ProtocolError, ErrPongTimeout, an I/O error, or nil inside when this
// side closed).
func (c *Conn) Err() error {
	if !c.isClosed() {
		return nil
	}
	return c.err()
}

// CloseRead is for a connection the application only writes to: it
// starts a goroutine that reads, so that control frames keep flowing
// without a read loop in the application. Pings are answered, pongs
// reach Ping, PingFunc and the heartbeat, and the peer's close frame
// completes the closing handshake (so Close works as usual). A data
// message from the peer, which the application said it does not expect,
// closes the connection with 1008 (policy violation); so does the end of
// ctx, with 1001 (going away).
//
// The returned context is done once the connection is closed, or when
// ctx is. The goroutine ends with the connection. Read and Reader must
// not be called after CloseRead.
func (c *Conn) CloseRead(ctx context.Context) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		defer cancel()
		for {
			_, _, err := c.Reader(ctx)
			switch {
			case err == nil:
				c.Close(StatusPolicyViolation, "unexpected data message")
				return
			case c.isClosed():
				return
			case ctx.Err() != nil:
				c.Close(StatusGoingAway, "")
				return
			}
		}
	}()
	return ctx
}

// Pong sends an unsolicited pong with payload (at most 125 bytes): a
// one-way heartbeat, which the peer does not answer (RFC 6455 §5.5.3).
// Pongs to the peer's pings are sent by the reading goroutine without
// this call.
func (c *Conn) Pong(ctx context.Context, payload []byte) error {
	if len(payload) > maxControlPayload {
		return fmt.Errorf("websocket: pong payload of %d bytes exceeds %d", len(payload), maxControlPayload)
	}
	return c.writeLocked(ctx, func() error {
		if err := c.writeFrame(true, 0, opPong, payload); err != nil {
			return err
		}
		return c.flush()
	})
}

// IsWebSocket reports whether r asks for a WebSocket: a GET whose
// Connection header has the token "upgrade" and whose Upgrade header has
// "websocket" (RFC 6455 §4.2.1), or an HTTP/2 CONNECT whose :protocol is
// "websocket" (RFC 8441 §4), so that a handler that serves other
// requests on the same URL can tell them apart before calling Accept.
// It does not check the rest of the handshake: Accept does, and answers
// a malformed one with its HTTP error.
func IsWebSocket(r *http.Request) bool {
	return r.Method == http.MethodGet && hasToken(r.Header, "Connection", "upgrade") && hasToken(r.Header, "Upgrade", "websocket") ||
		isExtendedConnect(r)
}
