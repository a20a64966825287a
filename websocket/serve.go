package websocket

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// DefaultHandshakeTimeout bounds each opening handshake a Server performs
// when Server.HandshakeTimeout is 0.
const DefaultHandshakeTimeout = 10 * time.Second

// ErrServerClosed is returned by Server.Serve after Shutdown or Close.
var ErrServerClosed = errors.New("websocket: server closed")

// Server serves WebSocket connections on net.Listeners without net/http:
// it performs the opening handshake on each connection it accepts, with
// AcceptConn, and runs Handler for each WebSocket connection. The zero
// value is ready to use once Handler is set. A Server must not be copied
// after first use. Serve copies Options; the other fields must not change
// once Serve is called.
//
// Like http.Server, a Server runs every connection on a goroutine of its
// own. The handler gets a fresh goroutine once the handshake is done,
// because parsing the request grows a goroutine's stack beyond what a
// connection waiting for input needs, and the runtime does not shrink it
// back: an idle connection then costs a 2 KiB stack instead of 4 KiB or
// more.
type Server struct {
	// Options configures the handshake and the connections. Serve copies
	// them deeply on its first call; later changes do not affect it. Nil
	// means the zero value.
	Options *AcceptOptions

	// Handler runs on its own goroutine for each WebSocket connection,
	// which is closed (without the closing handshake) when Handler
	// returns. It must be set.
	Handler func(c *Conn, r *http.Request)

	// HandshakeTimeout bounds the opening handshake of each connection,
	// from its acceptance to the 101 response, so that a client that
	// sends its request slowly or not at all cannot hold a descriptor.
	// 0 means DefaultHandshakeTimeout; a negative value means no bound.
	HandshakeTimeout time.Duration

	// OnError, when set, is called with each error that ends a connection
	// before Handler runs (a refused, failed or timed-out handshake;
	// remote is the peer's address) and with each error of the listener's
	// Accept that Serve retries, such as running out of file descriptors
	// (remote is nil). It may be called from many goroutines at once. Nil
	// logs the errors with the log package's standard logger.
	OnError func(remote net.Addr, err error)

	once sync.Once
	opts *AcceptOptions // Options, copied on first use

	mu        sync.Mutex
	done      chan struct{} // closed by Shutdown and Close
	goingAway bool          // Shutdown has sent the connections 1001
	listeners map[net.Listener]struct{}
	raw       map[net.Conn]struct{} // in the opening handshake
	conns     map[*Conn]struct{}    // upgraded, handler running
	live      int                   // goroutines the server started
	idle      chan struct{}         // made when the server starts closing (Shutdown or Close); closed when live then drops to 0
}

// Serve serves WebSocket connections on ln with a Server of opts and
// handler; see Server.Serve. It returns when ln.Accept fails with an
// error that is not worth retrying, as when ln is closed.
func Serve(ln net.Listener, opts *AcceptOptions, handler func(c *Conn, r *http.Request)) error {
	return (&Server{Options: opts, Handler: handler}).Serve(ln)
}

// Serve accepts connections on ln and serves each on a goroutine of its
// own until Shutdown or Close is called or ln.Accept fails with an error
// that is not worth retrying. Errors that a busy server meets and
// recovers from, such as running out of file descriptors (EMFILE,
// ENFILE) or a connection aborted before it was accepted, are reported
// to OnError and retried after a delay that starts at 5 ms and doubles up
// to 1 s, as http.Server does. Serve always returns a non-nil error and
// closes ln; after Shutdown or Close the error is ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	if s.Handler == nil {
		ln.Close()
		return errors.New("websocket: Server.Handler is nil")
	}
	s.once.Do(func() { s.opts = s.Options.Clone() })
	ln = &onceCloseListener{Listener: ln}
	defer ln.Close()
	if !s.track(ln, true) {
		return ErrServerClosed
	}
	defer s.track(ln, false)

	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			if !retryable(err) {
				return err
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.report(nil, fmt.Errorf("websocket: %w (retrying in %v)", err, delay))
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.doneChan():
				t.Stop()
			}
			continue
		}
		delay = 0
		if !s.start(nc) {
			nc.Close()
			return ErrServerClosed
		}
		go s.handshake(nc)
	}
}

// retryable reports whether an Accept error is one a server recovers
// from: a timeout, running out of descriptors or memory, or a connection
// the peer ended before it was accepted.
func retryable(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, errno := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN, syscall.EPROTO, syscall.EPERM} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// handshake upgrades nc and runs the handler on a fresh goroutine.
func (s *Server) handshake(nc net.Conn) {
	ctx := context.Background()
	if t := s.handshakeTimeout(); t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	c, r, err := acceptConn(ctx, nc, s.opts)
	if err != nil {
		// A handshake cut short by Shutdown or Close is no error.
		if !s.forget(nc, nil) {
			s.report(nc.RemoteAddr(), err)
		}
		return
	}
	if !s.upgraded(nc, c) {
		// Shutdown or Close began during the handshake and closed nc.
		c.CloseNow()
		s.forget(nil, nil)
		return
	}
	go func() {
		defer s.forget(nil, c)
		defer c.CloseNow()
		s.Handler(c, r)
	}()
}

func (s *Server) handshakeTimeout() time.Duration {
	if s.HandshakeTimeout == 0 {
		return DefaultHandshakeTimeout
	}
	return s.HandshakeTimeout
}

func (s *Server) report(remote net.Addr, err error) {
	if s.OnError != nil {
		s.OnError(remote, err)
		return
	}
	if remote != nil {
		log.Printf("%v (remote %v)", err, remote)
	} else {
		log.Print(err)
	}
}

// shutdownReason is the reason of the close frame Shutdown sends.
const shutdownReason = "server shutting down"

// Shutdown stops the server gracefully: it closes the listeners, so Serve
// returns ErrServerClosed, drops connections still in their opening
// handshake, closes every WebSocket connection with StatusGoingAway
// (performing the closing handshake, each within its
// ConnOptions.CloseTimeout) and waits for the handlers to return. If ctx
// ends first, Shutdown returns its error; Close then closes what is left
// at once.
func (s *Server) Shutdown(ctx context.Context) error {
	conns, err := s.closeAll()
	if !s.goingAway {
		s.goingAway = true
		for _, c := range conns {
			s.live++ // closeAll left s.mu locked
			go func() {
				defer s.forget(nil, nil)
				c.Close(StatusGoingAway, shutdownReason)
			}()
		}
	}
	idle := s.idle
	s.mu.Unlock()
	select {
	case <-idle:
	case <-ctx.Done():
		return ctx.Err()
	}
	return err
}

// Close closes the listeners and every connection at once, without the
// closing handshake, so Serve returns ErrServerClosed. It does not wait
// for the handlers to return.
func (s *Server) Close() error {
	conns, err := s.closeAll()
	s.mu.Unlock()
	for _, c := range conns {
		c.CloseNow()
	}
	return err
}

// closeAll marks the server closing, closes its listeners and raw
// connections, and returns its WebSocket connections, with s.mu held.
func (s *Server) closeAll() ([]*Conn, error) {
	s.mu.Lock()
	if s.idle == nil {
		if s.done == nil {
			s.done = make(chan struct{})
		}
		close(s.done)
		s.idle = make(chan struct{})
		if s.live == 0 {
			close(s.idle)
		}
	}
	var err error
	for ln := range s.listeners {
		if cerr := ln.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	for nc := range s.raw {
		nc.Close()
	}
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns, err
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.idle != nil
}

func (s *Server) doneChan() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		s.done = make(chan struct{})
	}
	return s.done
}

// track adds or removes a listener; it reports false, adding nothing,
// once the server is closing.
func (s *Server) track(ln net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.listeners, ln)
		return true
	}
	if s.idle != nil {
		return false
	}
	if s.listeners == nil {
		s.listeners = make(map[net.Listener]struct{})
	}
	s.listeners[ln] = struct{}{}
	return true
}

// start counts the goroutine about to serve nc; it reports false once
// the server is closing.
func (s *Server) start(nc net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idle != nil {
		return false
	}
	if s.raw == nil {
		s.raw = make(map[net.Conn]struct{})
		s.conns = make(map[*Conn]struct{})
	}
	s.raw[nc] = struct{}{}
	s.live++
	return true
}

// upgraded moves nc, now c, from the handshaking connections to the
// upgraded ones; it reports false once the server is closing.
func (s *Server) upgraded(nc net.Conn, c *Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.raw, nc)
	if s.idle != nil {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// forget ends a goroutine the server started, removing the connection
// it served, if any. It reports whether the server is closing.
func (s *Server) forget(nc net.Conn, c *Conn) (closing bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if nc != nil {
		delete(s.raw, nc)
	}
	if c != nil {
		delete(s.conns, c)
	}
	s.live--
	if s.live == 0 && s.idle != nil {
		close(s.idle)
	}
	return s.idle != nil
}

// onceCloseListener lets both Serve and Shutdown close the listener.
type onceCloseListener struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *onceCloseListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}
