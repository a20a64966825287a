package realtime

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/realtime-go/realtime/eventsource"
	"github.com/realtime-go/realtime/websocket"
)

// Every error of the package's own paths reads "realtime: ..." with the
// prefix once, matches its sentinel with errors.Is, and quotes no more
// of the caller's input than a bounded prefix.
func TestErrorPaths(t *testing.T) {
	ts := newTestServer(t, &Options{MaxQueue: 1, Heartbeat: -1}, nil)
	dialWS(t, ts, wsDial{}) // reads nothing after the position
	s := ts.next(t)
	hub := NewHub(nil)
	long := strings.Repeat("\xff", 1<<20)

	_, errBroadcast := hub.Broadcast(long)
	errSend := s.Send(long)
	errCode := s.CloseWith(999, "")
	errReason := s.CloseWith(websocket.StatusNormalClosure, long)

	// MaxQueue 1 and a client that reads nothing: the queue fills.
	var errFull error
	for i := 0; errFull == nil && i < 1<<16; i++ {
		errFull = s.Send(strconv.Itoa(i))
	}
	waitDone(t, s)
	errClosed := s.Send("after")

	for _, tc := range []struct {
		name string
		err  error
		is   error // nil: any error
	}{
		{"Broadcast of invalid UTF-8", errBroadcast, websocket.ErrInvalidUTF8},
		{"Send of invalid UTF-8", errSend, websocket.ErrInvalidUTF8},
		{"CloseWith a reserved code", errCode, nil},
		{"CloseWith a long reason", errReason, nil},
		{"Send to a full queue", errFull, eventsource.ErrQueueFull},
		{"Socket.Err after overflow", s.Err(), eventsource.ErrQueueFull},
		{"Send to a closed socket", errClosed, net.ErrClosed},
	} {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		msg := tc.err.Error()
		if !strings.HasPrefix(msg, "realtime: ") || strings.Count(msg, "realtime: ") != 1 {
			t.Errorf("%s: %q is not prefixed once by the package", tc.name, msg)
		}
		if len(msg) > 200 {
			t.Errorf("%s: a %d-byte message", tc.name, len(msg))
		}
		if tc.is != nil && !errors.Is(tc.err, tc.is) {
			t.Errorf("%s: %v does not match %v", tc.name, tc.err, tc.is)
		}
	}
}

// A negative MaxHistory bounds nothing: every broadcast is kept, within
// the other bounds.
func TestHubMaxHistoryNegative(t *testing.T) {
	hub := NewHub(&HubOptions{MaxHistory: -1, MaxHistoryBytes: -1})
	first, _ := hub.Broadcast("0")
	n := 2 * DefaultMaxHistory
	for i := 1; i < n; i++ {
		hub.Broadcast(strconv.Itoa(i))
	}
	hub.mu.Lock()
	missed, ok := hub.since(first)
	hub.mu.Unlock()
	if !ok || len(missed) != n-1 {
		t.Fatalf("resuming from the first of %d broadcasts: %d messages, ok %v", n, len(missed), ok)
	}
}

// The default bound of a client's message is the module's one default.
func TestDefaultMaxMessageSize(t *testing.T) {
	c := newConfig(nil)
	if c.maxMessage != websocket.DefaultMaxMessageSize || c.ws.MaxMessageSize != websocket.DefaultMaxMessageSize {
		t.Fatalf("default bounds %d and %d, want websocket.DefaultMaxMessageSize", c.maxMessage, c.ws.MaxMessageSize)
	}
}
