package proxy

import (
	"context"
	"net"
	"strings"
	"testing"
)

// Every error path names the package once, does not repeat its step, and
// quotes at most a short prefix of the proxy's answer (issue 11, point 2).
func TestErrorTexts(t *testing.T) {
	echo := startEcho(t)
	huge := strings.Repeat("\xff", 8<<10)
	longStatus := startFakeProxy(t, reply("HTTP/1.1 403 "+huge+"\r\nContent-Length: 0\r\n\r\n"))
	malformed := startFakeProxy(t, reply(huge+"\r\n\r\n"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	socks := startSOCKS(t, "u", "p", false)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name, proxy string
		ctx         context.Context
	}{
		{"dial-refused", "http://" + refused, testCtx(t)},
		{"long-status", "http://" + longStatus.addr, testCtx(t)},
		{"malformed", "http://" + malformed.addr, testCtx(t)},
		{"socks-auth", "socks5h://u:wrong@" + socks.addr, testCtx(t)},
		{"canceled", "http://" + longStatus.addr, canceled},
		{"scheme", "ftp://" + refused, testCtx(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Dialer{URL: mustURL(t, tc.proxy)}
			nc, err := d.DialContext(tc.ctx, "tcp", echo.addr)
			if err == nil {
				nc.Close()
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "proxy: ") || strings.Count(msg, "proxy: ") != 1 {
				t.Errorf("%q: want the prefix \"proxy: \" once", msg)
			}
			for _, step := range []string{"dial", "connect", "tls", "socks5"} {
				if strings.Count(msg, step+" ") > 1 {
					t.Errorf("%q names %q twice", msg, step)
				}
			}
			if len(msg) > 512 {
				t.Errorf("message of %d bytes: %.200q...", len(msg), msg)
			}
		})
	}
}
