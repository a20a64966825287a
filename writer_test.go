package realtime

import (
	"context"
	"fmt"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realtime-go/realtime/internal/batchtest"
)

// TestWriteBatchOneFlush: the messages a socket has queued go out
// together, not with a write system call each: here the replay of 100
// missed messages, on either transport, takes a few writes.
func TestWriteBatchOneFlush(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.String(), func(t *testing.T) {
			hub := newHub(t, nil)
			from := publish(t, hub, chat, "m0")
			const n = 100
			for i := 1; i <= n; i++ {
				publish(t, hub, chat, fmt.Sprint("m", i))
			}
			var writes atomic.Int64
			srv := httptest.NewUnstartedServer(Handler(chatOptions(hub), func(ctx context.Context, s *Socket) { <-ctx.Done() }))
			srv.Listener = batchtest.Listener{Listener: srv.Listener, Writes: &writes}
			srv.Start()
			t.Cleanup(srv.Close)
			c := dialTransport(t, &testServer{srv: srv, URL: srv.URL}, k, from)
			for i := 1; i <= n; i++ {
				if _, data := c.message(t); data != fmt.Sprint("m", i) {
					t.Fatalf("message %d: %q", i, data)
				}
			}
			// The handshake, the hello and the replay: a write per message
			// would be over 100.
			if w := writes.Load(); w > 10 {
				t.Fatalf("%d writes for the hello and %d replayed messages", w, n)
			}
			c.close()
		})
	}
}

// TestIdleSocketNoWriter: an idle socket holds no writer goroutine, on
// either transport; the next message starts one, which delivers it and
// ends again, and so does the close.
func TestIdleSocketNoWriter(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.String(), func(t *testing.T) {
			hub := newHub(t, nil)
			ts := newTestServer(t, chatOptions(hub), nil)
			c := dialTransport(t, ts, k, "")
			s := ts.next(t)
			for i := range 3 {
				eventually(t, "the writer to end", func() bool { return writers() == 0 })
				publish(t, hub, chat, fmt.Sprint("m", i))
				if _, data := c.message(t); data != fmt.Sprint("m", i) {
					t.Fatalf("message %d: %q", i, data)
				}
			}
			eventually(t, "the writer to end", func() bool { return writers() == 0 })
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if n := writers(); n != 0 {
				t.Fatalf("%d writers after Close", n)
			}
		})
	}
}

// writers counts the goroutines running a socket's writer.
func writers() int {
	return strings.Count(stacks(), "realtime.(*Socket).writeLoop(")
}

// stacks returns the stacks of all goroutines.
func stacks() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}

// TestWriterPoolHandoff: sockets kicked while the shared writers drain
// the list and end get every message, in order: a socket is never left
// in the list without a writer.
func TestWriterPoolHandoff(t *testing.T) {
	hub := newHub(t, nil)
	ts := newTestServer(t, chatOptions(hub), nil)
	const sockets, rounds = 8, 200
	clients := make([]*wsClient, sockets)
	for i := range clients {
		clients[i] = dialWS(t, ts, wsDial{})
		ts.next(t)
	}
	for i := range rounds {
		publish(t, hub, chat, fmt.Sprint("m", i))
		if i%16 == 0 {
			time.Sleep(time.Duration(i%5) * 20 * time.Microsecond) // around the writers' end with the list empty
		}
	}
	for _, c := range clients {
		for i := range rounds {
			if _, data, _ := c.read(t); data != fmt.Sprint("m", i) {
				t.Fatalf("got %q, want m%d", data, i)
			}
		}
	}
}

// TestAbortCutsBlockedWrite: Hub.Close cuts the write of a socket whose
// client stopped reading, with no WriteTimeout to end it otherwise.
func TestAbortCutsBlockedWrite(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.String(), func(t *testing.T) {
			hub := newHub(t, nil)
			opts := chatOptions(hub)
			opts.WriteTimeout = -1
			opts.EventSource.WriteTimeout = -1
			opts.MaxQueueBytes = -1
			ts := newTestServer(t, opts, nil)
			if k == TransportWebSocket {
				dialWS(t, ts, wsDial{noRead: true})
			} else {
				dialES(t, ts, esDial{noRead: true})
			}
			s := ts.next(t)
			// More than the socket buffers hold, in one message: once the
			// writer has taken it, the write is stuck.
			if err := s.Send(strings.Repeat("x", 64<<20)); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the write to block", blockedWrite)
			closed := make(chan struct{})
			go func() {
				hub.Close()
				close(closed)
			}()
			select {
			case <-closed:
			case <-time.After(waitLong):
				t.Fatal("Hub.Close did not cut the blocked write")
			}
			waitDone(t, s)
		})
	}
}

// blockedWrite reports whether a socket's writer waits for its
// connection to take a write.
func blockedWrite() bool {
	return blockedWrites() > 0
}

// TestStalledWritersDoNotHoldUpOthers: more clients than the shared
// writers that stopped reading, with no WriteTimeout, each block a
// writer for good; a socket that reads still gets its messages.
func TestStalledWritersDoNotHoldUpOthers(t *testing.T) {
	hub := newHub(t, nil)
	opts := chatOptions(hub)
	opts.WriteTimeout = -1
	opts.MaxQueueBytes = -1
	ts := newTestServer(t, opts, nil)
	stalled := make([]*Socket, baseWriters()+2)
	for i := range stalled {
		dialWS(t, ts, wsDial{noRead: true})
		stalled[i] = ts.next(t)
	}
	for _, s := range stalled {
		// More than the socket buffers hold: its writer is stuck.
		if err := s.Send(strings.Repeat("x", 16<<20)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "every stalled socket's write to block", func() bool {
		return blockedWrites() >= len(stalled)
	})
	c := dialWS(t, ts, wsDial{})
	ts.next(t)
	publish(t, hub, chat, "still here")
	if _, data, _ := c.read(t); data != "still here" {
		t.Fatalf("got %q", data)
	}
	hub.Close()
}

// blockedWrites counts the writers waiting for their connection to
// take a write.
func blockedWrites() int {
	n := 0
	for _, g := range strings.Split(stacks(), "\n\n") {
		if strings.Contains(g, "realtime.(*Socket).writeBatch(") && strings.Contains(g, "waitWrite") {
			n++
		}
	}
	return n
}
