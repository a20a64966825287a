package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/client"
	"github.com/realtime-go/realtime/internal/slowloris"
	"github.com/realtime-go/realtime/websocket"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// shortTimeouts make the tests see the server's bounds at work.
var shortTimeouts = timeouts{header: 300 * time.Millisecond, write: 200 * time.Millisecond, idle: time.Second}

var testRooms = []string{"lobby", "go"}

// startServer serves a chat process as main does, with shortTimeouts,
// on broker (shared by the processes of a test), as node.
func startServer(t *testing.T, broker realtime.Broker, node string) *httptest.Server {
	t.Helper()
	c := newChat(&realtime.HubOptions{Broker: broker, Node: node}, testRooms)
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = newServer(c.handler(), shortTimeouts)
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		c.close()
	})
	return srv
}

// startProcesses starts two chat processes sharing one broker, as two
// processes share Redis or NATS with -redis or -nats.
func startProcesses(t *testing.T) (a, b *httptest.Server) {
	t.Helper()
	broker := realtime.NewMemoryBroker(nil)
	t.Cleanup(func() { broker.Close() })
	return startServer(t, broker, "a"), startServer(t, broker, "b")
}

// participant is a client.Socket in the chat, reading in the background.
type participant struct {
	t       *testing.T
	name    string
	s       *client.Socket
	msgs    chan client.Message
	skipped []client.Message // passed over by next
}

func join(t *testing.T, srv *httptest.Server, name string, tr client.Transport, rooms ...string) *participant {
	t.Helper()
	s, err := (&client.Dialer{}).Socket(srv.URL+"/chat?name="+name, &client.SocketOptions{Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	p := &participant{t: t, name: name, s: s, msgs: make(chan client.Message, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range s.All(ctx) {
			if err != nil {
				return
			}
			p.msgs <- m
		}
	}()
	t.Cleanup(func() {
		cancel()
		s.Close()
		<-done
	})
	for _, room := range rooms {
		if err := s.Subscribe(ctx, room); err != nil {
			t.Fatal(err)
		}
		p.next(func(m client.Message) bool { return m.Kind == client.KindSubscribed && m.Channel == room })
	}
	return p
}

// next returns the first message that match accepts; those it passes
// over are kept for later calls.
func (p *participant) next(match func(client.Message) bool) client.Message {
	p.t.Helper()
	for i, m := range p.skipped {
		if match(m) {
			p.skipped = slices.Delete(p.skipped, i, i+1)
			return m
		}
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-p.msgs:
			if match(m) {
				return m
			}
			p.skipped = append(p.skipped, m)
		case <-timeout:
			p.t.Fatalf("%s: no message came that was awaited; passed over: %+v", p.name, p.skipped)
			return client.Message{}
		}
	}
}

// line returns the next line said in room.
func (p *participant) line(room string) event {
	p.t.Helper()
	m := p.next(func(m client.Message) bool { return m.Kind == client.KindMessage && m.Channel == room })
	var e event
	if err := json.Unmarshal([]byte(m.Data), &e); err != nil {
		p.t.Fatalf("%s: %q: %v", p.name, m.Data, err)
	}
	return e
}

func (p *participant) say(room, text string) {
	p.t.Helper()
	p.send(request{Room: room, Text: text})
}

// send sends a request to the server.
func (p *participant) send(r request) {
	p.t.Helper()
	b, _ := json.Marshal(r)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.s.Send(ctx, string(b)); err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
}

// direct returns the next message sent to this socket only, decoded
// into v; kind is the "kind" it must have.
func (p *participant) direct(kind string, v any) {
	p.t.Helper()
	m := p.next(func(m client.Message) bool {
		return m.Kind == client.KindMessage && m.Channel == "" && strings.Contains(m.Data, `"kind":"`+kind+`"`)
	})
	if err := json.Unmarshal([]byte(m.Data), v); err != nil {
		p.t.Fatalf("%s: %q: %v", p.name, m.Data, err)
	}
}

// who returns room's presence as sorted "name/transport" items.
func (p *participant) who(room string) []string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	entries, err := p.s.Presence(ctx, room)
	if err != nil {
		p.t.Fatalf("%s: presence of %s: %v", p.name, room, err)
	}
	var who []string
	for _, e := range entries {
		who = append(who, e.User+"/"+e.Info)
	}
	slices.Sort(who)
	return who
}

// Two chat processes share one broker. alice, on WebSocket, is on the
// first; bob, on EventSource with POSTs, on the second. They meet in the
// lobby: each sees the other in its presence list and hears the other's
// lines; a line in a room bob is not in does not reach him.
func TestChatTwoProcesses(t *testing.T) {
	srvA, srvB := startProcesses(t)
	alice := join(t, srvA, "alice", client.TransportWebSocket, "lobby", "go")
	bob := join(t, srvB, "bob", client.TransportEventSource, "lobby")

	// alice hears bob arrive, from the other process.
	j := alice.next(func(m client.Message) bool {
		return m.Kind == client.KindJoin && m.Channel == "lobby" && m.Entry.User == "bob"
	})
	if e := j.Entry; e.User != "bob" || e.Info != "eventsource" || !strings.HasPrefix(e.Socket, "b.") {
		t.Fatalf("alice saw %+v join", e)
	}
	want := []string{"alice/websocket", "bob/eventsource"}
	for _, p := range []*participant{alice, bob} {
		if who := p.who("lobby"); !slices.Equal(who, want) {
			t.Fatalf("%s sees %q in the lobby, want %q", p.name, who, want)
		}
	}
	if who := alice.who("go"); !slices.Equal(who, []string{"alice/websocket"}) {
		t.Fatalf("alice sees %q in go", who)
	}

	// The room list counts the people of both processes.
	resp, err := http.Get(srvB.URL + "/rooms")
	if err != nil {
		t.Fatal(err)
	}
	var rooms []roomInfo
	err = json.NewDecoder(resp.Body).Decode(&rooms)
	resp.Body.Close()
	if err != nil || !slices.Equal(rooms, []roomInfo{{"lobby", 2}, {"go", 1}}) {
		t.Fatalf("rooms %+v, %v", rooms, err)
	}

	// Both connections outlive the server's write timeout.
	time.Sleep(2 * shortTimeouts.write)
	everyoneHears := func(want event) {
		t.Helper()
		for _, p := range []*participant{alice, bob} {
			e := p.line("lobby")
			if e.ID == "" || e.At == 0 {
				t.Fatalf("%s got %+v: no id or time", p.name, e)
			}
			e.ID, e.At = "", 0
			if e != want {
				t.Fatalf("%s got %+v in the lobby, want %+v", p.name, e, want)
			}
		}
	}
	alice.say("go", "only alice is here")
	alice.say("lobby", "hi bob")
	everyoneHears(event{Kind: "say", From: "alice", Transport: "websocket", Text: "hi bob"})
	bob.say("go", "bob is not in go: dropped")
	bob.say("lobby", "  hi alice  ")
	everyoneHears(event{Kind: "say", From: "bob", Transport: "eventsource", Text: "hi alice"})
	// bob's line in go came before his line in the lobby, which alice
	// has: it was dropped.
	if e := alice.line("go"); e.Text != "only alice is here" {
		t.Fatalf("alice got %+v in go", e)
	}
	for _, m := range alice.skipped {
		if m.Kind == client.KindMessage && m.Channel == "go" {
			t.Fatalf("alice got %q in go", m.Data)
		}
	}

	// bob leaves: alice hears it, and the lists no longer show him.
	bob.s.Close()
	l := alice.next(func(m client.Message) bool { return m.Kind == client.KindLeave && m.Channel == "lobby" })
	if l.Entry.Socket != j.Entry.Socket {
		t.Fatalf("alice saw %+v leave, want bob's socket %s", l.Entry, j.Entry.Socket)
	}
	if who := alice.who("lobby"); !slices.Equal(who, []string{"alice/websocket"}) {
		t.Fatalf("alice sees %q in the lobby after bob left", who)
	}
}

// A channel that is not a room name is refused.
func TestChatRoomNames(t *testing.T) {
	srvA, _ := startProcesses(t)
	p := join(t, srvA, "carol", client.TransportWebSocket)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.s.Subscribe(ctx, "No-Capitals"); err != nil {
		t.Fatal(err)
	}
	m := p.next(func(m client.Message) bool { return m.Channel == "No-Capitals" })
	if m.Kind != client.KindUnsubscribed {
		t.Fatalf("subscribe to No-Capitals: %v %q", m.Kind, m.Data)
	}
}

// TestSlowloris: 200 connections that send their request a byte at a
// time are dropped once the header timeout passes, and the page is
// served meanwhile.
func TestSlowloris(t *testing.T) {
	srv, _ := startProcesses(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	attack := make(chan error, 1)
	go func() { attack <- slowloris.Attack(ctx, srv.Listener.Addr().String(), 200, 100*time.Millisecond) }()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("page during the attack: %s", resp.Status)
	}
	if err := <-attack; err != nil {
		t.Fatal(err)
	}
}

// A participant entering a room asks for its recent lines and gets the
// latest historyLines of them, oldest first, with the ids the lines had
// live, from the broker: bob, on the other process, gets what alice said
// before he came. The server passes text as it came (escaping is the
// page's job: it shows text with textContent). A room bob is not in has
// no history for him.
func TestChatHistory(t *testing.T) {
	srvA, srvB := startProcesses(t)
	alice := join(t, srvA, "alice", client.TransportWebSocket, "lobby", "go")
	const html = `<img src=x onerror="alert(1)"> & </ul>`
	var said []event
	for i := range historyLines + 3 {
		text := fmt.Sprintf("line %d", i)
		if i == historyLines+2 {
			text = html
		}
		alice.say("lobby", text)
		said = append(said, alice.line("lobby"))
	}
	alice.say("go", "in go")
	alice.line("go")

	bob := join(t, srvB, "bob", client.TransportEventSource, "lobby")
	bob.send(request{Type: "history", Room: "go"}) // not his: no answer
	bob.send(request{Type: "history", Room: "lobby"})
	var h history
	bob.direct("history", &h)
	if h.Room != "lobby" || !slices.Equal(h.Lines, said[3:]) {
		t.Fatalf("bob got the history %+v, want alice's last %d lines %+v", h, historyLines, said[3:])
	}
	if last := h.Lines[len(h.Lines)-1]; last.Text != html || last.From != "alice" || last.Transport != "websocket" {
		t.Fatalf("the last line of the history is %+v", last)
	}

	// An empty room has an empty history (a list, not null).
	carol := join(t, srvA, "carol", client.TransportWebSocket, "random")
	carol.send(request{Type: "history", Room: "random"})
	var empty history
	carol.direct("history", &empty)
	if empty.Room != "random" || empty.Lines == nil || len(empty.Lines) != 0 {
		t.Fatalf("carol got the history %+v of an empty room", empty)
	}
}

// A ping is answered to its socket only, with its mark and who the
// socket is: alice's pong is not in bob's messages before his own.
func TestChatPing(t *testing.T) {
	srvA, srvB := startProcesses(t)
	alice := join(t, srvA, "alice", client.TransportWebSocket, "lobby")
	bob := join(t, srvB, "bob", client.TransportEventSource, "lobby")
	alice.send(request{Type: "ping", T: 12.5})
	var a pong
	alice.direct("pong", &a)
	if a.T != 12.5 || a.Name != "alice" || a.Node != "a" || !strings.HasPrefix(a.Socket, "a.") {
		t.Fatalf("alice got %+v", a)
	}
	bob.send(request{Type: "ping", T: 99})
	var b pong
	bob.direct("pong", &b)
	if b.T != 99 || b.Name != "bob" || b.Node != "b" || b.Socket == a.Socket {
		t.Fatalf("bob got %+v", b)
	}
	for _, m := range bob.skipped {
		if strings.Contains(m.Data, `"pong"`) {
			t.Fatalf("bob got another socket's pong: %q", m.Data)
		}
	}
}

// When its context ends (SIGINT, SIGTERM), serve stops listening and
// tells every page 1001 (going away), over WebSocket and over
// EventSource, so that they reconnect to the next process; then it
// returns.
func TestChatShutdown(t *testing.T) {
	c := newChat(&realtime.HubOptions{}, testRooms)
	defer c.close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	served := make(chan error, 1)
	go func() { served <- c.serve(ctx, ln, shortTimeouts) }()
	base := "http://" + ln.Addr().String() + "/chat"

	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := client.Dial(dctx, "ws://"+ln.Addr().String()+"/chat", &client.Dialer{Subprotocols: []string{realtime.SubprotocolV2}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if _, _, err := ws.Read(dctx); err != nil { // the position
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(dctx, "GET", base+"?"+realtime.ProtocolParam+"=realtime.v2", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	stream := bufio.NewReader(resp.Body)
	if line, err := stream.ReadString('\n'); err != nil || !strings.HasPrefix(line, "event: realtime.hello") {
		t.Fatalf("stream starts with %q, %v", line, err)
	}

	stop()
	for err == nil { // the heartbeat's announcement may come first
		_, _, err = ws.Read(dctx)
	}
	if ce := (websocket.CloseError{}); !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway {
		t.Fatalf("the WebSocket ended with %v, want 1001", err)
	}
	rest, err := io.ReadAll(stream)
	if err != nil || !strings.Contains(string(rest), "event: realtime.close\ndata: 1001 ") {
		t.Fatalf("the event stream ended with %q, %v; want a realtime.close event with 1001", rest, err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-dctx.Done():
		t.Fatal("serve did not return")
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("still listening after the shutdown")
	}
}

// The page and its assets come from this origin only, under a
// Content-Security-Policy that allows nothing else and nothing inline,
// and the script never writes HTML: user text goes through textContent.
func TestChatPage(t *testing.T) {
	srv, _ := startProcesses(t)
	external := regexp.MustCompile(`(?i:(https?:)?//[a-z0-9.-]+\.[a-z]{2,})|@import|url\(`)
	for _, path := range []string{"/", "/chat.js", "/chat.css", "/dashboard", "/dashboard.js", "/dashboard.css"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s, %v", path, resp.Status, err)
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != csp {
			t.Fatalf("GET %s: Content-Security-Policy %q", path, got)
		}
		if m := external.Find(b); m != nil {
			t.Fatalf("%s refers to another origin: %q", path, m)
		}
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "<script>", "style="} {
			if strings.Contains(string(b), bad) {
				t.Fatalf("%s has %q", path, bad)
			}
		}
	}
}

// getStats reads the dashboard's numbers.
func getStats(t *testing.T, srv *httptest.Server) stats {
	t.Helper()
	resp, err := http.Get(srv.URL + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// The dashboard's numbers, and /metrics, move with what participants
// do: sockets by transport, messages each way, a fallback, a reconnect.
func TestChatDashboard(t *testing.T) {
	srv, _ := startProcesses(t)
	resp, err := http.Get(srv.URL + "/dashboard")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `<script src="/dashboard.js" defer></script>`) {
		t.Fatalf("GET /dashboard: %s\n%s", resp.Status, page)
	}
	before := getStats(t, srv)
	if before.Sockets["websocket"] != 0 || before.Messages["out"] != 0 {
		t.Fatalf("numbers before anyone came: %+v", before)
	}

	alice := join(t, srv, "alice", client.TransportWebSocket, "lobby")
	bob := join(t, srv, "bob", client.TransportEventSource, "lobby")
	alice.say("lobby", "hello")
	alice.line("lobby")
	bob.line("lobby")
	// A page whose WebSocket a proxy blocks falls back, and one that
	// comes back presents its last event id.
	strip := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("Upgrade")
		r.Header.Del("Connection")
		r.Host = strings.TrimPrefix(srv.URL, "http://")
		p := *r.URL
		p.Scheme, p.Host = "http", r.Host
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, p.String(), r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				w.Write(buf[:n])
				w.(http.Flusher).Flush()
			}
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(strip.Close)
	carol := join(t, strip, "carol", 0, "lobby")
	if tr := carol.s.Transport(); tr != client.TransportEventSource {
		t.Fatalf("carol on %v, want the fallback", tr)
	}
	dave, err := (&client.Dialer{}).Socket(srv.URL+"/chat?name=dave", &client.SocketOptions{Transport: client.TransportWebSocket, LastEventID: alice.s.LastEventID()})
	if err != nil {
		t.Fatal(err)
	}
	defer dave.Close()

	deadline := time.Now().Add(10 * time.Second)
	for {
		st := getStats(t, srv)
		ok := st.Sockets["websocket"] == 2 && st.Sockets["eventsource"] == 2 && st.Fallbacks == 1 && st.Reconnections == 1 &&
			st.Messages["in"] >= 1 && st.Messages["out"] >= 2 && st.Bytes["out"] > 0 && st.At > before.At
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("numbers after the session: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err = http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`realtime_sockets{transport="websocket"} 2`, `realtime_sockets{transport="eventsource"} 2`, "realtime_fallbacks_total 1"} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("/metrics lacks %q:\n%s", want, body)
		}
	}
}
