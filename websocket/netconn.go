package websocket

import (
	"context"
	"io"
	"net"
	"sync"
	"time"
)

// NetConn returns a net.Conn that carries a byte stream over c, as Node
// ws's createWebSocketStream and faye's streams do: each Write is sent as
// one message of type typ, and Read returns the bytes of the messages
// received, of either type, one after another. Read reports io.EOF once
// the peer closes with StatusNormalClosure, StatusGoingAway or no status.
// Deadlines apply as on any net.Conn; a read deadline may interrupt a
// message and reading may go on, while a write deadline that interrupts
// a frame closes the connection. Close performs the closing handshake
// with StatusNormalClosure.
//
// As with c, Read must be called from one goroutine at a time; Write
// and the rest are safe for concurrent use.
func NetConn(c *Conn, typ MessageType) net.Conn {
	return &netConn{c: c, typ: typ}
}

type netConn struct {
	c   *Conn
	typ MessageType

	readMu sync.Mutex
	r      io.Reader // the message being read, or nil
}

func (n *netConn) Read(p []byte) (int, error) {
	n.readMu.Lock()
	defer n.readMu.Unlock()
	for {
		if n.r == nil {
			_, r, err := n.c.Reader(context.Background())
			if err != nil {
				switch CloseStatus(err) {
				case StatusNormalClosure, StatusGoingAway, StatusNoStatusRcvd:
					return 0, io.EOF
				}
				return 0, err
			}
			n.r = r
		}
		k, err := n.r.Read(p)
		if err == io.EOF {
			n.r = nil
			if k > 0 {
				return k, nil
			}
			continue
		}
		return k, err
	}
}

func (n *netConn) Write(p []byte) (int, error) {
	if err := n.c.Write(context.Background(), n.typ, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (n *netConn) Close() error { return n.c.Close(StatusNormalClosure, "") }

func (n *netConn) LocalAddr() net.Addr  { return n.c.LocalAddr() }
func (n *netConn) RemoteAddr() net.Addr { return n.c.RemoteAddr() }

func (n *netConn) SetDeadline(t time.Time) error {
	if err := n.SetReadDeadline(t); err != nil {
		return err
	}
	return n.SetWriteDeadline(t)
}

func (n *netConn) SetReadDeadline(t time.Time) error {
	c := n.c
	c.mu.Lock()
	c.deadlinesLocked()[0] = t
	c.mu.Unlock()
	return c.nc.SetReadDeadline(t)
}

func (n *netConn) SetWriteDeadline(t time.Time) error {
	c := n.c
	c.mu.Lock()
	c.deadlinesLocked()[1] = t
	c.mu.Unlock()
	return c.nc.SetWriteDeadline(t)
}
