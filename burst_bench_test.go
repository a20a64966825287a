package realtime_test

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/internal/obstest"
)

// burstSockets and burstMessages are the size of the burst benchmarks:
// a burst of 20 broadcasts to 1,000 sockets, as capbench's burst is to
// 10,000.
const (
	burstSockets  = 1000
	burstMessages = 20
)

// BenchmarkBurstEventSource measures a burst of 20 64-byte messages
// published back to back to a channel of 1,000 EventSource sockets
// (HTTP/1.1, the stream on the hijacked connection), until every client
// has read all of them: one op is one burst. writes/delivery is the
// process's write system calls per message delivered (the clients write
// nothing meanwhile): below 1 when one write carries several messages.
func BenchmarkBurstEventSource(b *testing.B) { benchBurst(b, realtime.TransportEventSource) }

// BenchmarkBurstWebSocket is BenchmarkBurstEventSource on realtime.v1
// WebSockets.
func BenchmarkBurstWebSocket(b *testing.B) { benchBurst(b, realtime.TransportWebSocket) }

func benchBurst(b *testing.B, tr realtime.Transport) {
	n := burstSockets
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < uint64(2*n+256) {
		n = int(lim.Cur-256) / 2
	}
	const channel = "bench"
	hub := realtime.NewHub(nil)
	defer hub.Close()
	srv := httptest.NewServer(realtime.Handler(&realtime.Options{Hub: hub, Channels: []string{channel}}, nil))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got, target atomic.Int64
	done := make(chan struct{}, 1)
	count := func(k int64) {
		if got.Add(k) == target.Load() {
			done <- struct{}{}
		}
	}
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	for range n {
		if tr == realtime.TransportEventSource {
			nc, r := dialBurstES(b, srv.URL)
			closers = append(closers, func() { nc.Close() })
			go readEvents(r, count)
			continue
		}
		c := obstest.Dial(b, ctx, srv.URL)
		closers = append(closers, func() { c.CloseNow() })
		go obstest.ReadEach(ctx, c, func() { count(1) })
	}
	for hub.Len() < n {
		time.Sleep(time.Millisecond)
	}
	text := strings.Repeat("x", 64)
	w0 := 0.0
	if tr == realtime.TransportEventSource {
		w0 = writeCalls(b)
	}
	b.ReportAllocs()
	for b.Loop() {
		target.Add(int64(n * burstMessages))
		for range burstMessages {
			if _, err := hub.Publish(ctx, channel, text); err != nil {
				b.Fatal(err)
			}
		}
		<-done
	}
	deliveries := float64(b.N) * float64(n*burstMessages)
	if tr == realtime.TransportEventSource {
		// A WebSocket writes with sendmsg, which syscw does not count.
		b.ReportMetric((writeCalls(b)-w0)/deliveries, "writes/delivery")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
	b.ReportMetric(float64(n), "sockets")
}

// dialBurstES opens an EventSource stream and reads its response head and
// the hello event, which ends with the first blank line.
func dialBurstES(b *testing.B, httpURL string) (net.Conn, *bufio.Reader) {
	u, _ := url.Parse(httpURL)
	nc, err := net.Dial("tcp", u.Host)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := nc.Write([]byte("GET / HTTP/1.1\r\nHost: " + u.Host + "\r\nAccept: text/event-stream\r\n\r\n")); err != nil {
		b.Fatal(err)
	}
	r := bufio.NewReader(nc)
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("EventSource response: %v %v", resp, err)
	}
	// The body is chunked; the hello is in the first chunk(s): read
	// through the body reader until the blank line that ends it.
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		if line == "\n" {
			break
		}
	}
	return nc, br
}

// readEvents reads a stream's body and counts its events: each ends with
// a blank line, and no event of the benchmark has one inside.
func readEvents(r *bufio.Reader, count func(int64)) {
	buf := make([]byte, 32<<10)
	last := byte(0)
	for {
		k, err := r.Read(buf)
		if k > 0 {
			p := buf[:k]
			events := int64(bytes.Count(p, []byte("\n\n")))
			if last == '\n' && p[0] == '\n' {
				events++
			}
			last = p[k-1]
			if events > 0 {
				count(events)
			}
		}
		if err != nil {
			return
		}
	}
}

// writeCalls returns the process's write system calls so far (syscw of
// /proc/self/io), or skips the metric's benchmark where there is none.
func writeCalls(b *testing.B) float64 {
	p, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Skip("no /proc/self/io")
	}
	for _, l := range strings.Split(string(p), "\n") {
		if v, ok := strings.CutPrefix(l, "syscw: "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return n
		}
	}
	b.Skip("no syscw in /proc/self/io")
	return 0
}
