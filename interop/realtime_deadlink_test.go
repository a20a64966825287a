package interop

// A link that dies without a FIN or RST (a dead NAT entry, a suspended
// laptop) and a link that loses answers: the clients notice a dead link
// by the heartbeat the server announces, and retry a POST whose answer
// was lost with the same token and Realtime-Seq, so that every message
// is delivered exactly once, in order.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/client"
	"github.com/realtime-go/realtime/proxy"
)

// ---------------------------------------------------------------------------
// Network namespaces (see /work/shared/PEERS.md, section 7): the server
// and the client share the loopback interface of a namespace of their
// own, and an nft rule in it drops every packet silently.
// ---------------------------------------------------------------------------

// rtNetns is a network namespace made for one test, with lo up.
type rtNetns struct {
	name string
	ip   string
	nft  string
}

// newNetns makes a namespace, deleted at cleanup. It needs root; without
// it the test is skipped, except under CI.
func newNetns(t *testing.T) *rtNetns {
	t.Helper()
	if os.Geteuid() != 0 {
		if inCI() {
			t.Fatal("the dead link tests need root (ip netns, nft)")
		}
		t.Skip("the dead link tests need root (ip netns, nft)")
	}
	ns := &rtNetns{
		name: fmt.Sprintf("rtdead%d-%s", os.Getpid(), strings.NewReplacer("/", "-", "_", "").Replace(t.Name())),
		ip:   needExec(t, "ip"),
		nft:  needExec(t, "nft"),
	}
	if len(ns.name) > 60 {
		ns.name = ns.name[:60]
	}
	if out, err := exec.Command(ns.ip, "netns", "add", ns.name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", ns.name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(ns.ip, "netns", "del", ns.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", ns.name, err, out)
		}
	})
	ns.run(t, ns.ip, "-n", ns.name, "link", "set", "lo", "up")
	return ns
}

func (ns *rtNetns) run(t *testing.T, argv ...string) {
	t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

// do runs f on an OS thread that has entered the namespace. Sockets f
// creates belong to the namespace for good, whichever thread uses them
// later. The thread is never unlocked, so the runtime discards it when
// the goroutine ends instead of reusing it in the namespace.
func (ns *rtNetns) do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+ns.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open netns %s: %w", ns.name, err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns.name, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// dial is a client.Dialer's NetDial inside the namespace.
func (ns *rtNetns) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := ns.do(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// cut drops every packet in the namespace, in both directions, without
// a word to either end.
func (ns *rtNetns) cut(t *testing.T) {
	t.Helper()
	cmd := exec.Command(ns.ip, "netns", "exec", ns.name, ns.nft, "-f", "-")
	cmd.Stdin = strings.NewReader("table inet cord { chain in { type filter hook input priority 0; policy drop; }; chain out { type filter hook output priority 0; policy drop; }; }\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft cut: %v\n%s", err, out)
	}
}

// restore undoes cut.
func (ns *rtNetns) restore(t *testing.T) {
	t.Helper()
	ns.run(t, ns.ip, "netns", "exec", ns.name, ns.nft, "delete", "table", "inet", "cord")
}

// deadLinkHeartbeat is the server's heartbeat: the clients' watchdog is
// 2 × heartbeat + 1 s, and they must notice within that and some slack.
const (
	deadLinkHeartbeat = time.Second
	deadLinkWatchdog  = 2*deadLinkHeartbeat + time.Second
	deadLinkSlack     = 1500 * time.Millisecond
)

// startDeadLinkServer serves a realtime.Handler with a hub and the
// channel "news" on a listener inside ns, with a Heartbeat of 1 s.
func startDeadLinkServer(t *testing.T, ns *rtNetns) (url string, hub *realtime.Hub) {
	t.Helper()
	var ln net.Listener
	if err := ns.do(func() error {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	hub = realtime.NewHub(nil)
	t.Cleanup(func() { hub.Close() })
	h := realtime.Handler(&realtime.Options{Hub: hub, Channels: []string{"news"}, Heartbeat: deadLinkHeartbeat}, nil)
	return "http://" + rtServe(t, ln, h) + "/rt", hub
}

// deadLinkEvent is what a client did, and when.
type deadLinkEvent struct {
	at   time.Time
	kind string // "open", "retry" or "message"
	text string // the message, the retry's error, the open's transport
}

// deadLinkScript plays the scenario against a client whose events
// arrive on evs: it waits for the open and a first message, stays idle
// for longer than the watchdog (a live link with heartbeats must not be
// dropped), cuts the link, publishes a message nobody can receive yet,
// waits for the client to notice, restores the link after a failed
// attempt or two, and waits for the client to reopen and receive the
// message missed. It returns the time from the cut to the client's
// notice and from the restore to the reopen.
func deadLinkScript(t *testing.T, who string, ns *rtNetns, hub *realtime.Hub, evs <-chan deadLinkEvent) (notice, resume time.Duration) {
	t.Helper()
	next := func(what string, timeout time.Duration, want func(deadLinkEvent) bool) deadLinkEvent {
		t.Helper()
		deadline := time.After(timeout)
		for {
			select {
			case e := <-evs:
				if want(e) {
					return e
				}
				if e.kind != "message" {
					t.Logf("%s: %s %q (waiting for %s)", who, e.kind, e.text, what)
				}
			case <-deadline:
				t.Fatalf("%s: no %s within %v", who, what, timeout)
			}
		}
	}
	isOpen := func(e deadLinkEvent) bool { return e.kind == "open" }
	next("open", 20*time.Second, isOpen)
	ctx := testCtx(t)
	if _, err := hub.Publish(ctx, "news", "before"); err != nil {
		t.Fatal(err)
	}
	next(`message "before"`, 10*time.Second, func(e deadLinkEvent) bool { return e.kind == "message" && e.text == "before" })

	// Idle, but alive: the heartbeats keep the watchdog quiet.
	idle := time.After(deadLinkWatchdog + time.Second)
	for waiting := true; waiting; {
		select {
		case e := <-evs:
			if e.kind != "message" {
				t.Fatalf("%s: %s %q on an idle live link: the heartbeats do not reach the watchdog", who, e.kind, e.text)
			}
		case <-idle:
			waiting = false
		}
	}

	ns.cut(t)
	cutAt := time.Now()
	restored := false
	defer func() {
		if !restored {
			ns.restore(t)
		}
	}()
	if _, err := hub.Publish(ctx, "news", "during"); err != nil {
		t.Fatal(err)
	}
	e := next("notice of the dead link", deadLinkWatchdog+deadLinkSlack+3*time.Second, func(e deadLinkEvent) bool { return e.kind == "retry" })
	notice = e.at.Sub(cutAt)
	t.Logf("%s: noticed the dead link %v after the cut (%s)", who, notice.Round(time.Millisecond), e.text)
	if notice > deadLinkWatchdog+deadLinkSlack {
		t.Errorf("%s: noticed the dead link %v after the cut, want within 2 × %v + 1 s + %v slack", who, notice.Round(time.Millisecond), deadLinkHeartbeat, deadLinkSlack)
	}

	// Attempts made while the link is still cut fail; then it comes back.
	time.Sleep(time.Second)
	ns.restore(t)
	restored = true
	restoreAt := time.Now()
	e = next("reopen after the restore", 15*time.Second, isOpen)
	resume = e.at.Sub(restoreAt)
	next(`message "during", published while the link was cut`, 10*time.Second, func(e deadLinkEvent) bool { return e.kind == "message" && e.text == "during" })
	t.Logf("%s: reopened %v after the restore (%s) and received the message missed", who, resume.Round(time.Millisecond), e.text)
	return notice, resume
}

// The Go client, IdleTimeout 0 (derived from the heartbeat the server
// announces), on each transport, loses its server without a FIN or RST.
func TestRealtimeDeadLinkGo(t *testing.T) {
	for _, tr := range []client.Transport{client.TransportWebSocket, client.TransportEventSource} {
		t.Run(tr.String(), func(t *testing.T) {
			t.Parallel()
			ns := newNetns(t)
			url, hub := startDeadLinkServer(t, ns)
			evs := make(chan deadLinkEvent, 256)
			// The Socket's goroutine must never block on a test that
			// has stopped listening.
			report := func(e deadLinkEvent) {
				select {
				case evs <- e:
				default:
				}
			}
			d := &client.Dialer{Proxy: proxy.Direct, NetDial: ns.dial}
			s, err := d.Socket(url, &client.SocketOptions{
				Transport:      tr,
				MinDelay:       100 * time.Millisecond,
				MaxDelay:       time.Second,
				ConnectTimeout: 2 * time.Second,
				OnOpen:         func(oi client.OpenInfo) { report(deadLinkEvent{time.Now(), "open", oi.Transport.String()}) },
				OnRetry: func(err error, delay time.Duration) {
					report(deadLinkEvent{time.Now(), "retry", fmt.Sprintf("%v; idle timeout: %v; wait %v", err, errors.Is(err, client.ErrIdleTimeout), delay)})
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Go(func() {
				for {
					m, err := s.Next(ctx)
					if err != nil {
						return
					}
					if m.Kind == client.KindMessage {
						report(deadLinkEvent{time.Now(), "message", m.Data})
					}
				}
			})
			defer func() {
				cancel()
				s.Close()
				wg.Wait()
			}()
			deadLinkScript(t, "Go client on "+tr.String(), ns, hub, evs)
		})
	}
}

// The browser client, run in Node inside the namespace, on each
// transport, loses its server without a FIN or RST.
func TestRealtimeDeadLinkBrowser(t *testing.T) {
	for _, tr := range []string{"websocket", "eventsource"} {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			ns := newNetns(t)
			url, hub := startDeadLinkServer(t, ns)
			opts := fmt.Sprintf(`{"transport":%q,"minDelay":100,"maxDelay":1000,"connectTimeout":2000}`, tr)
			p := startRTPeer(t, []string{ns.ip, "netns", "exec", ns.name}, "socket", url, opts)
			evs := make(chan deadLinkEvent, 256)
			go func() {
				for line := range p.lines {
					e, ok := parsePeerEvent(line)
					if !ok {
						continue
					}
					var de deadLinkEvent
					switch e.Ev {
					case "open":
						de = deadLinkEvent{time.Now(), "open", e.Transport}
					case "reconnecting":
						de = deadLinkEvent{time.Now(), "retry", fmt.Sprintf("reconnecting: code %d, delay %v ms", e.Code, e.Delay)}
					case "message":
						de = deadLinkEvent{time.Now(), "message", e.Data}
					default:
						continue
					}
					select { // never block: the peer's output must drain
					case evs <- de:
					default:
					}
				}
			}()
			deadLinkScript(t, "browser client on "+tr, ns, hub, evs)
		})
	}
}

// peerEvent is a line of node/rt-peer.mjs in socket mode.
type peerEvent struct {
	Ev         string  `json:"ev"`
	Transport  string  `json:"transport"`
	Code       int     `json:"code"`
	Delay      float64 `json:"delay"`
	Data       string  `json:"data"`
	N          int     `json:"n"`
	Err        string  `json:"err"`
	Buffered   int     `json:"buffered"`
	ReadyState int     `json:"readyState"`
}

func parsePeerEvent(line string) (peerEvent, bool) {
	var e peerEvent
	if err := json.Unmarshal([]byte(line), &e); err != nil || e.Ev == "" {
		return e, false
	}
	return e, true
}

// ---------------------------------------------------------------------------
// POST retries over EventSource.
// ---------------------------------------------------------------------------

// postDropProxy is a TCP proxy between an EventSource client and the
// server that reads the client's HTTP/1.1 requests. On a connection whose
// request is a POST it forwards request by request, numbering the POSTs
// of all connections from 1, and for the numbers in drop it reads the
// server's answer (so the server has handled the request) and closes
// both connections instead of passing the answer on. An event stream's
// GET (Accept: text/event-stream) is passed on, and the connection is
// piped from then on; any other request (a page and its script, for the
// browsers) is passed on with its answer. While down, it closes every connection it has and every
// new one at once; refuse goes half way, leaving the streams open for a
// while, as when a server dies and the client has yet to notice.
type postDropProxy struct {
	ln     net.Listener
	target string
	drop   map[int]bool

	mu      sync.Mutex
	down    bool
	posts   int
	dropped []int
	conns   map[net.Conn]bool // client side: true for a stream
	wg      sync.WaitGroup
}

func startPostDropProxy(t *testing.T, target string, drop ...int) *postDropProxy {
	t.Helper()
	ln := rtListen(t)
	p := &postDropProxy{ln: ln, target: target, drop: map[int]bool{}, conns: map[net.Conn]bool{}}
	for _, n := range drop {
		p.drop[n] = true
	}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !p.track(c) {
				c.Close()
				continue
			}
			p.wg.Go(func() { p.serve(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		p.setDown(true)
		p.wg.Wait()
	})
	return p
}

func (p *postDropProxy) addr() string { return p.ln.Addr().String() }

// track records c, unless the proxy is down.
func (p *postDropProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	p.conns[c] = false
	return true
}

func (p *postDropProxy) forget(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
		c.Close()
	}
}

// setDown takes the server out of reach (closing every connection), or
// back.
func (p *postDropProxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}

// refuse closes every connection but the streams, and every new one: the
// POSTs fail while the client's stream still looks alive.
func (p *postDropProxy) refuse() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c, stream := range p.conns {
		if !stream {
			c.Close()
			delete(p.conns, c)
		}
	}
}

// markStream records that c carries a stream.
func (p *postDropProxy) markStream(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.conns[c]; ok {
		p.conns[c] = true
	}
}

// postNumber counts a POST, and says whether its answer is to be lost.
func (p *postDropProxy) postNumber() (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.posts++
	if p.drop[p.posts] {
		p.dropped = append(p.dropped, p.posts)
		return p.posts, true
	}
	return p.posts, false
}

func (p *postDropProxy) serve(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		p.forget(c)
		return
	}
	if !p.track(s) {
		p.forget(c, s)
		return
	}
	defer p.forget(c, s)
	cr, sr := bufio.NewReader(c), bufio.NewReader(s)
	for {
		req, err := http.ReadRequest(cr)
		if err != nil {
			return
		}
		if err := req.Write(s); err != nil {
			return
		}
		if req.Method != http.MethodPost && !strings.Contains(req.Header.Get("Accept"), "text/event-stream") {
			// A page or a script, for the browsers: passed on as it is.
			resp, err := http.ReadResponse(sr, req)
			if err != nil {
				return
			}
			err = resp.Write(c)
			resp.Body.Close()
			if err != nil {
				return
			}
			continue
		}
		if req.Method != http.MethodPost {
			// The stream: pipe both ways until either end closes.
			p.markStream(c)
			done := make(chan struct{})
			go func() {
				io.Copy(c, sr)
				c.Close()
				close(done)
			}()
			io.Copy(s, cr)
			s.Close()
			<-done
			return
		}
		_, lose := p.postNumber()
		resp, err := http.ReadResponse(sr, req)
		if err != nil {
			return
		}
		if lose {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return // closes both: the client never sees the answer
		}
		err = resp.Write(c)
		resp.Body.Close()
		if err != nil {
			return
		}
	}
}

// postRetryServer records the text of every message its clients send, in
// the order OnMessage sees them. It serves /rt, and the page
// postRetryPage at / for the browsers.
type postRetryServer struct {
	url string

	mu   sync.Mutex
	got  []string
	sids map[string]bool // the sockets that sent them
}

func startPostRetryServer(t *testing.T) *postRetryServer {
	t.Helper()
	ps := &postRetryServer{sids: map[string]bool{}}
	h := realtime.Handler(&realtime.Options{
		OnMessage: func(ctx context.Context, s *realtime.Socket, text string) {
			ps.mu.Lock()
			ps.got = append(ps.got, text)
			ps.sids[s.ID()] = true
			ps.mu.Unlock()
		},
	}, nil)
	ps.url = rtServe(t, rtListen(t), rtPageMux(h, postRetryPage))
	return ps
}

func (ps *postRetryServer) received() []string {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return slices.Clone(ps.got)
}

// check waits until the server has n messages, then a little more
// for duplicates, and checks that they are m1..mn once each, in order.
func (ps *postRetryServer) check(t *testing.T, who string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(ps.received()) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // a late duplicate would show now
	got := ps.received()
	want := postRetryTexts(1, n)
	if !slices.Equal(got, want) {
		t.Fatalf("%s: the server's OnMessage saw %q, want %q: each message exactly once, in order", who, got, want)
	}
}

func postRetryTexts(from, to int) []string {
	var ts []string
	for i := from; i <= to; i++ {
		ts = append(ts, "m"+strconv.Itoa(i))
	}
	return ts
}

// postRetryDrops are the POSTs whose answers the proxy loses: the third
// (m3) and the fourth (m3's retry: a retry may be lost too), then the
// seventh (m5, after m3's second retry and m4).
var postRetryDrops = []int{3, 4, 7}

// The Go client over EventSource: answers of delivered POSTs are lost,
// then the server is out of reach while messages are sent.
func TestRealtimePostRetryGo(t *testing.T) {
	ps := startPostRetryServer(t)
	px := startPostDropProxy(t, ps.url, postRetryDrops...)
	var opened, retried atomic.Int32
	d := &client.Dialer{Proxy: proxy.Direct}
	s, err := d.Socket("http://"+px.addr()+"/rt", &client.SocketOptions{
		Transport: client.TransportEventSource,
		MinDelay:  50 * time.Millisecond,
		MaxDelay:  500 * time.Millisecond,
		OnOpen:    func(client.OpenInfo) { opened.Add(1) },
		OnRetry: func(err error, delay time.Duration) {
			retried.Add(1)
			t.Logf("retry after %v: %v", delay, err)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := testCtx(t)
	send := func(texts []string) {
		for _, text := range texts {
			if err := s.Send(ctx, text); err != nil {
				t.Errorf("Send(%q): %v", text, err)
			}
		}
	}
	send(postRetryTexts(1, 8))
	ps.check(t, "Go client, answers lost", 8)
	px.mu.Lock()
	t.Logf("answers lost of POSTs %v out of %d", px.dropped, px.posts)
	px.mu.Unlock()

	// The server dies: first the POSTs fail while the stream still looks
	// alive, then the stream breaks too; the messages go through once the
	// server is back.
	px.refuse()
	var wg sync.WaitGroup
	wg.Go(func() { send(postRetryTexts(9, 11)) })
	time.Sleep(300 * time.Millisecond)
	px.setDown(true)
	time.Sleep(1200 * time.Millisecond)
	px.setDown(false)
	wg.Wait()
	ps.check(t, "Go client, server out of reach while POSTing", 11)

	// Out of reach, and the client knows: the Sends wait for the next
	// connection.
	retries := retried.Load()
	px.setDown(true)
	for deadline := time.Now().Add(10 * time.Second); retried.Load() == retries; {
		if time.Now().After(deadline) {
			t.Fatal("the Socket did not notice that the server went out of reach")
		}
		time.Sleep(10 * time.Millisecond)
	}
	wg.Go(func() { send(postRetryTexts(12, 14)) })
	time.Sleep(time.Second)
	px.setDown(false)
	wg.Wait()
	ps.check(t, "Go client, server out of reach while reconnecting", 14)
	if n := opened.Load(); n < 3 {
		t.Errorf("the Socket opened %d times; the proxy going down did not reach it", n)
	}
}

// The browser client in Node over EventSource: the same.
func TestRealtimePostRetryBrowser(t *testing.T) {
	ps := startPostRetryServer(t)
	px := startPostDropProxy(t, ps.url, postRetryDrops...)
	p := startRTPeer(t, nil, "socket", "http://"+px.addr()+"/rt", `{"transport":"eventsource","minDelay":50,"maxDelay":500}`)
	evs := make(chan peerEvent, 256)
	go func() {
		for line := range p.lines {
			if e, ok := parsePeerEvent(line); ok {
				select { // never block: the peer's output must drain
				case evs <- e:
				default:
				}
			}
		}
	}()
	next := func(what string, want func(peerEvent) bool) peerEvent {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case e := <-evs:
				if want(e) {
					return e
				}
				t.Logf("browser client: %+v", e)
			case <-deadline:
				t.Fatalf("browser client: no %s", what)
			}
		}
	}
	send := func(texts []string) {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"send": texts})
		if _, err := p.stdin.Write(append(b, '\n')); err != nil {
			t.Fatal(err)
		}
		e := next("answer to the send command", func(e peerEvent) bool { return e.Ev == "sent" })
		if e.N != len(texts) || e.Err != "" {
			t.Errorf("browser client: send took %d of %d messages: %s", e.N, len(texts), e.Err)
		}
	}
	next("open", func(e peerEvent) bool { return e.Ev == "open" })
	send(postRetryTexts(1, 8))
	ps.check(t, "browser client, answers lost", 8)

	// The server dies: first the POSTs fail while the stream still looks
	// alive, then the stream breaks too.
	px.refuse()
	send(postRetryTexts(9, 11))
	time.Sleep(300 * time.Millisecond)
	px.setDown(true)
	next("reconnecting", func(e peerEvent) bool { return e.Ev == "reconnecting" })
	time.Sleep(1200 * time.Millisecond)
	px.setDown(false)
	next("reopen", func(e peerEvent) bool { return e.Ev == "open" })
	ps.check(t, "browser client, server out of reach while POSTing", 11)

	// Out of reach, and the client knows: the messages are queued.
	px.setDown(true)
	next("reconnecting", func(e peerEvent) bool { return e.Ev == "reconnecting" })
	send(postRetryTexts(12, 14))
	time.Sleep(time.Second)
	px.setDown(false)
	next("reopen", func(e peerEvent) bool { return e.Ev == "open" })
	ps.check(t, "browser client, server out of reach while reconnecting", 14)
}
