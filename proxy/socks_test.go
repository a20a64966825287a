package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

// socksServer is a minimal SOCKS5 server (RFC 1928, RFC 1929) that
// records the destination as the client sent it.
type socksServer struct {
	*tcpServer
	user, pass string // required credentials, or none
	stall      bool   // read the greeting and never answer
	targets    chan string
}

func startSOCKS(t *testing.T, user, pass string, stall bool) *socksServer {
	s := &socksServer{user: user, pass: pass, stall: stall, targets: make(chan string, 16)}
	s.tcpServer = startTCP(t, s.handle)
	return s
}

func (s *socksServer) handle(srv *tcpServer, c net.Conn) {
	buf := make([]byte, 512)
	if _, err := io.ReadFull(c, buf[:2]); err != nil || buf[0] != 5 {
		return
	}
	methods := buf[2 : 2+int(buf[1])]
	if _, err := io.ReadFull(c, methods); err != nil {
		return
	}
	if s.stall {
		io.Copy(io.Discard, c)
		return
	}
	want := byte(0)
	if s.user != "" {
		want = 2
	}
	found := false
	for _, m := range methods {
		found = found || m == want
	}
	if !found {
		c.Write([]byte{5, 0xff})
		return
	}
	c.Write([]byte{5, want})
	if want == 2 {
		if _, err := io.ReadFull(c, buf[:2]); err != nil {
			return
		}
		u := make([]byte, buf[1])
		io.ReadFull(c, u)
		io.ReadFull(c, buf[:1])
		p := make([]byte, buf[0])
		io.ReadFull(c, p)
		if string(u) != s.user || string(p) != s.pass {
			c.Write([]byte{1, 1})
			return
		}
		c.Write([]byte{1, 0})
	}
	if _, err := io.ReadFull(c, buf[:4]); err != nil || buf[1] != 1 {
		return
	}
	var host string
	switch buf[3] {
	case 1:
		io.ReadFull(c, buf[:4])
		host = net.IP(buf[:4]).String()
	case 4:
		io.ReadFull(c, buf[:16])
		host = "[" + net.IP(buf[:16]).String() + "]"
	case 3:
		io.ReadFull(c, buf[:1])
		n := int(buf[0])
		io.ReadFull(c, buf[:n])
		host = "name:" + string(buf[:n])
	}
	io.ReadFull(c, buf[:2])
	port := strconv.Itoa(int(binary.BigEndian.Uint16(buf[:2])))
	select {
	case s.targets <- host + " " + port:
	default: // a test that dials many times reads none
	}
	dialHost := host
	if len(host) > 5 && host[:5] == "name:" {
		dialHost = host[5:]
	}
	if dialHost[0] == '[' {
		dialHost = dialHost[1 : len(dialHost)-1]
	}
	target, err := net.Dial("tcp", net.JoinHostPort(dialHost, port))
	if err != nil {
		c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0}) // connection refused
		return
	}
	if !srv.track(target) {
		return
	}
	c.Write([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 0})
	pipe(c, target)
}

func (s *socksServer) target(t *testing.T) string {
	t.Helper()
	select {
	case v := <-s.targets:
		return v
	case <-time.After(opTimeout):
		t.Fatal("SOCKS server saw no CONNECT")
		return ""
	}
}

func TestSOCKS5(t *testing.T) {
	echo := startEcho(t)
	_, port, _ := net.SplitHostPort(echo.addr)

	t.Run("socks5h-sends-name", func(t *testing.T) {
		s := startSOCKS(t, "", "", false)
		d := &Dialer{URL: mustURL(t, "socks5h://"+s.addr)}
		nc, err := d.DialContext(testCtx(t), "tcp", "localhost:"+port)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if got := s.target(t); got != "name:localhost "+port {
			t.Fatalf("server saw %q, want the name", got)
		}
		if _, ok := nc.(*net.TCPConn); !ok {
			t.Fatalf("tunnel is %T, want the *net.TCPConn itself", nc)
		}
		echoThrough(t, nc, "socks5h")
	})

	t.Run("socks5-resolves-here", func(t *testing.T) {
		s := startSOCKS(t, "", "", false)
		d := &Dialer{URL: mustURL(t, "socks5://"+s.addr)}
		nc, err := d.DialContext(testCtx(t), "tcp4", "localhost:"+port)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if got := s.target(t); got != "127.0.0.1 "+port {
			t.Fatalf("server saw %q, want the resolved address", got)
		}
		echoThrough(t, nc, "socks5")
	})

	t.Run("credentials", func(t *testing.T) {
		s := startSOCKS(t, "alice", "s3cret", false)
		d := &Dialer{URL: mustURL(t, "socks5h://alice:s3cret@"+s.addr)}
		nc, err := d.DialContext(testCtx(t), "tcp", echo.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		echoThrough(t, nc, "with credentials")
	})

	for _, tc := range []struct{ name, userinfo string }{
		{"wrong-password", "alice:nope@"},
		{"no-credentials", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startSOCKS(t, "alice", "s3cret", false)
			d := &Dialer{URL: mustURL(t, "socks5h://"+tc.userinfo+s.addr)}
			nc, err := d.DialContext(testCtx(t), "tcp", echo.addr)
			if err == nil {
				nc.Close()
				t.Fatal("DialContext succeeded")
			}
			var pe *Error
			if !errors.Is(err, ErrAuth) || !errors.As(err, &pe) || pe.Op != "socks5" {
				t.Fatalf("error %v, want a socks5 *Error matching ErrAuth", err)
			}
		})
	}

	t.Run("refused-target", func(t *testing.T) {
		s := startSOCKS(t, "", "", false)
		d := &Dialer{URL: mustURL(t, "socks5h://"+s.addr)}
		nc, err := d.DialContext(testCtx(t), "tcp", "127.0.0.1:1")
		if err == nil {
			nc.Close()
			t.Fatal("DialContext succeeded")
		}
		if errors.Is(err, ErrAuth) {
			t.Fatalf("refused target reported as an authentication failure: %v", err)
		}
	})

	t.Run("stall", func(t *testing.T) {
		s := startSOCKS(t, "", "", true)
		d := &Dialer{URL: mustURL(t, "socks5h://"+s.addr)}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		nc, err := d.DialContext(ctx, "tcp", echo.addr)
		if err == nil {
			nc.Close()
			t.Fatal("DialContext succeeded")
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error %v, want one matching context.DeadlineExceeded", err)
		}
	})
}
