package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/realtime-go/realtime/client"
)

// Three nodes (interop/cmd/rtnode, one process each) behind nginx
// round-robin with no stickiness, sharing channels through a real broker.
// Chromium pages and Go clients, on WebSocket and on EventSource, chat
// in several channels across the nodes. Then, on Redis:
//   - a node is killed (SIGKILL) during a publish burst: every client
//     resumes on another node and gets each message once, in order, and
//     the killed node's presence entries go within the presence TTL;
//   - Redis (appendonly yes, appendfsync always) is killed and started
//     again during a burst: nothing lost, nothing twice;
//   - Redis starts again empty: every client is told, per channel, that
//     its place was lost (lost, or a failed resume), then gets the new
//     messages once each, in order; a client that was away meanwhile
//     comes back with its last event id and is told, per channel, that
//     its resume failed.
// On NATS JetStream: the same chat and the node kill.

// mnChannels are the channels of the tests; each client is in some.
var mnChannels = []string{"room-a", "room-b", "room-c"}

// mnPresenceTTL is the nodes' -presence-ttl: short, so that the test of
// a dead node's entries is quick.
const mnPresenceTTL = 2 * time.Second

// mnWait bounds each wait of the tests: generous, as the machine is
// shared with Chromium and three nodes.
const mnWait = 60 * time.Second

func TestRealtimeMultiNodeRedis(t *testing.T) {
	redis := mnStartRedis(t)
	c := mnChatAndKillNode(t, "-redis", redis.URL())

	// Redis is killed a third of the way through a burst and started
	// again a moment later with its append-only file: every publish
	// waits for it (Hub.Publish retries with one key), and the nodes
	// follow on from where they were.
	const n = 60
	var restarted func() error
	start := time.Now()
	c.burst(t, "burst2", n, func(i int) {
		if i == n/3 {
			redis.Kill()
			restarted = redis.restartAfter(time.Second)
		}
	})
	if err := restarted(); err != nil {
		t.Fatal(err)
	}
	c.waitSeq(t, "burst2", n)
	t.Logf("the burst across the Redis restart took %v", time.Since(start).Round(time.Millisecond))

	// Redis comes back empty: the streams are gone, and each channel's
	// epoch changes. Every client must be told, per channel, before the
	// messages of the new epoch (those it gets then come once each, in
	// order, up to the last): never a silent gap.
	//
	// One Go client is away meanwhile: it comes back with its last
	// event id, and is told per channel that its resume failed.
	away := c.clients[2].(*mnGo)
	c.clients = slices.Delete(c.clients, 2, 3)
	away.s.Close()
	lastID := away.s.LastEventID()
	c.noteMarks(t)
	redis.Wipe()
	c.burst(t, "burst3", 30, nil)
	c.waitToldThenSeq(t, "burst3", 30)
	c.logNotices(t)

	back := mnDialGoFrom(t, c.lb, "go-back", client.TransportWebSocket, lastID, away.chans...)
	mnWaitAll(t, []mnClient{back}, "a failed resume in every channel", func(cl mnClient, st mnState) error {
		for _, ch := range cl.channels() {
			if notes := st.Ch[ch].Notices; !slices.Equal(notes, []string{"subscribed:failed"}) {
				return mnFatalIf(len(notes) > 0, fmt.Errorf("%s: notices %q, want one failed resume", ch, notes))
			}
		}
		return nil
	})
	c.clients = append(c.clients, back)
	c.noteMarks(t)
	c.burst(t, "burst4", 10, nil)
	c.waitSeq(t, "burst4", 10)
}

func TestRealtimeMultiNodeNATS(t *testing.T) {
	nats := mnStartNATS(t)
	mnChatAndKillNode(t, "-nats", nats.URL())
}

// mnChatAndKillNode starts the cluster on the broker the flags name;
// the clients chat; then the node most clients are on is killed during
// a burst, and its presence entries go.
func mnChatAndKillNode(t *testing.T, brokerFlags ...string) *mnCluster {
	t.Helper()
	c := mnStartCluster(t, brokerFlags...)
	c.chat(t)
	victim := c.busiestNode(t)
	c.burstKillingNode(t, "burst1", victim)
	c.checkPresenceGone(t, victim)
	return c
}

// mnCluster is the nodes, nginx in front of them, and the clients.
type mnCluster struct {
	nodes   []*mnNode
	lb      string // nginx's address
	clients []mnClient
	killed  map[string]bool // nodes killed by the test
	ghosts  chan mnGhosts   // how the presence of the last one killed went
	marks   map[string]map[string]int
}

// mnClient is a participant: a Chromium page or a Go client.Socket.
type mnClient interface {
	name() string
	channels() []string
	publish(t *testing.T, channel, text string)
	state(t *testing.T) mnState
}

// mnState is what a client has received.
type mnState struct {
	Opens []mnOpen              `json:"opens"`
	Ch    map[string]*mnChState `json:"ch"`
	Err   string                `json:"err,omitempty"`
}

type mnOpen struct {
	Transport    string `json:"transport"`
	Resumed      bool   `json:"resumed"`
	ResumeFailed bool   `json:"resumeFailed"`
}

// mnChState is one channel's messages and notices (subscribed:STATUS,
// unsubscribed:REASON, lost), in the order they came. Each notice is in
// Msgs too, as "!" + notice, so that its place among the messages shows.
type mnChState struct {
	Msgs    []string `json:"msgs"`
	Notices []string `json:"notices"`
}

// mnStartCluster starts three nodes with the broker flags, nginx, and
// the clients: two pages (WebSocket, EventSource) and two Go clients
// (WebSocket, EventSource), each in two or three of the channels.
func mnStartCluster(t *testing.T, brokerFlags ...string) *mnCluster {
	t.Helper()
	flags := append([]string{"-presence-ttl", mnPresenceTTL.String()}, brokerFlags...)
	c := &mnCluster{nodes: mnStartNodes(t, 3, flags...), killed: map[string]bool{}}
	c.lb = mnStartBalancer(t, c.nodes)
	chromium, firefox := rtSharedBrowser(t, "chromium"), rtSharedBrowser(t, "firefox")
	c.clients = []mnClient{
		mnOpenPage(t, chromium, c.lb, "page-ws", "websocket", mnChannels[0], mnChannels[1]),
		mnOpenPage(t, chromium, c.lb, "page-es", "eventsource", mnChannels[1], mnChannels[2]),
		mnDialGo(t, c.lb, "go-ws", client.TransportWebSocket, mnChannels...),
		mnDialGo(t, c.lb, "go-es", client.TransportEventSource, mnChannels[0], mnChannels[2]),
		mnOpenPage(t, firefox, c.lb, "firefox-ws", "websocket", mnChannels[0], mnChannels[2]),
		mnOpenPage(t, firefox, c.lb, "firefox-es", "eventsource", mnChannels[1], mnChannels[2]),
	}
	// Every client is subscribed to each of its channels before anyone
	// speaks.
	mnWaitAll(t, c.clients, "every client subscribed", func(cl mnClient, st mnState) error {
		for _, ch := range cl.channels() {
			cs := st.Ch[ch]
			if cs == nil || !slices.ContainsFunc(cs.Notices, func(n string) bool { return strings.HasPrefix(n, "subscribed:") }) {
				return fmt.Errorf("not yet subscribed to %s", ch)
			}
		}
		return nil
	})
	return c
}

// chat: every client says one line in each of its channels, and every
// member of a channel gets every line said there once.
func (c *mnCluster) chat(t *testing.T) {
	t.Helper()
	for _, cl := range c.clients {
		for _, ch := range cl.channels() {
			cl.publish(t, ch, "chat "+cl.name()+" "+ch)
		}
	}
	mnWaitAll(t, c.clients, "every line said in its channels", func(cl mnClient, st mnState) error {
		for _, ch := range cl.channels() {
			var want []string
			for _, other := range c.clients {
				if slices.Contains(other.channels(), ch) {
					want = append(want, "chat "+other.name()+" "+ch)
				}
			}
			var got []string
			for _, m := range st.Ch[ch].Msgs {
				if strings.HasPrefix(m, "chat ") {
					got = append(got, m)
				}
			}
			for _, w := range want {
				switch n := mnCount(got, w); {
				case n > 1:
					return mnFatal{fmt.Errorf("%s: %q %d times", ch, w, n)}
				case n == 0:
					return fmt.Errorf("%s: %q not yet", ch, w)
				}
			}
			if len(got) != len(want) {
				return mnFatal{fmt.Errorf("%s: got %q, want %q", ch, got, want)}
			}
		}
		return nil
	})
}

func mnCount(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// alive returns a node the test has not killed, other than except.
func (c *mnCluster) alive(except string) *mnNode {
	for _, nd := range c.nodes {
		if !c.killed[nd.name] && nd.name != except {
			return nd
		}
	}
	return nil
}

// presence asks a live node who is in channel, on every node.
func (c *mnCluster) presence(t *testing.T, channel string) []mnPresenceEntry {
	t.Helper()
	entries, err := c.tryPresence(channel)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// tryPresence is presence for a goroutine other than the test's.
func (c *mnCluster) tryPresence(channel string) ([]mnPresenceEntry, error) {
	nd := c.alive("")
	resp, err := http.Get("http://" + nd.addr + "/presence?channel=" + url.QueryEscape(channel))
	if err != nil {
		return nil, fmt.Errorf("presence from %s: %v", nd.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("presence from %s: %s: %s", nd.name, resp.Status, b)
	}
	var entries []mnPresenceEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		return nil, fmt.Errorf("presence from %s: %v: %s", nd.name, err, b)
	}
	return entries, nil
}

// mnGhosts is how the presence entries of a killed node went.
type mnGhosts struct {
	after time.Duration     // since the kill, when none was left
	left  []mnPresenceEntry // those left when the watch gave up
	err   error
}

// watchGhosts asks for the channels' presence every 50 ms from the
// moment victim is killed (while the test goes on) until no entry of
// victim is left, or mnWait has passed.
func (c *mnCluster) watchGhosts(victim string) chan mnGhosts {
	done := make(chan mnGhosts, 1)
	start := time.Now()
	go func() {
		for {
			var left []mnPresenceEntry
			for _, ch := range mnChannels {
				entries, err := c.tryPresence(ch)
				if err != nil {
					done <- mnGhosts{err: err}
					return
				}
				for _, e := range entries {
					if e.node() == victim {
						left = append(left, e)
					}
				}
			}
			if len(left) == 0 || time.Since(start) > mnWait {
				done <- mnGhosts{after: time.Since(start), left: left}
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return done
}

type mnPresenceEntry struct {
	Socket string `json:"socket"`
	User   string `json:"user"`
	Info   string `json:"info"`
}

// node is the name of the node a socket id belongs to (NODE.RANDOM).
func (e mnPresenceEntry) node() string {
	n, _, _ := strings.Cut(e.Socket, ".")
	return n
}

// busiestNode returns the node most clients are on, as presence shows
// them (each client is present under its name).
func (c *mnCluster) busiestNode(t *testing.T) string {
	t.Helper()
	on := map[string]map[string]bool{} // node -> users
	for _, ch := range mnChannels {
		for _, e := range c.presence(t, ch) {
			if on[e.node()] == nil {
				on[e.node()] = map[string]bool{}
			}
			on[e.node()][e.User] = true
		}
	}
	best := ""
	for nd, users := range on {
		if best == "" || len(users) > len(on[best]) {
			best = nd
		}
	}
	t.Logf("clients per node: %v; killing %s", on, best)
	if best == "" {
		t.Fatal("no client is present on any node")
	}
	return best
}

// burst publishes "TAG CHANNEL SEQ" for SEQ 1..n in every channel, in
// turn, through POST /publish on a live node, one at a time (each waits
// for its position). during, when set, runs before the i-th round.
func (c *mnCluster) burst(t *testing.T, tag string, n int, during func(i int)) {
	t.Helper()
	hc := &http.Client{Timeout: mnWait}
	for i := 1; i <= n; i++ {
		if during != nil {
			during(i)
		}
		for _, ch := range mnChannels {
			nd := c.alive("")
			text := fmt.Sprintf("%s %s %d", tag, ch, i)
			resp, err := hc.Post("http://"+nd.addr+"/publish?channel="+url.QueryEscape(ch), "text/plain", strings.NewReader(text))
			if err != nil {
				t.Fatalf("publish %q on %s: %v", text, nd.name, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("publish %q on %s: %s: %s", text, nd.name, resp.Status, b)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// burstKillingNode runs a burst and kills the node victim with SIGKILL
// a third of the way through; every client gets every message once, in
// order, and those that were on the victim resumed elsewhere.
func (c *mnCluster) burstKillingNode(t *testing.T, tag, victim string) {
	t.Helper()
	const n = 90
	opensBefore := map[string]int{}
	c.noteMarks(t)
	for _, cl := range c.clients {
		opensBefore[cl.name()] = len(cl.state(t).Opens)
	}
	c.burst(t, tag, n, func(i int) {
		if i == n/3 {
			for _, nd := range c.nodes {
				if nd.name == victim {
					nd.kill()
					c.killed[victim] = true
					c.ghosts = c.watchGhosts(victim)
				}
			}
		}
	})
	c.waitSeq(t, tag, n)
	// A client that reconnected resumed each of its channels.
	for _, cl := range c.clients {
		st := cl.state(t)
		if len(st.Opens) == opensBefore[cl.name()] {
			continue
		}
		t.Logf("%s reconnected: %+v", cl.name(), st.Opens[opensBefore[cl.name()]:])
		for _, ch := range cl.channels() {
			later := st.Ch[ch].Msgs[c.marks[cl.name()][ch]:]
			if !slices.Contains(later, "!subscribed:resumed") || slices.Contains(later, "!subscribed:failed") || slices.Contains(later, "!lost") {
				t.Errorf("%s in %s after %s died: notices %q, want resumed", cl.name(), ch, victim, st.Ch[ch].Notices)
			}
		}
	}
}

// waitSeq waits until every client has, in each of its channels, the
// messages "TAG CHANNEL 1" .. "TAG CHANNEL n", each once and in order,
// and fails at once on a duplicate or a message out of order.
func (c *mnCluster) waitSeq(t *testing.T, tag string, n int) {
	t.Helper()
	mnWaitAll(t, c.clients, fmt.Sprintf("%s 1..%d in every channel", tag, n), func(cl mnClient, st mnState) error {
		for _, ch := range cl.channels() {
			prefix := tag + " " + ch + " "
			next := 1
			for _, m := range st.Ch[ch].Msgs {
				s, ok := strings.CutPrefix(m, prefix)
				if !ok {
					continue
				}
				seq, err := strconv.Atoi(s)
				if err != nil || seq != next {
					return mnFatal{fmt.Errorf("%s: got %q where %s%d was due (a gap, a duplicate or disorder)", ch, m, prefix, next)}
				}
				next++
			}
			if next <= n {
				return fmt.Errorf("%s: %d of %d so far", ch, next-1, n)
			}
		}
		return nil
	})
}

// noteMarks remembers how many messages and notices each client has had
// per channel, so that waitToldThenSeq looks only at later ones.
func (c *mnCluster) noteMarks(t *testing.T) {
	c.marks = map[string]map[string]int{}
	for _, cl := range c.clients {
		st := cl.state(t)
		c.marks[cl.name()] = map[string]int{}
		for _, ch := range cl.channels() {
			c.marks[cl.name()][ch] = len(st.Ch[ch].Msgs)
		}
	}
}

// waitToldThenSeq waits until every client, in each of its channels,
// has been told since noteMarks that its place was lost ("lost" while
// connected, or "subscribed:failed" on a reconnect), and after that
// notice has the messages "TAG CHANNEL k" .. "TAG CHANNEL n" for some k,
// each once and in order; none of them may come before the notice.
func (c *mnCluster) waitToldThenSeq(t *testing.T, tag string, n int) {
	t.Helper()
	mnWaitAll(t, c.clients, fmt.Sprintf("a lost or failed notice, then %s ..%d, in every channel", tag, n), func(cl mnClient, st mnState) error {
		for _, ch := range cl.channels() {
			cs := st.Ch[ch]
			told := false
			prefix := tag + " " + ch + " "
			last := 0
			for _, m := range cs.Msgs[c.marks[cl.name()][ch]:] {
				if m == "!lost" || m == "!subscribed:failed" {
					told = true
					continue
				}
				s, ok := strings.CutPrefix(m, prefix)
				if !ok {
					continue
				}
				if !told {
					return mnFatal{fmt.Errorf("%s: %q came, but no lost or failed notice (notices %q)", ch, m, cs.Notices)}
				}
				seq, err := strconv.Atoi(s)
				if err != nil || seq <= last || last > 0 && seq != last+1 {
					return mnFatal{fmt.Errorf("%s: got %q after %s%d (a gap, a duplicate or disorder)", ch, m, prefix, last)}
				}
				last = seq
			}
			if !told {
				return fmt.Errorf("%s: no lost or failed notice yet (notices %q)", ch, cs.Notices)
			}
			if last < n {
				return fmt.Errorf("%s: up to %d of %d so far", ch, last, n)
			}
		}
		return nil
	})
}

// logNotices logs the notices each client had per channel since
// noteMarks.
func (c *mnCluster) logNotices(t *testing.T) {
	t.Helper()
	for _, cl := range c.clients {
		st := cl.state(t)
		var b strings.Builder
		for _, ch := range cl.channels() {
			var notes []string
			for _, m := range st.Ch[ch].Msgs[c.marks[cl.name()][ch]:] {
				if strings.HasPrefix(m, "!") {
					notes = append(notes, m[1:])
				}
			}
			fmt.Fprintf(&b, " %s %q", ch, notes)
		}
		t.Logf("%s was told:%s", cl.name(), b.String())
	}
}

// checkPresenceGone checks that no presence entry of the dead node
// victim was left in any channel after the presence TTL (the documented
// bound), plus a slack for a busy machine and the 50 ms of polling, and
// that every client is present again, on a live node.
func (c *mnCluster) checkPresenceGone(t *testing.T, victim string) {
	t.Helper()
	g := <-c.ghosts
	if g.err != nil {
		t.Fatal(g.err)
	}
	limit := mnPresenceTTL + 3*time.Second
	if len(g.left) > 0 || g.after > limit {
		t.Fatalf("the presence entries of %s, killed, were left for %v (more than %v): %+v", victim, g.after, limit, g.left)
	}
	t.Logf("the presence entries of %s were gone %v after it was killed (presence TTL %v)", victim, g.after.Round(time.Millisecond), mnPresenceTTL)
	deadline := time.Now().Add(mnWait)
	for {
		users := map[string]bool{}
		for _, ch := range mnChannels {
			for _, e := range c.presence(t, ch) {
				users[e.User] = true
			}
		}
		missing := ""
		for _, cl := range c.clients {
			if !users[cl.name()] {
				missing = cl.name()
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not present on any node", missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mnFatal is an error of a wait condition that waiting cannot mend.
type mnFatal struct{ error }

// mnFatalIf is err, as an mnFatal when fatal.
func mnFatalIf(fatal bool, err error) error {
	if fatal {
		return mnFatal{err}
	}
	return err
}

// mnWaitAll polls every client's state until cond holds for all, failing
// at once on an mnFatal and after mnWait otherwise.
func mnWaitAll(t *testing.T, clients []mnClient, what string, cond func(mnClient, mnState) error) {
	t.Helper()
	deadline := time.Now().Add(mnWait)
	for {
		var failed error
		var who string
		var st mnState
		for _, cl := range clients {
			st = cl.state(t)
			if st.Err != "" {
				t.Fatalf("%s: %s", cl.name(), st.Err)
			}
			if err := cond(cl, st); err != nil {
				failed, who = err, cl.name()
				break
			}
		}
		if failed == nil {
			return
		}
		_, fatal := failed.(mnFatal)
		if fatal || time.Now().After(deadline) {
			b, _ := json.Marshal(st)
			t.Fatalf("%s: %s: %v; its state: %.4000s", what, who, failed, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mnGo is a Go client.Socket that records what it receives.
type mnGo struct {
	who   string
	chans []string
	s     *client.Socket

	mu sync.Mutex
	st mnState
}

func (g *mnGo) name() string       { return g.who }
func (g *mnGo) channels() []string { return g.chans }

func (g *mnGo) state(*testing.T) mnState {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := mnState{Opens: slices.Clone(g.st.Opens), Err: g.st.Err, Ch: map[string]*mnChState{}}
	for ch, cs := range g.st.Ch {
		st.Ch[ch] = &mnChState{Msgs: slices.Clone(cs.Msgs), Notices: slices.Clone(cs.Notices)}
	}
	return st
}

func (g *mnGo) publish(t *testing.T, channel, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mnWait)
	defer cancel()
	if err := g.s.Publish(ctx, channel, text); err != nil {
		t.Fatalf("%s: publish in %s: %v", g.who, channel, err)
	}
}

// mnDialGo connects a Go client through the balancer as user name, on
// one transport, and subscribes it to channels.
func mnDialGo(t *testing.T, lb, name string, tr client.Transport, channels ...string) *mnGo {
	t.Helper()
	return mnDialGoFrom(t, lb, name, tr, "", channels...)
}

// mnDialGoFrom is mnDialGo for a client that resumes from lastID.
func mnDialGoFrom(t *testing.T, lb, name string, tr client.Transport, lastID string, channels ...string) *mnGo {
	t.Helper()
	g := &mnGo{who: name, chans: channels, st: mnState{Ch: map[string]*mnChState{}}}
	for _, ch := range channels {
		g.st.Ch[ch] = &mnChState{}
	}
	s, err := (&client.Dialer{}).Socket("http://"+lb+"/rt?user="+url.QueryEscape(name), &client.SocketOptions{
		Transport:      tr,
		LastEventID:    lastID,
		ConnectTimeout: 20 * time.Second,
		MinDelay:       100 * time.Millisecond,
		MaxDelay:       time.Second,
		OnOpen: func(info client.OpenInfo) {
			g.mu.Lock()
			g.st.Opens = append(g.st.Opens, mnOpen{Transport: info.Transport.String(), Resumed: info.Resumed, ResumeFailed: info.ResumeFailed})
			g.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	g.s = s
	ctx, cancel := context.WithCancel(context.Background())
	read := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		s.Close()
		<-read
	})
	go func() {
		defer close(read)
		for m, err := range s.All(ctx) {
			g.mu.Lock()
			if err != nil {
				if ctx.Err() == nil {
					g.st.Err = err.Error()
				}
				g.mu.Unlock()
				return
			}
			cs := g.st.Ch[m.Channel]
			if cs == nil {
				cs = &mnChState{}
				g.st.Ch[m.Channel] = cs
			}
			note := ""
			switch m.Kind {
			case client.KindMessage:
				cs.Msgs = append(cs.Msgs, m.Data)
			case client.KindSubscribed:
				note = "subscribed:" + string(m.Status)
			case client.KindUnsubscribed:
				note = "unsubscribed:" + m.Data
			case client.KindLost:
				note = "lost"
			}
			if note != "" {
				cs.Notices = append(cs.Notices, note)
				cs.Msgs = append(cs.Msgs, "!"+note)
			}
			g.mu.Unlock()
		}
	}()
	sctx, scancel := context.WithTimeout(context.Background(), mnWait)
	defer scancel()
	for _, ch := range channels {
		if err := s.Subscribe(sctx, ch); err != nil {
			t.Fatalf("%s: subscribe %s: %v", name, ch, err)
		}
	}
	return g
}

// mnPage is a browser tab on rtnode's test page.
type mnPage struct {
	who   string
	chans []string
	tab   rtTab
}

func (p *mnPage) name() string       { return p.who }
func (p *mnPage) channels() []string { return p.chans }

func (p *mnPage) state(t *testing.T) mnState {
	t.Helper()
	js := rtEval[string](t, p.tab, `JSON.stringify(window.__rt)`)
	var st mnState
	if err := json.Unmarshal([]byte(js), &st); err != nil {
		t.Fatalf("%s: state %q: %v", p.who, js, err)
	}
	return st
}

func (p *mnPage) publish(t *testing.T, channel, text string) {
	t.Helper()
	rtEval[bool](t, p.tab, fmt.Sprintf(`__rtPublish(%q, %q), true`, channel, text))
}

// mnOpenPage opens rtnode's test page through the balancer as user
// name, on one transport, subscribed to channels.
func mnOpenPage(t *testing.T, browser rtBrowser, lb, name, transport string, channels ...string) *mnPage {
	t.Helper()
	q := url.Values{"user": {name}, "transport": {transport}, "channels": {strings.Join(channels, ",")}}
	tab := rtOpen(t, browser, "http://"+lb+"/?"+q.Encode())
	rtWait(t, tab, name+" opens over "+transport,
		fmt.Sprintf(`window.__rt && __rt.opens.length > 0 && __rt.opens[0].transport === %q`, transport),
		`JSON.stringify(window.__rt)`, mnWait)
	return &mnPage{who: name, chans: channels, tab: tab}
}
