// Package obslabel names the values of the labels (attributes) the
// observer modules share, so that promobserver and otelobserver keep
// them the same, and bounded.
package obslabel

import (
	"strconv"

	"github.com/realtime-go/realtime/websocket"
)

// CloseCode is the label of a close code: its number for the codes of
// RFC 6455 and its registry (1000-1015), "app" for those applications
// choose (3000-4999), "other" for the rest, so that a peer cannot make
// a series per code.
func CloseCode(c websocket.StatusCode) string {
	switch {
	case c >= 3000 && c <= 4999:
		return "app"
	case c >= 1000 && c <= 1015:
		return strconv.Itoa(int(c))
	}
	return "other"
}

// Protocol is the label of a wire protocol: "plain" for a WebSocket
// without a subprotocol.
func Protocol(p string) string {
	if p == "" {
		return "plain"
	}
	return p
}

// Heartbeat is the kind of a missed heartbeat: "pong" or "write".
func Heartbeat(pong bool) string {
	if pong {
		return "pong"
	}
	return "write"
}
