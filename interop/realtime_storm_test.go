package interop

// Reconnect storms: 500 clients against a server that closes every socket
// with 1013 (try again later) right after it opens. The reconnections of
// a round must spread over the backoff window (full jitter), and the
// windows must widen round after round (the backoff is not reset by an
// open that did not stay healthy, and 1013 adds to it), so the rate of
// arrivals falls off instead of repeating the same burst. These are
// statistics over 500 clients with generous bounds, not timings of one.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
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
	handler http.Handler // what url's server serves
	n       int          // clients, numbered 0..n-1
	start   time.Time
	release chan struct{}

	mu       sync.Mutex
	arrivals map[int][]time.Duration // since start, per client; [0] is when the first socket was closed
	unknown  int                     // arrivals without a valid c
}

// It serves /rt, and the page stormPage at / for the browsers.
func startStormServer(t *testing.T, n int) *stormServer {
	t.Helper()
	ss := &stormServer{n: n, start: time.Now(), release: make(chan struct{}), arrivals: map[int][]time.Duration{}}
	// The browsers' pages spread their sockets over several ports of
	// 127.0.0.1 (see stormBrowserPorts).
	h := realtime.Handler(&realtime.Options{OriginPatterns: []string{"127.0.0.1:*"}}, func(ctx context.Context, s *realtime.Socket) {
		at := time.Since(ss.start)
		c, err := strconv.Atoi(s.Request().URL.Query().Get("c"))
		ss.mu.Lock()
		first := false
		if err != nil || c < 0 || c >= ss.n {
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
	ss.handler = rtPageMux(h, stormPage)
	ss.url = "http://" + rtServe(t, rtListen(t), ss.handler) + "/rt"
	return ss
}

// rtListen listens on a free loopback port.
func rtListen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// rtServe serves h on ln until the test ends, and returns ln's address.
// At cleanup the server is closed at once: a test may leave its clients
// behind a cut link, which would never say goodbye.
func rtServe(t *testing.T, ln net.Listener, h http.Handler) string {
	t.Helper()
	srv := &http.Server{Handler: h}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-served
	})
	return ln.Addr().String()
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
		if n == ss.n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d clients connected", n, ss.n)
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
		done := len(ss.arrivals) == ss.n
		short := 0
		for c := range ss.n {
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
				t.Fatalf("after %v, %d of %d clients had not reconnected %d times", timeout, short, ss.n, rounds)
			}
			return cp
		}
		ss.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
}

// stormRound is what the server saw of one round of reconnections.
type stormRound struct {
	k      int
	n      int
	waits  []time.Duration // per client: this arrival less the previous one (or the mass close), sorted
	first  time.Duration   // the round's first and last arrival, since start
	last   time.Duration
	eighth float64 // the largest share of the arrivals in one eighth of the least window
	peak   int     // the most arrivals in one stormRateBin
	rates  []int   // arrivals per stormRateBin, from the round's first
}

// stormRateBin is the bin of the arrival rates compared between rounds.
const stormRateBin = 500 * time.Millisecond

func (r stormRound) pct(p float64) time.Duration {
	return r.waits[min(len(r.waits)-1, int(p*float64(len(r.waits))))]
}

// spread is the middle 90 % of the round's waits, which full jitter
// spreads over most of the window and narrow jitter does not.
func (r stormRound) spread() time.Duration { return r.pct(0.95) - r.pct(0.05) }

func (r stormRound) String() string {
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("%d arrivals over %v..%v (span %v); wait p5 %v, median %v, p95 %v (spread %v); busiest %v (window/8) %.1f%%; peak %d per %v",
		r.n, ms(r.first), ms(r.last), ms(r.last-r.first), ms(r.pct(0.05)), ms(r.pct(0.5)), ms(r.pct(0.95)), ms(r.spread()),
		ms(stormWindow(r.k)/8), 100*r.eighth, r.peak, stormRateBin)
}

// maxBin returns the most of ats in one bin of width w.
func maxBin(ats []time.Duration, w time.Duration) int {
	bins := map[time.Duration]int{}
	most := 0
	for _, at := range ats {
		bins[at/w]++
		most = max(most, bins[at/w])
	}
	return most
}

// stormRoundsOf splits arrivals into rounds: round k is each client's
// (k+1)-th arrival, its k-th reconnection.
func stormRoundsOf(arrivals map[int][]time.Duration, rounds int) []stormRound {
	var out []stormRound
	for k := 1; k <= rounds; k++ {
		r := stormRound{k: k, first: time.Duration(1<<63 - 1)}
		var ats []time.Duration
		for _, a := range arrivals {
			at := a[k]
			r.n++
			ats = append(ats, at)
			r.waits = append(r.waits, at-a[k-1])
			r.first = min(r.first, at)
			r.last = max(r.last, at)
		}
		slices.Sort(r.waits)
		r.eighth = float64(maxBin(ats, stormWindow(k)/8)) / float64(r.n)
		r.peak = maxBin(ats, stormRateBin)
		r.rates = make([]int, (r.last-r.first)/stormRateBin+1)
		for _, at := range ats {
			r.rates[(at-r.first)/stormRateBin]++
		}
		out = append(out, r)
	}
	return out
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
//   - no eighth of that window holds more than 35 % of the arrivals
//     (full jitter: 12.5 % at most, less when the window is wider);
//   - the rate falls off: each later round's median wait is at least
//     twice the first round's (the window grows ×16 per round here, up
//     to MaxDelay), and its peak rate is lower than the first round's.
//
// Arrivals are taken at the server, so they include the time the server
// takes to close and accept a burst (a second or more for 500 WebSockets
// under -race on a loaded machine), and a stall of the test process
// bunches the arrivals that queued meanwhile; hence bins that are an
// eighth of the window, not a fixed 100 ms, and bounds far from what
// full jitter gives.
func checkStorm(t *testing.T, who string, rounds []stormRound) {
	t.Helper()
	for _, r := range rounds {
		t.Logf("%s round %d (least window %v): %v; arrivals per %v: %v", who, r.k, stormWindow(r.k), r, stormRateBin, r.rates)
	}
	for _, r := range rounds {
		w := stormWindow(r.k)
		if r.spread() < w/2 {
			t.Errorf("%s round %d: the middle 90%% of the waits spread over %v, want at least %v (half the least window %v): the clients come back together",
				who, r.k, r.spread().Round(time.Millisecond), w/2, w)
		}
		if r.eighth > 0.35 {
			t.Errorf("%s round %d: %.1f%% of the clients arrived within %v (an eighth of the least window), want at most 35%%",
				who, r.k, 100*r.eighth, w/8)
		}
	}
	first := rounds[0]
	for _, r := range rounds[1:] {
		if r.pct(0.5) < 2*first.pct(0.5) {
			t.Errorf("%s round %d: median wait %v, want at least twice round 1's %v: the backoff does not grow while every open is closed with 1013",
				who, r.k, r.pct(0.5).Round(time.Millisecond), first.pct(0.5).Round(time.Millisecond))
		}
		if r.peak >= first.peak {
			t.Errorf("%s round %d: peak of %d arrivals in %v, round 1's %d: the rate does not fall off",
				who, r.k, r.peak, stormRateBin, first.peak)
		}
	}
}

// watchStalls measures how late a 20 ms ticker of the test process runs,
// until the returned function is called, which reports the worst: a
// stalled process (a loaded machine) accepts the connections that
// queued meanwhile together, which the statistics would take for a
// storm.
func watchStalls() (worst func() time.Duration) {
	done := make(chan struct{})
	result := make(chan time.Duration, 1)
	go func() {
		var most time.Duration
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case now := <-tick.C:
				most = max(most, now.Sub(last)-20*time.Millisecond)
				last = now
			case <-done:
				result <- most
				return
			}
		}
	}()
	return func() time.Duration {
		close(done)
		return <-result
	}
}

// stormTimeout bounds the wait for all rounds: the first open, then the
// windows (the first at most 16 × MinDelay, the later ones MaxDelay), with
// room for a loaded machine.
const stormTimeout = 16*stormMinDelay + (stormRounds-1)*stormMaxDelay + 12*time.Second

// 500 client.Sockets on WebSocket against a server that closes each with
// 1013 as soon as it opens.
func TestRealtimeReconnectStormGo(t *testing.T) {
	ss := startStormServer(t, stormClients)
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
	stalls := watchStalls()
	ss.shed(t)
	arrivals := ss.waitRounds(t, stormRounds, stormTimeout)
	t.Logf("the test process stalled for %v at most", stalls().Round(time.Millisecond))
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

// startRTPeer runs node/rt-peer.mjs, the browser client in Node, with
// args after the client script; wrap, when set, wraps the command (ip
// netns exec ...). It is stopped at cleanup.
func startRTPeer(t *testing.T, wrap []string, args ...string) *nodePeer {
	t.Helper()
	argv := append(append(slices.Clone(wrap), needNodeRT(t), "rt-peer.mjs", clientJSPath(t)), args...)
	return startLinePeer(t, "rt-peer.mjs", nodeDir(t), argv[0], argv[1:]...)
}

// 500 RealtimeSockets of the browser client, run in Node with the npm ws
// package as WebSocket, against a server that closes each with 1013 as
// soon as it opens.
func TestRealtimeReconnectStormBrowser(t *testing.T) {
	ss := startStormServer(t, stormClients)
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
	// The lines end when the peer does, at cleanup.
	lags := &syncBuffer{}
	go func() {
		for line := range p.lines {
			if strings.Contains(line, `"lag"`) {
				fmt.Fprintln(lags, line)
			}
		}
	}()
	stalls := watchStalls()
	ss.shed(t)
	arrivals := ss.waitRounds(t, stormRounds, stormTimeout)
	t.Logf("the test process stalled for %v at most; node's event loop stalls over 300 ms: %q", stalls().Round(time.Millisecond), lags.String())
	checkStorm(t, "browser client", stormRoundsOf(arrivals, stormRounds))
}
