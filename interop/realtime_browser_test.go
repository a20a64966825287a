package interop

// The browser client of issue 13 in real browsers, each test a subtest
// per browser (Chromium, Firefox) and per transport: a dead link is
// noticed by the heartbeat watchdog, a page on another origin works when
// the handler allows its origin and gets nothing when it does not, the
// socket behaves as the browser's WebSocket does, and messages sent
// while the server is down arrive once each, in order, after the
// reconnect. The server is cmd/rtecho, a process of its own so that a
// test can stop it (SIGSTOP) or kill and restart it.

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

var rtTransports = []string{"websocket", "eventsource"}

// rtEchoState describes the rtecho page for a failure message.
const rtEchoState = `JSON.stringify(Object.assign({readyState: __sock.readyState, bufferedAmount: __sock.bufferedAmount}, window.__rt))`

// rtEchoBin builds cmd/rtecho.
func rtEchoBin(t *testing.T) string {
	t.Helper()
	return mnBuildCmd(t, "rtecho")
}

// rtEcho is a running rtecho.
type rtEcho struct {
	*mnProc
	addr string
}

// rtStartEcho runs bin listening on host (a loopback IP) with flags; a
// restart listens on the same address.
func rtStartEcho(t *testing.T, bin, host string, flags ...string) *rtEcho {
	t.Helper()
	args := append([]string{bin, "-addr", host + ":0"}, flags...)
	e := &rtEcho{mnProc: mnNewProc(t, "rtecho", args...)}
	e.start()
	e.addr = e.firstLine()
	e.args[2] = e.addr
	return e
}

// signal sends sig to the process group of the running rtecho.
func (e *rtEcho) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := syscall.Kill(-e.cmd.Process.Pid, sig); err != nil {
		t.Fatalf("signal %v to rtecho: %v", sig, err)
	}
}

var rtEchoMsgRE = regexp.MustCompile(`(?m)message (\d+) (.*)$`)

// messages are the messages rtecho's runs logged as delivered, as
// "N TEXT" (N counts from 1 in each run).
func (e *rtEcho) messages() []string { return rtEchoMessages(e.out.String()) }

// lastRunMessages are the messages of rtecho's latest run.
func (e *rtEcho) lastRunMessages() []string {
	runs := strings.Split(e.out.String(), "--- start ")
	return rtEchoMessages(runs[len(runs)-1])
}

func rtEchoMessages(out string) []string {
	var got []string
	for _, m := range rtEchoMsgRE.FindAllStringSubmatch(out, -1) {
		got = append(got, m[1]+" "+m[2])
	}
	return got
}

// rtEchoPage opens rtecho's page on pageAddr with the socket on rt (a
// path or URL) and the transport, and waits until it is open unless
// wantOpen is false.
func rtEchoPage(t *testing.T, b rtBrowser, pageAddr, rt, transport string, wantOpen bool) rtTab {
	t.Helper()
	tab := rtOpen(t, b, fmt.Sprintf("http://%s/?transport=%s&rt=%s", pageAddr, transport, rt))
	if wantOpen {
		rtWait(t, tab, "the page opens over "+transport,
			fmt.Sprintf(`__rt.opens.length === 1 && __rt.opens[0].transport === %q`, transport), rtEchoState, 30*time.Second)
	}
	return tab
}

// rtEchoOpens is what the page recorded about its opens and reconnects.
type rtEchoOpens struct {
	Opens []struct {
		Transport string  `json:"transport"`
		Resumed   bool    `json:"resumed"`
		At        float64 `json:"at"`
	} `json:"opens"`
	Reconnects []struct {
		Code  int     `json:"code"`
		Delay float64 `json:"delay"`
		At    float64 `json:"at"`
	} `json:"reconnects"`
	Received []string `json:"received"`
	Events   []string `json:"events"`
	States   []int    `json:"states"`
}

func rtEchoRead(t *testing.T, tab rtTab) rtEchoOpens {
	t.Helper()
	var st rtEchoOpens
	if err := json.Unmarshal([]byte(rtEval[string](t, tab, `JSON.stringify(window.__rt)`)), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// rtDeadLinkSlack is what the dead-link test allows beyond the watchdog's
// 2 × heartbeat + 1 s: timers, a busy machine, two browsers.
const rtDeadLinkSlack = 2 * time.Second

// A server that stops answering without closing anything (SIGSTOP: no
// FIN, no RST) is noticed by the page: with a heartbeat of 1 s it fires
// reconnecting within 2 × 1 s + 1 s (plus rtDeadLinkSlack), and once the
// server runs again (SIGCONT) it opens again, resumed. Before the stop,
// an idle page stays open across several watchdog periods: the
// heartbeats keep it alive.
func TestRealtimeBrowserDeadLink(t *testing.T) {
	bin := rtEchoBin(t)
	const heartbeat = time.Second
	watchdog := 2*heartbeat + time.Second
	rtEachBrowser(t, func(t *testing.T, b rtBrowser) {
		for _, transport := range rtTransports {
			t.Run(transport, func(t *testing.T) {
				e := rtStartEcho(t, bin, "127.0.0.1", "-heartbeat", heartbeat.String())
				tab := rtEchoPage(t, b, e.addr, "/rt", transport, true)
				time.Sleep(watchdog + heartbeat/2)
				if st := rtEchoRead(t, tab); len(st.Reconnects) != 0 || len(st.Opens) != 1 {
					t.Fatalf("an idle page with heartbeats reconnected: %+v", st)
				}

				stopAt := rtEval[float64](t, tab, `performance.now()`)
				e.signal(t, syscall.SIGSTOP)
				stopped := true
				defer func() {
					if stopped {
						e.signal(t, syscall.SIGCONT)
					}
				}()
				rtWait(t, tab, "reconnecting after the server stopped", `__rt.reconnects.length > 0`, rtEchoState, watchdog+rtDeadLinkSlack+10*time.Second)
				st := rtEchoRead(t, tab)
				took := time.Duration((st.Reconnects[0].At - stopAt) * float64(time.Millisecond))
				t.Logf("%s over %s: reconnecting %v after SIGSTOP (heartbeat %v, bound %v + %v slack), code %d",
					b.name(), transport, took.Round(time.Millisecond), heartbeat, watchdog, rtDeadLinkSlack, st.Reconnects[0].Code)
				if took > watchdog+rtDeadLinkSlack {
					t.Errorf("the page noticed the dead link after %v, want within %v + %v", took, watchdog, rtDeadLinkSlack)
				}
				if st.Reconnects[0].Code != 1006 {
					t.Errorf("reconnecting with code %d, want 1006", st.Reconnects[0].Code)
				}

				e.signal(t, syscall.SIGCONT)
				stopped = false
				rtWait(t, tab, "open again, resumed", `__rt.opens.length >= 2 && __rt.opens[__rt.opens.length - 1].resumed`, rtEchoState, 60*time.Second)
				rtEval[bool](t, tab, `__sock.send('after'), true`)
				rtWait(t, tab, "a message after the resume", `__rt.received.includes('after')`, rtEchoState, 30*time.Second)
			})
		}
	})
}

// A page on 127.0.0.1 uses a realtime handler on 127.0.0.2 (another
// origin). When the handler's OriginPatterns allow the page's origin,
// the page opens on either transport and messages go both ways (over
// EventSource the POSTs carry Realtime-Token, so each needs the CORS
// preflight). When they do not, neither transport opens and nothing the
// page sends is delivered.
func TestRealtimeBrowserCrossOrigin(t *testing.T) {
	bin := rtEchoBin(t)
	pages := rtStartEcho(t, bin, "127.0.0.1")
	allowed := rtStartEcho(t, bin, "127.0.0.2", "-origin", "127.0.0.1:*")
	refused := rtStartEcho(t, bin, "127.0.0.2", "-origin", "127.0.0.3:*")
	rtEachBrowser(t, func(t *testing.T, b rtBrowser) {
		for _, transport := range rtTransports {
			t.Run(transport+"/allowed", func(t *testing.T) {
				tab := rtEchoPage(t, b, pages.addr, "http://"+allowed.addr+"/rt", transport, true)
				text := fmt.Sprintf("across origins %s %s", b.name(), transport)
				for i := 1; i <= 3; i++ {
					rtEval[bool](t, tab, fmt.Sprintf(`__sock.send(%q), true`, fmt.Sprint(text, " ", i)))
				}
				rtWait(t, tab, "the echoes", `__rt.received.length === 3`, rtEchoState, 30*time.Second)
				st := rtEchoRead(t, tab)
				want := []string{text + " 1", text + " 2", text + " 3"}
				if !slices.Equal(st.Received, want) {
					t.Fatalf("received %q, want %q", st.Received, want)
				}
			})
			t.Run(transport+"/refused", func(t *testing.T) {
				before := len(refused.messages())
				tab := rtEchoPage(t, b, pages.addr, "http://"+refused.addr+"/rt", transport, false)
				rtEval[bool](t, tab, `__sock.send('must not arrive'), true`)
				// Several attempts (minDelay 100 ms, maxDelay 1 s) fail.
				rtWait(t, tab, "attempts fail", `__rt.reconnects.length >= 3`, rtEchoState, 30*time.Second)
				st := rtEchoRead(t, tab)
				if len(st.Opens) != 0 || len(st.Received) != 0 {
					t.Fatalf("a refused origin opened or received: %+v", st)
				}
				if got := refused.messages(); len(got) != before {
					t.Fatalf("the server delivered %q from a refused origin", got[before:])
				}
			})
		}
	})
	if got := pages.messages(); len(got) != 0 {
		t.Errorf("the page server got messages %q", got)
	}
}

// The socket in the page behaves as the browser's WebSocket: close(1001)
// throws InvalidAccessError and leaves the socket open and usable;
// send(ArrayBuffer) throws TypeError; close() moves to CLOSING at once and
// fires close later, never inside close(); readyState goes CONNECTING,
// OPEN, CLOSING, CLOSED.
func TestRealtimeBrowserSemantics(t *testing.T) {
	bin := rtEchoBin(t)
	e := rtStartEcho(t, bin, "127.0.0.1")
	rtEachBrowser(t, func(t *testing.T, b rtBrowser) {
		for _, transport := range rtTransports {
			t.Run(transport, func(t *testing.T) {
				tab := rtEchoPage(t, b, e.addr, "/rt", transport, true)
				// __threw(f) is the name of what f throws.
				rtEval[bool](t, tab, `(window.__threw = (f) => { try { f(); return 'nothing'; } catch (e) { return e.name; } }, true)`)
				if got := rtEval[string](t, tab, `__threw(() => __sock.close(1001))`); got != "InvalidAccessError" {
					t.Errorf("close(1001) threw %s, want InvalidAccessError", got)
				}
				if got := rtEval[int](t, tab, `__sock.readyState`); got != 1 {
					t.Errorf("readyState %d after close(1001), want 1 (OPEN)", got)
				}
				if got := rtEval[string](t, tab, `__threw(() => __sock.send(new ArrayBuffer(1)))`); got != "TypeError" {
					t.Errorf("send(ArrayBuffer) threw %s, want TypeError", got)
				}
				if got := rtEval[string](t, tab, `__threw(() => __sock.send(new Blob(['x'])))`); got != "TypeError" {
					t.Errorf("send(Blob) threw %s, want TypeError", got)
				}
				rtEval[bool](t, tab, `__sock.send('still usable'), true`)
				rtWait(t, tab, "the socket is still usable", `__rt.received.includes('still usable')`, rtEchoState, 30*time.Second)

				var sync struct {
					State int  `json:"state"`
					Fired bool `json:"fired"`
				}
				js := rtEval[string](t, tab, `(() => {
					window.__fired = 0;
					__sock.addEventListener('close', () => { __fired++; });
					__sock.close();
					__state();
					return JSON.stringify({ state: __sock.readyState, fired: __fired > 0 });
				})()`)
				if err := json.Unmarshal([]byte(js), &sync); err != nil {
					t.Fatal(err)
				}
				if sync.State != 2 || sync.Fired {
					t.Errorf("right after close(): readyState %d (want 2, CLOSING), close fired inside close(): %v", sync.State, sync.Fired)
				}
				rtWait(t, tab, "close fires", `__fired > 0 && __sock.readyState === 3`, rtEchoState, 30*time.Second)
				if got := rtEval[string](t, tab, `__threw(() => __sock.close())`); got != "nothing" {
					t.Errorf("a second close() threw %s", got)
				}
				time.Sleep(200 * time.Millisecond) // a second close event would show by now
				if got := rtEval[int](t, tab, `__fired`); got != 1 {
					t.Errorf("close fired %d times, want 1", got)
				}
				if got := rtEval[[]int](t, tab, `(__state(), __rt.states)`); !slices.Equal(got, []int{0, 1, 2, 3}) {
					t.Errorf("readyState went %v, want [0 1 2 3]", got)
				}
			})
		}
	})
}

// Messages the page sends while the server is down (killed, then started
// again on the same port) are queued, counted in bufferedAmount, and
// delivered after the reconnect once each, in order, on either
// transport.
func TestRealtimeBrowserQueuedSends(t *testing.T) {
	bin := rtEchoBin(t)
	rtEachBrowser(t, func(t *testing.T, b rtBrowser) {
		for _, transport := range rtTransports {
			t.Run(transport, func(t *testing.T) {
				e := rtStartEcho(t, bin, "127.0.0.1", "-heartbeat", "1s")
				tab := rtEchoPage(t, b, e.addr, "/rt", transport, true)
				rtEval[bool](t, tab, `__sock.send('before'), true`)
				rtWait(t, tab, "the first echo", `__rt.received.length === 1`, rtEchoState, 30*time.Second)

				e.kill()
				rtWait(t, tab, "reconnecting", `__rt.reconnects.length > 0 && __sock.readyState === 0`, rtEchoState, 30*time.Second)
				var queued []string
				for i := 1; i <= 5; i++ {
					queued = append(queued, fmt.Sprintf("queued %d ✓", i))
				}
				list, _ := json.Marshal(queued)
				buffered := rtEval[int](t, tab, `(() => { for (const m of `+string(list)+`) __sock.send(m); return __sock.bufferedAmount; })()`)
				if buffered <= 0 {
					t.Errorf("bufferedAmount %d with 5 messages queued, want > 0", buffered)
				}
				e.start()
				if addr := e.firstLine(); addr != e.addr {
					t.Fatalf("restarted on %s, want %s", addr, e.addr)
				}
				rtWait(t, tab, "the queued messages come back", `__rt.received.length >= 6`, rtEchoState, 60*time.Second)
				rtWait(t, tab, "nothing buffered", `__sock.bufferedAmount === 0`, rtEchoState, 30*time.Second)
				// Late duplicates would show by now.
				time.Sleep(500 * time.Millisecond)
				st := rtEchoRead(t, tab)
				if want := append([]string{"before"}, queued...); !slices.Equal(st.Received, want) {
					t.Errorf("the page received %q, want %q", st.Received, want)
				}
				var want []string
				for i, m := range queued {
					want = append(want, fmt.Sprint(i+1, " ", m))
				}
				if second := e.lastRunMessages(); !slices.Equal(second, want) {
					t.Errorf("the restarted server delivered %q, want %q", second, want)
				}
			})
		}
	})
}
