package interop

// Reconnect storms: 500 clients against a server that closes every socket
// with 1013 (try again later) right after it opens. The reconnections of
// a round must spread over the backoff window (full jitter), and the
// windows must widen round after round (the backoff is not reset by an
// open that did not stay healthy, and 1013 adds to it), so the rate of
// arrivals falls off instead of repeating the same burst. These are
// statistics over 500 clients with generous bounds, not timings of one.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/client"
	"github.com/realtime-go/realtime/proxy"
	"github.com/realtime-go/realtime/websocket"
)

const (
	stormClients  = 500
	stormRounds   = 2 // reconnections per client after the first open
	stormMinDelay = 200 * time.Millisecond
	stormMaxDelay = 12 * time.Second
	stormBin      = 100 * time.Millisecond
)

// stormServer is a realtime.Handler on a loopback listener. Each client
// (query parameter c) connects and is held open until release; then
// every socket is closed with 1013 at once, as a server that sheds its
// load would, and every later socket is closed with 1013 as soon as it
// opens. It records when each client arrived.
//
// Holding the first connections keeps the burst of the clients' first
// dials (they all start at once, by design of the test) out of the
// rounds measured: round 1 starts at the mass close.
type stormServer struct {
	url     string
	start   time.Time
	release chan struct{}

	mu       sync.Mutex
	arrivals map[int][]time.Duration // since start, per client; [0] is when the first socket was closed
	unknown  int                     // arrivals without a valid c
}

func startStormServer(t *testing.T) *stormServer {
	t.Helper()
	ss := &stormServer{start: time.Now(), release: make(chan struct{}), arrivals: map[int][]time.Duration{}}
	h := realtime.Handler(&realtime.Options{}, func(ctx context.Context, s *realtime.Socket) {
		at := time.Since(ss.start)
		c, err := strconv.Atoi(s.Request().URL.Query().Get("c"))
		ss.mu.Lock()
		first := false
		if err != nil || c < 0 || c >= stormClients {
			ss.unknown++
		} else {
			first = len(ss.arrivals[c]) == 0
			ss.arrivals[c] = append(ss.arrivals[c], at)
		}
		ss.mu.Unlock()
		if first {
			select {
			case <-ss.release:
			case <-ctx.Done():
				return
			}
			ss.mu.Lock()
			ss.arrivals[c][0] = time.Since(ss.start)
			ss.mu.Unlock()
		}
		s.CloseWith(websocket.StatusTryAgainLater, "overloaded")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		srv.Close()
		<-served
	})
	ss.url = "http://" + ln.Addr().String() + "/rt"
	return ss
}

// shed waits until every client is connected, and closes them all
// with 1013.
func (ss *stormServer) shed(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ss.mu.Lock()
		n := len(ss.arrivals)
		ss.mu.Unlock()
		if n == stormClients {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d clients connected", n, stormClients)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(ss.release)
}

// waitRounds waits until every client arrived rounds+1 times (its first
// open and rounds reconnections), or until timeout, and returns a copy of
// the arrivals.
func (ss *stormServer) waitRounds(t *testing.T, rounds int, timeout time.Duration) map[int][]time.Duration {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ss.mu.Lock()
		done := len(ss.arrivals) == stormClients
		short := 0
		for c := range stormClients {
			if len(ss.arrivals[c]) < rounds+1 {
				done = false
				short++
			}
		}
		if done || time.Now().After(deadline) {
			cp := make(map[int][]time.Duration, len(ss.arrivals))
			for c, a := range ss.arrivals {
				cp[c] = slices.Clone(a)
			}
			unknown := ss.unknown
			ss.mu.Unlock()
			if unknown > 0 {
				t.Errorf("%d arrivals without a client number", unknown)
			}
			if !done {
				t.Fatalf("after %v, %d of %d clients had not reconnected %d times", timeout, short, stormClients, rounds)
			}
			return cp
		}
		ss.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
}

// stormRound is what the server saw of one round of reconnections.
type stormRound struct {
	n          int
	waits      []time.Duration // per client: this arrival less the previous one (or the mass close), sorted
	first      time.Duration   // the round's first and last arrival, since start
	last       time.Duration
	maxBin     int // the most arrivals in one stormBin
	maxBinFrac float64
}

func (r stormRound) pct(p float64) time.Duration {
	return r.waits[min(len(r.waits)-1, int(p*float64(len(r.waits))))]
}

// spread is the middle 90 % of the round's waits, which full jitter
// spreads over most of the window and narrow jitter does not.
func (r stormRound) spread() time.Duration { return r.pct(0.95) - r.pct(0.05) }

func (r stormRound) String() string {
	return fmt.Sprintf("%d arrivals over %v..%v (span %v); wait p5 %v, median %v, p95 %v (spread %v); busiest %v bin %d (%.1f%%)",
		r.n, r.first.Round(time.Millisecond), r.last.Round(time.Millisecond), (r.last - r.first).Round(time.Millisecond),
		r.pct(0.05).Round(time.Millisecond), r.pct(0.5).Round(time.Millisecond), r.pct(0.95).Round(time.Millisecond),
		r.spread().Round(time.Millisecond), stormBin, r.maxBin, 100*r.maxBinFrac)
}

// stormRounds splits arrivals into rounds: round k is each client's
// (k+1)-th arrival, its k-th reconnection.
func stormRoundsOf(arrivals map[int][]time.Duration, rounds int) []stormRound {
	out := make([]stormRound, rounds+1)
	for k := 1; k <= rounds; k++ {
		r := &out[k]
		bins := map[int64]int{}
		r.first = time.Duration(1<<63 - 1)
		for _, a := range arrivals {
			at := a[k]
			r.n++
			r.waits = append(r.waits, at-a[k-1])
			r.first = min(r.first, at)
			r.last = max(r.last, at)
			bins[int64(at/stormBin)]++
		}
		slices.Sort(r.waits)
		for _, c := range bins {
			r.maxBin = max(r.maxBin, c)
		}
		r.maxBinFrac = float64(r.maxBin) / float64(r.n)
	}
	return out[1:]
}

// stormWindow is the least backoff window of round k (k ≥ 1) that SPEC13
// allows: each close with 1013 raises the failures by 3 at least, so
// after k of them the window is min(MaxDelay, MinDelay·8^k) or wider.
func stormWindow(k int) time.Duration {
	w := stormMinDelay
	for range k {
		w *= 8
	}
	return min(w, stormMaxDelay)
}

// checkStorm asserts what the issue asks of the rounds, with bounds far
// from what full jitter gives and far from what the old backoff gave
// (waits of 0.5 to 1 × MinDelay every round, as every open reset it):
//   - round k's waits spread over at least half its least window
//     (stormWindow): the middle 90 % of the waits of full jitter cover
//     0.9 of the window;
//   - no stormBin holds more than 5 % of the clients plus twice the share
//     full jitter gives it (about 17 % in round 1, 7 % in round 2);
//   - the rate falls off: each later round's median wait is at least
//     twice the first round's (the window grows ×16 per round here, up
//     to MaxDelay), and its busiest bin holds fewer arrivals than the
//     first round's.
//
// Arrivals are taken at the server, so they include the time the server
// takes to accept a burst (about 1 s for 500 WebSockets under -race on a
// loaded machine); that can only widen a round, which is why the bounds
// on spread are kept at half the window.
func checkStorm(t *testing.T, who string, rounds []stormRound) {
	t.Helper()
	for i, r := range rounds {
		t.Logf("%s round %d (least window %v): %v", who, i+1, stormWindow(i+1), r)
	}
	for i, r := range rounds {
		w := stormWindow(i + 1)
		if r.spread() < w/2 {
			t.Errorf("%s round %d: the middle 90%% of the waits spread over %v, want at least %v (half the least window %v): the clients come back together",
				who, i+1, r.spread().Round(time.Millisecond), w/2, w)
		}
		if most := 0.05 + 2*float64(stormBin)/float64(w); r.maxBinFrac > most {
			t.Errorf("%s round %d: %d of %d clients (%.1f%%) arrived within one %v, want at most %.1f%%",
				who, i+1, r.maxBin, r.n, 100*r.maxBinFrac, stormBin, 100*most)
		}
	}
	first := rounds[0]
	for i, r := range rounds[1:] {
		if r.pct(0.5) < 2*first.pct(0.5) {
			t.Errorf("%s round %d: median wait %v, want at least twice round 1's %v: the backoff does not grow while every open is closed with 1013",
				who, i+2, r.pct(0.5).Round(time.Millisecond), first.pct(0.5).Round(time.Millisecond))
		}
		if r.maxBin >= first.maxBin {
			t.Errorf("%s round %d: busiest %v held %d arrivals, round 1's %d: the rate does not fall off",
				who, i+2, stormBin, r.maxBin, first.maxBin)
		}
	}
}

// stormTimeout bounds the wait for all rounds: the first open, then the
// windows (the first at most 16 × MinDelay, the later ones MaxDelay), with
// room for a loaded machine.
const stormTimeout = 16*stormMinDelay + (stormRounds-1)*stormMaxDelay + 12*time.Second

// 500 client.Sockets on WebSocket against a server that closes each with
// 1013 as soon as it opens.
func TestRealtimeReconnectStormGo(t *testing.T) {
	ss := startStormServer(t)
	d := &client.Dialer{Proxy: proxy.Direct}
	socks := make([]*client.Socket, stormClients)
	for i := range socks {
		s, err := d.Socket(ss.url+"?c="+strconv.Itoa(i), &client.SocketOptions{
			Transport: client.TransportWebSocket,
			MinDelay:  stormMinDelay,
			MaxDelay:  stormMaxDelay,
		})
		if err != nil {
			t.Fatal(err)
		}
		socks[i] = s
	}
	closeAll := func() {
		var wg sync.WaitGroup
		for _, s := range socks {
			wg.Go(func() { s.Close() })
		}
		wg.Wait()
	}
	defer closeAll()
	ss.shed(t)
	arrivals := ss.waitRounds(t, stormRounds, stormTimeout)
	closeAll()
	checkStorm(t, "Go client", stormRoundsOf(arrivals, stormRounds))
}

// clientJSPath is the browser client the handler serves: js/realtime.js
// in the npm package directory, or realtime.js at the root before it
// moved there.
func clientJSPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{filepath.Join("..", "js", "realtime.js"), filepath.Join("..", "realtime.js")} {
		if _, err := os.Stat(p); err == nil {
			abs, err := filepath.Abs(p)
			if err != nil {
				t.Fatal(err)
			}
			return abs
		}
	}
	t.Fatal("no realtime.js in ../js or ..")
	return ""
}

// needNodeRT returns the node binary after checking that the npm ws and
// eventsource packages, which stand in for the browser's WebSocket and
// EventSource, are installed.
func needNodeRT(t *testing.T) string {
	t.Helper()
	node := needNodeWS(t)
	if _, err := os.Stat(filepath.Join(nodeDir(t), "node_modules", "eventsource", "package.json")); err != nil {
		missingPeer(t, "npm package eventsource in interop/node (npm ci): %v", err)
	}
	return node
}

// rtPeer is node/rt-peer.mjs running the browser client.
type rtPeer struct {
	in     io.WriteCloser
	lines  chan string // stdout, line by line; closed at EOF
	stderr *syncBuffer
}

// startRTPeer runs node rt-peer.mjs with args after the client script;
// wrap, when set, wraps the command (ip netns exec ...). The peer is
// stopped at cleanup: stdin closed, then killed if it lingers.
func startRTPeer(t *testing.T, wrap []string, args ...string) *rtPeer {
	t.Helper()
	node := needNodeRT(t)
	argv := append(append(slices.Clone(wrap), node, "rt-peer.mjs", clientJSPath(t)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = nodeDir(t)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &rtPeer{lines: make(chan string, 1024), stderr: &syncBuffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node rt-peer.mjs: %v", err)
	}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	p.in = stdin
	t.Cleanup(func() {
		stdin.Close()
		exited := make(chan struct{})
		go func() {
			// Drain what is left so the reader can end.
			for range p.lines {
			}
			<-readDone
			cmd.Wait()
			close(exited)
		}()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("node rt-peer.mjs stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

// 500 RealtimeSockets of the browser client, run in Node with the npm ws
// package as WebSocket, against a server that closes each with 1013 as
// soon as it opens.
func TestRealtimeReconnectStormBrowser(t *testing.T) {
	ss := startStormServer(t)
	opts := fmt.Sprintf(`{"transport":"websocket","minDelay":%d,"maxDelay":%d}`, stormMinDelay.Milliseconds(), stormMaxDelay.Milliseconds())
	p := startRTPeer(t, nil, "storm", ss.url, strconv.Itoa(stormClients), opts)
	select {
	case line, ok := <-p.lines:
		if !ok || !strings.Contains(line, `"started"`) {
			t.Fatalf("node rt-peer.mjs: first line %q; stderr:\n%s", line, p.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("node rt-peer.mjs did not start; stderr:\n%s", p.stderr.String())
	}
	ss.shed(t)
	arrivals := ss.waitRounds(t, stormRounds, stormTimeout)
	checkStorm(t, "browser client", stormRoundsOf(arrivals, stormRounds))
}
