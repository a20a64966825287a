package websocket

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// errorLog collects what a Server reports to OnError.
type errorLog struct {
	mu   sync.Mutex
	errs []error
	seen chan error
}

func newErrorLog() *errorLog { return &errorLog{seen: make(chan error, 100)} }

func (l *errorLog) add(_ net.Addr, err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
	select {
	case l.seen <- err:
	default:
	}
}

// startServer runs s on a loopback listener; the test ends by closing s
// and waiting for Serve to return ErrServerClosed.
func startServer(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			s.Close()
			t.Errorf("Shutdown = %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve = %v, want ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
}

// dialServer performs a client handshake with the server at addr.
func dialServer(t *testing.T, addr string, opts *ClientOptions) (*Conn, *http.Response, error) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	return NewClient(ctx, nc, &url.URL{Scheme: "ws", Host: addr, Path: "/"}, opts)
}

// echoHandler is a Server.Handler that echoes messages until the
// connection ends.
func echoHandler(c *Conn, _ *http.Request) { echo(c) }

func expectEcho(t *testing.T, c *Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := c.Write(ctx, MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	typ, p, err := c.Read(ctx)
	if err != nil || typ != MessageText || string(p) != msg {
		t.Fatalf("Read = %v %q %v, want the echo of %q", typ, p, err, msg)
	}
}

func TestServerEcho(t *testing.T) {
	addr := startServer(t, &Server{Handler: echoHandler, OnError: newErrorLog().add})
	for i := range 3 {
		c, _, err := dialServer(t, addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		expectEcho(t, c, fmt.Sprint("hello ", i))
		c.Close(StatusNormalClosure, "")
	}
}

// TestServerShutdown: Shutdown closes every connection with 1001, waits
// for the handlers, and Serve returns ErrServerClosed.
func TestServerShutdown(t *testing.T) {
	var handlers sync.WaitGroup
	var ended sync.Map
	s := &Server{Handler: func(c *Conn, r *http.Request) {
		defer handlers.Done()
		echoHandler(c, r)
		time.Sleep(50 * time.Millisecond) // Shutdown must wait for this
		ended.Store(r.URL.Query().Get("n"), true)
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	addr := ln.Addr().String()

	const n = 5
	var clients []*Conn
	handlers.Add(n)
	for i := range n {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c, _, err := NewClient(context.Background(), nc, &url.URL{Scheme: "ws", Host: addr, Path: "/", RawQuery: fmt.Sprint("n=", i)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		expectEcho(t, c, "before")
		clients = append(clients, c)
	}
	reads := make(chan error, n)
	for _, c := range clients {
		go func() {
			_, _, err := c.Read(context.Background())
			reads <- err
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	for i := range n {
		if _, ok := ended.Load(fmt.Sprint(i)); !ok {
			t.Fatalf("Shutdown returned before handler %d", i)
		}
	}
	for range n {
		if err := <-reads; CloseStatus(err) != StatusGoingAway {
			t.Fatalf("client Read = %v, want close status 1001", err)
		}
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve = %v, want ErrServerClosed", err)
	}
	if err := s.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown = %v, want ErrServerClosed", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Fatal("listener still open after Shutdown")
	}
}

// TestServerShutdownContext: Shutdown returns the context's error when a
// connection outlives it, and Close then ends the connection at once.
func TestServerShutdownContext(t *testing.T) {
	release := make(chan struct{})
	handlerStarted := make(chan struct{})
	handlerDone := make(chan struct{})
	s := &Server{
		// Long enough that only Close can end the connection in time.
		Options: &AcceptOptions{ConnOptions: ConnOptions{CloseTimeout: time.Minute}},
		Handler: func(c *Conn, r *http.Request) {
			defer close(handlerDone)
			close(handlerStarted)
			<-release // reads nothing, so the closing handshake cannot end
		},
	}
	addr := startServer(t, s)
	// The client reads nothing either.
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	io.WriteString(nc, testRequest)
	br := bufio.NewReader(nc)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v, %v", resp, err)
	}
	// The 101 reaches the client before the server counts the connection
	// as upgraded; a Shutdown in between cuts the handshake instead, with
	// nothing left to wait for.
	<-handlerStarted
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The close frame Shutdown sent, then the end of the connection.
	nc.SetReadDeadline(time.Now().Add(waitLong))
	if _, err := io.Copy(io.Discard, br); err != nil && !isReset(err) {
		t.Fatalf("connection not closed by Close: %v", err)
	}
	close(release)
	<-handlerDone
}

// TestServerHandshakeTimeout: a client that sends half a request is
// dropped after HandshakeTimeout, and OnError sees why.
func TestServerHandshakeTimeout(t *testing.T) {
	log := newErrorLog()
	addr := startServer(t, &Server{Handler: echoHandler, HandshakeTimeout: 100 * time.Millisecond, OnError: log.add})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := io.WriteString(nc, "GET / HTTP/1.1\r\nHost: x\r\nUpg"); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(waitLong))
	if n, err := nc.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("Read = %d, %v: connection not dropped", n, err)
	}
	select {
	case err := <-log.seen:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("OnError got %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(waitLong):
		t.Fatal("OnError not called")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestServerOnError: a refused handshake is reported with the peer's
// address and an error wrapping ErrBadHandshake, and the client gets the
// refusal.
func TestServerOnError(t *testing.T) {
	var mu sync.Mutex
	var remotes []net.Addr
	log := newErrorLog()
	addr := startServer(t, &Server{Handler: echoHandler, OnError: func(remote net.Addr, err error) {
		mu.Lock()
		remotes = append(remotes, remote)
		mu.Unlock()
		log.add(remote, err)
	}})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	io.WriteString(nc, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") // no Upgrade
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("status %d, want a refusal", resp.StatusCode)
	}
	select {
	case err := <-log.seen:
		if !errors.Is(err, ErrBadHandshake) {
			t.Fatalf("OnError got %v, want ErrBadHandshake", err)
		}
	case <-time.After(waitLong):
		t.Fatal("OnError not called")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(remotes) != 1 || remotes[0].String() != nc.LocalAddr().String() {
		t.Fatalf("OnError remote %v, want %v", remotes, nc.LocalAddr())
	}
}

// flakyListener fails Accept with err the first times.
type flakyListener struct {
	net.Listener
	mu    sync.Mutex
	fails int
	err   error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, l.err
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

// TestServerAcceptRetry: errors a busy server recovers from are reported
// and retried; others end Serve.
func TestServerAcceptRetry(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	log := newErrorLog()
	s := &Server{Handler: echoHandler, OnError: log.add}
	served := make(chan error, 1)
	go func() { served <- s.Serve(&flakyListener{Listener: ln, fails: 3, err: emfile}) }()
	c, _, err := dialServer(t, ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	expectEcho(t, c, "after EMFILE")
	c.CloseNow()
	log.mu.Lock()
	n := len(log.errs)
	for _, err := range log.errs {
		if !errors.Is(err, syscall.EMFILE) {
			t.Errorf("OnError got %v, want EMFILE", err)
		}
	}
	log.mu.Unlock()
	if n != 3 {
		t.Fatalf("OnError called %d times, want 3", n)
	}
	s.Close()
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve = %v, want ErrServerClosed", err)
	}

	// An error that is not worth retrying ends Serve.
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fatal := errors.New("listener broken")
	if err := (&Server{Handler: echoHandler}).Serve(&flakyListener{Listener: ln, fails: 1, err: fatal}); err != fatal {
		t.Fatalf("Serve = %v, want %v", err, fatal)
	}
}

// TestServerCloseIdle: Close and Shutdown of a server that never served
// return at once, and Serve then refuses to start.
func TestServerCloseIdle(t *testing.T) {
	s := &Server{Handler: echoHandler}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve = %v, want ErrServerClosed", err)
	}
}
