package interop

// Streams that clients abandon: one that stops reading is cut by the write
// deadline, and 10,000 streams opened and dropped leave no goroutine behind.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/realtime-go/realtime/eventsource"
)

// esRawOpen opens an EventSource request on a raw TCP connection and
// returns once the response head and the first flush (the retry line) have
// arrived, so the server's stream is live. rcvbuf, when positive, shrinks
// the socket's receive buffer before connecting.
func esRawOpen(ctx context.Context, addr, path string, rcvbuf int) (*net.TCPConn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	nc := c.(*net.TCPConn)
	nc.SetDeadline(time.Now().Add(opTimeout))
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nAccept: text/event-stream\r\n\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		nc.Close()
		return nil, err
	}
	if rcvbuf > 0 {
		nc.SetDeadline(time.Time{})
		return nc, nil // a stalled client reads nothing at all
	}
	br := bufio.NewReaderSize(nc, 1024)
	var seen strings.Builder
	for !strings.Contains(seen.String(), "retry: ") {
		line, err := br.ReadString('\n')
		seen.WriteString(line)
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("reading the stream head: %w (got %q)", err, seen.String())
		}
		if seen.Len() > 4096 {
			nc.Close()
			return nil, fmt.Errorf("no retry line in %q", seen.String())
		}
	}
	if !strings.HasPrefix(seen.String(), "HTTP/1.1 200 ") {
		nc.Close()
		return nil, fmt.Errorf("response %q", seen.String())
	}
	nc.SetDeadline(time.Time{})
	return nc, nil
}

// esWaitGoroutines waits until at most n goroutines run.
func esWaitGoroutines(t *testing.T, n int, what string) {
	t.Helper()
	deadline := time.Now().Add(opTimeout)
	for {
		got := runtime.NumGoroutine()
		if got <= n {
			t.Logf("%s: %d goroutines (limit %d)", what, got, n)
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%s: %d goroutines after %v, want at most %d:\n%.20000s", what, got, opTimeout, n, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEventSourceStalledClient: an HTTP/1.1 client that sends its request
// and never reads. Once the socket buffers are full the server's write
// blocks; WriteTimeout ends the stream, the handler returns, and the
// connection's goroutines go, while the client still holds its socket.
func TestEventSourceStalledClient(t *testing.T) {
	const timeout = 300 * time.Millisecond
	base := runtime.NumGoroutine()
	type outcome struct {
		err, streamErr error
		sent           int
		done           bool
	}
	result := make(chan outcome, 1)
	handlerDone := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(handlerDone)
		s, err := eventsource.Accept(w, r, &eventsource.Options{WriteTimeout: timeout, Heartbeat: -1})
		if err != nil {
			result <- outcome{err: err}
			return
		}
		defer s.Close()
		data := strings.Repeat("y", 4<<10)
		stop := time.Now().Add(opTimeout)
		for i := 0; time.Now().Before(stop); i++ {
			if err := s.SendData(context.Background(), data); err != nil {
				o := outcome{err: err, streamErr: s.Err(), sent: i}
				select {
				case <-s.Done():
					o.done = true
				default:
				}
				result <- o
				return
			}
		}
		result <- outcome{err: errors.New("the stalled client took every write for 30 s")}
	}))
	defer srv.Close()

	nc, err := esRawOpen(testCtx(t), srv.Listener.Addr().String(), "/", 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var o outcome
	select {
	case o = <-result:
	case <-time.After(opTimeout + 10*time.Second):
		t.Fatal("server: no outcome")
	}
	t.Logf("server: %d events of 4 KiB written, then %v", o.sent, o.err)
	if !errors.Is(o.err, eventsource.ErrWriteTimeout) || !errors.Is(o.streamErr, eventsource.ErrWriteTimeout) || !o.done {
		t.Fatalf("stream to a stalled client: Send error %v, Err() %v, Done closed %v; want ErrWriteTimeout twice and Done closed", o.err, o.streamErr, o.done)
	}
	select {
	case <-handlerDone:
	case <-time.After(opTimeout):
		t.Fatal("the handler did not return after the stream ended")
	}
	// The client still holds its end open and unread: the server must not
	// keep a goroutine for it (the listener's Serve loop remains).
	esWaitGoroutines(t, base+2, "after the stalled stream ended")
}

// esHub is the usual broadcast shape: streams subscribe while they live.
type esHub struct {
	mu      sync.Mutex
	streams map[*eventsource.Stream]struct{}
	opened  atomic.Int64
	ended   atomic.Int64
	badEnd  atomic.Value // error: a stream that ended otherwise than ErrClientGone
}

func (h *esHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s, err := eventsource.Accept(w, r, &eventsource.Options{Retry: time.Second})
	if err != nil {
		h.badEnd.Store(err)
		return
	}
	defer s.Close()
	h.opened.Add(1)
	h.mu.Lock()
	h.streams[s] = struct{}{}
	h.mu.Unlock()
	<-s.Done()
	h.mu.Lock()
	delete(h.streams, s)
	h.mu.Unlock()
	if err := s.Err(); !errors.Is(err, eventsource.ErrClientGone) {
		h.badEnd.Store(fmt.Errorf("a stream ended with %v, want ErrClientGone", err))
	}
	h.ended.Add(1)
}

func (h *esHub) live() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.streams)
}

// TestEventSourceDroppedStreams opens 10,000 streams and drops them (half
// with a FIN, half with a reset), a few dozen at a time, and checks that
// every stream ended with ErrClientGone and no goroutine is left.
func TestEventSourceDroppedStreams(t *testing.T) {
	const (
		total   = 10000
		workers = 32 // under -race at most 8128 goroutines may be alive
	)
	ignore := goleak.IgnoreCurrent()
	base := runtime.NumGoroutine()
	hub := &esHub{streams: map[*eventsource.Stream]struct{}{}}
	srv := httptest.NewServer(hub)
	addr := srv.Listener.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	start := time.Now()
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= total || firstErr.Load() != nil {
					return
				}
				nc, err := esRawOpen(ctx, addr, "/es", 0)
				if err != nil {
					firstErr.CompareAndSwap(nil, fmt.Errorf("stream %d: %w", i, err))
					return
				}
				if i%2 == 1 {
					nc.SetLinger(0) // reset instead of FIN
				}
				nc.Close()
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		srv.Close()
		t.Fatal(err)
	}
	t.Logf("opened and dropped %d streams in %v", total, time.Since(start).Round(time.Millisecond))

	deadline := time.Now().Add(opTimeout)
	for hub.ended.Load() < total && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if o, e, l := hub.opened.Load(), hub.ended.Load(), hub.live(); o != total || e != total || l != 0 {
		srv.Close()
		t.Fatalf("server: %d streams opened, %d ended, %d still subscribed; want %d, %d, 0", o, e, l, total, total)
	}
	if err, _ := hub.badEnd.Load().(error); err != nil {
		srv.Close()
		t.Fatal(err)
	}
	// Server still running: only its accept loop may remain.
	esWaitGoroutines(t, base+2, "after 10,000 dropped streams, server running")
	srv.Close()
	goleak.VerifyNone(t, ignore)
}
