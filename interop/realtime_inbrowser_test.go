package interop

// The reconnect storm and the POST retries of the browser client in real
// browsers (Chromium and Firefox), against the same servers, proxy and
// checks as the runs of the client in Node (realtime_storm_test.go,
// realtime_deadlink_test.go): Node's ws and eventsource packages stand in
// for the browser's WebSocket and EventSource there, and here the
// browser's own are used.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/realtime-go/realtime"
)

// rtPageMux serves the realtime handler h at /rt, the browser client at
// /realtime.js and a test page at / that loads the client and then runs
// script, so that the page and the sockets share an origin.
func rtPageMux(h http.Handler, script string) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/rt", h)
	mux.Handle("/realtime.js", realtime.ClientJS())
	page := "<!doctype html>\n<meta charset=\"utf-8\"><title>realtime test</title>\n" +
		"<script src=\"/realtime.js\"></script>\n<script>\n'use strict';\n" + script + "</script>\n"
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(page))
	})
	return mux
}

// stormPage opens the query's n RealtimeSockets on WebSocket,
// number c to /rt?c=c on the port ports[c % len(ports)] of the page's
// host (ports: the query's, comma-separated), with its minDelay and
// maxDelay; window.__storm counts their opens, reconnecting events (by
// code) and errors, and records by how many ms each reopen came after
// the delay the client announced (the browser's own latency), and
// __stormClose closes them all.
const stormPage = `const q = new URLSearchParams(location.search);
const S = window.__storm = { opens: 0, reconnects: 0, errors: 0, codes: {}, late: [] };
const ports = q.get('ports').split(',');
const socks = [];
for (let c = 0; c < Number(q.get('n')); c++) {
  const url = 'http://' + location.hostname + ':' + ports[c % ports.length] + '/rt?c=' + c;
  const s = new RealtimeSocket(url, {
    transport: 'websocket', minDelay: Number(q.get('minDelay')), maxDelay: Number(q.get('maxDelay')),
  });
  let due = 0;
  s.addEventListener('open', () => {
    S.opens++;
    if (due) S.late.push(Math.round(performance.now() - due));
  });
  s.addEventListener('reconnecting', (e) => {
    S.reconnects++;
    S.codes[e.detail.code] = (S.codes[e.detail.code] || 0) + 1;
    due = performance.now() + e.detail.delay;
  });
  s.addEventListener('error', () => { S.errors++; });
  socks.push(s);
}
window.__stormClose = () => { for (const s of socks) s.close(); return true; };
`

// The storm in a browser: one page opens stormBrowserClients
// RealtimeSockets (Firefox allows 200 WebSockets by default,
// network.websocket.max-connections; Chromium 255 per renderer), spread
// over stormBrowserPorts ports of the server. Browsers open one WebSocket
// to a host and port at a time (RFC 6455, section 4.1), and Chromium
// delays every new WebSocket of a renderer that has many pending
// (services/network/websocket_throttler.cc: 1-5 s × 2^min(pending, 16) /
// 65536, that is 1-5 s with 16 pending): on a single port the queue of a
// round would measure Chromium's damping instead of the client's.
const (
	stormBrowserClients = 150
	stormBrowserPorts   = 15
)

// stormPageState is window.__storm of a stormPage.
type stormPageState struct {
	Opens      int            `json:"opens"`
	Reconnects int            `json:"reconnects"`
	Errors     int            `json:"errors"`
	Codes      map[string]int `json:"codes"`
	Late       []float64      `json:"late"`
}

// A page opens stormBrowserClients RealtimeSockets against a server that
// holds them, closes them all with 1013 at once and then closes every
// reconnection with 1013 as soon as it opens, for stormRounds rounds.
// The statistics are those of the runs with 500 clients (checkStorm):
// its bounds are shares of the arrivals and comparisons between rounds,
// which hold for 150 clients as well (full jitter puts 12.5 % of them,
// 19 clients, in an eighth of the window, give or take 4; the bound is
// 35 %).
func TestRealtimeReconnectStormInBrowser(t *testing.T) {
	rtEachBrowser(t, func(t *testing.T, b rtBrowser) {
		ss := startStormServer(t, stormBrowserClients)
		ports := []string{ss.url[strings.LastIndex(ss.url, ":")+1 : len(ss.url)-len("/rt")]}
		for len(ports) < stormBrowserPorts {
			addr := rtServe(t, rtListen(t), ss.handler)
			ports = append(ports, addr[strings.LastIndex(addr, ":")+1:])
		}
		tab := rtOpen(t, b, strings.TrimSuffix(ss.url, "/rt")+fmt.Sprintf("/?n=%d&ports=%s&minDelay=%d&maxDelay=%d",
			stormBrowserClients, strings.Join(ports, ","), stormMinDelay.Milliseconds(), stormMaxDelay.Milliseconds()))
		defer tab.eval(10*time.Second, `__stormClose()`)
		stalls := watchStalls()
		ss.shed(t)
		arrivals := ss.waitRounds(t, stormRounds, stormTimeout)
		stalled := stalls()
		var st stormPageState
		if err := json.Unmarshal([]byte(rtEval[string](t, tab, `JSON.stringify(__storm)`)), &st); err != nil {
			t.Fatal(err)
		}
		rtEval[bool](t, tab, `__stormClose()`)
		slices.Sort(st.Late)
		pct := func(p float64) float64 {
			if len(st.Late) == 0 {
				return 0
			}
			return st.Late[min(len(st.Late)-1, int(p*float64(len(st.Late))))]
		}
		t.Logf("%s: the test process stalled for %v at most; the page: %d opens, %d reconnecting (by code %v), %d errors; reopens after the client's delay: median %.0f ms, p95 %.0f ms, max %.0f ms",
			b.name(), stalled.Round(time.Millisecond), st.Opens, st.Reconnects, st.Codes, st.Errors, pct(0.5), pct(0.95), pct(1))
		checkStorm(t, b.name(), stormRoundsOf(arrivals, stormRounds))
	})
}

// postRetryPage opens a RealtimeSocket on EventSource to /rt with the
// query's minDelay and maxDelay; window.__rt records its opens,
// reconnecting events and the messages it received, and __send(texts)
// sends texts in order, returning how many it took and what it threw.
const postRetryPage = `const q = new URLSearchParams(location.search);
const R = window.__rt = { opens: 0, reconnects: 0, events: [] };
const sock = window.__sock = new RealtimeSocket('/rt', {
  transport: 'eventsource', minDelay: Number(q.get('minDelay')), maxDelay: Number(q.get('maxDelay')),
});
sock.addEventListener('open', (e) => { R.opens++; R.events.push('open ' + e.transport); });
sock.addEventListener('reconnecting', (e) => { R.reconnects++; R.events.push('reconnecting ' + e.detail.code + ' after ' + Math.round(e.detail.delay) + ' ms'); });
sock.addEventListener('error', () => { R.events.push('error'); });
sock.addEventListener('close', (e) => { R.events.push('close ' + e.code); });
window.__send = (texts) => {
  let n = 0;
  try {
    for (const t of texts) { sock.send(t); n++; }
  } catch (e) {
    return { n, err: String(e) };
  }
  return { n, err: '' };
};
`

// postRetryState describes the page of postRetryPage for a failure.
const postRetryState = `JSON.stringify(Object.assign({readyState: __sock.readyState, bufferedAmount: __sock.bufferedAmount}, __rt))`

// The browser client over the browser's EventSource and fetch, the page
// served through postDropProxy (so that the POSTs are same-origin): the
// answers of delivered POSTs are lost (postRetryDrops), then the server is
// out of reach while POSTs are in flight, then while the client knows it
// is reconnecting. The server's OnMessage sees every message once, in
// order (postRetryServer.check), as in TestRealtimePostRetryBrowser.
func TestRealtimePostRetryInBrowser(t *testing.T) {
	rtEachBrowser(t, func(t *testing.T, b rtBrowser) {
		ps := startPostRetryServer(t)
		px := startPostDropProxy(t, ps.url, postRetryDrops...)
		tab := rtOpen(t, b, "http://"+px.addr()+"/?minDelay=50&maxDelay=500")
		who := b.name()
		count := func(what string) int { return rtEval[int](t, tab, `__rt.`+what) }
		send := func(texts []string) {
			t.Helper()
			list, _ := json.Marshal(texts)
			var got struct {
				N   int    `json:"n"`
				Err string `json:"err"`
			}
			if err := json.Unmarshal([]byte(rtEval[string](t, tab, `JSON.stringify(__send(`+string(list)+`))`)), &got); err != nil {
				t.Fatal(err)
			}
			if got.N != len(texts) || got.Err != "" {
				t.Errorf("%s: send took %d of %d messages: %s", who, got.N, len(texts), got.Err)
			}
		}
		rtWait(t, tab, "open", `__rt.opens === 1`, postRetryState, 30*time.Second)
		send(postRetryTexts(1, 8))
		ps.check(t, who+", answers lost", 8)
		px.mu.Lock()
		t.Logf("%s: answers lost of POSTs %v out of %d", who, px.dropped, px.posts)
		px.mu.Unlock()

		// The server dies: first the POSTs fail while the stream still
		// looks alive, then the stream breaks too.
		px.refuse()
		send(postRetryTexts(9, 11))
		time.Sleep(300 * time.Millisecond)
		px.setDown(true)
		rtWait(t, tab, "reconnecting", `__rt.reconnects >= 1`, postRetryState, 20*time.Second)
		time.Sleep(1200 * time.Millisecond)
		px.setDown(false)
		rtWait(t, tab, "reopen", `__rt.opens >= 2`, postRetryState, 20*time.Second)
		ps.check(t, who+", server out of reach while POSTing", 11)

		// Out of reach, and the client knows: the messages are queued.
		reconnects, opens := count("reconnects"), count("opens")
		px.setDown(true)
		rtWait(t, tab, "reconnecting", fmt.Sprintf(`__rt.reconnects > %d`, reconnects), postRetryState, 20*time.Second)
		send(postRetryTexts(12, 14))
		time.Sleep(time.Second)
		px.setDown(false)
		rtWait(t, tab, "reopen", fmt.Sprintf(`__rt.opens > %d`, opens), postRetryState, 20*time.Second)
		ps.check(t, who+", server out of reach while reconnecting", 14)
		rtWait(t, tab, "nothing buffered", `__sock.bufferedAmount === 0`, postRetryState, 10*time.Second)
		px.mu.Lock()
		posts := px.posts
		px.mu.Unlock()
		t.Logf("%s: %d POSTs through the proxy; the page: %s", who, posts, rtEval[string](t, tab, postRetryState))
	})
}
