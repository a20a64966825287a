// Package capacity is the capacity benchmark of issue 15 (the capbench
// command and its test): how many idle sockets one server process holds
// and at what memory, how fast they are set up, and how fast a broadcast
// reaches all of them, for realtime (WebSocket and EventSource) beside
// centrifuge, socket.io, a raw WebSocket and raw TCP.
//
// Each row runs a fresh server process (this binary, see MaybeServe, or
// node/sio-server.mjs), optionally under taskset with its own GOMAXPROCS;
// the load client (client.go) runs in the calling process.
package capacity

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/realtime-go/realtime/interop/internal/benchproc"
	"github.com/realtime-go/realtime/interop/internal/latency"
)

// A Row is one server and the kinds of socket connected to it, in turn.
type Row struct {
	Name      string
	Server    string // a goServers name, or "socketio"
	Kinds     []string
	Broadcast bool // the server can broadcast (the raw rows only hold sockets)
	Notes     string
}

// Rows are the rows the benchmark knows, in table order.
var Rows = []Row{
	{"rt-mixed", "realtime", []string{"rt-ws", "rt-es"}, true, "realtime.Handler + Hub, half WebSocket (realtime.v1), half EventSource"},
	{"rt-ws", "realtime", []string{"rt-ws"}, true, "realtime.Handler + Hub, WebSocket, protocol realtime.v1"},
	{"rt-es", "realtime", []string{"rt-es"}, true, "realtime.Handler + Hub, EventSource over HTTP/1.1"},
	{"cf-ws", "centrifuge", []string{"cf-ws"}, true, "centrifuge v0.40.1 WebsocketHandler, JSON protocol, in-memory broker, server-side subscription"},
	{"cf-sse", "centrifuge", []string{"cf-sse"}, true, "centrifuge v0.40.1 SSEHandler (PongTimeout -1), in-memory broker"},
	{"sio-ws", "socketio", []string{"sio-ws"}, true, "Node socket.io, WebSocket transport only, io.emit"},
	{"drv-ws", "drv-ws", []string{"drv-ws"}, true, "package websocket alone: websocket.Serve, a queue (channel of 256) and a writer goroutine per connection writing all that is queued as one Batch; a broadcast is one PreparedMessage put on every queue"},
	{"drv-es", "drv-es", []string{"drv-es"}, true, "package eventsource alone: eventsource.Broker (default options) through net/http, a broadcast is one Broker.Publish"},
	{"raw-ws", "raw-ws", []string{"raw-ws"}, false, "websocket.Serve, a ReadAppend loop per connection, no broadcast"},
	{"raw-tcp", "raw-tcp", []string{"raw-tcp"}, false, "net.Listener, a goroutine reading 512 B per connection, no broadcast"},
}

// RowByName returns the row called name.
func RowByName(name string) (Row, bool) {
	for _, r := range Rows {
		if r.Name == name {
			return r, true
		}
	}
	return Row{}, false
}

// Config is one run's settings. The zero value of a field means its
// default (see defaults).
type Config struct {
	Sockets  int     // per row (default 100,000)
	Messages int     // broadcasts of the burst after the single one (default 10)
	Size     int     // bytes per broadcast (default 64)
	Conc     int     // handshakes in flight (default 100)
	Sustain  Sustain // the sustained run
	// ServerCPUs and ClientCPUs are taskset CPU lists ("1", "0"), empty
	// for no pinning; GOMAXPROCS is the server's (0: the runtime's
	// default), and the client's when ClientCPUs is set.
	ServerCPUs, ClientCPUs string
	GOMAXPROCS             int
	NodeDir                string    // interop/node, for socket.io
	Log                    io.Writer // progress (default os.Stderr)
	// ProfileDir, if set, gets a CPU profile of the server of each row
	// that broadcasts, over its burst: ROW-N.pprof, N counting the runs
	// of the row in this process from 1. The server's write system calls
	// are counted over the burst too (perf stat; see
	// Broadcast.WritesPerMessage). Both slow the server: take the CPU
	// per delivery from runs without.
	ProfileDir string
	// HeapDir, if set, gets heap profiles of the live objects of each Go
	// server, sampled every 4 KiB: ROW-N-idle.heap with the sockets idle,
	// and for the sustained run ROW-N-start.heap before it publishes,
	// ROW-N-end.heap once it has delivered and ROW-N-after.heap when the
	// sockets have been idle again for Settle.
	HeapDir string
	// Settle is how long the sockets stay idle before their memory is
	// read, so that the handshakes' garbage is gone (default 2 s).
	Settle time.Duration
}

// Sustain is the sustained broadcast run: Rate broadcasts a second to
// Sockets sockets for Duration (0: no sustained run).
type Sustain struct {
	Sockets  int
	Rate     float64
	Duration time.Duration
}

func (c Config) defaults() Config {
	if c.Sockets == 0 {
		c.Sockets = 100000
	}
	if c.Messages == 0 {
		c.Messages = 10
	}
	if c.Size == 0 {
		c.Size = 64
	}
	if c.Conc == 0 {
		c.Conc = 100
	}
	if c.Log == nil {
		c.Log = os.Stderr
	}
	if c.Settle == 0 {
		c.Settle = 2 * time.Second
	}
	return c
}

// Broadcast is what one broadcast window measured.
type Broadcast struct {
	Messages      int
	Deliveries    int64
	Latency       [3]time.Duration // p50, p99, max: publication to delivery, across deliveries
	PerSecond     float64          // deliveries a second, from the first publication to the last delivery
	CPUPerMessage time.Duration    // server CPU per delivery
	// WritesPerMessage is the server's write-type system calls per
	// delivery (counted with perf only in a profiled burst, see
	// Config.ProfileDir; else 0): below 1 when writes carry several
	// messages, and those calls are most of what a delivery costs.
	WritesPerMessage float64
	// Cores used over the window by the server, the load client and
	// everything else: a client near 1 may be what limits the rate, and
	// "other" above a little means a noisy machine.
	Server, Client, Other float64
	// Unfinished is set when the window ended with the server still
	// publishing: it could not keep the rate, and answers nothing else
	// until it is done.
	Unfinished bool
}

// Result is one row's measurements.
type Result struct {
	Row               Row
	Sockets           int
	HandshakesPerSec  float64
	BaseKiB, IdleKiB  int64 // server RSS before connecting, and with the sockets idle
	Goroutines        int   // server goroutines with the sockets idle (0 for Node)
	One, Burst        Broadcast
	Wrong             int // sockets that did not get every message exactly once, in order
	Closed            int // sockets the server closed
	SustainResult     *SustainResult
	ServerDescription string
}

// KiBPerSocket is the server's RSS growth per idle socket.
func (r *Result) KiBPerSocket() float64 {
	return float64(r.IdleKiB-r.BaseKiB) / float64(r.Sockets)
}

// SustainResult is the sustained run's measurements.
type SustainResult struct {
	Sockets               int
	Rate                  float64
	Duration              time.Duration
	Expected              int64
	Broadcast             Broadcast
	StartKiB, EndKiB, Max int64 // server RSS 1 s into publishing, at its end, and the highest sampled
	// BeforeKiB is the server's RSS with the sockets idle before the
	// run, AfterKiB with them idle again Settle after it; both after a
	// collection that returns the free memory to the system, so that
	// they differ by what the run left behind.
	BeforeKiB, AfterKiB int64
	// BeforeMem and AfterMem are the Go server's account of its memory
	// at those two points (as Mem; nil for Node).
	BeforeMem, AfterMem map[string]int64
	RSS                 []RSSSample // the server's RSS each second of the run
	// Mem is the Go server's own account of its memory each second of
	// the run (runtime/metrics, KiB by short name: live, goal, objects,
	// free, released, stacks, ...; see the server's memMetrics), with
	// "ms" the time since publishing started; nil for Node.
	Mem           []map[string]int64
	Wrong, Closed int
}

// RSSSample is the server's RSS at a time of the sustained run.
type RSSSample struct {
	At  time.Duration // since publishing started
	KiB int64
}

// session is a server process with a load client connected to it.
type session struct {
	cfg    Config
	row    Row
	srv    *benchproc.Child
	cl     *Client
	res    *Result
	lastSq int64
	heapN  int // the number of the session's heap profiles, see heap
}

func (s *session) close() {
	if s.cl != nil {
		s.cl.Close()
	}
	if s.srv != nil {
		s.srv.Stop()
	}
}

func (s *session) logf(format string, args ...any) {
	fmt.Fprintf(s.cfg.Log, "capacity %s: "+format+"\n", append([]any{s.row.Name}, args...)...)
}

// startServer starts the row's server process.
func startServer(cfg Config, name string) (*benchproc.Child, error) {
	var argv []string
	if name == "socketio" {
		argv = []string{"node", "--expose-gc", filepath.Join(cfg.NodeDir, "sio-server.mjs")}
	} else {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		argv = []string{exe}
	}
	if cfg.ServerCPUs != "" {
		argv = append([]string{"taskset", "-c", cfg.ServerCPUs}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), ServeEnv+"="+name)
	if cfg.GOMAXPROCS > 0 {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(cfg.GOMAXPROCS))
	}
	if cfg.HeapDir != "" {
		cmd.Env = append(cmd.Env, heapEnv+"=1")
	}
	return benchproc.StartCommand(name, cmd)
}

// answer parses a server's "k=v k=v" answer.
func answer(line string, err error) (map[string]int64, error) {
	if err != nil {
		return nil, err
	}
	m := map[string]int64{}
	for _, f := range strings.Fields(line) {
		k, v, _ := strings.Cut(f, "=")
		if k == "error" {
			return nil, fmt.Errorf("server: %s", v)
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		m[k] = n
	}
	return m, nil
}

// open starts the row's server and connects n sockets to it.
func open(cfg Config, row Row, n int) (*session, error) {
	s := &session{cfg: cfg, row: row, res: &Result{Row: row, Sockets: n}}
	srv, err := startServer(cfg, row.Server)
	if err != nil {
		return nil, err
	}
	s.srv = srv
	time.Sleep(300 * time.Millisecond)
	if _, err := answer(srv.Do("stats")); err != nil {
		s.close()
		return nil, err
	}
	time.Sleep(300 * time.Millisecond)
	s.res.BaseKiB, _ = benchproc.RSSKiB(srv.PID)

	port, _ := strconv.Atoi(srv.Addr[strings.LastIndexByte(srv.Addr, ':')+1:])
	var kinds []*proto
	for _, k := range row.Kinds {
		kinds = append(kinds, protos[k])
	}
	// Source addresses 127.a.b.x, different for each run, so that sockets
	// in TIME_WAIT from a run before cannot collide.
	cl, err := NewClient(port, kinds, cfg.Conc, [2]byte{byte(10 + rand.IntN(240)), byte(rand.IntN(100))})
	if err != nil {
		s.close()
		return nil, err
	}
	s.cl = cl
	t0 := time.Now()
	cl.Dial(n)
	deadline := t0.Add(30*time.Second + time.Duration(n)*time.Millisecond)
	for {
		st := cl.Stats()
		if st.Failed > 0 || st.Closed > 0 {
			s.close()
			return nil, fmt.Errorf("%d sockets failed, %d closed, after %d set up: %w", st.Failed, st.Closed, st.Opened, st.Err)
		}
		if st.Opened == n {
			s.res.HandshakesPerSec = float64(n) / st.LastReady.Sub(t0).Seconds()
			break
		}
		if time.Now().After(deadline) {
			s.close()
			return nil, fmt.Errorf("only %d of %d sockets set up in %v", st.Opened, n, time.Since(t0).Round(time.Second))
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.logf("%d sockets set up, %.0f/s", n, s.res.HandshakesPerSec)
	// The server may count a socket a moment after its first message.
	for deadline := time.Now().Add(30 * time.Second); ; {
		m, err := answer(srv.Do("stats"))
		if err != nil {
			s.close()
			return nil, err
		}
		if int(m["sockets"]) == n {
			break
		}
		if time.Now().After(deadline) {
			s.close()
			return nil, fmt.Errorf("the server counts %d sockets of %d", m["sockets"], n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return s, nil
}

// idle measures the server's memory with the sockets idle.
func (s *session) idle() error {
	time.Sleep(s.cfg.Settle)
	m, err := answer(s.srv.Do("stats"))
	if err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond)
	s.res.Goroutines = int(m["goroutines"])
	s.res.IdleKiB, err = benchproc.RSSKiB(s.srv.PID)
	s.logf("idle: %d KiB RSS (%.2f KiB a socket), %d goroutines, %d KiB heap, %d KiB stacks", s.res.IdleKiB, s.res.KiBPerSocket(), s.res.Goroutines, m["heap"], m["stacks"])
	if err != nil {
		return err
	}
	return s.heap("idle")
}

// publish has the server publish n messages at rate a second (0: at
// once) and waits until every socket has them; during waits it calls
// sample each second, if not nil. With partial, a server that has not
// got them all out within timeout (one that cannot keep the rate) is
// not an error: the window ends there, with what has arrived.
func (s *session) publish(n int, rate float64, timeout time.Duration, partial bool, sample func()) (Broadcast, error) {
	b := Broadcast{Messages: n}
	want := s.cl.Stats().Delivered + int64(n)*int64(s.res.Sockets)
	s.cl.ResetLatency()
	s.lastSq += int64(n) // the server numbers the messages on from the last
	start := time.Now()
	u0 := benchproc.ReadUsage(s.srv.PID)
	type reply struct {
		m   map[string]int64
		err error
	}
	done := make(chan reply, 1)
	go func() {
		m, err := answer(s.srv.DoTimeout(fmt.Sprintf("publish %d %d %g", n, s.cfg.Size, rate), timeout))
		done <- reply{m, err}
	}()
	var m map[string]int64
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(timeout)
	lastSample := time.Now()
	var lastCount int64
	lastChange := time.Now()
	for got := false; ; {
		select {
		case r := <-done:
			if r.err != nil {
				return b, r.err
			}
			m, got = r.m, true
			s.lastSq = m["last"]
		case <-tick.C:
		}
		if sample != nil && time.Since(lastSample) >= time.Second {
			lastSample = time.Now()
			sample()
		}
		st := s.cl.Stats()
		if got && st.Delivered >= want {
			break
		}
		if st.Delivered != lastCount {
			lastCount, lastChange = st.Delivered, time.Now()
		}
		// Sockets the server closed (or messages it dropped) will not
		// come: when nothing has arrived for 5 s after the last
		// publication, the window ends and check counts what is missing.
		if got && time.Since(lastChange) > 5*time.Second {
			break
		}
		if time.Now().After(deadline) {
			if partial {
				s.logf("the window ends after %v with the server still publishing or sending", timeout)
				b.Unfinished = !got
				break
			}
			return b, fmt.Errorf("delivered %d of %d in %v", st.Delivered-(want-int64(n)*int64(s.res.Sockets)), int64(n)*int64(s.res.Sockets), timeout)
		}
	}
	w := benchproc.ReadUsage(s.srv.PID).Since(u0)
	st := s.cl.Stats()
	h := s.cl.ResetLatency()
	b.Deliveries = st.Delivered - (want - int64(n)*int64(s.res.Sockets))
	b.Latency = quantiles(h)
	if m != nil {
		start = time.Unix(0, m["start"])
	}
	if span := st.LastDelivery.Sub(start); span > 0 {
		b.PerSecond = float64(b.Deliveries) / span.Seconds()
	}
	b.Server, b.Client, b.Other = w.ServerCPU, w.ClientCPU, w.OtherCPU
	if b.Deliveries > 0 {
		b.CPUPerMessage = time.Duration(w.ServerCPU * w.Seconds * float64(time.Second) / float64(b.Deliveries))
	}
	return b, nil
}

func quantiles(h *latency.Histogram) [3]time.Duration {
	return [3]time.Duration{h.Quantile(0.5), h.Quantile(0.99), h.Quantile(1)}
}

// check counts the sockets that did not get every message exactly once.
func (s *session) check() {
	open, wrong := s.cl.Check(s.lastSq)
	s.res.Wrong = wrong + (s.res.Sockets - open)
	s.res.Closed = s.cl.Stats().Closed
}

// profiled counts the profiles written per row, for their names.
var profiled = map[string]int{}

// heaps counts the sessions of each row whose heap was profiled.
var heaps = map[string]int{}

// heap writes a heap profile of the server into cfg.HeapDir as
// ROW-N-what.heap, if cfg.HeapDir is set and the server is a Go one.
// The session's first call numbers it.
func (s *session) heap(what string) error {
	if s.cfg.HeapDir == "" || s.row.Server == "socketio" {
		return nil
	}
	if s.heapN == 0 {
		heaps[s.row.Name]++
		s.heapN = heaps[s.row.Name]
	}
	path, err := filepath.Abs(filepath.Join(s.cfg.HeapDir, fmt.Sprintf("%s-%d-%s.heap", s.row.Name, s.heapN, what)))
	if err != nil {
		return err
	}
	if _, err := answer(s.srv.Do("heap " + path)); err != nil {
		return err
	}
	s.logf("heap profile: %s", path)
	return nil
}

// collectedRSS has the server collect its garbage and return the free
// memory to the system, and reads its RSS and, from a Go server, its
// own account of its memory.
func (s *session) collectedRSS() (int64, map[string]int64, error) {
	if _, err := answer(s.srv.Do("stats")); err != nil {
		return 0, nil, err
	}
	time.Sleep(300 * time.Millisecond)
	kib, err := benchproc.RSSKiB(s.srv.PID)
	if err != nil || s.row.Server == "socketio" {
		return kib, nil, err
	}
	m, err := answer(s.srv.Do("mem"))
	return kib, m, err
}

// profile starts the server's CPU profile into cfg.ProfileDir and the
// count of its write system calls, if cfg.ProfileDir is set, and returns
// what stops both and returns the count.
func (s *session) profile() (stop func() (writes int64, err error), err error) {
	if s.cfg.ProfileDir == "" || s.row.Server == "socketio" {
		return func() (int64, error) { return 0, nil }, nil
	}
	profiled[s.row.Name]++
	path, err := filepath.Abs(filepath.Join(s.cfg.ProfileDir, fmt.Sprintf("%s-%d.pprof", s.row.Name, profiled[s.row.Name])))
	if err != nil {
		return nil, err
	}
	sc, err := benchproc.StartSyscallCounter(s.srv.PID)
	if err != nil {
		return nil, err
	}
	time.Sleep(200 * time.Millisecond) // perf attaches
	if err := sc.Enable(); err != nil {
		sc.Finish()
		return nil, err
	}
	if _, err := answer(s.srv.Do("profile " + path)); err != nil {
		sc.Finish()
		return nil, err
	}
	return func() (int64, error) {
		_, err := answer(s.srv.Do("profile-stop"))
		if derr := sc.Disable(); err == nil {
			err = derr
		}
		_, writes, ferr := sc.Finish()
		if err == nil {
			err = ferr
		}
		if err == nil {
			s.logf("CPU profile of the burst: %s; %d write system calls", path, writes)
		}
		return writes, err
	}, nil
}

// RunRow measures one row.
func RunRow(cfg Config, row Row) (*Result, error) {
	cfg = cfg.defaults()
	s, err := open(cfg, row, cfg.Sockets)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", row.Name, err)
	}
	defer s.close()
	if err := s.idle(); err != nil {
		return nil, fmt.Errorf("%s: %w", row.Name, err)
	}
	if row.Broadcast {
		timeout := time.Minute + time.Duration(cfg.Sockets*cfg.Messages)*20*time.Microsecond
		if s.res.One, err = s.publish(1, 0, timeout, false, nil); err != nil {
			return nil, fmt.Errorf("%s: one broadcast: %w", row.Name, err)
		}
		s.logf("one broadcast: last delivery after %v", s.res.One.Latency[2])
		stop, err := s.profile()
		if err != nil {
			return nil, fmt.Errorf("%s: profile: %w", row.Name, err)
		}
		s.res.Burst, err = s.publish(cfg.Messages, 0, timeout, false, nil)
		writes, perr := stop()
		if err == nil && perr != nil {
			err = fmt.Errorf("profile: %w", perr)
		}
		if s.res.Burst.Deliveries > 0 {
			s.res.Burst.WritesPerMessage = float64(writes) / float64(s.res.Burst.Deliveries)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %d broadcasts: %w", row.Name, cfg.Messages, err)
		}
		s.logf("%d broadcasts: %.0f deliveries/s", cfg.Messages, s.res.Burst.PerSecond)
	}
	s.check()
	return s.res, nil
}

// RunSustain runs the sustained broadcast on a fresh server of row.
func RunSustain(cfg Config, row Row) (*SustainResult, error) {
	cfg = cfg.defaults()
	if !row.Broadcast {
		return nil, errors.New(row.Name + " does not broadcast")
	}
	sus := cfg.Sustain
	s, err := open(cfg, row, sus.Sockets)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", row.Name, err)
	}
	defer s.close()
	time.Sleep(s.cfg.Settle)
	n := int(sus.Rate * sus.Duration.Seconds())
	r := &SustainResult{Sockets: sus.Sockets, Rate: sus.Rate, Duration: sus.Duration, Expected: int64(n) * int64(sus.Sockets)}
	fail := func(err error) (*SustainResult, error) { return nil, fmt.Errorf("%s: sustained: %w", row.Name, err) }
	if r.BeforeKiB, r.BeforeMem, err = s.collectedRSS(); err != nil {
		return fail(err)
	}
	if err := s.heap("start"); err != nil {
		return fail(err)
	}
	t0 := time.Now()
	sample := func() {
		kib, _ := benchproc.RSSKiB(s.srv.PID)
		if len(r.RSS) == 0 {
			r.StartKiB = kib
		}
		r.RSS = append(r.RSS, RSSSample{time.Since(t0), kib})
		r.Max = max(r.Max, kib)
		r.EndKiB = kib
	}
	r.Broadcast, err = s.publish(n, sus.Rate, sus.Duration+30*time.Second, true, sample)
	if err != nil {
		return fail(err)
	}
	sample()
	if r.Broadcast.Unfinished {
		// The server's account of its memory would wait for the rest of
		// the publications: the row reports what arrived.
		s.check()
		r.Wrong, r.Closed = s.res.Wrong, s.res.Closed
		s.logf("sustained: fell behind, %d of %d delivered", r.Broadcast.Deliveries, r.Expected)
		return r, nil
	}
	if row.Server != "socketio" {
		line, err := s.srv.Do("memlog")
		if err != nil {
			return fail(err)
		}
		for _, e := range strings.Split(line, ",") {
			if m, err := answer(e, nil); err == nil && len(m) > 0 {
				r.Mem = append(r.Mem, m)
			}
		}
	}
	if err := s.heap("end"); err != nil {
		return fail(err)
	}
	time.Sleep(s.cfg.Settle)
	if r.AfterKiB, r.AfterMem, err = s.collectedRSS(); err != nil {
		return fail(err)
	}
	if err := s.heap("after"); err != nil {
		return fail(err)
	}
	s.logf("sustained: RSS %d KiB idle before, %d KiB idle after (collected)", r.BeforeKiB, r.AfterKiB)
	s.check()
	r.Wrong, r.Closed = s.res.Wrong, s.res.Closed
	s.logf("sustained: %d of %d delivered, p99 %v", r.Broadcast.Deliveries, r.Expected, r.Broadcast.Latency[1])
	return r, nil
}
