// Package wsecho is the WebSocket echo loop the benchmarks measure, as
// programs write one: read a message, write it back, with
// context.Background(). A Reader says how the loop reads: Read (a new
// slice per message) or ReadAppend (one buffer reused).
package wsecho

import (
	"context"
	"net/http"

	"github.com/realtime-go/realtime/websocket"
)

// A Reader is how one connection's echo loop reads a message.
type Reader func(ctx context.Context, c *websocket.Conn) (websocket.MessageType, []byte, error)

// Read returns the Reader that calls Read: a new slice per message.
func Read() Reader {
	return func(ctx context.Context, c *websocket.Conn) (websocket.MessageType, []byte, error) {
		return c.Read(ctx)
	}
}

// ReadAppend returns a Reader that calls ReadAppend into the buffer of
// the message before, which the loop has written back by then: the
// allocation-free Read.
func ReadAppend() Reader {
	var buf []byte
	return func(ctx context.Context, c *websocket.Conn) (websocket.MessageType, []byte, error) {
		typ, p, err := c.ReadAppend(ctx, buf[:0])
		buf = p
		return typ, p, err
	}
}

// Echo writes back every message read returns, until the peer goes away.
func Echo(c *websocket.Conn, read Reader) {
	ctx := context.Background()
	for {
		typ, p, err := read(ctx, c)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, p); err != nil {
			return
		}
	}
}

// Handler returns the echo handler with opts: websocket.Accept inside a
// net/http handler, then Echo with a Reader from newReader. It returns
// only once the connection failed or closed, as a WebSocket over HTTP/2
// needs: the stream ends with the handler.
func Handler(opts *websocket.AcceptOptions, newReader func() Reader) http.Handler {
	return handler(opts, newReader, false)
}

// HandlerGo is Handler that runs Echo on a fresh goroutine and returns
// at once on an HTTP/1.1 connection, which Accept took over: net/http
// then lets go of its own state for the connection and of the stack of
// the goroutine that parsed the request. Over HTTP/2 it behaves as
// Handler.
func HandlerGo(opts *websocket.AcceptOptions, newReader func() Reader) http.Handler {
	return handler(opts, newReader, true)
}

func handler(opts *websocket.AcceptOptions, newReader func() Reader, detach bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, opts)
		if err != nil {
			return
		}
		serve := func() {
			defer c.CloseNow()
			Echo(c, newReader())
		}
		if detach && r.ProtoMajor == 1 {
			go serve()
			return
		}
		serve()
	})
}
