package interop

// Our eventsource streams over HTTP/2 (TLS, h2 negotiated by ALPN) with Go's
// HTTP/2 client: events flush one by one, several streams share one
// connection, and a client that stops reading is cut by the write deadline.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realtime-go/realtime/eventsource"
)

// startESH2 starts a TLS httptest server with HTTP/2 enabled and returns it
// with a client that speaks h2 to it.
// It also returns a counter of the TCP connections the server accepted.
func startESH2(t *testing.T, h http.Handler) (*httptest.Server, *http.Client, *atomic.Int32) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	var conns atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	client := srv.Client()
	t.Cleanup(client.CloseIdleConnections)
	return srv, client, &conns
}

func esGet(t *testing.T, ctx context.Context, client *http.Client, url string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return resp
}

func TestEventSourceHTTP2(t *testing.T) {
	const events = 20
	// Lock-step: the server sends event i+1 only once the client has read
	// event i, so the test can only pass if every event is flushed by
	// itself.
	var mu sync.Mutex
	acks := map[string]chan int{}
	ackFor := func(key string) chan int {
		mu.Lock()
		defer mu.Unlock()
		if acks[key] == nil {
			acks[key] = make(chan int, 1)
		}
		return acks[key]
	}
	var protoErr error
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			mu.Lock()
			protoErr = fmt.Errorf("server saw %s, want HTTP/2", r.Proto)
			mu.Unlock()
		}
		s, err := eventsource.Accept(w, r, &eventsource.Options{Retry: time.Second})
		if err != nil {
			return
		}
		defer s.Close()
		ack := ackFor(r.URL.Query().Get("k"))
		for i := 1; i <= events; i++ {
			ev := eventsource.Event{ID: strconv.Itoa(i), Data: fmt.Sprintf("h2 event %d\nline 2 ✓", i)}
			if i%2 == 0 {
				ev.Type = "even"
			}
			if err := s.Send(r.Context(), ev); err != nil {
				t.Errorf("server: send %d: %v", i, err)
				return
			}
			select {
			case got := <-ack:
				if got != i {
					t.Errorf("server: ack %d, want %d", got, i)
					return
				}
			case <-s.Done():
				return
			case <-time.After(opTimeout):
				t.Errorf("server: event %d not read by the client within %v: not flushed?", i, opTimeout)
				return
			}
		}
		<-s.Done()
	})
	srv, client, conns := startESH2(t, handler)

	read := func(t *testing.T, key string) {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		resp := esGet(t, ctx, client, srv.URL+"/?k="+key)
		defer resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("client: %s, want HTTP/2", resp.Proto)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream; charset=utf-8" {
			t.Fatalf("Content-Type %q", ct)
		}
		if c := resp.Header.Values("Connection"); len(c) != 0 {
			t.Fatalf("HTTP/2 response carries Connection %q", c)
		}
		dec := eventsource.NewDecoder(resp.Body, nil)
		ack := ackFor(key)
		for i := 1; i <= events; i++ {
			ev, err := dec.Next()
			if err != nil {
				t.Fatalf("client: event %d: %v", i, err)
			}
			typ := "message"
			if i%2 == 0 {
				typ = "even"
			}
			if ev.ID != strconv.Itoa(i) || ev.Type != typ || ev.Data != fmt.Sprintf("h2 event %d\nline 2 ✓", i) {
				t.Fatalf("client: event %d is %+v", i, ev)
			}
			if r, ok := dec.Retry(); !ok || r != time.Second {
				t.Fatalf("client: retry %v %v, want 1s", r, ok)
			}
			ack <- i
		}
	}

	t.Run("one", func(t *testing.T) { read(t, "one") })
	t.Run("multiplexed", func(t *testing.T) {
		// Parallel subtests: four streams at once on the client's one
		// connection.
		for k := range 4 {
			t.Run(strconv.Itoa(k), func(t *testing.T) {
				t.Parallel()
				read(t, "m"+strconv.Itoa(k))
			})
		}
	})
	if n := conns.Load(); n != 1 {
		t.Errorf("the server accepted %d connections for 5 streams, want 1 (HTTP/2 multiplexing)", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if protoErr != nil {
		t.Fatal(protoErr)
	}
}

// TestEventSourceHTTP2StalledClient: an HTTP/2 client that stops reading
// its response. Once the stream's flow-control window is used up the
// server's write blocks, and WriteTimeout ends the stream.
func TestEventSourceHTTP2StalledClient(t *testing.T) {
	const timeout = 300 * time.Millisecond
	result := make(chan error, 1)
	handlerDone := make(chan struct{})
	srv, client, _ := startESH2(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(handlerDone)
		s, err := eventsource.Accept(w, r, &eventsource.Options{WriteTimeout: timeout, Heartbeat: -1})
		if err != nil {
			result <- err
			return
		}
		defer s.Close()
		data := strings.Repeat("x", 16<<10)
		stop := time.Now().Add(opTimeout)
		for i := 0; time.Now().Before(stop); i++ {
			if err := s.SendData(context.Background(), data); err != nil {
				select {
				case <-s.Done():
				default:
					err = fmt.Errorf("Send failed (%w) but Done is open", err)
				}
				if !errors.Is(s.Err(), eventsource.ErrWriteTimeout) {
					err = fmt.Errorf("Send failed (%w) and Err() = %v, want ErrWriteTimeout", err, s.Err())
				}
				result <- fmt.Errorf("after %d events (%d KiB): %w", i, i*16, err)
				return
			}
		}
		result <- errors.New("the stalled client took every write for 30 s")
	}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp := esGet(t, ctx, client, srv.URL)
	defer resp.Body.Close() // never read
	if resp.ProtoMajor != 2 {
		t.Fatalf("client: %s, want HTTP/2", resp.Proto)
	}
	select {
	case err := <-result:
		t.Logf("server: %v", err)
		if !errors.Is(err, eventsource.ErrWriteTimeout) {
			t.Fatalf("stream to a stalled HTTP/2 client ended with %v, want ErrWriteTimeout", err)
		}
	case <-time.After(opTimeout + 10*time.Second):
		t.Fatal("server: no outcome")
	}
	select {
	case <-handlerDone:
	case <-time.After(opTimeout):
		t.Fatal("the handler did not return after the stream ended")
	}
}
