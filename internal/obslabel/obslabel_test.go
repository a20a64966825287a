package obslabel

import (
	"testing"

	"github.com/realtime-go/realtime/websocket"
)

func TestCloseCode(t *testing.T) {
	for c, want := range map[websocket.StatusCode]string{1000: "1000", 1013: "1013", 1015: "1015", 1016: "other", 2999: "other", 3000: "app", 4999: "app", 5000: "other", -1: "other"} {
		if got := CloseCode(c); got != want {
			t.Errorf("CloseCode(%d) = %q, want %q", c, got, want)
		}
	}
	if Protocol("") != "plain" || Protocol("realtime.v2") != "realtime.v2" || Heartbeat(true) != "pong" || Heartbeat(false) != "write" {
		t.Error("Protocol or Heartbeat")
	}
}
