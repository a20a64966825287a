package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/realtime-go/realtime/internal/testcert"
)

// opTimeout bounds one step of a test; it is generous because the tests
// share two cores with other builds.
const opTimeout = 30 * time.Second

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	t.Cleanup(cancel)
	return ctx
}

// tcpServer runs handle on its own goroutine for every accepted
// connection. At cleanup it closes the listener and every connection it
// accepted or registered, and waits for the handlers.
type tcpServer struct {
	ln     net.Listener
	addr   string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func startTCP(t *testing.T, handle func(s *tcpServer, c net.Conn)) *tcpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, ln, handle)
}

func serve(t *testing.T, ln net.Listener, handle func(s *tcpServer, c net.Conn)) *tcpServer {
	s := &tcpServer{ln: ln, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !s.track(c) {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				handle(s, c)
			}()
		}
	}()
	t.Cleanup(s.close)
	return s
}

// track registers c to be closed at cleanup; it reports false (and
// closes c) when cleanup has begun.
func (s *tcpServer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *tcpServer) close() {
	s.ln.Close()
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// startEcho starts a TCP echo server.
func startEcho(t *testing.T) *tcpServer {
	return startTCP(t, func(_ *tcpServer, c net.Conn) { io.Copy(c, c) })
}

// pipe copies both ways between a and b until either side ends.
func pipe(a, b io.ReadWriteCloser) {
	done := make(chan struct{}, 2)
	go func() { io.Copy(a, b); a.Close(); done <- struct{}{} }()
	go func() { io.Copy(b, a); b.Close(); done <- struct{}{} }()
	<-done
	<-done
}

// testCert returns a self-signed certificate for 127.0.0.1, localhost
// and proxy.test, and a pool that trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	c, err := testcert.New("proxy.test")
	if err != nil {
		t.Fatal(err)
	}
	return c.TLS, c.Pool
}

// echoThrough writes a message on nc and checks that it comes back.
func echoThrough(t *testing.T, nc net.Conn, msg string) {
	t.Helper()
	nc.SetDeadline(time.Now().Add(opTimeout))
	defer nc.SetDeadline(time.Time{})
	if _, err := io.WriteString(nc, msg); err != nil {
		t.Fatalf("write through tunnel: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(nc, got); err != nil {
		t.Fatalf("read through tunnel: %v", err)
	}
	if string(got) != msg {
		t.Fatalf("tunnel echoed %q, want %q", got, msg)
	}
}
