package client

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/realtime-go/realtime/websocket"
)

// rawResponseServer answers every request on a connection with resp.
func rawResponseServer(t *testing.T, resp string) string {
	t.Helper()
	return acceptLoop(t, func(c net.Conn) {
		http.ReadRequest(bufio.NewReader(c))
		c.Write([]byte(resp))
		c.Close()
	}, func() {})
}

// Every error path names the package once, quotes at most a short prefix
// of what the peer sent, and after Close matches net.ErrClosed (issue
// 11, point 2).
func TestErrorTexts(t *testing.T) {
	noProxyEnv(t)
	huge := strings.Repeat("\xff", 40<<10)
	longStatus := rawResponseServer(t, "HTTP/1.1 500 "+huge+"\r\nContent-Length: 0\r\n\r\n")
	longType := rawResponseServer(t, "HTTP/1.1 200 OK\r\nContent-Type: "+huge+"\r\nContent-Length: 0\r\n\r\n")
	malformed := rawResponseServer(t, huge+"\r\n\r\n")
	longLocation := rawResponseServer(t, "HTTP/1.1 302 Found\r\nLocation: ftp://"+huge+"\r\nContent-Length: 0\r\n\r\n")
	largeHeader := rawResponseServer(t, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Large: "+strings.Repeat("x", maxResponseHeader)+"\r\n\r\n")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()

	stopped := func(url string) error {
		es := newES(t, &Dialer{}, url, nil)
		return finalErr(t, es)
	}
	closedES := func() error {
		es := newES(t, &Dialer{}, "http://"+refused+"/", nil)
		es.Close()
		_, err := es.Next(testCtx(t))
		return err
	}
	closedSocket := func(send bool) func() error {
		return func() error {
			s, err := (&Dialer{}).Socket("http://"+refused+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			if send {
				return s.Send(testCtx(t), "x")
			}
			_, err = s.Next(testCtx(t))
			return err
		}
	}
	dialRefused := func() error {
		_, _, err := Dial(testCtx(t), "ws://"+refused+"/", nil)
		return err
	}
	for _, tc := range []struct {
		name   string
		err    func() error
		closed bool
	}{
		{"invalid-url", func() error { _, err := (&Dialer{}).EventSource("http://[::1", nil); return err }, false},
		{"scheme", func() error { _, err := (&Dialer{}).EventSource("ftp://host/", nil); return err }, false},
		{"dial-refused", dialRefused, false},
		{"connect-timeout", func() error {
			return (&connectTimeoutError{timeout: 1, err: dialRefused()})
		}, false},
		{"long-status", func() error { return stopped("http://" + longStatus + "/") }, false},
		{"long-content-type", func() error { return stopped("http://" + longType + "/") }, false},
		{"malformed", func() error {
			retried := make(chan error, 1)
			newES(t, &Dialer{}, "http://"+malformed+"/", &EventSourceOptions{OnRetry: func(err error, _ time.Duration) {
				select {
				case retried <- err:
				default:
				}
			}})
			select {
			case err := <-retried:
				return err
			case <-time.After(opTimeout):
				return nil
			}
		}, false},
		{"long-location", func() error { return stopped("http://" + longLocation + "/") }, false},
		{"header-too-large", func() error { return stopped("http://" + largeHeader + "/") }, false},
		{"post-refused", func() error {
			return &SendError{Transport: TransportEventSource, StatusCode: 500, Err: statusError(500, huge)}
		}, false},
		{"stopped-by-server", func() error { return &stoppedError{cause: serverClosed(websocket.StatusPolicyViolation, "bye")} }, true},
		{"invalid-utf8", func() error { return errInvalidUTF8 }, false},
		{"eventsource-closed", closedES, true},
		{"socket-send-closed", closedSocket(true), true},
		{"socket-next-closed", closedSocket(false), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "client: ") || strings.Count(msg, "client: ") != 1 {
				t.Errorf("%q: want the prefix \"client: \" once", msg)
			}
			for _, w := range []string{"dial: dial", "write: write", "read: read"} {
				if strings.Contains(msg, w) {
					t.Errorf("%q repeats a step", msg)
				}
			}
			if len(msg) > 512 {
				t.Errorf("message of %d bytes: %.200q...", len(msg), msg)
			}
			if tc.closed && !errors.Is(err, net.ErrClosed) {
				t.Errorf("%q does not match net.ErrClosed", msg)
			}
		})
	}
}
