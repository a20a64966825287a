package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/websocket"
)

// rtChannelsPage subscribes to the channels a and b and records, per
// channel, the messages, the subscription news and presence.
const rtChannelsPage = `<!doctype html>
<meta charset="utf-8"><title>realtime channels</title>
<script src="/realtime.js"></script>
<script>
const params = new URLSearchParams(location.search);
const R = window.__rt = { a: [], b: [], all: 0, direct: [], events: [], opens: [] };
const sock = window.__sock = new RealtimeSocket('/rt?user=' + params.get('user'), {
	transport: params.get('transport'), connectTimeout: 30000, minDelay: 100, maxDelay: 1000 });
sock.onopen = (e) => R.opens.push({ transport: e.transport, protocol: e.protocol });
sock.onmessage = (e) => { R.all++; if (!e.channel) R.direct.push(e.data); };
window.__subs = {};
for (const ch of ['a', 'b']) {
	const sub = window.__subs[ch] = sock.subscribe(ch);
	sub.onmessage = (e) => R[ch].push(e.data);
	sub.onsubscribed = (e) => R.events.push(ch + ' subscribed ' + e.detail.status);
	sub.onjoin = (e) => R.events.push(ch + ' join ' + e.detail.entry.user);
	sub.onleave = (e) => R.events.push(ch + ' leave ' + e.detail.entry.user);
}
</script>
`

// rtCluster is two nodes (Hubs) over one broker behind a front that
// sends each request to the next node in turn: no stickiness, so a
// reconnection and most POSTs reach the other node.
type rtCluster struct {
	hubs []*realtime.Hub
	URL  string

	mu      sync.Mutex
	sockets map[string]*realtime.Socket // the latest socket of each user
}

func startRTCluster(t *testing.T) *rtCluster {
	t.Helper()
	broker := realtime.NewMemoryBroker(nil)
	t.Cleanup(func() { broker.Close() })
	c := &rtCluster{sockets: map[string]*realtime.Socket{}}
	var handlers []http.Handler
	for _, node := range []string{"n1", "n2"} {
		hub := realtime.NewHub(&realtime.HubOptions{Broker: broker, Node: node})
		c.hubs = append(c.hubs, hub)
		handlers = append(handlers, realtime.Handler(&realtime.Options{
			Hub: hub,
			OnConnect: func(_ context.Context, s *realtime.Socket) error {
				user := s.Request().URL.Query().Get("user")
				s.SetPresence(user, "")
				c.mu.Lock()
				c.sockets[user] = s
				c.mu.Unlock()
				return nil
			},
			OnSubscribe: func(context.Context, *realtime.Socket, string) error { return nil },
			OnPublish:   func(context.Context, *realtime.Socket, string, string) error { return nil },
		}, nil))
	}
	var turn atomic.Uint32
	srv := httptest.NewServer(rtChannelsMux(func(w http.ResponseWriter, r *http.Request) {
		handlers[int(turn.Add(1))%len(handlers)].ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for _, hub := range c.hubs {
			hub.Shutdown(ctx)
		}
		srv.Close()
		for _, hub := range c.hubs {
			hub.Close()
		}
	})
	c.URL = srv.URL
	return c
}

// rtChannelsMux serves the page, realtime.js and, at /rt, rt.
func rtChannelsMux(rt http.HandlerFunc) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, rtChannelsPage)
	})
	mux.Handle("/realtime.js", realtime.ClientJS())
	mux.HandleFunc("/rt", rt)
	return mux
}

func (c *rtCluster) socket(user string) *realtime.Socket {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sockets[user]
}

// publish publishes each text to channel from the hubs in turn.
func (c *rtCluster) publish(t *testing.T, channel string, texts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i, text := range texts {
		if _, err := c.hubs[i%len(c.hubs)].Publish(ctx, channel, text); err != nil {
			t.Fatalf("publish %q to %s: %v", text, channel, err)
		}
	}
}

// rtChannelsState is what the page recorded.
type rtChannelsState struct {
	A      []string `json:"a"`
	B      []string `json:"b"`
	All    int      `json:"all"`
	Events []string `json:"events"`
	Opens  []struct {
		Transport string `json:"transport"`
		Protocol  string `json:"protocol"`
	} `json:"opens"`
}

func rtSeq(prefix string, from, to int) []string {
	var s []string
	for i := from; i <= to; i++ {
		s = append(s, fmt.Sprintf("%s%d", prefix, i))
	}
	return s
}

// A page on each transport subscribes to two channels of a two-node
// cluster: it gets each channel's messages on that channel's handlers,
// publishes through the server, resumes after the server closed its
// connection (reconnecting to the other node) with every message once,
// and sees presence join and leave.
func TestRealtimeChannelsBrowser(t *testing.T) {
	rtEachBrowser(t, testRealtimeChannelsBrowser)
}

func testRealtimeChannelsBrowser(t *testing.T, browser rtBrowser) {
	const state = `JSON.stringify(window.__rt)`
	for _, transport := range []string{"websocket", "eventsource"} {
		t.Run(transport, func(t *testing.T) {
			c := startRTCluster(t)
			tab := rtOpen(t, browser, c.URL+"/?transport="+transport+"&user=ann")
			rtWait(t, tab, "the page subscribes", `window.__rt && __rt.events.includes('a subscribed fresh') && __rt.events.includes('b subscribed fresh')`, state, 30*time.Second)

			c.publish(t, "a", rtSeq("a", 1, 5)...)
			c.publish(t, "b", rtSeq("b", 1, 5)...)
			rtWait(t, tab, "per-channel messages", `__rt.a.length === 5 && __rt.b.length === 5`, state, 30*time.Second)

			// The page publishes; the server's OnPublish lets it through.
			rtEval[any](t, tab, `__subs.a.publish('from the page'), 0`)
			rtWait(t, tab, "the page's own publish", `__rt.a.length === 6`, state, 30*time.Second)

			// The server closes the connection with 1012 (restart): the
			// page reconnects, to the other node, and resumes both
			// channels; messages published meanwhile arrive once.
			before := c.socket("ann")
			before.CloseWith(websocket.StatusServiceRestart, "restart")
			c.publish(t, "a", rtSeq("a", 6, 10)...)
			c.publish(t, "b", rtSeq("b", 6, 10)...)
			rtWait(t, tab, "resumed after the close", `__rt.opens.length === 2 && __rt.a.length >= 11 && __rt.b.length >= 10`, state, 30*time.Second)

			// A second user comes and goes: the first sees it in presence.
			tab2 := rtOpen(t, browser, c.URL+"/?transport="+transport+"&user=bob")
			rtWait(t, tab2, "the second page subscribes", `window.__rt && __rt.events.includes('a subscribed fresh')`, state, 30*time.Second)
			rtWait(t, tab, "join", `__rt.events.includes('a join bob') && __rt.events.includes('b join bob')`, state, 30*time.Second)
			rtEval[any](t, tab, `__subs.a.presence().then((es) => { __rt.presence = es.map((e) => e.user).sort().join(); }), 0`)
			rtWait(t, tab, "presence of a", `__rt.presence === 'ann,bob'`, state, 30*time.Second)
			rtEval[any](t, tab2, `__subs.a.unsubscribe(), 0`)
			rtWait(t, tab, "leave", `__rt.events.includes('a leave bob')`, state, 30*time.Second)
			// Out of the channel, the server refuses bob's presence request.
			rtEval[any](t, tab2, `__subs.a.presence().then(() => { __rt.refused = 'answered'; }, (e) => { __rt.refused = e.message; }), 0`)
			rtWait(t, tab2, "presence refused", `(__rt.refused || '').startsWith('presence ')`, state, 30*time.Second)

			var got rtChannelsState
			if err := json.Unmarshal([]byte(rtEval[string](t, tab, state)), &got); err != nil {
				t.Fatal(err)
			}
			wantA := append(append(rtSeq("a", 1, 5), "from the page"), rtSeq("a", 6, 10)...)
			if !slices.Equal(got.A, wantA) {
				t.Errorf("channel a got %q, want %q", got.A, wantA)
			}
			if wantB := rtSeq("b", 1, 10); !slices.Equal(got.B, wantB) {
				t.Errorf("channel b got %q, want %q", got.B, wantB)
			}
			if got.All != len(got.A)+len(got.B) {
				t.Errorf("the socket's message event fired %d times for %d channel messages", got.All, len(got.A)+len(got.B))
			}
			for _, o := range got.Opens {
				if o.Transport != transport || o.Protocol != "realtime.v2" {
					t.Errorf("open %+v, want %s with realtime.v2", o, transport)
				}
			}
			subs := strings.Join(got.Events, ",")
			for _, want := range []string{"a subscribed fresh", "b subscribed fresh", "a subscribed resumed", "b subscribed resumed"} {
				if !slices.Contains(got.Events, want) {
					t.Errorf("no %q in %s", want, subs)
				}
			}
			if slices.Contains(got.Events, "a subscribed failed") || slices.Contains(got.Events, "b subscribed failed") {
				t.Errorf("a resume failed: %s", subs)
			}
		})
	}
}

// Against a server that selects realtime.v1 (a proxy here takes
// realtime.v2 out of the offer), the page works as before: messages of
// the channel the server put it in reach the socket's message handler,
// and its subscriptions end with the reason realtime.v1.
func TestRealtimeChannelsBrowserV1Server(t *testing.T) {
	rtEachBrowser(t, testRealtimeChannelsBrowserV1Server)
}

func testRealtimeChannelsBrowserV1Server(t *testing.T, browser rtBrowser) {
	hub := realtime.NewHub(nil)
	t.Cleanup(func() { hub.Close() })
	rt := realtime.Handler(&realtime.Options{Hub: hub, Channels: []string{"a"}}, nil)
	srv := httptest.NewServer(rtChannelsMux(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Set("Sec-WebSocket-Protocol", realtime.Subprotocol)
		rt.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		hub.Shutdown(ctx)
		srv.Close()
	})
	const state = `JSON.stringify(window.__rt)`
	tab := rtOpen(t, browser, srv.URL+"/?transport=websocket&user=ann")
	rtWait(t, tab, "the page opens", `window.__rt && __rt.opens.length === 1`, state, 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, text := range []string{"one", "two"} {
		if _, err := hub.Publish(ctx, "a", text); err != nil {
			t.Fatal(err)
		}
	}
	rtWait(t, tab, "plain messages", `__rt.direct.length === 2`, state, 30*time.Second)
	var got struct {
		A      []string `json:"a"`
		Direct []string `json:"direct"`
		Opens  []struct {
			Protocol string `json:"protocol"`
		} `json:"opens"`
	}
	if err := json.Unmarshal([]byte(rtEval[string](t, tab, state)), &got); err != nil {
		t.Fatal(err)
	}
	if got.Opens[0].Protocol != realtime.Subprotocol || !slices.Equal(got.Direct, []string{"one", "two"}) || len(got.A) != 0 {
		t.Fatalf("page state %+v", got)
	}
	reasons := rtEval[string](t, tab, `[__subs.a.active, __subs.b.active].join()`)
	if reasons != "false,false" {
		t.Fatalf("subscriptions active: %s", reasons)
	}
	if threw := rtEval[bool](t, tab, `(() => { try { __subs.a.publish('x'); return false; } catch (e) { return true; } })()`); !threw {
		t.Fatal("publish over realtime.v1 did not throw")
	}
}
