package websocket

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// idleStackPerConn serves n connections with serve, one goroutine each,
// takes each through its handshake (and, with echoOne, the echo of one
// message), and returns the stack memory each then holds, idle in Read,
// in bytes: the interop benchmark's idle scenario. serve calls ready once
// it has the connection.
func idleStackPerConn(t testing.TB, n int, echoOne bool, serve func(nc net.Conn, ready func())) float64 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg, upgraded sync.WaitGroup
	upgraded.Add(n)
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { serve(nc, upgraded.Done) })
		}
	})
	var clients []net.Conn
	t.Cleanup(func() {
		ln.Close()
		for _, nc := range clients {
			nc.Close()
		}
		wg.Wait()
	})
	var ms runtime.MemStats
	goroutines := runtime.NumGoroutine()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.StackInuse
	for range n {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, nc)
		nc.SetDeadline(time.Now().Add(waitLong))
		br := bufio.NewReaderSize(nc, 512)
		if _, err := io.WriteString(nc, rawRequest(nil)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("handshake: %v", err)
		}
		if !echoOne {
			continue
		}
		if _, err := nc.Write(appendFrame(nil, true, 0, opBinary, true, [4]byte{1, 2, 3, 4}, []byte("hello"))); err != nil {
			t.Fatal(err)
		}
		if f, err := readWireFrame(br); err != nil || string(f.payload) != "hello" {
			t.Fatalf("echo: %q, %v", f.payload, err)
		}
	}
	upgraded.Wait()
	// The goroutines that did the handshakes free their stacks as they
	// end, which may be a moment after the connections are handed over.
	for deadline := time.Now().Add(waitLong); runtime.NumGoroutine() > goroutines+n && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	// Each collection halves a stack that uses under a quarter of its
	// size; a connection idle for a while has seen several.
	for range 4 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return float64(ms.StackInuse-before) / float64(n)
}

// echoAfterAcceptConn is the conformance testee's shape: the goroutine
// that ran AcceptConn runs the echo loop.
func echoAfterAcceptConn(nc net.Conn, ready func()) {
	c, _, err := AcceptConn(context.Background(), nc, nil)
	ready()
	if err != nil {
		return
	}
	defer c.CloseNow()
	echo(c)
}

// The goroutine that calls AcceptConn and then waits in Read for the
// connection's life keeps the 2 KiB stack it started with: the handshake
// grew another goroutine's stack, freed when it ended. Before AcceptConn
// ran the handshake on a goroutine of its own, the caller kept 8 KiB.
func TestAcceptConnLeavesStackSmall(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("short, or the race detector, which makes every frame bigger")
	}
	per := idleStackPerConn(t, 300, false, echoAfterAcceptConn)
	t.Logf("stack per idle connection: %.0f bytes", per)
	if per > 3<<10 {
		t.Errorf("an idle connection after AcceptConn holds %.0f bytes of stack, want the 2 KiB a goroutine starts with", per)
	}
}

// A connection that has echoed a message waits in Read with the 2 KiB
// stack its goroutine started with, whether AcceptConn's caller or
// Server's handler echoes it: the write path's frames leave room for the
// caller's. Before write and writeSingle moved their rarer paths to
// functions of their own, the write grew the stack to 4 KiB.
func TestIdleStackAfterWrite(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("short, or the race detector, which makes every frame bigger")
	}
	if !haveRawIO {
		t.Skip("without raw I/O, the reads and writes through net.Conn go deeper")
	}
	srv := &Server{Handler: func(c *Conn, _ *http.Request) { echo(c) }}
	for _, tc := range []struct {
		name  string
		serve func(nc net.Conn, ready func())
	}{
		{"AcceptConn", echoAfterAcceptConn},
		{"Server", func(nc net.Conn, ready func()) {
			// Server.handshake, without the listener.
			srv.once.Do(func() { srv.opts = srv.Options.Clone() })
			srv.start(nc)
			srv.handshake(nc)
			ready()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			per := idleStackPerConn(t, 300, true, tc.serve)
			t.Logf("stack per idle connection: %.0f bytes", per)
			if per > 3<<10 {
				t.Errorf("an idle connection that echoed a message holds %.0f bytes of stack, want the 2 KiB a goroutine starts with", per)
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Error(err)
	}
}

// BenchmarkIdleStack reports the stack an idle connection holds after
// AcceptConn, 1,000 connections at a time.
func BenchmarkIdleStack(b *testing.B) {
	b.ReportAllocs()
	var per float64
	for b.Loop() {
		per = idleStackPerConn(b, 1000, false, echoAfterAcceptConn)
	}
	b.ReportMetric(per, "stack-B/conn")
}

// handshakeConn is a net.Conn that yields one opening request and
// discards what is written to it.
type handshakeConn struct {
	replayConn
	r strings.Reader
}

func (h *handshakeConn) Read(p []byte) (int, error) { return h.r.Read(p) }
func (h *handshakeConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
}

// BenchmarkAcceptConn is the cost of the opening handshake on a raw
// connection, through AcceptConn (on a goroutine of its own) and on the
// caller's goroutine: the difference is what leaving the caller's stack
// small costs.
func BenchmarkAcceptConn(b *testing.B) {
	req := rawRequest(nil)
	for _, tc := range []struct {
		name   string
		accept func(context.Context, net.Conn, *AcceptOptions) (*Conn, *http.Request, error)
	}{{"AcceptConn", AcceptConn}, {"caller", acceptConn}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				hc := &handshakeConn{}
				hc.r.Reset(req)
				c, _, err := tc.accept(ctx, hc, nil)
				if err != nil {
					b.Fatal(err)
				}
				c.CloseNow()
			}
		})
	}
}

// A panic in OnHandshake, which runs on AcceptConn's own goroutine,
// reaches AcceptConn's caller, as it did when the handshake ran there.
func TestAcceptConnPanicReachesCaller(t *testing.T) {
	hc := &handshakeConn{}
	hc.r.Reset(rawRequest(nil))
	opts := &AcceptOptions{OnHandshake: func(*http.Request, http.Header) *Rejection { panic("on handshake") }}
	defer func() {
		if p := recover(); p != "on handshake" {
			t.Errorf("recovered %v, want OnHandshake's panic", p)
		}
	}()
	AcceptConn(context.Background(), hc, opts)
	t.Error("AcceptConn returned")
}

// hijackRecorder is a ResponseWriter that keeps what Hijack returned.
type hijackRecorder struct {
	http.ResponseWriter
	brw *bufio.ReadWriter
}

func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	h.brw = brw
	return nc, brw, err
}

// net/http's state for a connection, which keeps the bufio.Reader and
// Writer that Hijack returns, lives as long as the handler runs; Accept
// leaves them without their 4 KiB buffers, once it has the bytes the
// client sent past the request.
func TestAcceptReleasesHijackedBuffers(t *testing.T) {
	sizes := make(chan [2]int, 1)
	frames := appendFrame(nil, true, 0, opBinary, true, [4]byte{1, 2, 3, 4}, pattern(3000, 1))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &hijackRecorder{ResponseWriter: w}
		c, err := Accept(rec, r, nil)
		if err != nil {
			t.Error(err)
			close(sizes)
			return
		}
		defer c.CloseNow()
		sizes <- [2]int{rec.brw.Reader.Size(), rec.brw.Writer.Size()}
		echo(c)
	}))
	defer srv.Close()
	resp, _, br := roundTrip(t, srv.Listener.Addr().String(), rawRequest(nil)+string(frames))
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatal(resp.Status)
	}
	if s := <-sizes; s[0] > 16 || s[1] > 16 {
		t.Errorf("after Accept, the hijacked reader and writer keep buffers of %d and %d bytes", s[0], s[1])
	}
	if f, err := readWireFrame(br); err != nil || !bytes.Equal(f.payload, pattern(3000, 1)) {
		t.Errorf("echo of the frame sent with the request: %d bytes, %v", len(f.payload), err)
	}
}
