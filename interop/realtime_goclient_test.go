package interop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
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

// The Go client (client.Socket) joins the chat demo (examples/chat, its
// own process) next to two headless Chromium pages, through the same
// proxies that block their WebSockets: nginx without Upgrade forwarding,
// and squid refusing CONNECT (which the Go client passes in forward
// mode). Its WebSocket is refused, it falls back to EventSource with
// POSTs, and lines go both ways between it and the pages, each once.

func TestRealtimeGoClientNginx(t *testing.T) {
	rtEachBrowser(t, func(t *testing.T, browser rtBrowser) {
		chat := rtStartChat(t)
		nginx := rtStartNginx(t, chat)
		// nginx drops Upgrade and speaks HTTP/1.0 to the chat, whose handler
		// then refuses the handshake with 400 (HTTP/1.1 required) rather
		// than 426; either is a refusal, and the fallback follows.
		g := rtGoChat(t, browser, "http://"+nginx, "http://"+nginx+"/chat?name=gopher", &client.Dialer{Proxy: proxy.Direct},
			http.StatusBadRequest, http.StatusUpgradeRequired)
		t.Logf("the Go client opened over %v after %v", g.info.Transport, g.info.WebSocketErr)
	})
}

func TestRealtimeGoClientSquid(t *testing.T) {
	for _, name := range rtBrowserNames {
		t.Run(name, func(t *testing.T) { testRealtimeGoClientSquid(t, name) })
	}
}

func testRealtimeGoClientSquid(t *testing.T, name string) {
	chat := rtStartChat(t)
	squid, accessLog := rtStartSquid(t)
	browser := rtStartBrowser(t, name, squid)

	// Every connection the Go client makes must go to squid.
	var mu sync.Mutex
	var dialed []string
	var nd net.Dialer
	d := &client.Dialer{
		Proxy:        http.ProxyURL(&url.URL{Scheme: "http", Host: squid}),
		ForwardProxy: true, // squid refuses CONNECT, but forwards GETs and POSTs
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			mu.Lock()
			dialed = append(dialed, addr)
			mu.Unlock()
			return nd.DialContext(ctx, network, addr)
		},
	}
	// squid strips Upgrade from forwarded requests: the chat answers 426.
	g := rtGoChat(t, browser, "http://"+chat, "http://"+chat+"/chat?name=gopher", d, http.StatusUpgradeRequired)
	if via := g.info.Response.Header.Get("Via"); !strings.Contains(via, "squid") {
		t.Fatalf("the event stream did not come through squid: Via %q", via)
	}
	mu.Lock()
	for _, addr := range dialed {
		if addr != squid {
			t.Errorf("the Go client dialed %s, not squid at %s", addr, squid)
		}
	}
	mu.Unlock()
	// squid forwarded the Go client's requests in forward mode, and
	// refused the pages' tunnels.
	rtWaitLog(t, accessLog, "TCP_DENIED/403", "CONNECT "+chat, "GET http://"+chat+"/chat", "POST http://"+chat+"/chat")
}

// rtWaitLog waits until squid's access log holds every one of want
// (squid writes it a little after the request).
func rtWaitLog(t *testing.T, path string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(rtChatWait)
	for {
		raw, _ := os.ReadFile(path)
		b := string(raw)
		missing := ""
		for _, w := range want {
			if !strings.Contains(b, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("squid's access log lacks %q:\n%s", missing, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rtChatEvent is a line of the chat demo's rooms, as JSON.
type rtChatEvent struct {
	Kind      string `json:"kind"`
	From      string `json:"from"`
	Transport string `json:"transport"`
	Text      string `json:"text"`
}

// rtChatRoom is the room the pages start in: the first of the demo's
// default room list.
const rtChatRoom = "lobby"

// rtGoChatter is the Go client's view of the chat's first room. Its
// messages are read in the background: Presence waits for the messages
// before its answer to be taken.
type rtGoChatter struct {
	s    *client.Socket
	info client.OpenInfo
	msgs chan client.Message
	says map[string]int // "from/transport/text": times seen
}

// read takes the socket's messages until ctx ends.
func (g *rtGoChatter) read(ctx context.Context) {
	for m, err := range g.s.All(ctx) {
		if err != nil {
			close(g.msgs)
			return
		}
		select {
		case g.msgs <- m:
		case <-ctx.Done():
			close(g.msgs)
			return
		}
	}
}

// waitFor reads the room's lines until cond holds.
func (g *rtGoChatter) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	timeout := time.After(rtChatWait)
	for !cond() {
		var m client.Message
		var ok bool
		select {
		case m, ok = <-g.msgs:
			if !ok {
				t.Fatalf("the Go client waiting for %s: %v; it has seen says %v", what, g.s.Err(), g.says)
			}
		case <-timeout:
			t.Fatalf("the Go client waiting for %s: timeout; it has seen says %v", what, g.says)
		}
		if m.Kind != client.KindMessage || m.Channel != rtChatRoom {
			continue
		}
		var ev rtChatEvent
		if err := json.Unmarshal([]byte(m.Data), &ev); err != nil {
			t.Fatalf("the Go client got %q: %v", m.Data, err)
		}
		g.says[ev.From+"/"+ev.Transport+"/"+ev.Text]++
	}
}

// waitWho asks the room's presence until it is want ("name/transport"
// items, sorted by name, comma-separated).
func (g *rtGoChatter) waitWho(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(rtChatWait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), rtChatWait)
		entries, err := g.s.Presence(ctx, rtChatRoom)
		cancel()
		if err != nil {
			t.Fatalf("the Go client's Presence: %v", err)
		}
		var who []string
		for _, e := range entries {
			who = append(who, e.User+"/"+e.Info)
		}
		slices.Sort(who)
		if strings.Join(who, ",") == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Go client sees %q in %s, want %q", who, rtChatRoom, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rtSay is what a participant sends to say text in the room.
func rtSay(text string) string {
	b, _ := json.Marshal(map[string]string{"room": rtChatRoom, "text": text})
	return string(b)
}

// rtGoChat runs the chat with alice and bob in pages on pageBase and
// gopher, the Go client, on goURL with d, and checks that all end up on
// EventSource and see every line once. The Go client's WebSocket must
// have been refused with one of refused.
func rtGoChat(t *testing.T, browser rtBrowser, pageBase, goURL string, d *client.Dialer, refused ...int) *rtGoChatter {
	t.Helper()
	const want = "eventsource"
	const state = `JSON.stringify({status: document.getElementById('status').textContent,
		who: [...document.querySelectorAll('#who li')].map((li) => li.dataset.name + '/' + li.dataset.transport),
		log: [...document.querySelectorAll('#log li')].map((li) => li.textContent)})`
	names := []string{"alice", "bob"}
	tabs := make([]rtTab, len(names))
	for i, name := range names {
		tabs[i] = rtOpen(t, browser, pageBase+"/?name="+name)
		rtWait(t, tabs[i], name+" connects over "+want,
			fmt.Sprintf(`document.getElementById('status').dataset.transport === %q`, want), state, rtChatWait)
	}

	opens := make(chan client.OpenInfo, 16)
	s, err := d.Socket(goURL, &client.SocketOptions{
		ConnectTimeout: 20 * time.Second, // patient: the machine is busy with Chromium
		OnOpen:         func(info client.OpenInfo) { opens <- info },
	})
	if err != nil {
		t.Fatal(err)
	}
	g := &rtGoChatter{s: s, msgs: make(chan client.Message, 64), says: map[string]int{}}
	readCtx, stopReading := context.WithCancel(context.Background())
	read := make(chan struct{})
	go func() {
		defer close(read)
		g.read(readCtx)
	}()
	t.Cleanup(func() {
		stopReading()
		s.Close()
		<-read
	})
	subCtx, cancelSub := context.WithTimeout(context.Background(), rtChatWait)
	err = s.Subscribe(subCtx, rtChatRoom)
	cancelSub()
	if err != nil {
		t.Fatal(err)
	}
	select {
	case g.info = <-opens:
	case <-time.After(rtChatWait):
		t.Fatalf("the Go client did not connect")
	}
	var he *websocket.HandshakeError
	if g.info.Transport != client.TransportEventSource || !errors.As(g.info.WebSocketErr, &he) || !slices.Contains(refused, he.Status) {
		t.Fatalf("the Go client opened with %+v, want EventSource after its WebSocket was refused with one of %v", g.info, refused)
	}

	// Everyone sees all three, on EventSource.
	whoAll := "alice/" + want + ",bob/" + want + ",gopher/" + want
	for i, name := range names {
		rtWait(t, tabs[i], name+" sees gopher",
			fmt.Sprintf(`[...document.querySelectorAll('#who li')].map((li) => li.dataset.name + '/' + li.dataset.transport).join(',') === %q`, whoAll),
			state, rtChatWait)
	}
	g.waitWho(t, whoAll)

	// gopher says something, then alice and bob type theirs.
	lines := map[string]string{}
	for _, name := range append([]string{"gopher"}, names...) {
		lines[name] = "hello from " + name + " ✓"
	}
	ctx, cancel := context.WithTimeout(context.Background(), rtChatWait)
	err = s.Send(ctx, rtSay(lines["gopher"]))
	cancel()
	if err != nil {
		t.Fatalf("the Go client's Send: %v", err)
	}
	for i, name := range names {
		rtChatType(t, tabs[i], name, lines[name])
	}

	// Every page sees every line, once.
	for i, name := range names {
		for from, text := range lines {
			line := rtChatLineJS(from, want, text)
			rtWait(t, tabs[i], name+" sees "+from+"'s line", line, state, rtChatWait)
		}
		if n := rtEval[int](t, tabs[i], `document.querySelectorAll('#log li.say').length`); n != len(lines) {
			t.Fatalf("%s shows %d lines, want %d: %s", name, n, len(lines), rtEval[string](t, tabs[i], state))
		}
	}
	// So does the Go client, its own line included.
	key := func(from string) string { return from + "/" + want + "/" + lines[from] }
	g.waitFor(t, "every line", func() bool {
		for from := range lines {
			if g.says[key(from)] == 0 {
				return false
			}
		}
		return true
	})
	for k, n := range g.says {
		if n != 1 || !strings.HasSuffix(k, " ✓") {
			t.Fatalf("the Go client saw %q %d times; all: %v", k, n, g.says)
		}
	}
	if len(g.says) != len(lines) {
		t.Fatalf("the Go client saw %v, want the %d lines", g.says, len(lines))
	}
	if s.Transport() != client.TransportEventSource {
		t.Fatalf("the Go client is on %v now", s.Transport())
	}
	t.Logf("alice's page: %s", rtEval[string](t, tabs[0], state))
	return g
}

// The server behind nginx stops and starts again on the same port, with
// the same Hub, while a broadcaster goes on. Meanwhile nginx answers
// 502, which the Go client retries; it then resumes and receives every
// message exactly once, in order.
func TestRealtimeGoClientNginxRestart(t *testing.T) {
	const total = 60
	hub := realtime.NewHub(nil)
	t.Cleanup(func() { hub.Close() })
	mux := http.NewServeMux()
	mux.Handle("/rt", realtime.Handler(&realtime.Options{Hub: hub, Channels: []string{"chat"}}, nil))
	srv := startRestartable(t, mux, hub)
	nginx := rtStartNginx(t, srv.addr)

	opens := make(chan client.OpenInfo, 64)
	var mu sync.Mutex
	var retries []string
	d := &client.Dialer{Proxy: proxy.Direct}
	s, err := d.Socket("http://"+nginx+"/rt", &client.SocketOptions{
		ConnectTimeout: 20 * time.Second,
		MinDelay:       100 * time.Millisecond, // as the pages of the restart test
		MaxDelay:       time.Second,
		OnOpen:         func(info client.OpenInfo) { opens <- info },
		OnRetry: func(err error, _ time.Duration) {
			mu.Lock()
			retries = append(retries, err.Error())
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	select {
	case info := <-opens:
		if info.Transport != client.TransportEventSource {
			t.Fatalf("opened with %+v, want EventSource behind nginx", info)
		}
	case <-time.After(rtChatWait):
		t.Fatal("the Go client did not connect")
	}

	// Read everything in the background while the server restarts.
	got := make(chan []string, 1)
	readErr := make(chan error, 1)
	go func() {
		var msgs []string
		ctx, cancel := context.WithTimeout(context.Background(), 2*rtChatWait)
		defer cancel()
		for m, err := range s.All(ctx) {
			if err != nil {
				readErr <- err
				break
			}
			if m.Kind != client.KindMessage {
				continue // subscribed: fresh, then resumed
			}
			msgs = append(msgs, m.Data)
			if m.Data == "end" {
				break
			}
		}
		got <- msgs
	}()

	// The Go client gets realtime.close 1001, then 502s from nginx while
	// the server is down.
	srv.broadcastAcrossRestart(total)
	hub.Publish(context.Background(), "chat", "end")

	var msgs []string
	select {
	case msgs = <-got:
	case <-time.After(2 * rtChatWait):
		t.Fatal("the Go client did not get to the end")
	}
	select {
	case err := <-readErr:
		t.Fatalf("reading: %v (got %q)", err, msgs)
	default:
	}
	want := make([]string, 0, total+1)
	for i := 1; i <= total; i++ {
		want = append(want, "m"+strconv.Itoa(i))
	}
	want = append(want, "end")
	if !slices.Equal(msgs, want) {
		t.Fatalf("the Go client received %q, want m1..m%d once each, then end", msgs, total)
	}
	var last client.OpenInfo
	n := 1
	for len(opens) > 0 {
		last = <-opens
		n++
	}
	mu.Lock()
	t.Logf("%d opens, last %+v; retries after: %q", n, last, retries)
	mu.Unlock()
	if n < 2 || !last.Resumed || last.ResumeFailed || last.Transport != client.TransportEventSource {
		t.Fatalf("%d opens, the last %+v: want a resumed EventSource after the restart", n, last)
	}
}

// Behind squid configured as corporate proxies usually are, the default
// client.Socket (no ForwardProxy) gets through as a browser does: squid
// refuses its CONNECT to a port other than 443, the Socket switches to
// forward mode, its WebSocket handshake loses Upgrade there, and it
// opens over EventSource with POSTs through squid, messages going both
// ways with a realtime.Handler on loopback.
func TestProxyFallbackSquid(t *testing.T) {
	const connect443 = `
acl SSL_ports port 443
acl CONNECT method CONNECT
http_access deny CONNECT !SSL_ports
`
	for _, tc := range []struct {
		name, rules string
	}{
		// squid's default strips Upgrade from forwarded requests
		// (http_upgrade_request_protocols allows none).
		{"connect443", connect443},
		// Some configurations strip the hop-by-hop fields outright.
		{"strip-upgrade", connect443 + `
request_header_access Upgrade deny all
request_header_access Connection deny all
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			squid, accessLog := rtStartSquidWith(t, tc.rules)
			hub := realtime.NewHub(nil)
			t.Cleanup(func() { hub.Close() })
			srv := httptest.NewServer(realtime.Handler(&realtime.Options{
				Hub:      hub,
				Channels: []string{"chat"},
				OnMessage: func(ctx context.Context, s *realtime.Socket, text string) {
					hub.Publish(ctx, "chat", s.Transport().String()+" said "+text)
				},
			}, nil))
			t.Cleanup(srv.Close)

			opened := make(chan client.OpenInfo, 4)
			d := &client.Dialer{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: squid})}
			s, err := d.Socket(srv.URL, &client.SocketOptions{
				ConnectTimeout: 20 * time.Second, // squid on 2 shared cores
				OnOpen:         func(info client.OpenInfo) { opened <- info },
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()

			var info client.OpenInfo
			select {
			case info = <-opened:
			case <-s.Done():
				t.Fatalf("the Socket stopped: %v", s.Err())
			case <-ctx.Done():
				t.Fatal("the Socket did not open")
			}
			var pe *proxy.Error
			var he *websocket.HandshakeError
			switch {
			case info.Transport != client.TransportEventSource || !info.ForwardProxy:
				t.Fatalf("open: %+v, want EventSource in forward mode", info)
			case !errors.As(info.TunnelErr, &pe) || pe.Status != http.StatusForbidden:
				t.Fatalf("TunnelErr = %v, want squid's 403", info.TunnelErr)
			case !errors.As(info.WebSocketErr, &he):
				t.Fatalf("WebSocketErr = %v, want a refused handshake", info.WebSocketErr)
			case !strings.Contains(info.Response.Header.Get("Via"), "squid"):
				t.Fatalf("the event stream did not come through squid: Via %q", info.Response.Header.Get("Via"))
			}
			t.Logf("opened over %v in forward mode after %v; the WebSocket: %v", info.Transport, info.TunnelErr, info.WebSocketErr)

			// The channel's news (KindSubscribed) comes first.
			next := func(want string) {
				t.Helper()
				for {
					m, err := s.Next(ctx)
					if err != nil {
						t.Fatalf("waiting for %q: %v", want, err)
					}
					if m.Kind == client.KindMessage {
						if m.Data != want {
							t.Fatalf("got %+v, want %q", m, want)
						}
						return
					}
				}
			}
			if err := s.Send(ctx, "hello"); err != nil {
				t.Fatal(err)
			}
			next("eventsource said hello")
			if _, err := hub.Publish(ctx, "chat", "from the server"); err != nil {
				t.Fatal(err)
			}
			next("from the server")
			host := strings.TrimPrefix(srv.URL, "http://")
			rtWaitLog(t, accessLog, "TCP_DENIED/403", "CONNECT "+host, "GET "+srv.URL+"/", "POST "+srv.URL+"/")
		})
	}
}
