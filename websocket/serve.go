package websocket

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// ServeHandshakeTimeout bounds each opening handshake Serve performs.
const ServeHandshakeTimeout = 10 * time.Second

// Serve accepts connections on ln, performs the server handshake on each
// with AcceptConn, and runs handler for each WebSocket connection, which
// is closed when handler returns. It returns when ln.Accept fails, as
// when ln is closed; handlers still running go on.
//
// Like http.Serve, Serve runs every connection on a goroutine of its own
// (it is the only function in this package that starts goroutines). The
// handler gets a fresh goroutine once the handshake is done, because
// parsing the request grows a goroutine's stack beyond what a connection
// waiting for input needs, and the runtime does not shrink it back: an
// idle connection then costs a 2 KiB stack instead of 4 KiB or more.
func Serve(ln net.Listener, opts *AcceptOptions, handler func(c *Conn, r *http.Request)) error {
	for {
		nc, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), ServeHandshakeTimeout)
			c, r, err := AcceptConn(ctx, nc, opts)
			cancel()
			if err != nil {
				return
			}
			go func() {
				defer c.CloseNow()
				handler(c, r)
			}()
		}()
	}
}
