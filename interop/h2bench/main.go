//lint:file-ignore SA1019 net/http's Transport cannot send an extended CONNECT (Go 1.26); x/net/http2.Transport can.

// Command h2bench measures WebSocket over HTTP/2 (RFC 8441) beside
// HTTP/1.1: a 1 KiB binary echo, lock-step, over N WebSockets (100 by
// default) that share one HTTP/2 connection, over N HTTP/1.1
// connections on TLS, and over N on plain TCP. It prints a Markdown
// table: echoed messages per second, the server's CPU per message, and
// the server's RSS and goroutines per WebSocket.
//
//	cd interop && go run ./h2bench [-conns 100] [-size 1024] [-dur 5s] [-runs 1] [-rows h2,h1tls,h1] [-out FILE]
//
// The server is our websocket.Accept in a net/http handler (Read, then
// Write the message back, with context.Background()), the same for
// every row, and TLS (an ECDSA P-256 test certificate) for the HTTP/2
// row and the HTTP/1.1 TLS row, so that both pay the same cipher. It runs
// in a child process (this binary with -serve ROW), a fresh one per row
// and run, with GODEBUG=http2xconnect=1 in its environment, which Go's
// HTTP/2 server needs to offer extended CONNECT. The load client is this
// process: websocket.NewClientHTTP2 through one
// golang.org/x/net/http2.Transport for the HTTP/2 row (the child counts
// the TCP connections it accepted: one), websocket.NewClient on a TLS or
// TCP connection of its own per WebSocket for the others.
//
// Memory: after the N WebSockets have each echoed one message, the
// harness has the child run runtime.GC and debug.FreeOSMemory, reads its
// RSS, and divides the growth since before the first connection by N;
// again after the measured window.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/realtime-go/realtime/internal/testcert"
	"github.com/realtime-go/realtime/interop/internal/benchproc"
	"github.com/realtime-go/realtime/interop/internal/report"
	"github.com/realtime-go/realtime/interop/internal/wsecho"
	"github.com/realtime-go/realtime/websocket"
)

// xconnect is the GODEBUG setting under which net/http's HTTP/2 server
// accepts extended CONNECT.
const xconnect = "http2xconnect=1"

// row is a transport the benchmark measures.
type row struct {
	key, title string
	tls, h2    bool
}

var rows = []row{
	{"h2", "HTTP/2 over TLS, N WebSockets on 1 connection", true, true},
	{"h1tls", "HTTP/1.1 over TLS, N connections", true, false},
	{"h1", "HTTP/1.1 over TCP, N connections", false, false},
}

func main() {
	serve := flag.String("serve", "", "internal: run the server of the named row in this process")
	addr := flag.String("addr", "127.0.0.1:0", "internal: listen address for -serve")
	conns := flag.Int("conns", 100, "WebSockets per row")
	size := flag.Int("size", 1024, "message size in bytes")
	dur := flag.Duration("dur", 5*time.Second, "measured time per row")
	warmup := flag.Duration("warmup", time.Second, "echo time before the measured window")
	runs := flag.Int("runs", 1, "measure every row this many times, a fresh server each, rows interleaved")
	only := flag.String("rows", "h2,h1tls,h1", "comma-separated rows to run: h2, h1tls, h1")
	out := flag.String("out", "", "also write the Markdown report to this file")
	flag.Parse()

	if *serve != "" {
		if err := runServe(*serve, *addr); err != nil {
			fmt.Fprintln(os.Stderr, "serve:", err)
			os.Exit(1)
		}
		return
	}
	var sel []row
	for _, k := range strings.Split(*only, ",") {
		i := indexRow(strings.TrimSpace(k))
		if i < 0 {
			fatal("unknown row %q", k)
		}
		sel = append(sel, rows[i])
	}
	if _, err := benchproc.RaiseNOFILE(); err != nil {
		fatal("raise RLIMIT_NOFILE: %v", err)
	}
	// The children inherit it: net/http reads it once, at start-up.
	godebug := os.Getenv("GODEBUG")
	if !strings.Contains(godebug, xconnect) {
		if godebug != "" {
			godebug += ","
		}
		os.Setenv("GODEBUG", godebug+xconnect)
	}

	cfg := loadConfig{conns: *conns, size: *size, dur: *dur, warmup: *warmup}
	results := map[string][]result{}
	start := time.Now()
	for run := range *runs {
		for _, r := range sel {
			logf("%s, run %d", r.key, run+1)
			res, err := measure(r, cfg)
			if err != nil {
				fatal("%s: %v", r.key, err)
			}
			logf("%s: %.0f msg/s, server %.2f cores, %.1f KiB RSS/WebSocket idle, %.1f after the load, %d TCP connections",
				r.key, res.rate, res.serverCPU, res.idleKiB, res.loadKiB, res.tcpConns)
			results[r.key] = append(results[r.key], res)
		}
	}
	text := render(sel, results, cfg, time.Since(start))
	fmt.Print(text)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(text), 0o644); err != nil {
			fatal("write %s: %v", *out, err)
		}
	}
}

func indexRow(key string) int {
	for i, r := range rows {
		if r.key == key {
			return i
		}
	}
	return -1
}

// runServe is the child: our echo in a net/http handler, on TLS (with or
// without HTTP/2) or on TCP. Commands on stdin, answered with one line:
//
//	gc     runtime.GC + debug.FreeOSMemory, then "ok GOROUTINES TCPCONNS HEAPINUSE STACKINUSE"
//	stats  the same line without the GC
func runServe(key, addr string) error {
	i := indexRow(key)
	if i < 0 {
		return fmt.Errorf("unknown row %q", key)
	}
	r := rows[i]
	if r.h2 && !strings.Contains(os.Getenv("GODEBUG"), xconnect) {
		return errors.New("GODEBUG lacks " + xconnect)
	}
	var accepted atomic.Int64
	srv := &http.Server{
		Handler: wsecho.Handler(nil, wsecho.Read),
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				accepted.Add(1)
			}
		},
	}
	if r.tls {
		cert, err := testcert.New()
		if err != nil {
			return err
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
		if !r.h2 {
			// A non-nil empty map turns HTTP/2 off.
			srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
		}
	}
	if _, err := benchproc.RaiseNOFILE(); err != nil {
		return err
	}
	return benchproc.Serve(addr, "", func(cmd string, out io.Writer) {
		if cmd == "gc" {
			runtime.GC()
			debug.FreeOSMemory()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(out, "ok %d %d %d %d\n", runtime.NumGoroutine(), accepted.Load(), ms.HeapInuse, ms.StackInuse)
	}, func(ln net.Listener) error {
		if r.tls {
			return srv.ServeTLS(ln, "", "")
		}
		return srv.Serve(ln)
	})
}

type loadConfig struct {
	conns, size int
	dur, warmup time.Duration
}

type result struct {
	rate      float64 // echoed messages per second
	serverCPU float64 // cores
	clientCPU float64
	otherCPU  float64
	idleKiB   float64 // RSS growth per WebSocket after one echo each
	loadKiB   float64 // after the measured window
	tcpConns  int64
	// goroutines, heapKiB and stackKiB are the server's per WebSocket,
	// idle: goroutines, heap and stacks in use (runtime.MemStats).
	goroutines, heapKiB, stackKiB float64
}

// measure runs one row against a fresh child.
func measure(r row, cfg loadConfig) (result, error) {
	var res result
	ch, err := benchproc.Start(r.key)
	if err != nil {
		return res, err
	}
	defer ch.Stop()
	s0, err := command(ch, "gc")
	if err != nil {
		return res, err
	}
	rss0, err := benchproc.RSSKiB(ch.PID)
	if err != nil {
		return res, err
	}
	d, err := newDialer(r, ch.Addr)
	if err != nil {
		return res, err
	}
	defer d.close()
	cs, err := d.dialAll(cfg.conns)
	if err != nil {
		return res, err
	}
	defer func() {
		for _, c := range cs {
			c.CloseNow()
		}
	}()
	msg := make([]byte, cfg.size)
	for i := range msg {
		msg[i] = byte(i * 131)
	}
	for _, c := range cs {
		if err := echoOnce(c, msg); err != nil {
			return res, fmt.Errorf("first echo: %w", err)
		}
	}
	s1, err := command(ch, "gc")
	if err != nil {
		return res, err
	}
	n := float64(cfg.conns)
	res.tcpConns = s1.tcpConns
	res.goroutines = float64(s1.goroutines-s0.goroutines) / n
	res.heapKiB = float64(int64(s1.heap)-int64(s0.heap)) / 1024 / n
	res.stackKiB = float64(int64(s1.stack)-int64(s0.stack)) / 1024 / n
	rss1, err := benchproc.RSSKiB(ch.PID)
	if err != nil {
		return res, err
	}
	res.idleKiB = float64(rss1-rss0) / float64(cfg.conns)

	var count atomic.Int64
	stop := make(chan struct{})
	errs := make(chan error, len(cs))
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := echoOnce(c, msg); err != nil {
					errs <- err
					return
				}
				count.Add(1)
			}
		}()
	}
	time.Sleep(cfg.warmup)
	n0, u0 := count.Load(), benchproc.ReadUsage(ch.PID)
	time.Sleep(cfg.dur)
	n1, u1 := count.Load(), benchproc.ReadUsage(ch.PID)
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		return res, fmt.Errorf("echo: %w", err)
	default:
	}
	w := u1.Since(u0)
	res.rate = float64(n1-n0) / w.Seconds
	res.serverCPU, res.clientCPU, res.otherCPU = w.ServerCPU, w.ClientCPU, w.OtherCPU
	if _, err := command(ch, "gc"); err != nil {
		return res, err
	}
	rss2, err := benchproc.RSSKiB(ch.PID)
	if err != nil {
		return res, err
	}
	res.loadKiB = float64(rss2-rss0) / float64(cfg.conns)
	return res, nil
}

// echoOnce writes msg and reads its echo.
func echoOnce(c *websocket.Conn, msg []byte) error {
	ctx := context.Background()
	if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
		return err
	}
	_, p, err := c.Read(ctx)
	if err != nil {
		return err
	}
	if len(p) != len(msg) {
		return fmt.Errorf("echo of %d bytes came back as %d", len(msg), len(p))
	}
	return nil
}

// childStats is the child's answer to a command.
type childStats struct {
	goroutines, tcpConns int64
	heap, stack          uint64 // bytes in use
}

// command sends cmd to the child and parses its answer.
func command(ch *benchproc.Child, cmd string) (childStats, error) {
	var st childStats
	l, err := ch.Do(cmd)
	if err != nil {
		return st, err
	}
	if _, err := fmt.Sscanf(l, "ok %d %d %d %d", &st.goroutines, &st.tcpConns, &st.heap, &st.stack); err != nil {
		return st, fmt.Errorf("bad answer %q to %s", l, cmd)
	}
	return st, nil
}

// dialer makes the load client's WebSockets for a row.
type dialer struct {
	r    row
	addr string
	u    *url.URL
	tls  *tls.Config
	h2   *http2.Transport // the one transport all the HTTP/2 row's WebSockets share
}

func newDialer(r row, addr string) (*dialer, error) {
	d := &dialer{r: r, addr: addr}
	scheme := "ws"
	if r.tls {
		scheme = "wss"
		// The child's certificate is its own; the bench does not check
		// it (loopback).
		d.tls = &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}
	}
	u, err := url.Parse(scheme + "://" + addr + "/")
	if err != nil {
		return nil, err
	}
	d.u = u
	if r.h2 {
		d.h2 = &http2.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}}
	}
	return d, nil
}

func (d *dialer) dial(ctx context.Context) (*websocket.Conn, error) {
	if d.h2 != nil {
		c, resp, err := websocket.NewClientHTTP2(ctx, d.h2, d.u, nil)
		if err == nil && resp.ProtoMajor != 2 {
			c.CloseNow()
			return nil, fmt.Errorf("%s, want HTTP/2", resp.Proto)
		}
		return c, err
	}
	var nd net.Dialer
	nc, err := nd.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, err
	}
	if d.tls != nil {
		tc := tls.Client(nc, d.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	c, _, err := websocket.NewClient(ctx, nc, d.u, nil)
	if err != nil {
		nc.Close()
	}
	return c, err
}

// dialAll makes n WebSockets: the first alone, so that an HTTP/2
// connection exists, with the server's settings, before the others are
// opened on it, 10 at a time.
func (d *dialer) dialAll(n int) ([]*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs := make([]*websocket.Conn, n)
	var err error
	if cs[0], err = d.dial(ctx); err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var first error
	sem := make(chan struct{}, 10)
	var wg sync.WaitGroup
	for i := 1; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := d.dial(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = err
			}
			cs[i] = c
		}()
	}
	wg.Wait()
	if first != nil {
		for _, c := range cs {
			if c != nil {
				c.CloseNow()
			}
		}
		return nil, first
	}
	return cs, nil
}

func (d *dialer) close() {
	if d.h2 != nil {
		d.h2.CloseIdleConnections()
	}
}

// render formats the report: per row, the median run.
func render(sel []row, results map[string][]result, cfg loadConfig, elapsed time.Duration) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("## WebSocket over HTTP/2 beside HTTP/1.1\n\n")
	p("%s · %s %s/%s · %d CPUs, GOMAXPROCS %d in the load client and in the server process (they share the CPUs) · `%s`\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.NumCPU(), runtime.GOMAXPROCS(0), benchproc.CommandLine("h2bench"))
	p("Loopback, %d B binary messages echoed lock-step over %d WebSockets, no compression; %v warm-up, %v measured. Server: websocket.Accept in a net/http handler, a fresh process per row and run. RSS: growth of the server process per WebSocket, after runtime.GC + debug.FreeOSMemory, once each WebSocket echoed one message (idle) and after the measured window. Each cell: the median of %d run(s) (all runs in brackets). Total run time %v.\n\n",
		cfg.size, cfg.conns, cfg.warmup, cfg.dur, len(results[sel[0].key]), elapsed.Round(time.Second))
	p("| transport | TCP conns | msg/s | server CPU, cores | server µs CPU / msg | KiB RSS / WebSocket, idle | KiB RSS / WebSocket, after load | server goroutines · KiB heap · KiB stack / WebSocket, idle |\n")
	p("|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range sel {
		rs := results[r.key]
		// col is a cell: the median of f over the runs, then all of them.
		col := func(f func(result) float64, format func(float64) string) string {
			vals := make([]float64, len(rs))
			all := make([]string, len(rs))
			for i, x := range rs {
				vals[i] = f(x)
				all[i] = format(vals[i])
			}
			s := format(median(vals))
			if len(vals) > 1 {
				s += " [" + strings.Join(all, ", ") + "]"
			}
			return s
		}
		fixed := func(prec int) func(float64) string {
			return func(v float64) string { return strconv.FormatFloat(v, 'f', prec, 64) }
		}
		p("| %s | %d | %s | %s | %s | %s | %s | %s · %s · %s |\n", strings.Replace(r.title, "N ", strconv.Itoa(cfg.conns)+" ", 1),
			rs[0].tcpConns,
			col(func(x result) float64 { return x.rate }, report.Rate),
			col(func(x result) float64 { return x.serverCPU }, fixed(2)),
			col(func(x result) float64 { return x.serverCPU / x.rate * 1e6 }, fixed(1)),
			col(func(x result) float64 { return x.idleKiB }, fixed(1)),
			col(func(x result) float64 { return x.loadKiB }, fixed(1)),
			col(func(x result) float64 { return x.goroutines }, fixed(2)),
			col(func(x result) float64 { return x.heapKiB }, fixed(1)),
			col(func(x result) float64 { return x.stackKiB }, fixed(1)))
	}
	p("\nCPU of the load client and of other processes during the measured windows, in cores: ")
	var parts []string
	for _, r := range sel {
		for _, x := range results[r.key] {
			parts = append(parts, fmt.Sprintf("%s %.2f / %.2f", r.key, x.clientCPU, x.otherCPU))
		}
	}
	p("%s.\n", strings.Join(parts, "; "))
	return b.String()
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "[h2bench] "+format+"\n", a...)
}

func fatal(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "h2bench: "+format+"\n", a...)
	os.Exit(1)
}
