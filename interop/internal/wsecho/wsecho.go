// Package wsecho is the WebSocket echo server the benchmarks measure as
// most programs write one: websocket.Accept inside a net/http handler,
// then Read (a new slice per message) and Write it back, with
// context.Background().
package wsecho

import (
	"context"
	"net/http"

	"github.com/realtime-go/realtime/websocket"
)

// Handler returns the echo handler with opts. It returns only once the
// connection failed or closed, as a WebSocket over HTTP/2 needs: the
// stream ends with the handler.
func Handler(opts *websocket.AcceptOptions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := context.Background()
		for {
			typ, p, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, p); err != nil {
				return
			}
		}
	})
}
