package websocket

import (
	"context"
	"errors"
	"time"
)

// Close performs the closing handshake (RFC 6455 §7): it sends a close
// frame with code and reason, waits for the peer's close frame and closes
// the connection, all within ConnOptions.CloseTimeout. If another
// goroutine is reading, that reader sees the peer's close frame; if not,
// Close reads and discards messages until it arrives. Close returns after
// the connection and its timers have stopped.
//
// The code must be one that may be sent (1000-1003, 1007-1014,
// 3000-4999) and the reason at most 123 bytes of UTF-8; otherwise Close
// returns an error and does nothing.
func (c *Conn) Close(code StatusCode, reason string) error {
	if err := checkClose(code, reason); err != nil {
		return err
	}
	defer c.timers.Wait()
	if c.isClosed() {
		return c.err()
	}
	timer := time.NewTimer(c.opts.CloseTimeout)
	defer timer.Stop()
	if !c.closeSent.CompareAndSwap(false, true) {
		// A close frame is already on its way (the peer's close is being
		// answered, or the connection is failing): wait for the end.
		select {
		case <-c.Done():
		case <-timer.C:
			c.closeConn(errCloseTimeout)
		}
		return c.err()
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.CloseTimeout)
	defer cancel()
	var payload [2 + maxCloseReasonSize]byte
	if err := c.sendClose(ctx, appendClosePayload(payload[:0], code, reason)); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = errCloseTimeout // waiting for the write lock
		}
		return c.closeConn(err)
	}
	// A reader, if any, sees the peer's close frame and closes the
	// connection; otherwise read until it comes.
	if c.readLock.lock(ctx, c.Done()) == nil {
		c.nc.SetReadDeadline(time.Now().Add(c.opts.CloseTimeout))
		for c.startMessage() == nil {
		}
		c.closeConn(errCloseTimeout) // before a waiting reader meets our deadline
		c.readLock.unlock()
	}
	c.closeConn(errCloseTimeout) // a no-op when the peer's close came
	<-c.Done()
	if errors.As(c.closeErr, new(CloseError)) {
		return nil
	}
	return c.closeErr
}

var errCloseTimeout = errors.New("websocket: close handshake timed out")

// CloseNow closes the connection without the closing handshake. It
// returns after the connection and its timers have stopped.
func (c *Conn) CloseNow() error {
	defer c.timers.Wait()
	if c.isClosed() {
		return c.err()
	}
	c.closeConn(nil)
	return nil
}

// sendClose writes a close frame, bypassing the check that refuses frames
// after one was sent.
func (c *Conn) sendClose(ctx context.Context, payload []byte) error {
	if err := c.lock(ctx, &c.writeLock); err != nil {
		return err
	}
	defer c.unlockWrite()
	if deadline, ok := ctx.Deadline(); ok {
		c.nc.SetWriteDeadline(deadline)
		defer c.nc.SetWriteDeadline(c.deadline(true))
	}
	// Pongs still queued answer pings that came before the close.
	c.writePongs(false)
	c.closeWritten = true
	if err := c.writeFrame(true, 0, opClose, payload); err != nil {
		return err
	}
	return c.flush()
}

// peerClosed answers the peer's close frame, unless ours went first, and
// closes the connection. A client lets the server close the TCP
// connection first (RFC 6455 §7.1.1).
func (c *Conn) peerClosed(ce CloseError) error {
	if c.closeSent.CompareAndSwap(false, true) {
		var payload []byte
		if ce.Code != StatusNoStatusRcvd {
			payload = appendClosePayload(make([]byte, 0, 2), ce.Code, "")
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.CloseTimeout)
		c.sendClose(ctx, payload)
		cancel()
	}
	if c.client {
		c.drain()
	}
	return c.closeConn(ce)
}

// fail fails the connection (RFC 6455 §7.1.7): it sends a close frame
// with the error's code, then lets the peer read it before the connection
// goes, so the peer learns why.
func (c *Conn) fail(err error) error {
	if c.isClosed() {
		return c.err()
	}
	code, reason := StatusProtocolError, ""
	var pe *ProtocolError
	if errors.As(err, &pe) {
		code, reason = pe.Code, pe.Reason
	}
	if len(reason) > maxCloseReasonSize {
		reason = reason[:maxCloseReasonSize]
	}
	if c.closeSent.CompareAndSwap(false, true) {
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.CloseTimeout)
		var payload [2 + maxCloseReasonSize]byte
		c.sendClose(ctx, appendClosePayload(payload[:0], code, reason))
		cancel()
	}
	c.drain()
	return c.closeConn(err)
}

// drain half-closes the connection and reads until the peer closes its
// side, or CloseTimeout passes, so that unread input does not turn our
// close into a reset that destroys the close frame in flight.
func (c *Conn) drain() {
	if s, ok := c.nc.(*streamConn); ok && s.closeWrite == nil {
		// A server's HTTP/2 stream cannot end its sending side until the
		// handler returns, so a peer that waits for that end would wait
		// for CloseTimeout. Nor is there a reset to fear: HTTP/2 delivers
		// the close frame before the reset of a stream whose request body
		// was left unread.
		return
	}
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	c.nc.SetReadDeadline(time.Now().Add(c.opts.CloseTimeout))
	var scratch [512]byte
	for {
		if _, err := c.nc.Read(scratch[:]); err != nil {
			return
		}
	}
}
