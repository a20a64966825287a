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
	hub := newHub(t, nil)
	long := strings.Repeat("\xff", 1<<20)

	_, errPublish := hub.Publish(testCtx(t), chat, long)
	_, errChannel := hub.Publish(testCtx(t), strings.Repeat("\n", 1<<20), "x")
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
		{"Publish of invalid UTF-8", errPublish, websocket.ErrInvalidUTF8},
		{"Publish to an invalid channel", errChannel, ErrInvalidChannel},
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

// A negative MaxHistory bounds nothing: every message is kept in the
// channel's cache, within the other bounds.
func TestHubMaxHistoryNegative(t *testing.T) {
	hub := newHub(t, &HubOptions{MaxHistory: -1, MaxHistoryBytes: -1})
	c, err := hub.acquire(testCtx(t), chat)
	if err != nil {
		t.Fatal(err)
	}
	defer hub.release(c)
	n := 2 * DefaultMaxHistory
	var first Position
	for i := range n {
		p, err := hub.Publish(testCtx(t), chat, strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = p
		}
	}
	eventually(t, "the channel to deliver every message", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.last.Offset == first.Offset+uint64(n-1)
	})
	c.mu.Lock()
	missed, ok := c.since(first)
	c.mu.Unlock()
	if !ok || len(missed) != n-1 {
		t.Fatalf("resuming from the first of %d messages: %d messages, ok %v", n, len(missed), ok)
	}
}

// The default bound of a client's message is the module's one default.
func TestDefaultMaxMessageSize(t *testing.T) {
	c := newConfig(nil)
	if c.maxMessage != websocket.DefaultMaxMessageSize || c.ws.MaxMessageSize != websocket.DefaultMaxMessageSize {
		t.Fatalf("default bounds %d and %d, want websocket.DefaultMaxMessageSize", c.maxMessage, c.ws.MaxMessageSize)
	}
}
