package websocket

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestDoneAndErr: Done is open and Err nil while the connection is;
// both report the end whichever side ends it, with the error every method
// returns.
func TestDoneAndErr(t *testing.T) {
	for _, client := range []bool{false, true} {
		t.Run(roleName(client), func(t *testing.T) {
			c, p := newTestConn(t, overTCP, client, ConnOptions{})
			select {
			case <-c.Done():
				t.Fatal("Done is closed on an open connection")
			default:
			}
			if err := c.Err(); err != nil {
				t.Fatalf("Err on an open connection = %v", err)
			}
			startReader(t, c)
			p.send(t, p.frame(true, 0, opClose, closeBody(StatusGoingAway, "bye")))
			p.expectClose(t, StatusGoingAway)
			p.finishClose(t)
			select {
			case <-c.Done():
			case <-time.After(waitLong):
				t.Fatal("Done not closed after the peer's close frame")
			}
			err := c.Err()
			var ce CloseError
			if !errors.Is(err, net.ErrClosed) || !errors.As(err, &ce) || ce.Code != StatusGoingAway {
				t.Fatalf("Err = %v, want net.ErrClosed wrapping CloseError 1001", err)
			}
			if werr := c.Write(context.Background(), MessageText, []byte("x")); werr.Error() != err.Error() {
				t.Errorf("Write after the end = %v, Err = %v: not the same error", werr, err)
			}
		})
	}
}

// TestCloseReadAnswersControlFrames: with CloseRead and no read loop, the
// peer's pings are answered, Ping gets its pong, and the peer's close
// frame completes the handshake and ends the returned context.
func TestCloseReadAnswersControlFrames(t *testing.T) {
	for _, client := range []bool{false, true} {
		t.Run(roleName(client), func(t *testing.T) {
			c, p := newTestConn(t, overTCP, client, ConnOptions{})
			ctx := c.CloseRead(context.Background())
			p.send(t, p.frame(true, 0, opPing, []byte("are you there")))
			p.expectFrame(t, opPong, []byte("are you there"))

			pinged := make(chan error, 1)
			go func() {
				_, err := c.Ping(context.Background(), []byte("me"))
				pinged <- err
			}()
			p.expectFrame(t, opPing, []byte("me"))
			p.send(t, p.frame(true, 0, opPong, []byte("me")))
			if err := <-pinged; err != nil {
				t.Fatalf("Ping under CloseRead: %v", err)
			}
			if err := c.Write(context.Background(), MessageText, []byte("still writing")); err != nil {
				t.Fatal(err)
			}
			p.expectFrame(t, opText, []byte("still writing"))

			p.send(t, p.frame(true, 0, opClose, closeBody(StatusNormalClosure, "")))
			p.expectClose(t, StatusNormalClosure)
			p.finishClose(t)
			select {
			case <-ctx.Done():
			case <-time.After(waitLong):
				t.Fatal("CloseRead's context not done after the close handshake")
			}
			<-c.Done()
		})
	}
}

// TestCloseReadDataMessage: a data message under CloseRead closes the
// connection with 1008.
func TestCloseReadDataMessage(t *testing.T) {
	c, p := newTestConn(t, overTCP, false, ConnOptions{})
	ctx := c.CloseRead(context.Background())
	p.send(t, p.frame(true, 0, opText, []byte("unexpected")))
	p.expectClose(t, StatusPolicyViolation)
	p.send(t, p.frame(true, 0, opClose, closeBody(StatusPolicyViolation, "")))
	select {
	case <-ctx.Done():
	case <-time.After(waitLong):
		t.Fatal("context not done")
	}
	<-c.Done()
}

// TestCloseReadContextEnds: when the caller's context ends, the
// connection is closed with 1001, and the goroutine ends (goleak).
func TestCloseReadContextEnds(t *testing.T) {
	c, p := newTestConn(t, overTCP, false, ConnOptions{})
	parent, cancel := context.WithCancel(context.Background())
	ctx := c.CloseRead(parent)
	cancel()
	p.expectClose(t, StatusGoingAway)
	p.send(t, p.frame(true, 0, opClose, closeBody(StatusGoingAway, "")))
	<-ctx.Done()
	<-c.Done()
}

// TestUnsolicitedPong: Pong sends a pong frame with the payload, on both
// sides (masked by a client), and refuses a payload over 125 bytes.
func TestUnsolicitedPong(t *testing.T) {
	for _, client := range []bool{false, true} {
		t.Run(roleName(client), func(t *testing.T) {
			c, p := newTestConn(t, overTCP, client, ConnOptions{})
			payload := []byte("heartbeat")
			if err := c.Pong(context.Background(), payload); err != nil {
				t.Fatal(err)
			}
			p.expectFrame(t, opPong, []byte("heartbeat"))
			if string(payload) != "heartbeat" {
				t.Errorf("Pong changed its payload to %q", payload)
			}
			if err := c.Pong(context.Background(), make([]byte, 126)); err == nil {
				t.Error("Pong of 126 bytes succeeded")
			}
			if err := c.Pong(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			p.expectFrame(t, opPong, nil)
			c.CloseNow()
			p.checkViolations(t)
		})
	}
}

func TestIsWebSocket(t *testing.T) {
	cases := []struct {
		method, connection, upgrade string
		want                        bool
	}{
		{"GET", "Upgrade", "websocket", true},
		{"GET", "keep-alive, Upgrade", "WebSocket", true},
		{"GET", "upgrade", "h2c, websocket", true},
		{"POST", "Upgrade", "websocket", false},
		{"GET", "", "websocket", false},
		{"GET", "Upgrade", "", false},
		{"GET", "Upgrade", "h2c", false},
		{"GET", "keep-alive", "websocket", false},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s %q %q", tc.method, tc.connection, tc.upgrade), func(t *testing.T) {
			r, _ := http.NewRequest(tc.method, "http://example.com/ws", nil)
			if tc.connection != "" {
				r.Header.Set("Connection", tc.connection)
			}
			if tc.upgrade != "" {
				r.Header.Set("Upgrade", tc.upgrade)
			}
			if got := IsWebSocket(r); got != tc.want {
				t.Errorf("IsWebSocket = %v, want %v", got, tc.want)
			}
		})
	}
}
