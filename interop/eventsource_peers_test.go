package interop

// Our eventsource server against real EventSource clients: headless
// Chromium, the npm eventsource package, and the Go r3labs/sse client. Every
// client reads a stream the server ends after a few events; it reconnects
// with Last-Event-ID, and a History replays what was published while it was
// away, so the client must see every event exactly once, in order.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	r3sse "github.com/r3labs/sse/v2"

	"github.com/realtime-go/realtime/eventsource"
)

// esEvent is event number n of every script: ids count up from 1, every
// third event has the type "tick" (the others are plain messages), every
// fourth has two lines of data, and the text is not all ASCII.
func esEvent(n int) eventsource.Event {
	ev := eventsource.Event{ID: strconv.Itoa(n), Data: fmt.Sprintf("event %d — grüße ✓ 😀", n)}
	if n%3 == 0 {
		ev.Type = "tick"
	}
	if n%4 == 0 {
		ev.Data += "\nsecond line of " + strconv.Itoa(n)
	}
	return ev
}

// esGot is one event as a client reports it.
type esGot struct {
	Type string `json:"type"`
	Data string `json:"data"`
	ID   string `json:"id"`
}

// checkESEvents checks that a client saw exactly the events from..to, in
// order: no gap, no duplicate.
func checkESEvents(t *testing.T, who string, got []esGot, from, to int) {
	t.Helper()
	want := to - from + 1
	for i, g := range got {
		n := from + i
		if n > to {
			t.Fatalf("%s: %d events, want %d (%d..%d); extra: %+v", who, len(got), want, from, to, got[i:])
		}
		ev := esEvent(n)
		typ := ev.Type
		if typ == "" {
			typ = "message"
		}
		if g.Type != typ || g.Data != ev.Data || g.ID != ev.ID {
			t.Fatalf("%s: event %d of %d..%d is %+v, want {Type:%s Data:%q ID:%s}; all: %+v", who, i, from, to, g, typ, ev.Data, ev.ID, got)
		}
	}
	if len(got) != want {
		t.Fatalf("%s: %d events, want %d (%d..%d): %+v", who, len(got), want, from, to, got)
	}
}

// checkESLifecycle checks a client's open and error events: one open per
// round, an error in state CONNECTING each time the server ended the stream,
// and a final error in state CLOSED for the 204.
func checkESLifecycle(t *testing.T, who string, opens int, errs []int, rounds int) {
	t.Helper()
	want := make([]int, rounds+1)
	want[rounds] = 2
	if opens != rounds || fmt.Sprint(errs) != fmt.Sprint(want) {
		t.Fatalf("%s: %d opens and errors (readyState) %v, want %d opens and %v", who, opens, errs, rounds, want)
	}
}

// esConn is what the scripted server saw of one connection.
type esConn struct {
	lastID   string // Stream.LastEventID
	header   string // the Last-Event-ID header
	proto    string
	accepted time.Time
	ended    time.Time
	lastSent string // id of the last event this connection was sent
	status   int    // 200, or the refusal
}

// esScript is a resumable event stream served in rounds. Connection k
// (k < rounds) is sent what its client missed (eventsource.Replay from a
// History), then live events, each added to the History as it is sent;
// then, except in the last round, more events are published while nobody
// listens, and the stream ends. Later connections get 204, which tells an
// EventSource to stop.
type esScript struct {
	t      *testing.T
	hist   *eventsource.History
	retry  time.Duration // Options.Retry
	live   int           // events sent live per connection
	missed int           // events published between connections
	rounds int
	// slowRetry, when positive, is set as the Retry field of the last live
	// event of round 1, so the client's second reconnection waits longer.
	slowRetry time.Duration

	mu     sync.Mutex
	next   int // number of the next event
	served int
	conns  []esConn
}

func newESScript(t *testing.T, rounds, live, missed int) *esScript {
	return &esScript{
		t:      t,
		hist:   eventsource.NewHistory(nil),
		retry:  200 * time.Millisecond,
		live:   live,
		missed: missed,
		rounds: rounds,
		next:   1,
	}
}

// prefill publishes n events before any client connects.
func (x *esScript) prefill(n int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for range n {
		x.publishLocked()
	}
}

func (x *esScript) publishLocked() *eventsource.EncodedEvent {
	e, err := x.hist.Add(esEvent(x.next))
	if err != nil {
		panic(err)
	}
	x.next++
	return e
}

// total is the number of the last event a client can get.
func (x *esScript) total() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.next - 1 + (x.rounds-x.served)*x.live + max(0, x.rounds-x.served-1)*x.missed
}

func (x *esScript) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x.mu.Lock()
	defer x.mu.Unlock() // rounds are sequential; holding the lock also orders Replay and publishing
	c := esConn{header: r.Header.Get("Last-Event-ID"), proto: r.Proto, accepted: time.Now()}
	if x.served >= x.rounds {
		c.status = http.StatusNoContent
		x.conns = append(x.conns, c)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	round := x.served
	x.served++
	s, err := eventsource.Accept(w, r, &eventsource.Options{Retry: x.retry})
	if err != nil {
		x.t.Errorf("script server: Accept: %v", err)
		return
	}
	defer s.Close()
	c.status = http.StatusOK
	c.lastID = s.LastEventID()
	ctx := r.Context()
	ok, err := eventsource.Replay(ctx, s, x.hist)
	if err != nil {
		x.t.Errorf("script server: round %d: Replay after %q: %v", round, c.lastID, err)
		return
	}
	if !ok {
		x.t.Errorf("script server: round %d: the History does not hold %q", round, c.lastID)
		return
	}
	c.lastSent = c.lastID
	for i := range x.live {
		ev := esEvent(x.next)
		if round == 1 && i == x.live-1 && x.slowRetry > 0 {
			ev.Retry = x.slowRetry
		}
		e, err := x.hist.Add(ev)
		if err != nil {
			x.t.Errorf("script server: %v", err)
			return
		}
		x.next++
		if err := s.SendEncoded(ctx, e); err != nil {
			x.t.Errorf("script server: round %d: send %s: %v", round, e.ID(), err)
			return
		}
		c.lastSent = e.ID()
	}
	if round < x.rounds-1 {
		for range x.missed {
			x.publishLocked()
		}
	}
	s.Close()
	c.ended = time.Now()
	x.conns = append(x.conns, c)
}

func (x *esScript) connections() []esConn {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]esConn(nil), x.conns...)
}

// checkResumes checks the server side of a client that read every round:
// each reconnection carried the id of the last event the previous
// connection was sent, and a final request was refused with 204 (when
// want204).
func (x *esScript) checkResumes(t *testing.T, who, firstID string, want204 bool) []esConn {
	t.Helper()
	conns := x.connections()
	n := x.rounds
	if want204 {
		n++
	}
	if len(conns) != n {
		t.Fatalf("%s: server saw %d requests, want %d: %+v", who, len(conns), n, conns)
	}
	for k, c := range conns[:x.rounds] {
		want := firstID
		if k > 0 {
			want = conns[k-1].lastSent
			if c.header != want {
				t.Fatalf("%s: request %d had Last-Event-ID %q, want %q", who, k, c.header, want)
			}
		}
		if c.lastID != want {
			t.Fatalf("%s: request %d: Stream.LastEventID() = %q, want %q", who, k, c.lastID, want)
		}
	}
	if want204 {
		if last := conns[x.rounds]; last.status != http.StatusNoContent || last.header != conns[x.rounds-1].lastSent {
			t.Fatalf("%s: final request %+v, want a 204 to Last-Event-ID %q", who, last, conns[x.rounds-1].lastSent)
		}
	}
	return conns
}

// startESScript serves x at /es (and extra handlers) on a fresh httptest
// server.
func startESScript(t *testing.T, x *esScript, extra map[string]http.HandlerFunc) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/es", x)
	for p, h := range extra {
		mux.HandleFunc(p, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// ---------------------------------------------------------------------------
// Headless Chromium
// ---------------------------------------------------------------------------

const esChromiumPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>eventsource</title></head><body>
<script>
const R = window.__es = { events: [], opens: 0, errors: [], done: false };
const es = new EventSource(ES_URL);
const record = (e) => R.events.push({ type: e.type, data: e.data, id: e.lastEventId });
es.onmessage = record;
es.addEventListener('tick', record);
es.onopen = () => { R.opens++; };
es.onerror = () => {
	R.errors.push(es.readyState);
	if (es.readyState === EventSource.CLOSED) R.done = true;
};
</script></body></html>
`

type esPageResult struct {
	Events []esGot `json:"events"`
	Opens  int     `json:"opens"`
	Errors []int   `json:"errors"`
	Done   bool    `json:"done"`
}

// runESPage loads a page that opens an EventSource on esPath and waits
// until the browser gives up on it (the server's 204).
func runESPage(t *testing.T, browser context.Context, srv *httptest.Server, esPath string) esPageResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(browser, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/page?es="+esPath)); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool]("window.__es && window.__es.done",
		chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		s, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("JSON.stringify(window.__es)"))
		t.Fatalf("the page's EventSource did not finish: %v; so far: %.3000s", err, s)
	}
	js, err := chromedp.Run(ctx, chromedp.Evaluate[string]("JSON.stringify(window.__es)"))
	if err != nil {
		t.Fatalf("reading the page result: %v", err)
	}
	var res esPageResult
	if err := json.Unmarshal([]byte(js), &res); err != nil {
		t.Fatalf("page result %q: %v", js, err)
	}
	return res
}

func esPageHandler(w http.ResponseWriter, r *http.Request) {
	u, _ := json.Marshal(r.URL.Query().Get("es"))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprint(w, strings.Replace(esChromiumPage, "ES_URL", string(u), 1))
}

func TestEventSourceChromium(t *testing.T) {
	browser := startChromium(t)

	t.Run("resume", func(t *testing.T) {
		// 3 connections of 3 live events, 2 published in each gap:
		// events 1..13. The browser must honour retry: 200 ms from the
		// stream head and 900 ms from event 8's retry field.
		x := newESScript(t, 3, 3, 2)
		x.slowRetry = 900 * time.Millisecond
		srv := startESScript(t, x, map[string]http.HandlerFunc{"/page": esPageHandler})
		res := runESPage(t, browser, srv, "/es")
		t.Logf("chromium: %d events, %d opens, errors (readyState) %v", len(res.Events), res.Opens, res.Errors)
		checkESEvents(t, "chromium", res.Events, 1, 13)
		checkESLifecycle(t, "chromium", res.Opens, res.Errors, x.rounds)
		conns := x.checkResumes(t, "chromium", "", true)
		// The browser must wait at least retry after the stream ends. An
		// ignored retry: 200 would mean Chromium's default of 3 s; the upper
		// bound tells the two apart with a wide margin.
		gap1 := conns[1].accepted.Sub(conns[0].ended)
		gap2 := conns[2].accepted.Sub(conns[1].ended)
		t.Logf("chromium: reconnected after %v (retry 200ms) and %v (retry 900ms)", gap1.Round(time.Millisecond), gap2.Round(time.Millisecond))
		if gap1 < 200*time.Millisecond || gap1 > 2500*time.Millisecond {
			t.Errorf("chromium reconnected %v after the stream ended, want at least the 200 ms retry and well below the 3 s default", gap1)
		}
		if gap2 < 900*time.Millisecond {
			t.Errorf("chromium reconnected %v after the stream ended, want at least the 900 ms retry of event 8", gap2)
		}
	})

	t.Run("query-resume", func(t *testing.T) {
		// A page that kept the last id it saw resumes on its first
		// connection with ?lastEventId=: events 1..5 exist, the page saw 3.
		x := newESScript(t, 2, 2, 1)
		x.prefill(5)
		srv := startESScript(t, x, map[string]http.HandlerFunc{"/page": esPageHandler})
		res := runESPage(t, browser, srv, "/es?lastEventId=3")
		checkESEvents(t, "chromium", res.Events, 4, x.total())
		conns := x.checkResumes(t, "chromium", "3", true)
		if conns[0].header != "" {
			t.Fatalf("chromium sent Last-Event-ID %q on its first connection", conns[0].header)
		}
	})
}

// ---------------------------------------------------------------------------
// npm eventsource (Node.js)
// ---------------------------------------------------------------------------

type esNodeResult struct {
	Events    []esGot `json:"events"`
	Opens     int     `json:"opens"`
	Errors    []int   `json:"errors"`
	Closed    bool    `json:"closed"`
	TimedOut  bool    `json:"timedOut"`
	LastError string  `json:"lastError"`
}

// runESNode runs node/es-peer.mjs against url until the EventSource closes.
func runESNode(t *testing.T, url string) esNodeResult {
	t.Helper()
	node := needExec(t, "node")
	if _, err := os.Stat(filepath.Join(nodeDir(t), "node_modules", "eventsource", "package.json")); err != nil {
		missingPeer(t, "npm package eventsource in interop/node (npm ci): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "es-peer.mjs", url, "tick", "60000")
	cmd.Dir = nodeDir(t)
	cmd.WaitDelay = 5 * time.Second
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node es-peer.mjs: %v; stderr:\n%s", err, stderr.String())
	}
	var res esNodeResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node es-peer.mjs printed %q: %v; stderr:\n%s", out, err, stderr.String())
	}
	if res.TimedOut || !res.Closed {
		t.Fatalf("node EventSource did not finish: %+v", res)
	}
	return res
}

func TestEventSourceNode(t *testing.T) {
	t.Run("resume", func(t *testing.T) {
		x := newESScript(t, 3, 4, 3)
		srv := startESScript(t, x, nil)
		res := runESNode(t, srv.URL+"/es")
		t.Logf("npm eventsource: %d events, %d opens, errors %v, last error %q", len(res.Events), res.Opens, res.Errors, res.LastError)
		checkESEvents(t, "npm eventsource", res.Events, 1, 18)
		checkESLifecycle(t, "npm eventsource", res.Opens, res.Errors, x.rounds)
		x.checkResumes(t, "npm eventsource", "", true)
	})
	t.Run("query-resume", func(t *testing.T) {
		x := newESScript(t, 2, 2, 1)
		x.prefill(6)
		srv := startESScript(t, x, nil)
		res := runESNode(t, srv.URL+"/es?lastEventId=2")
		checkESEvents(t, "npm eventsource", res.Events, 3, x.total())
		x.checkResumes(t, "npm eventsource", "2", true)
	})
}

// ---------------------------------------------------------------------------
// Go: github.com/r3labs/sse/v2 client
// ---------------------------------------------------------------------------

func TestEventSourceR3labsClient(t *testing.T) {
	x := newESScript(t, 4, 5, 2)
	srv := startESScript(t, x, nil)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := r3sse.NewClient(srv.URL + "/es")
	c.Connection = &http.Client{Transport: tr}

	var got []esGot
	var retryOnly int
	ctx := testCtx(t)
	// The r3labs client returns from Subscribe when the server ends the
	// stream cleanly; subscribing again with the same Client sends the
	// Last-Event-ID it kept.
	for round := range x.rounds {
		err := c.SubscribeWithContext(ctx, "", func(m *r3sse.Event) {
			if len(m.Data) == 0 && len(m.Event) == 0 && len(m.Retry) > 0 {
				// r3labs hands over a block holding only "retry:" as an
				// event; a browser dispatches nothing for it.
				retryOnly++
				return
			}
			typ := string(m.Event)
			if typ == "" {
				typ = "message"
			}
			got = append(got, esGot{Type: typ, Data: string(m.Data), ID: string(m.ID)})
		})
		if err != nil {
			t.Fatalf("r3labs: subscription %d: %v", round, err)
		}
	}
	t.Logf("r3labs: %d events (and %d retry-only blocks reported as events)", len(got), retryOnly)
	checkESEvents(t, "r3labs/sse", got, 1, 26)
	x.checkResumes(t, "r3labs/sse", "", false)
}
