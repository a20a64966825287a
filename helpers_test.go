package realtime

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/realtime-go/realtime/eventsource"
	"github.com/realtime-go/realtime/websocket"
)

// waitLong bounds what must happen; a passing test never waits this long.
const waitLong = 10 * time.Second

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	t.Cleanup(cancel)
	return ctx
}

// testServer serves a Handler and records the sockets it opened.
type testServer struct {
	srv     *httptest.Server
	URL     string // http://127.0.0.1:port/rt
	sockets chan *Socket
}

// newTestServer serves Handler(opts, serve) at /rt. serve may be nil. At
// cleanup, every socket still open is aborted before the server closes,
// so a test that forgets a client does not hang.
func newTestServer(t *testing.T, opts *Options, serve func(context.Context, *Socket)) *testServer {
	t.Helper()
	ts := &testServer{sockets: make(chan *Socket, 1024)}
	var mu sync.Mutex
	var all []*Socket
	h := Handler(opts, func(ctx context.Context, s *Socket) {
		mu.Lock()
		all = append(all, s)
		mu.Unlock()
		ts.sockets <- s
		if serve != nil {
			serve(ctx, s)
			return
		}
		<-ctx.Done()
	})
	mux := http.NewServeMux()
	mux.Handle("/rt", h)
	mux.Handle("/realtime.js", ClientJS())
	ts.srv = httptest.NewServer(mux)
	ts.URL = ts.srv.URL + "/rt"
	t.Cleanup(func() {
		mu.Lock()
		for _, s := range all {
			s.abort()
		}
		mu.Unlock()
		ts.srv.Close()
	})
	return ts
}

// next returns the next socket the server opened.
func (ts *testServer) next(t *testing.T) *Socket {
	t.Helper()
	select {
	case s := <-ts.sockets:
		return s
	case <-time.After(waitLong):
		t.Fatal("server opened no socket")
		return nil
	}
}

// ---------------------------------------------------------------------------
// A WebSocket client speaking the wire protocol.
// ---------------------------------------------------------------------------

type wsClient struct {
	c     *websocket.Conn
	pos   string // the position of the first message (realtime.v1 only)
	v2    bool
	raw   bool // realtime.v2: read heartbeat messages too
	beats int  // realtime.v2: the heartbeat messages skipped
}

// isBeat reports whether a realtime.v2 server message (the text of a
// WebSocket message, or an event's id and data) is a heartbeat.
func isBeat(id, data string) bool {
	return id == "" && strings.HasPrefix(data, "heartbeat\n")
}

type wsDial struct {
	plain       bool   // offer no subprotocol
	v2          bool   // offer SubprotocolV2
	lastEventID string // query parameter
	noRead      bool   // do not read the position
	opts        websocket.ClientOptions
}

func dialWS(t *testing.T, ts *testServer, d wsDial) *wsClient {
	t.Helper()
	u, _ := url.Parse(ts.URL)
	u.Scheme = "ws"
	if d.lastEventID != "" {
		u.RawQuery = url.Values{"lastEventId": {d.lastEventID}}.Encode()
	}
	opts := d.opts
	want := Subprotocol
	switch {
	case d.v2:
		want = SubprotocolV2
		opts.Subprotocols = []string{SubprotocolV2, Subprotocol}
	case !d.plain:
		opts.Subprotocols = []string{Subprotocol}
	}
	ctx := testCtx(t)
	nc, err := new(net.Dialer).DialContext(ctx, "tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := websocket.NewClient(ctx, nc, u, &opts)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	wc := &wsClient{c: c, v2: d.v2}
	if !d.plain {
		if c.Subprotocol() != want {
			t.Fatalf("subprotocol %q, want %q", c.Subprotocol(), want)
		}
		if !d.noRead {
			id, data, hasData := wc.read(t)
			if hasData {
				t.Fatalf("first message %q\\n%q carries data; want the position alone", id, data)
			}
			wc.pos = id
		}
	}
	return wc
}

// read reads one realtime.v1 message.
func (wc *wsClient) read(t *testing.T) (id, data string, hasData bool) {
	t.Helper()
	p := wc.readRaw(t)
	id, data, hasData = strings.Cut(p, "\n")
	return id, data, hasData
}

// readRaw reads one message; on realtime.v2 it skips heartbeats, unless
// wc.raw.
func (wc *wsClient) readRaw(t *testing.T) string {
	t.Helper()
	for {
		typ, p, err := wc.c.Read(testCtx(t))
		if err != nil {
			t.Fatalf("websocket client: read: %v", err)
		}
		if typ != websocket.MessageText {
			t.Fatalf("websocket client: %v message", typ)
		}
		if id, data, _ := strings.Cut(string(p), "\n"); wc.v2 && !wc.raw && isBeat(id, data) {
			wc.beats++
			continue
		}
		return string(p)
	}
}

// expectClose reads until the connection closes and returns the code.
func (wc *wsClient) expectClose(t *testing.T) websocket.StatusCode {
	t.Helper()
	for {
		_, _, err := wc.c.Read(testCtx(t))
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("websocket client: read ended with %v, not a close", err)
			}
			return websocket.CloseStatus(err)
		}
	}
}

func (wc *wsClient) send(t *testing.T, text string) {
	t.Helper()
	if err := wc.c.Write(testCtx(t), websocket.MessageText, []byte(text)); err != nil {
		t.Fatalf("websocket client: write: %v", err)
	}
}

// ---------------------------------------------------------------------------
// An EventSource client speaking the wire protocol.
// ---------------------------------------------------------------------------

type esClient struct {
	url    string
	resp   *http.Response
	dec    *eventsource.Decoder
	token  string
	pos    string
	lastID string
	evs    chan esEvent
	v2     bool
	raw    bool // realtime.v2: read heartbeat events too
	beats  int  // realtime.v2: the heartbeat events skipped
}

type esEvent struct {
	ev  eventsource.Event
	err error
}

type esDial struct {
	lastEventID string // Last-Event-ID header
	v2          bool   // ask for realtime.v2
	noRead      bool   // read nothing: a client that stops reading
}

func dialES(t *testing.T, ts *testServer, d esDial) *esClient {
	t.Helper()
	u := ts.URL
	if d.v2 {
		u += "?" + ProtocolParam + "=" + SubprotocolV2
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if d.lastEventID != "" {
		req.Header.Set("Last-Event-ID", d.lastEventID)
	}
	// A transport of its own, so that closing the client closes its
	// connection for sure.
	tr := &http.Transport{DisableKeepAlives: true}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("event stream: status %d", resp.StatusCode)
	}
	if got, want := resp.Header.Get(ProtocolHeader), map[bool]string{true: SubprotocolV2}[d.v2]; got != want {
		resp.Body.Close()
		t.Fatalf("event stream: %s %q, want %q", ProtocolHeader, got, want)
	}
	ec := &esClient{url: ts.URL, resp: resp, evs: make(chan esEvent, 4096), v2: d.v2}
	t.Cleanup(ec.close)
	if d.noRead {
		return ec
	}
	ec.lastID = d.lastEventID
	ec.startDecoding()
	hello := ec.next(t)
	if hello.Type != HelloEvent {
		t.Fatalf("first event %+v, want %s", hello, HelloEvent)
	}
	ec.token, ec.pos = hello.Data, hello.ID
	return ec
}

// startDecoding reads events on a goroutine, which ends with the stream.
func (ec *esClient) startDecoding() {
	ec.dec = eventsource.NewDecoder(ec.resp.Body, &eventsource.DecoderOptions{LastEventID: ec.lastID})
	go func() {
		for {
			ev, err := ec.dec.Next()
			ec.evs <- esEvent{ev, err}
			if err != nil {
				return
			}
		}
	}()
}

func (ec *esClient) close() { ec.resp.Body.Close() }

// next returns the next event.
// On realtime.v2 it skips heartbeats, unless ec.raw.
func (ec *esClient) next(t *testing.T) eventsource.Event {
	t.Helper()
	for {
		select {
		case e := <-ec.evs:
			if e.err != nil {
				t.Fatalf("event stream: %v", e.err)
			}
			// An event without an id field keeps the stream's last event id.
			if ec.v2 && !ec.raw && e.ev.Type == "message" && isBeat("", e.ev.Data) {
				ec.beats++
				continue
			}
			return e.ev
		case <-time.After(waitLong):
			t.Fatal("event stream: no event")
			return eventsource.Event{}
		}
	}
}

// end waits for the end of the stream.
func (ec *esClient) end(t *testing.T) error {
	t.Helper()
	for {
		select {
		case e := <-ec.evs:
			if e.err != nil {
				return e.err
			}
		case <-time.After(waitLong):
			t.Fatal("event stream did not end")
			return nil
		}
	}
}

// post sends a message for the stream's socket and returns the status.
func (ec *esClient) post(t *testing.T, text string) int {
	t.Helper()
	return postMessage(t, ec.url, ec.token, text)
}

func postMessage(t *testing.T, u, token, text string) int {
	t.Helper()
	return postSeq(t, u, token, "", text)
}

// postSeq posts text with the Realtime-Seq header seq (none when "").
func postSeq(t *testing.T, u, token, seq, text string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set(TokenHeader, token)
	}
	if seq != "" {
		req.Header.Set(SeqHeader, seq)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// rawStream opens an event stream and returns its body unparsed.
func rawStream(t *testing.T, ts *testServer) *bufio.Reader {
	t.Helper()
	return rawStreamURL(t, ts.URL)
}

// rawStreamURL opens the event stream of u and returns its body
// unparsed.
func rawStreamURL(t *testing.T, u string) *bufio.Reader {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Accept", "text/event-stream")
	tr := &http.Transport{DisableKeepAlives: true}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return bufio.NewReader(resp.Body)
}

// eventually polls cond until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitDone waits for a socket to end.
func waitDone(t *testing.T, s *Socket) {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(waitLong):
		t.Fatalf("socket %s did not end", s.ID())
	}
}

// ---------------------------------------------------------------------------
// Hubs and channels.
// ---------------------------------------------------------------------------

// chat is the channel of the tests that need one.
const chat = "chat"

// newHub returns a hub closed at cleanup (after the test servers made
// later, whose cleanups run first).
func newHub(t testing.TB, opts *HubOptions) *Hub {
	t.Helper()
	h := NewHub(opts)
	t.Cleanup(func() { h.Close() })
	return h
}

// chatOptions are the options of a handler whose sockets join chat.
func chatOptions(hub *Hub) *Options {
	return &Options{Hub: hub, Channels: []string{chat}}
}

// oneID is the id a socket in channel only has at p.
func oneID(channel string, p Position) string {
	var c cursor
	c.set(channel, p)
	return c.encode()
}

// publish publishes text to channel and returns the id it carries to a
// socket in that channel only.
func publish(tb testing.TB, hub *Hub, channel, text string) string {
	tb.Helper()
	p, err := hub.Publish(context.Background(), channel, text)
	if err != nil {
		tb.Fatalf("Publish: %v", err)
	}
	return oneID(channel, p)
}

// publishWait publishes text to channel and waits until the hub has
// delivered it to its sockets in channel (queued it for them).
func publishWait(t *testing.T, hub *Hub, channel, text string) string {
	t.Helper()
	p, err := hub.Publish(testCtx(t), channel, text)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	eventually(t, "the hub to deliver "+text, func() bool {
		hub.mu.Lock()
		c := hub.channels[channel]
		hub.mu.Unlock()
		if c == nil {
			return false
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.last.Epoch == p.Epoch && c.last.Offset >= p.Offset
	})
	return oneID(channel, p)
}

// lastID returns the id of a socket in channel only at the channel's
// latest position: the position a fresh client gets.
func lastID(tb testing.TB, hub *Hub, channel string) string {
	tb.Helper()
	_, p, err := hub.broker.Since(context.Background(), channel, Position{})
	if err != nil {
		tb.Fatal(err)
	}
	return oneID(channel, p)
}
