package realtime

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/realtime-go/realtime/websocket"
)

// recorder is an Observer that keeps every event.
type recorder struct {
	mu         sync.Mutex
	connects   []ConnectEvent
	ends       []DisconnectEvent
	refusals   []RefuseEvent
	fallbacks  []ConnectEvent
	resumes    []ResumeEvent
	in, out    []MessageEvent
	drops      []DropEvent
	heartbeats []HeartbeatEvent
	publishes  []PublishEvent
}

func (r *recorder) observer() *Observer {
	return &Observer{
		OnConnect:         func(e ConnectEvent) { r.add(func() { r.connects = append(r.connects, e) }) },
		OnDisconnect:      func(e DisconnectEvent) { r.add(func() { r.ends = append(r.ends, e) }) },
		OnRefuse:          func(e RefuseEvent) { r.add(func() { r.refusals = append(r.refusals, e) }) },
		OnFallback:        func(e ConnectEvent) { r.add(func() { r.fallbacks = append(r.fallbacks, e) }) },
		OnResume:          func(e ResumeEvent) { r.add(func() { r.resumes = append(r.resumes, e) }) },
		OnMessageIn:       func(e MessageEvent) { r.add(func() { r.in = append(r.in, e) }) },
		OnMessageOut:      func(e MessageEvent) { r.add(func() { r.out = append(r.out, e) }) },
		OnDrop:            func(e DropEvent) { r.add(func() { r.drops = append(r.drops, e) }) },
		OnHeartbeatMissed: func(e HeartbeatEvent) { r.add(func() { r.heartbeats = append(r.heartbeats, e) }) },
		OnPublish:         func(e PublishEvent) { r.add(func() { r.publishes = append(r.publishes, e) }) },
	}
}

func (r *recorder) add(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f()
}

// read runs f with the recorder locked.
func (r *recorder) read(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f()
}

// count waits until n() reaches want (failing the test after waitLong)
// and checks it does not exceed it.
func (r *recorder) wait(t *testing.T, what string, want int, n func() int) {
	t.Helper()
	var got int
	eventually(t, what, func() bool {
		r.read(func() { got = n() })
		return got >= want
	})
	if got != want {
		t.Fatalf("%s: %d, want %d", what, got, want)
	}
}

// Connects and disconnects on both transports, with the transport, the
// protocol, the close code and the cause.
func TestObserverConnectDisconnect(t *testing.T) {
	var r recorder
	ts := newTestServer(t, &Options{Observer: r.observer()}, nil)

	wc := dialWS(t, ts, wsDial{v2: true})
	ws := ts.next(t)
	ec := dialES(t, ts, esDial{})
	es := ts.next(t)
	r.wait(t, "connects", 2, func() int { return len(r.connects) })
	r.read(func() {
		if e := r.connects[0]; e.Socket != ws || e.Transport != TransportWebSocket || e.Protocol != SubprotocolV2 || e.Fallback {
			t.Errorf("WebSocket connect %+v", e)
		}
		if e := r.connects[1]; e.Socket != es || e.Transport != TransportEventSource || e.Protocol != Subprotocol {
			t.Errorf("EventSource connect %+v", e)
		}
	})

	// The client closes the WebSocket; the server closes the stream.
	wc.c.Close(websocket.StatusCode(4001), "bye")
	waitDone(t, ws)
	if err := es.CloseWith(4002, "done"); err != nil {
		t.Fatal(err)
	}
	ec.end(t)
	r.wait(t, "disconnects", 2, func() int { return len(r.ends) })
	r.read(func() {
		byS := map[*Socket]DisconnectEvent{}
		for _, e := range r.ends {
			byS[e.Socket] = e
		}
		if e := byS[ws]; e.Code != 4001 || e.Transport != TransportWebSocket || e.Err == nil || e.Duration <= 0 {
			t.Errorf("WebSocket disconnect %+v, want code 4001 with the close as cause", e)
		}
		if e := byS[es]; e.Code != 4002 || e.Err != nil || e.Protocol != Subprotocol {
			t.Errorf("EventSource disconnect %+v, want code 4002 and no cause", e)
		}
	})
}

// An EventSource client that goes away ends with 1006.
func TestObserverDisconnectAbnormal(t *testing.T) {
	var r recorder
	ts := newTestServer(t, &Options{Observer: r.observer(), Heartbeat: 20 * time.Millisecond}, nil)
	ec := dialES(t, ts, esDial{})
	s := ts.next(t)
	ec.close()
	waitDone(t, s)
	r.wait(t, "disconnects", 1, func() int { return len(r.ends) })
	r.read(func() {
		if e := r.ends[0]; e.Code != websocket.StatusAbnormalClosure {
			t.Errorf("disconnect %+v, want 1006", e)
		}
	})
}

// Every refusal of a socket is reported, with its reason; POSTs and
// preflights are not sockets.
func TestObserverRefuse(t *testing.T) {
	var r recorder
	hub := newHub(t, nil)
	forbid := errors.New("no")
	ts := newTestServer(t, &Options{Hub: hub, Observer: r.observer(), OnConnect: func(ctx context.Context, s *Socket) error {
		if s.Request().URL.Query().Get("deny") != "" {
			return forbid
		}
		return nil
	}}, nil)
	bad := newTestServer(t, &Options{Hub: hub, Observer: r.observer(), Channels: []string{"$reserved"}}, nil)

	get := func(u string, hdr map[string]string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	es := map[string]string{"Accept": "text/event-stream"}
	cases := []struct {
		u      string
		hdr    map[string]string
		status int
		reason RefuseReason
		t      Transport
	}{
		{ts.URL, map[string]string{"Accept": "text/event-stream", "Origin": "https://evil.example"}, 403, RefuseOrigin, TransportEventSource},
		{ts.URL + "?deny=1", es, 403, RefuseForbidden, TransportEventSource},
		{ts.URL, nil, 426, RefuseHandshake, TransportWebSocket},
		{bad.URL, es, 503, RefuseChannel, TransportEventSource},
	}
	for i, c := range cases {
		if got := get(c.u, c.hdr); got != c.status {
			t.Fatalf("case %d: status %d, want %d", i, got, c.status)
		}
		r.wait(t, "refusals", i+1, func() int { return len(r.refusals) })
		r.read(func() {
			e := r.refusals[i]
			if e.Reason != c.reason || e.Transport != c.t || e.Request == nil {
				t.Errorf("case %d: %+v, want reason %v transport %v", i, e, c.reason, c.t)
			}
			if c.reason == RefuseForbidden && !errors.Is(e.Err, forbid) {
				t.Errorf("case %d: Err %v, want OnConnect's", i, e.Err)
			}
		})
	}
	// A POST from a foreign origin is no socket.
	req, _ := http.NewRequest(http.MethodPost, ts.URL, strings.NewReader("x"))
	req.Header.Set("Origin", "https://evil.example")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	// Shutdown: refused while the hub is closed.
	hub.Close()
	if got := get(ts.URL, es); got != 503 {
		t.Fatalf("closed hub: status %d", got)
	}
	r.wait(t, "refusals", len(cases)+1, func() int { return len(r.refusals) })
	r.read(func() {
		if e := r.refusals[len(cases)]; e.Reason != RefuseShutdown {
			t.Errorf("closed hub: %+v", e)
		}
		if len(r.connects) != 0 || len(r.ends) != 0 {
			t.Errorf("refused sockets reported as connects %d / disconnects %d", len(r.connects), len(r.ends))
		}
	})
}

// An EventSource client that says it fell back is reported, before its
// connect.
func TestObserverFallback(t *testing.T) {
	var r recorder
	ts := newTestServer(t, &Options{Observer: r.observer()}, nil)
	dialES(t, ts, esDial{})
	ts.next(t)
	ts2 := *ts
	ts2.URL += "?" + FallbackParam + "=1"
	dialES(t, &ts2, esDial{})
	s := ts.next(t)
	r.wait(t, "connects", 2, func() int { return len(r.connects) })
	r.read(func() {
		if len(r.fallbacks) != 1 || r.fallbacks[0].Socket != s || !r.fallbacks[0].Fallback {
			t.Errorf("fallbacks %+v, want the second socket's", r.fallbacks)
		}
		if !r.connects[1].Fallback || r.connects[0].Fallback {
			t.Errorf("connects %+v", r.connects)
		}
	})
}

// Resumes are reported per channel, succeeded or failed; fresh joins are
// not.
func TestObserverResume(t *testing.T) {
	var r recorder
	hub := newHub(t, &HubOptions{Observer: r.observer()})
	ts := newTestServer(t, chatOptions(hub), nil)
	dialWS(t, ts, wsDial{}) // fresh
	ts.next(t)
	id := publishWait(t, hub, chat, "one")
	dialWS(t, ts, wsDial{lastEventID: id})
	ts.next(t)
	dialWS(t, ts, wsDial{lastEventID: "not-a-cursor"})
	ts.next(t)
	r.wait(t, "connects", 3, func() int { return len(r.connects) })
	r.read(func() {
		if r.connects[0].Reconnect || !r.connects[1].Reconnect || !r.connects[2].Reconnect {
			t.Errorf("connects %+v: only those with a last event id are reconnections", r.connects)
		}
	})
	r.wait(t, "resumes", 2, func() int { return len(r.resumes) })
	r.read(func() {
		if e := r.resumes[0]; !e.Resumed || e.Channel != chat {
			t.Errorf("resume %+v, want resumed", e)
		}
		if e := r.resumes[1]; e.Resumed || e.Channel != chat {
			t.Errorf("resume %+v, want failed", e)
		}
	})
}

// Messages in and out are counted with their bytes and channel; the
// protocol's own frames are not.
func TestObserverMessages(t *testing.T) {
	var r recorder
	hub := newHub(t, &HubOptions{Observer: r.observer()})
	ts := newTestServer(t, &Options{Hub: hub, Channels: []string{chat},
		OnPublish: func(context.Context, *Socket, string, string) error { return nil },
	}, nil)
	wc := dialWS(t, ts, wsDial{v2: true})
	s := ts.next(t)
	wc.readRaw(t) // subscribed
	wc.send(t, "publish "+chat+"\nhello")
	wc.readRaw(t)
	s.Send("private")
	wc.readRaw(t)
	wc.send(t, "message\nhi")
	r.wait(t, "messages in", 2, func() int { return len(r.in) })
	r.wait(t, "messages out", 2, func() int {
		n := 0
		for _, e := range r.out {
			n += e.Messages
		}
		return n
	})
	r.read(func() {
		if e := r.in[0]; e.Channel != chat || e.Bytes != int64(len("publish "+chat+"\nhello")) || e.Messages != 1 {
			t.Errorf("in %+v", e)
		}
		if e := r.in[1]; e.Channel != "" || e.Bytes != int64(len("message\nhi")) {
			t.Errorf("in %+v", e)
		}
		if e := r.out[0]; e.Channel != chat || e.Bytes != 5 || e.Messages != 1 || e.Socket != s {
			t.Errorf("out %+v", e)
		}
		if e := r.out[len(r.out)-1]; e.Channel != "" || e.Bytes != int64(len("private")) {
			t.Errorf("out %+v", e)
		}
		if len(r.publishes) != 1 || r.publishes[0].Channel != chat || r.publishes[0].Err != nil || r.publishes[0].Duration <= 0 || r.publishes[0].Delivered <= 0 {
			t.Errorf("publishes %+v", r.publishes)
		}
	})
}

// observeOut makes one call per run of one channel's messages.
func TestObserverOutRuns(t *testing.T) {
	var calls []MessageEvent
	s := &Socket{hnd: &handler{cfg: config{obs: observer{OnMessageOut: func(e MessageEvent) { calls = append(calls, e) }}}}}
	a := &message{kind: kindChannel, channel: "a", text: "12"}
	b := &message{kind: kindChannel, channel: "b", text: "345"}
	beat := &message{kind: kindHeartbeat, text: "1000"}
	s.observeOut([]queued{{m: a}, {m: a}, {m: beat}, {m: b}, {m: a}}, nil)
	want := []MessageEvent{{Socket: s, Channel: "a", Messages: 2, Bytes: 4}, {Socket: s, Channel: "b", Messages: 1, Bytes: 3}, {Socket: s, Channel: "a", Messages: 1, Bytes: 2}}
	if len(calls) != len(want) {
		t.Fatalf("calls %+v, want %+v", calls, want)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Fatalf("call %d %+v, want %+v", i, calls[i], want[i])
		}
	}
	calls = nil
	s.observeOut([]queued{{m: a}}, errors.New("write failed"))
	if calls != nil {
		t.Fatalf("a failed write reported %+v", calls)
	}
}

// Drops by QueueDropOldest and by an overflow under QueueClose.
func TestObserverDrop(t *testing.T) {
	for _, policy := range []QueuePolicy{QueueDropOldest, QueueClose} {
		t.Run(policy.String(), func(t *testing.T) {
			var r recorder
			hub := newHub(t, nil)
			ts := newTestServer(t, &Options{Hub: hub, Channels: []string{chat}, MaxQueue: 8, QueuePolicy: policy, WriteTimeout: -1, Observer: r.observer()}, nil)
			slow := dialWS(t, ts, wsDial{})
			slowSock := ts.next(t)
			fast := dialWS(t, ts, wsDial{})
			ts.next(t)
			paceBroadcasts(t, hub, fast)
			if policy == QueueClose {
				// The stalled client reads what was in flight, then the close.
				for {
					if _, _, err := slow.c.Read(testCtx(t)); err != nil {
						break
					}
				}
			} else {
				slow.c.CloseNow()
			}
			waitDone(t, slowSock)
			r.wait(t, "disconnects", 1, func() int { return len(r.ends) })
			r.read(func() {
				var n uint64
				for _, e := range r.drops {
					if e.Socket != slowSock {
						t.Errorf("drop of another socket: %+v", e)
					}
					want := DropOldest
					if policy == QueueClose {
						want = DropClose
					}
					if e.Reason != want {
						t.Errorf("drop %+v, want reason %v", e, want)
					}
					n += e.Messages
				}
				if policy == QueueDropOldest && n != slowSock.Dropped() {
					t.Errorf("drops reported %d, Dropped %d", n, slowSock.Dropped())
				}
				if policy == QueueClose && (n < 9 || len(r.drops) != 1) {
					t.Errorf("overflow drops %+v, want one of at least 9 messages", r.drops)
				}
				if policy == QueueClose && r.ends[0].Code != websocket.StatusTryAgainLater {
					t.Errorf("disconnect %+v, want 1013", r.ends[0])
				}
			})
		})
	}
}

// A WebSocket client that stops answering pings is a missed heartbeat.
func TestObserverHeartbeatMissed(t *testing.T) {
	var r recorder
	ts := newTestServer(t, &Options{Heartbeat: 50 * time.Millisecond, Observer: r.observer()}, nil)
	dialWS(t, ts, wsDial{})
	s := ts.next(t)
	waitDone(t, s)
	r.wait(t, "disconnects", 1, func() int { return len(r.ends) })
	r.read(func() {
		if len(r.heartbeats) != 1 || !r.heartbeats[0].Pong || r.heartbeats[0].Socket != s {
			t.Errorf("heartbeats %+v", r.heartbeats)
		}
	})
}

// Logger logs refusals at Warn and connects at Debug; Options.Observer
// overrides the hub's, and Options are copied.
func TestObserverLoggerAndCopy(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var hubRec, own recorder
	hub := newHub(t, &HubOptions{Observer: hubRec.observer(), Logger: log})
	obs := own.observer()
	opts := &Options{Hub: hub, Observer: obs}
	ts := newTestServer(t, opts, nil)
	obs.OnConnect = nil // after Handler: changes nothing
	dialES(t, ts, esDial{})
	ts.next(t)
	resp, err := http.Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	own.wait(t, "connects", 1, func() int { return len(own.connects) })
	own.wait(t, "refusals", 1, func() int { return len(own.refusals) })
	hubRec.read(func() {
		if len(hubRec.connects)+len(hubRec.refusals) != 0 {
			t.Error("the hub's observer got the events of a handler with its own")
		}
	})
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	for _, want := range []string{"level=DEBUG msg=\"realtime: socket opened\"", "level=WARN msg=\"realtime: socket refused\" reason=handshake"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// The hooks allocate nothing, set or not: events are values.
func TestObserverAllocs(t *testing.T) {
	m := &message{kind: kindChannel, channel: chat, text: "hello"}
	batch := []queued{{m: m}, {m: m}}
	var n int64
	for _, obs := range []observer{{}, newObserver(&Observer{
		OnMessageOut: func(e MessageEvent) { n += e.Bytes },
		OnMessageIn:  func(e MessageEvent) { n += e.Bytes },
		OnDrop:       func(e DropEvent) { n += int64(e.Messages) },
		OnResume:     func(e ResumeEvent) { n++ },
	}, nil)} {
		s := &Socket{hnd: &handler{cfg: config{obs: obs}}, proto: protoV2}
		if a := testing.AllocsPerRun(100, func() {
			s.observeOut(batch, nil)
			s.observeIn("publish chat\nhello")
			s.observeJoin(chat, statusResumed)
		}); a != 0 {
			t.Errorf("observer %v: %v allocations", obs.OnMessageOut != nil, a)
		}
	}
	h := &Hub{}
	if a := testing.AllocsPerRun(100, func() {
		t0 := h.publishStart()
		h.observePublish(context.Background(), chat, t0, h.publishEnd(t0), false, nil)
	}); a != 0 {
		t.Errorf("publish unobserved: %v allocations", a)
	}
}

// A drop is reported with OnDrop alone set: the overflow that closes a
// socket before its writer started.
func TestObserverDropAlone(t *testing.T) {
	drops := make(chan DropEvent, 4)
	ts := newTestServer(t, &Options{MaxQueue: 1, Observer: &Observer{OnDrop: func(e DropEvent) { drops <- e }},
		OnConnect: func(ctx context.Context, s *Socket) error {
			s.Send("a")
			s.Send("b") // the writer has not started: the queue overflows
			return nil
		}}, nil)
	wc := dialWS(t, ts, wsDial{})
	if code := wc.expectClose(t); code != websocket.StatusTryAgainLater {
		t.Fatalf("close %d, want 1013", code)
	}
	select {
	case e := <-drops:
		if e.Reason != DropClose || e.Messages != 2 {
			t.Fatalf("drop %+v, want 2 messages by close", e)
		}
	case <-time.After(waitLong):
		t.Fatal("no drop reported")
	}
}
