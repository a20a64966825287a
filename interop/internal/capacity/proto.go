package capacity

import (
	"fmt"
	"net/url"

	"github.com/realtime-go/realtime/interop/internal/rawframe"
)

// A proto is what the load client says and expects on one kind of
// socket, kept to what counting the broadcasts needs.
type proto struct {
	name string
	// request is the HTTP request written on connecting; nil for raw TCP,
	// where the server's first byte means accepted.
	request func(host string) []byte
	ws      bool // the response is a 101 and frames follow; else an event stream
	// afterOpen is a frame sent on the 101 (the peer's connect command).
	afterOpen []byte
	// readyAt is the messages (text frames, or events) after which the
	// socket counts as set up: the server's first message says it has
	// joined the socket (the realtime position or hello, centrifuge's
	// connect reply, socket.io's namespace reply). 0: at the 101.
	readyAt int
	// ping is a line that is the peer's application-level ping, answered
	// by the frame pong (WebSocket ping frames are answered anyway).
	ping, pong []byte
}

// maskedText is a client text frame of p with the all-zero masking key,
// which leaves the payload as it is.
func maskedText(p string) []byte {
	return rawframe.AppendMasked(nil, 0x81, [4]byte{}, []byte(p))
}

// wsRequest is a WebSocket upgrade request for path with the
// Sec-WebSocket-Protocol header proto when that is not empty.
func wsRequest(path, subprotocol string) func(string) []byte {
	return func(host string) []byte {
		r := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n", path, host)
		if subprotocol != "" {
			r += "Sec-WebSocket-Protocol: " + subprotocol + "\r\n"
		}
		return []byte(r + "\r\n")
	}
}

func esRequest(path string) func(string) []byte {
	return func(host string) []byte {
		return fmt.Appendf(nil, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", path, host)
	}
}

// The kinds of socket, by name.
var protos = map[string]*proto{
	// realtime.Handler, protocol realtime.v1 (realtime.Subprotocol).
	"rt-ws": {name: "rt-ws", request: wsRequest("/rt", "realtime.v1"), ws: true, readyAt: 1},
	"rt-es": {name: "rt-es", request: esRequest("/rt"), readyAt: 1},
	// centrifuge's JSON protocol: a connect command; pings are "{}".
	"cf-ws": {name: "cf-ws", request: wsRequest("/connection/websocket", ""), ws: true,
		afterOpen: maskedText(`{"id":1,"connect":{}}`), readyAt: 1, ping: []byte("{}"), pong: maskedText("{}")},
	"cf-sse": {name: "cf-sse", request: esRequest("/connection/sse?cf_connect=" + url.QueryEscape(`{"id":1,"connect":{}}`)), readyAt: 1},
	// socket.io 4 (engine.io 4) over WebSocket only: the open packet "0{...}",
	// then "40" connects the default namespace, answered "40{...}"; pings
	// are "2", pongs "3"; a broadcast is 42["m","..."].
	"sio-ws": {name: "sio-ws", request: wsRequest("/socket.io/?EIO=4&transport=websocket", ""), ws: true,
		afterOpen: maskedText("40"), readyAt: 2, ping: []byte("2"), pong: maskedText("3")},
	"raw-ws": {name: "raw-ws", request: wsRequest("/", ""), ws: true},
	// The driver rows send nothing before the first broadcast: ready at
	// the 101 (or the 200); the run waits until the server counts every
	// socket in its broadcast set before it publishes.
	"drv-ws":  {name: "drv-ws", request: wsRequest("/", ""), ws: true},
	"drv-es":  {name: "drv-es", request: esRequest("/es")},
	"raw-tcp": {name: "raw-tcp"},
}
