package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/eventsource"
	"github.com/realtime-go/realtime/proxy"
	"github.com/realtime-go/realtime/websocket"
)

// The tests run the Socket against the real realtime.Handler. They wait
// for outcomes, never for durations: every wait is bounded by opTimeout,
// and a passing test meets its conditions long before.

// rtConfig shapes a test server.
type rtConfig struct {
	opts realtime.Options // Hub and OnMessage are filled in when nil

	// stripUpgrade drops Upgrade and Connection from requests before the
	// handler sees them, as nginx does by default; the handler then
	// answers a WebSocket handshake with 426.
	stripUpgrade bool

	// swallowUpgrade holds WebSocket handshakes without answering.
	swallowUpgrade bool

	// wrap, when set, wraps the handler (after the above).
	wrap func(http.Handler) http.Handler

	// h2 serves over TLS with HTTP/2 offered by ALPN (extended CONNECT
	// included, as the tests run with GODEBUG=http2xconnect=1); URL is
	// then https://, and rootCAs trusts the server.
	h2 bool

	// serve is the Handler's serve function; nil keeps sockets open.
	serve func(ctx context.Context, s *realtime.Socket)
}

// rtServer is a realtime.Handler on httptest, with a hub. Its default
// OnMessage records each message and broadcasts "KIND said TEXT".
type rtServer struct {
	hub      *realtime.Hub
	srv      *httptest.Server
	URL      string                // http://127.0.0.1:port/rt
	got      chan string           // "KIND:TEXT" for each message OnMessage saw
	sockets  chan *realtime.Socket // each socket that opened
	upgrades atomic.Int32          // WebSocket handshakes that reached the server
	posts    atomic.Int32          // POSTs that reached the server
	conns    atomic.Int32          // TCP connections accepted
	held     chan struct{}         // one value per swallowed handshake
}

func startRT(t *testing.T, cfg rtConfig) *rtServer {
	t.Helper()
	noProxyEnv(t)
	rs := &rtServer{
		got:     make(chan string, 256),
		sockets: make(chan *realtime.Socket, 256),
		held:    make(chan struct{}, 64),
	}
	opts := cfg.opts
	if opts.Hub == nil {
		opts.Hub = realtime.NewHub(nil)
	}
	rs.hub = opts.Hub
	if opts.Channels == nil {
		opts.Channels = []string{chatChannel}
	}
	if opts.OnMessage == nil {
		opts.OnMessage = func(ctx context.Context, s *realtime.Socket, text string) {
			rs.got <- s.Transport().String() + ":" + text
			rs.hub.Publish(ctx, chatChannel, s.Transport().String()+" said "+text)
		}
	}
	var h http.Handler = realtime.Handler(&opts, func(ctx context.Context, s *realtime.Socket) {
		rs.sockets <- s
		if cfg.serve != nil {
			cfg.serve(ctx, s)
			return
		}
		<-ctx.Done()
	})
	release := make(chan struct{})
	var heldWG sync.WaitGroup
	inner := h
	h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			rs.upgrades.Add(1)
			switch {
			case cfg.swallowUpgrade:
				heldWG.Add(1)
				defer heldWG.Done()
				nc, _, err := http.NewResponseController(w).Hijack()
				if err != nil {
					return
				}
				defer nc.Close()
				rs.held <- struct{}{}
				<-release
				return
			case cfg.stripUpgrade:
				r.Header.Del("Upgrade")
				r.Header.Del("Connection")
			}
		}
		if r.Method == http.MethodPost {
			rs.posts.Add(1)
		}
		inner.ServeHTTP(w, r)
	})
	if cfg.wrap != nil {
		h = cfg.wrap(h)
	}
	mux := http.NewServeMux()
	mux.Handle("/rt", h)
	rs.srv = httptest.NewUnstartedServer(mux)
	rs.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			rs.conns.Add(1)
		}
	}
	if cfg.h2 {
		rs.srv.EnableHTTP2 = true
		rs.srv.StartTLS()
	} else {
		rs.srv.Start()
	}
	rs.URL = rs.srv.URL + "/rt"
	t.Cleanup(func() {
		close(release)
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if err := rs.hub.Shutdown(ctx); err != nil {
			t.Errorf("hub shutdown: %v", err)
		}
		heldWG.Wait()
		rs.srv.Close()
		rs.hub.Close()
	})
	return rs
}

// next returns the next socket the server opened.
func (rs *rtServer) next(t *testing.T) *realtime.Socket {
	t.Helper()
	return within(t, rs.sockets, "the server opened no socket")
}

// received returns the next message OnMessage saw.
func (rs *rtServer) received(t *testing.T) string {
	t.Helper()
	return within(t, rs.got, "the server received no message")
}

// shutdown closes every socket with 1001, as a server going away does,
// and goes on serving with the same hub.
func (rs *rtServer) shutdown(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := rs.hub.Shutdown(ctx); err != nil {
		t.Fatalf("hub shutdown: %v", err)
	}
}

// chatChannel is the channel every socket of an rtServer is in.
const chatChannel = "chat"

// broadcast publishes text to the chat channel.
func (rs *rtServer) broadcast(t *testing.T, text string) {
	t.Helper()
	if _, err := rs.hub.Publish(testCtx(t), chatChannel, text); err != nil {
		t.Fatal(err)
	}
}

// sockRec records a Socket's callbacks.
type sockRec struct {
	opens   chan OpenInfo
	retries chan error
}

// testSocketOptions are fast and patient: short backoff, a connect
// timeout no loaded machine reaches.
func testSocketOptions(o *SocketOptions) *SocketOptions {
	var c SocketOptions
	if o != nil {
		c = *o
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = opTimeout
	}
	if c.MinDelay == 0 {
		c.MinDelay = 10 * time.Millisecond
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = 100 * time.Millisecond
	}
	return &c
}

// newSocket starts a Socket that is closed at cleanup, recording its
// callbacks (and calling those o sets).
func newSocket(t *testing.T, d *Dialer, rawURL string, o *SocketOptions) (*Socket, *sockRec) {
	t.Helper()
	if d == nil {
		d = &Dialer{Proxy: proxy.Direct}
	}
	rec := &sockRec{opens: make(chan OpenInfo, 64), retries: make(chan error, 1024)}
	c := testSocketOptions(o)
	onOpen, onRetry := c.OnOpen, c.OnRetry
	c.OnOpen = func(info OpenInfo) {
		rec.opens <- info
		if onOpen != nil {
			onOpen(info)
		}
	}
	c.OnRetry = func(err error, delay time.Duration) {
		select {
		case rec.retries <- err:
		default:
		}
		if onRetry != nil {
			onRetry(err, delay)
		}
	}
	s, err := d.Socket(rawURL, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, rec
}

func (rec *sockRec) open(t *testing.T) OpenInfo {
	t.Helper()
	return within(t, rec.opens, "the socket did not open")
}

func (rec *sockRec) retry(t *testing.T) error {
	t.Helper()
	return within(t, rec.retries, "the socket did not retry")
}

// inChat takes the news that the server put the Socket in the chat
// channel, which the Socket must hand over before it reads on.
func inChat(t *testing.T, s *Socket) {
	t.Helper()
	m, err := s.Next(testCtx(t))
	if err != nil || m.Kind != KindSubscribed || m.Channel != chatChannel {
		t.Fatalf("got %+v, %v; want subscribed %s", m, err, chatChannel)
	}
}

// nextMsg returns the next message but for news of subscriptions, which
// the tests of channels check.
func nextMsg(t *testing.T, s *Socket) Message {
	t.Helper()
	for {
		m, err := s.Next(testCtx(t))
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if m.Kind != KindSubscribed {
			return m
		}
	}
}

func send(t *testing.T, s *Socket, text string) {
	t.Helper()
	if err := s.Send(testCtx(t), text); err != nil {
		t.Fatalf("Send(%q): %v", text, err)
	}
}

// waitStopped waits for the Socket to stop on its own and returns Err.
func waitStopped(t *testing.T, s *Socket) error {
	t.Helper()
	select {
	case <-s.Done():
		return s.Err()
	case <-time.After(opTimeout):
		t.Fatal("the socket did not stop")
		return nil
	}
}

var transports = []Transport{TransportWebSocket, TransportEventSource}

func TestSocketProtocolNames(t *testing.T) {
	for _, c := range [][2]string{
		{socketSubprotocol, realtime.Subprotocol},
		{tokenHeader, realtime.TokenHeader},
		{helloEvent, realtime.HelloEvent},
		{closeEvent, realtime.CloseEvent},
		{positionEvent, realtime.PositionEvent},
		{socketSubprotocolV2, realtime.SubprotocolV2},
		{protocolParam, realtime.ProtocolParam},
		{fallbackParam, realtime.FallbackParam},
		{protocolHeader, realtime.ProtocolHeader},
		{TransportWebSocket.String(), realtime.TransportWebSocket.String()},
		{TransportEventSource.String(), realtime.TransportEventSource.String()},
	} {
		if c[0] != c[1] {
			t.Errorf("client has %q, package realtime %q", c[0], c[1])
		}
	}
}

// Messages flow both ways on each transport: numbered broadcasts, and a
// message sent to this client only, which carries no id and leaves the
// last event id alone.
func TestSocketSendBothWays(t *testing.T) {
	for _, tr := range append(transports, 0) {
		t.Run(tr.String(), func(t *testing.T) {
			rs := startRT(t, rtConfig{serve: func(ctx context.Context, s *realtime.Socket) {
				s.Send("welcome\r\nover " + s.Transport().String())
				<-ctx.Done()
			}})
			rs.broadcast(t, "before")
			s, rec := newSocket(t, nil, rs.URL, &SocketOptions{Transport: tr})
			want := tr
			if want == 0 {
				want = TransportWebSocket
			}
			info := rec.open(t)
			pos := info.Position
			if info.Transport != want || pos == "" || info.Resumed || info.ResumeFailed || info.WebSocketErr != nil {
				t.Fatalf("open: %+v, want a fresh %v with a position", info, want)
			}
			if info.Response == nil || (want == TransportWebSocket) != (info.Response.StatusCode == http.StatusSwitchingProtocols) {
				t.Fatalf("open response: %+v", info.Response)
			}
			if got := s.Transport(); got != want {
				t.Fatalf("Transport() = %v, want %v", got, want)
			}
			m := nextMsg(t, s)
			if m.ID != "" || m.Data != "welcome\nover "+want.String() {
				t.Fatalf("first message %+v, want the unnumbered welcome", m)
			}
			if got := s.LastEventID(); got != pos {
				t.Fatalf("LastEventID() = %q after the welcome, want the position %q", got, pos)
			}
			for i := range 3 {
				text := fmt.Sprintf("hello %d ✓\nline 2", i)
				send(t, s, text)
				if got, want := rs.received(t), want.String()+":"+text; got != want {
					t.Fatalf("server received %q, want %q", got, want)
				}
				m := nextMsg(t, s)
				if m.Data != want.String()+" said "+text || m.ID == "" {
					t.Fatalf("got %+v", m)
				}
				if s.LastEventID() != m.ID {
					t.Fatalf("LastEventID() = %q, want %q", s.LastEventID(), m.ID)
				}
			}
			select {
			case info := <-rec.opens:
				t.Fatalf("opened again: %+v", info)
			default:
			}
		})
	}
}

// A proxy that drops the Upgrade header (nginx's default) makes the
// handler answer the WebSocket handshake with 426: the Socket falls back
// to EventSource, and after a reconnection tries EventSource first.
func TestSocketFallbackUpgradeDropped(t *testing.T) {
	var fallbacks atomic.Int32 // the server sees them (realtime.FallbackParam)
	rs := startRT(t, rtConfig{stripUpgrade: true, opts: realtime.Options{Observer: &realtime.Observer{
		OnFallback: func(realtime.ConnectEvent) { fallbacks.Add(1) },
	}}})
	s, rec := newSocket(t, nil, rs.URL, nil)
	info := rec.open(t)
	if n := fallbacks.Load(); n != 1 {
		t.Fatalf("the server saw %d fallbacks, want 1", n)
	}
	var he *websocket.HandshakeError
	if info.Transport != TransportEventSource || !errors.As(info.WebSocketErr, &he) || he.Status != http.StatusUpgradeRequired {
		t.Fatalf("open: %+v, want EventSource after a 426", info)
	}
	if n := rs.upgrades.Load(); n != 1 {
		t.Fatalf("%d WebSocket handshakes, want 1", n)
	}
	send(t, s, "hi")
	if m := nextMsg(t, s); m.Data != "eventsource said hi" {
		t.Fatalf("got %+v", m)
	}

	rs.shutdown(t)
	if err := rec.retry(t); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("retry after %v, want 1001", err)
	}
	info = rec.open(t)
	if info.Transport != TransportEventSource || info.WebSocketErr != nil || !info.Resumed {
		t.Fatalf("second open: %+v, want a resumed EventSource without a WebSocket attempt", info)
	}
	if n := rs.upgrades.Load(); n != 1 {
		t.Fatalf("%d WebSocket handshakes, want still 1: EventSource goes first now", n)
	}
	if n := fallbacks.Load(); n != 1 {
		t.Fatalf("the server saw %d fallbacks, want still 1: EventSource first is none", n)
	}
	send(t, s, "again")
	if m := nextMsg(t, s); m.Data != "eventsource said again" {
		t.Fatalf("got %+v", m)
	}
}

// A WebSocket handshake that is never answered is given up after the
// connect timeout, for EventSource.
func TestSocketFallbackTimeout(t *testing.T) {
	rs := startRT(t, rtConfig{swallowUpgrade: true})
	// The timeout also bounds the EventSource attempt; a loaded machine
	// that misses it tries another round, which the test tolerates.
	s, rec := newSocket(t, nil, rs.URL, &SocketOptions{ConnectTimeout: time.Second})
	info := rec.open(t)
	if info.Transport != TransportEventSource || !errors.Is(info.WebSocketErr, ErrConnectTimeout) {
		t.Fatalf("open: %+v, want EventSource after a WebSocket timeout", info)
	}
	send(t, s, "hi")
	if m := nextMsg(t, s); m.Data != "eventsource said hi" {
		t.Fatalf("got %+v", m)
	}
}

// The server closes every socket (Hub.Shutdown, 1001) and goes on
// serving with the same hub; broadcasts made meanwhile arrive after the
// reconnection, and every message arrives exactly once, in order.
func TestSocketResumeExactlyOnce(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.String(), func(t *testing.T) {
			rs := startRT(t, rtConfig{})
			var retried atomic.Bool
			s, rec := newSocket(t, nil, rs.URL, &SocketOptions{
				Transport: tr,
				OnRetry: func(err error, _ time.Duration) {
					// Disconnected for sure: these can only come by replay.
					if !retried.Swap(true) {
						for i := 6; i <= 10; i++ {
							rs.hub.Publish(context.Background(), chatChannel, "m"+strconv.Itoa(i))
						}
					}
				},
			})
			rec.open(t)
			var ids []string
			for i := 1; i <= 5; i++ {
				rs.broadcast(t, "m"+strconv.Itoa(i))
			}
			expect := func(from, to int) {
				t.Helper()
				for i := from; i <= to; i++ {
					m := nextMsg(t, s)
					if m.Data != "m"+strconv.Itoa(i) {
						t.Fatalf("got %+v, want m%d", m, i)
					}
					ids = append(ids, m.ID)
				}
			}
			expect(1, 5)
			if s.LastEventID() != ids[4] {
				t.Fatalf("LastEventID() = %q, want %q", s.LastEventID(), ids[4])
			}
			rs.shutdown(t)
			if err := rec.retry(t); websocket.CloseStatus(err) != websocket.StatusGoingAway {
				t.Fatalf("retry after %v, want 1001", err)
			}
			info := rec.open(t)
			if info.Transport != tr || !info.Resumed || info.ResumeFailed || info.Position != ids[4] {
				t.Fatalf("reopen: %+v, want resumed from %q", info, ids[4])
			}
			for i := 11; i <= 15; i++ {
				rs.broadcast(t, "m"+strconv.Itoa(i))
			}
			rs.broadcast(t, "end")
			expect(6, 15)
			if m := nextMsg(t, s); m.Data != "end" {
				t.Fatalf("got %+v after m15, want end: a message came twice", m)
			}
		})
	}
}

// A Socket resumes where an earlier one stopped, from its saved
// LastEventID.
func TestSocketResumeAcrossSockets(t *testing.T) {
	rs := startRT(t, rtConfig{})
	s1, rec1 := newSocket(t, nil, rs.URL, nil)
	rec1.open(t)
	rs.broadcast(t, "a")
	nextMsg(t, s1)
	saved := s1.LastEventID()
	s1.Close()
	if !errors.Is(s1.Err(), net.ErrClosed) {
		t.Fatalf("Err() after Close = %v", s1.Err())
	}
	rs.broadcast(t, "b")
	rs.broadcast(t, "c")
	s2, rec2 := newSocket(t, nil, rs.URL, &SocketOptions{LastEventID: saved, Transport: TransportEventSource})
	if info := rec2.open(t); !info.Resumed || info.Position != saved {
		t.Fatalf("open: %+v, want resumed from %q", info, saved)
	}
	for _, want := range []string{"b", "c"} {
		if m := nextMsg(t, s2); m.Data != want {
			t.Fatalf("got %+v, want %q", m, want)
		}
	}
}

// A server that comes back with a new hub cannot resume the client: the
// Socket reports ResumeFailed, and takes up the new hub's messages.
func TestSocketResumeFailed(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.String(), func(t *testing.T) {
			noProxyEnv(t)
			oldHub, newHub := realtime.NewHub(nil), realtime.NewHub(nil)
			var cur atomic.Pointer[http.Handler]
			set := func(hub *realtime.Hub) {
				h := realtime.Handler(&realtime.Options{Hub: hub, Channels: []string{chatChannel}}, nil)
				cur.Store(&h)
			}
			set(oldHub)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				(*cur.Load()).ServeHTTP(w, r)
			}))
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
				defer cancel()
				oldHub.Shutdown(ctx)
				newHub.Shutdown(ctx)
				srv.Close()
				oldHub.Close()
				newHub.Close()
			})
			s, rec := newSocket(t, nil, srv.URL, &SocketOptions{Transport: tr})
			rec.open(t)
			oldHub.Publish(testCtx(t), chatChannel, "old")
			if m := nextMsg(t, s); m.Data != "old" {
				t.Fatalf("got %+v", m)
			}
			old := s.LastEventID()
			newHub.Publish(testCtx(t), chatChannel, "missed")
			set(newHub) // the restart
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			defer cancel()
			oldHub.Shutdown(ctx)
			info := rec.open(t)
			if !info.ResumeFailed || info.Resumed {
				t.Fatalf("reopen: %+v, want ResumeFailed", info)
			}
			// The channel says so too.
			if m, err := s.Next(testCtx(t)); err != nil || m.Kind != KindSubscribed || m.Channel != chatChannel || m.Status != SubscribeFailed {
				t.Fatalf("after the reopen: %+v, %v; want subscribed %s failed", m, err, chatChannel)
			}
			if s.LastEventID() == old {
				t.Fatal("LastEventID still names the old hub's message")
			}
			newHub.Publish(testCtx(t), chatChannel, "new")
			if m := nextMsg(t, s); m.Data != "new" {
				t.Fatalf("got %+v, want the new hub's live message", m)
			}
		})
	}
}

// A close code outside the reconnect set stops the Socket, on either
// transport; one inside it makes it reconnect.
func TestSocketCloseCodes(t *testing.T) {
	for _, tr := range transports {
		for _, c := range []struct {
			code websocket.StatusCode
			stop bool
		}{{4000, true}, {websocket.StatusNormalClosure, true}, {websocket.StatusPolicyViolation, true},
			{websocket.StatusServiceRestart, false}, {websocket.StatusTryAgainLater, false}} {
			t.Run(fmt.Sprintf("%v/%d", tr, c.code), func(t *testing.T) {
				rs := startRT(t, rtConfig{})
				s, rec := newSocket(t, nil, rs.URL, &SocketOptions{Transport: tr})
				rec.open(t)
				inChat(t, s)
				srvSock := rs.next(t)
				if err := srvSock.CloseWith(c.code, "bye now"); err != nil {
					t.Fatal(err)
				}
				if !c.stop {
					err := rec.retry(t)
					if websocket.CloseStatus(err) != c.code {
						t.Fatalf("retry after %v, want code %d", err, c.code)
					}
					rec.open(t)
					send(t, s, "still here")
					if m := nextMsg(t, s); m.Data != tr.String()+" said still here" {
						t.Fatalf("got %+v", m)
					}
					return
				}
				err := waitStopped(t, s)
				var ce websocket.CloseError
				if !errors.As(err, &ce) || ce.Code != c.code || ce.Reason != "bye now" {
					t.Fatalf("Err() = %v, want code %d with the reason", err, c.code)
				}
				if _, err := s.Next(testCtx(t)); websocket.CloseStatus(err) != c.code {
					t.Fatalf("Next: %v", err)
				}
				if err := s.Send(testCtx(t), "late"); !errors.Is(err, net.ErrClosed) || websocket.CloseStatus(err) != c.code {
					t.Fatalf("Send after the stop: %v", err)
				}
				if s.Transport() != 0 {
					t.Fatalf("Transport() = %v after the stop", s.Transport())
				}
				select {
				case s := <-rs.sockets:
					t.Fatalf("the socket came back over %v", s.Transport())
				default:
				}
				if len(rec.retries) != 0 {
					t.Fatalf("OnRetry was called: %v", <-rec.retries)
				}
			})
		}
	}
}

// Close interrupts a connection attempt, a Send waiting for it and a
// Next, and leaves nothing running.
func TestSocketCloseWhileConnecting(t *testing.T) {
	rs := startRT(t, rtConfig{swallowUpgrade: true})
	s, _ := newSocket(t, nil, rs.URL, &SocketOptions{ConnectTimeout: time.Hour})
	select {
	case <-rs.held:
	case <-time.After(opTimeout):
		t.Fatal("no WebSocket handshake arrived")
	}
	if s.Transport() != 0 {
		t.Fatalf("Transport() = %v while connecting", s.Transport())
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Send(short, "early"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send while connecting: %v, want its context's error", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() { errs <- s.Send(context.Background(), "waiting") })
	wg.Go(func() {
		_, err := s.Next(context.Background())
		errs <- err
	})
	closed := make(chan struct{})
	go func() {
		s.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(opTimeout):
		t.Fatal("Close did not return")
	}
	wg.Wait()
	for range 2 {
		if err := <-errs; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("got %v, want an error matching net.ErrClosed", err)
		}
	}
	if !errors.Is(s.Err(), net.ErrClosed) {
		t.Fatalf("Err() = %v", s.Err())
	}
	if n := rs.posts.Load(); n != 0 {
		t.Fatalf("%d POSTs were made", n)
	}
}

// A server error makes the Socket retry; Close ends the wait. A 4xx for
// the event stream stops it for good.
func TestSocketRefused(t *testing.T) {
	t.Run("503 retries", func(t *testing.T) {
		rs := startRT(t, rtConfig{wrap: func(http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			})
		}})
		s, rec := newSocket(t, nil, rs.URL, &SocketOptions{MinDelay: time.Hour, MaxDelay: time.Hour})
		err := rec.retry(t)
		var he *websocket.HandshakeError
		var re *ResponseError
		if !errors.As(err, &he) || he.Status != 503 || !errors.As(err, &re) || re.StatusCode != 503 {
			t.Fatalf("retry after %v, want both attempts refused with 503", err)
		}
		s.Close() // during an hour's wait
		if !errors.Is(s.Err(), net.ErrClosed) {
			t.Fatalf("Err() = %v", s.Err())
		}
	})
	t.Run("403 stops", func(t *testing.T) {
		rs := startRT(t, rtConfig{wrap: func(http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "who are you?", http.StatusForbidden)
			})
		}})
		s, rec := newSocket(t, nil, rs.URL, nil)
		err := waitStopped(t, s)
		var re *ResponseError
		if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
			t.Fatalf("Err() = %v, want the event stream's 403", err)
		}
		if len(rec.retries) != 0 {
			t.Fatalf("OnRetry was called: %v", <-rec.retries)
		}
	})
}

// A POST answered 410 (its stream has ended) was not delivered: Send
// reconnects and sends it again, and the server gets it once.
func TestSocketPostGoneResends(t *testing.T) {
	var posts atomic.Int32
	rs := startRT(t, rtConfig{wrap: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && posts.Add(1) == 1 {
				http.Error(w, "the socket has ended; reconnect", http.StatusGone)
				return
			}
			next.ServeHTTP(w, r)
		})
	}})
	s, rec := newSocket(t, nil, rs.URL, &SocketOptions{Transport: TransportEventSource})
	rec.open(t)
	inChat(t, s)
	send(t, s, "once")
	if got := rs.received(t); got != "eventsource:once" {
		t.Fatalf("server received %q", got)
	}
	if info := rec.open(t); !info.Resumed {
		t.Fatalf("reopen: %+v", info)
	}
	if m := nextMsg(t, s); m.Data != "eventsource said once" {
		t.Fatalf("got %+v", m)
	}
	select {
	case m := <-rs.got:
		t.Fatalf("the server received %q too", m)
	default:
	}
	if n := posts.Load(); n != 2 {
		t.Fatalf("%d POSTs, want 2", n)
	}
}

// POSTs share one kept-alive connection. A message the server refuses
// (413) fails alone; the connection goes on.
func TestSocketPostKeepAliveAndRefused(t *testing.T) {
	rs := startRT(t, rtConfig{opts: realtime.Options{MaxMessageSize: 16}})
	s, rec := newSocket(t, nil, rs.URL, &SocketOptions{Transport: TransportEventSource})
	rec.open(t)
	sendEcho := func(text string) {
		t.Helper()
		send(t, s, text)
		if m := nextMsg(t, s); m.Data != "eventsource said "+text {
			t.Fatalf("got %+v", m)
		}
	}
	for i := range 5 {
		sendEcho("short " + strconv.Itoa(i))
	}
	// One connection for the stream, one for all the POSTs.
	if n := rs.conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
	err := s.Send(testCtx(t), strings.Repeat("x", 17))
	var se *SendError
	if !errors.As(err, &se) || se.StatusCode != http.StatusRequestEntityTooLarge || se.Transport != TransportEventSource {
		t.Fatalf("Send of 17 bytes: %v, want a *SendError with 413", err)
	}
	sendEcho("after")
	select {
	case info := <-rec.opens:
		t.Fatalf("opened again: %+v", info)
	default:
	}
	if err := s.Send(testCtx(t), "\xff"); !errors.Is(err, websocket.ErrInvalidUTF8) {
		t.Fatalf("Send of invalid UTF-8: %v", err)
	}
}

// Messages sent one after the other arrive in order, also from several
// goroutines at once (each one's in its order).
func TestSocketSendOrder(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.String(), func(t *testing.T) {
			var mu sync.Mutex
			var got []string
			done := make(chan struct{})
			const senders, each = 3, 20
			rs := startRT(t, rtConfig{opts: realtime.Options{OnMessage: func(_ context.Context, _ *realtime.Socket, text string) {
				mu.Lock()
				got = append(got, text)
				if len(got) == senders*each {
					close(done)
				}
				mu.Unlock()
			}}})
			s, rec := newSocket(t, nil, rs.URL, &SocketOptions{Transport: tr})
			rec.open(t)
			var wg sync.WaitGroup
			for g := range senders {
				wg.Go(func() {
					for i := range each {
						if err := s.Send(testCtx(t), fmt.Sprintf("%d-%d", g, i)); err != nil {
							t.Errorf("Send: %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
			select {
			case <-done:
			case <-time.After(opTimeout):
				t.Fatal("not every message arrived")
			}
			mu.Lock()
			defer mu.Unlock()
			next := make([]int, senders)
			for _, m := range got {
				var g, i int
				fmt.Sscanf(m, "%d-%d", &g, &i)
				if i != next[g] {
					t.Fatalf("sender %d: got message %d, want %d (all: %v)", g, i, next[g], got)
				}
				next[g]++
			}
		})
	}
}

// A connection on which nothing arrives is dropped after the idle
// timeout, and the Socket reconnects.
func TestSocketIdleTimeout(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.String(), func(t *testing.T) {
			// No heartbeats: the connection is silent.
			rs := startRT(t, rtConfig{opts: realtime.Options{Heartbeat: -1}})
			s, rec := newSocket(t, nil, rs.URL, &SocketOptions{Transport: tr, IdleTimeout: 200 * time.Millisecond})
			rec.open(t)
			inChat(t, s)
			if err := rec.retry(t); !errors.Is(err, ErrIdleTimeout) {
				t.Fatalf("retry after %v, want the idle timeout", err)
			}
			if info := rec.open(t); info.Transport != tr || !info.Resumed {
				t.Fatalf("reopen: %+v", info)
			}
		})
	}
}

// Heartbeats keep an idle connection: the server's pings (WebSocket) or
// comments (EventSource) feed the watchdog, which would otherwise drop
// the connection several times over while the test waits.
func TestSocketHeartbeatFeedsWatchdog(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.String(), func(t *testing.T) {
			// Frequent heartbeats; the server's pong timeout, which would
			// be as short, is long, so that it does not drop a client
			// that a busy machine lets answer late.
			rs := startRT(t, rtConfig{opts: realtime.Options{
				Heartbeat: 20 * time.Millisecond,
				WebSocket: websocket.AcceptOptions{ConnOptions: websocket.ConnOptions{PongTimeout: opTimeout}},
			}})
			// 50 heartbeats per idle timeout: a loaded machine may delay
			// some, not all.
			s, rec := newSocket(t, nil, rs.URL, &SocketOptions{Transport: tr, IdleTimeout: time.Second})
			rec.open(t)
			time.Sleep(3 * time.Second)
			select {
			case err := <-rec.retries:
				t.Fatalf("the connection was dropped: %v", err)
			default:
			}
			send(t, s, "alive")
			if m := nextMsg(t, s); m.Data != tr.String()+" said alive" {
				t.Fatalf("got %+v", m)
			}
		})
	}
}

// Through a proxy in forward mode that strips Upgrade (squid's default),
// the Socket falls back to EventSource and POSTs through the proxy.
func TestSocketForwardProxy(t *testing.T) {
	rs := startRT(t, rtConfig{})
	p := startProxy(t, nil, "", nil)
	pu, _ := url.Parse("http://" + p.addr)
	d := &Dialer{Proxy: http.ProxyURL(pu), ForwardProxy: true}
	s, rec := newSocket(t, d, rs.URL, nil)
	info := rec.open(t)
	var he *websocket.HandshakeError
	if info.Transport != TransportEventSource || !errors.As(info.WebSocketErr, &he) || he.Status != http.StatusUpgradeRequired {
		t.Fatalf("open: %+v, want EventSource after a 426", info)
	}
	send(t, s, "via the proxy")
	if m := nextMsg(t, s); m.Data != "eventsource said via the proxy" {
		t.Fatalf("got %+v", m)
	}
	var methods []string
	for len(p.reqs) > 0 {
		r := <-p.reqs
		if !strings.HasPrefix(r.RequestURI, "http://") {
			t.Fatalf("the proxy got %s %s, want absolute form", r.Method, r.RequestURI)
		}
		methods = append(methods, r.Method)
	}
	if got := strings.Join(methods, " "); got != "GET GET POST" {
		t.Fatalf("the proxy got %q, want the handshake, the stream and the POST", got)
	}
}

// Behind a proxy that allows CONNECT to port 443 only, as corporate
// proxies do, the Socket switches to forward mode by itself, as a
// browser does: the WebSocket handshake loses its Upgrade there, and
// EventSource with POSTs gets through. OpenInfo says which path it took.
// A Socket on EventSource alone switches with its stream, and its POSTs
// follow.
func TestSocketForwardModeAfterRefusedConnect(t *testing.T) {
	rs := startRT(t, rtConfig{})
	for _, tc := range []struct {
		name string
		opts *SocketOptions
		want string // what the proxy sees
	}{
		// The refused CONNECT, then the handshake, the stream and the
		// POST in forward mode.
		{"both", nil, "CONNECT GET GET POST"},
		{"EventSource only", &SocketOptions{Transport: TransportEventSource}, "CONNECT GET POST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startCorporateProxy(t)
			pu, _ := url.Parse("http://" + p.addr)
			s, rec := newSocket(t, &Dialer{Proxy: http.ProxyURL(pu)}, rs.URL, tc.opts)
			info := rec.open(t)
			var pe *proxy.Error
			var he *websocket.HandshakeError
			if info.Transport != TransportEventSource || !info.ForwardProxy {
				t.Fatalf("open: %+v, want EventSource in forward mode", info)
			}
			if !errors.As(info.TunnelErr, &pe) || pe.Status != http.StatusForbidden {
				t.Fatalf("TunnelErr = %v, want the proxy's 403", info.TunnelErr)
			}
			if tc.opts == nil && (!errors.As(info.WebSocketErr, &he) || he.Status != http.StatusUpgradeRequired) {
				t.Fatalf("WebSocketErr = %v, want the 426 of a handshake without Upgrade", info.WebSocketErr)
			}
			send(t, s, "via the proxy")
			if m := nextMsg(t, s); m.Data != "eventsource said via the proxy" {
				t.Fatalf("got %+v", m)
			}
			rs.broadcast(t, "to the client")
			if m := nextMsg(t, s); m.Data != "to the client" {
				t.Fatalf("got %+v", m)
			}
			var got []string
			for len(p.reqs) > 0 {
				r := <-p.reqs
				got = append(got, r.Method)
				if r.Method != http.MethodConnect && !strings.HasPrefix(r.RequestURI, "http://") {
					t.Fatalf("the proxy got %s %s, want absolute form", r.Method, r.RequestURI)
				}
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Fatalf("the proxy got %q, want %q", g, tc.want)
			}
		})
	}
}

// Where forward mode cannot help, a refused CONNECT still stops the
// Socket with the proxy's refusal: a proxy that refuses everything, a
// secure URL (which must tunnel), a Socket that wants WebSocket only.
func TestSocketProxyRefusesConnect(t *testing.T) {
	rs := startRT(t, rtConfig{})
	refuseAll := startProxy(t, nil, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", nil)
	corporate := startCorporateProxy(t)
	for _, tc := range []struct {
		name    string
		p       *testProxy
		url     string
		opts    *SocketOptions
		forward bool // the proxy sees a request in forward mode
	}{
		{"refuses everything", refuseAll, rs.URL, nil, true},
		{"secure URL", corporate, strings.Replace(rs.URL, "http:", "https:", 1), nil, false},
		{"WebSocket only", corporate, rs.URL, &SocketOptions{Transport: TransportWebSocket}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for len(tc.p.reqs) > 0 {
				<-tc.p.reqs
			}
			pu, _ := url.Parse("http://" + tc.p.addr)
			s, _ := newSocket(t, &Dialer{Proxy: http.ProxyURL(pu)}, tc.url, tc.opts)
			err := waitStopped(t, s)
			var pe *proxy.Error
			if !errors.As(err, &pe) || pe.Status != http.StatusForbidden {
				t.Fatalf("Err() = %v, want the proxy's 403", err)
			}
			forward := false
			for len(tc.p.reqs) > 0 {
				if (<-tc.p.reqs).Method != http.MethodConnect {
					forward = true
				}
			}
			if forward != tc.forward {
				t.Fatalf("a request in forward mode: %v, want %v", forward, tc.forward)
			}
		})
	}
}

// A WebSocket server that does not speak realtime.v1 still works: plain
// messages, no ids.
func TestSocketPlainWebSocket(t *testing.T) {
	noProxyEnv(t)
	ws := startWSServer(t, false, nil, nil)
	s, rec := newSocket(t, nil, ws.URL, nil)
	if info := rec.open(t); info.Transport != TransportWebSocket || info.Position != "" {
		t.Fatalf("open: %+v", info)
	}
	send(t, s, "echo\nme")
	if m := nextMsg(t, s); m.ID != "" || m.Data != "echo\nme" {
		t.Fatalf("got %+v", m)
	}
}

// Messages larger than MaxMessageSize stop the Socket on either
// transport: reconnecting would replay them.
func TestSocketMessageTooBig(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.String(), func(t *testing.T) {
			rs := startRT(t, rtConfig{})
			s, rec := newSocket(t, nil, rs.URL, &SocketOptions{Transport: tr, MaxMessageSize: 100})
			rec.open(t)
			rs.broadcast(t, strings.Repeat("y", 100))
			if m := nextMsg(t, s); len(m.Data) != 100 {
				t.Fatalf("got %d bytes", len(m.Data))
			}
			rs.broadcast(t, strings.Repeat("z", 10<<10))
			err := waitStopped(t, s)
			if !errors.Is(err, websocket.ErrMessageTooBig) && !errors.Is(err, eventsource.ErrEventTooLarge) {
				t.Fatalf("Err() = %v, want a size limit", err)
			}
			if len(rec.retries) != 0 {
				t.Fatalf("OnRetry was called: %v", <-rec.retries)
			}
		})
	}
}

func TestSocketBadOptions(t *testing.T) {
	d := &Dialer{Proxy: proxy.Direct}
	for _, c := range []struct {
		url  string
		opts *SocketOptions
	}{
		{"ftp://example.com/", nil},
		{"http://", nil},
		{"http://example.com/", &SocketOptions{Transport: 3}},
		{"http://example.com/", &SocketOptions{LastEventID: "a\nb"}},
	} {
		if s, err := d.Socket(c.url, c.opts); err == nil {
			s.Close()
			t.Errorf("Socket(%q, %+v) succeeded", c.url, c.opts)
		}
	}
}

// windowOf is a random source that tells the window it was asked to
// draw from: it returns n-1, the longest wait.
func windowOf(n time.Duration) time.Duration { return n - 1 }

// TestSocketBackoff: full jitter over a window that doubles with the
// failures since the last healthy connection, up to MaxDelay; a
// connection that opened but did not stay healthy (10 s) does not reset
// it (before, every open did, so a server closing at once got its
// clients back within 250-500 ms for ever); 1012 and 1013 widen it
// eightfold.
func TestSocketBackoff(t *testing.T) {
	ms := time.Millisecond
	b := backoff{min: 100 * ms, max: time.Second}
	next := func(want time.Duration) {
		t.Helper()
		var window time.Duration
		got := b.next(func(n time.Duration) time.Duration { window = n; return n / 3 })
		if window != want || got != want/3 {
			t.Fatalf("failures %d: window %v (drew %v), want %v", b.failures-1, window, got, want)
		}
	}
	for _, w := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		next(w * ms)
	}
	b.ended(healthyAfter-ms, 0) // opened, but closed early: no reset
	next(time.Second)
	b.ended(healthyAfter, websocket.StatusGoingAway) // healthy: reset
	next(100 * ms)
	next(200 * ms)
	b.ended(healthyAfter, websocket.StatusTryAgainLater) // healthy, then 1013: ×8
	next(800 * ms)
	b = backoff{min: 500 * ms, max: 30 * time.Second}
	b.ended(time.Hour, websocket.StatusServiceRestart)
	next(4 * time.Second) // the defaults: [0, 4 s) after 1012
	b.ended(0, websocket.StatusTryAgainLater)
	next(30 * time.Second) // a round that never opened: failures go on growing
	b.ended(0, 0)
	next(30 * time.Second)
}

// TestSocketBackoffSpread: 500 clients told 1013 come back spread over
// the window, not within a narrow band, and the next round's window is
// wider: the reconnection rate falls off.
func TestSocketBackoffSpread(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	randN := func(n time.Duration) time.Duration { return time.Duration(r.Int64N(int64(n))) }
	const clients = 500
	var rounds [2][10]int // arrivals per tenth of the first round's window
	bs := make([]backoff, clients)
	for i := range bs {
		bs[i] = backoff{min: DefaultMinDelay, max: DefaultMaxDelay}
		bs[i].ended(time.Hour, websocket.StatusTryAgainLater)
	}
	window := 4 * time.Second
	for round := range rounds {
		for i := range bs {
			d := bs[i].next(randN)
			if slot := int(d * 10 / window); slot < 10 {
				rounds[round][slot]++
			}
			bs[i].ended(time.Second, websocket.StatusTryAgainLater) // closed at once again
		}
	}
	for slot, n := range rounds[0] {
		if n < clients/10/2 || n > clients/10*2 {
			t.Errorf("first round: %d of %d arrivals in tenth %d of [0, %v): %v", n, clients, slot, window, rounds[0])
		}
	}
	first, second := 0, 0
	for slot := range 10 {
		first += rounds[0][slot]
		second += rounds[1][slot]
	}
	if second*4 > first {
		t.Errorf("second round: %d arrivals within %v, first %d: the rate does not fall off", second, window, first)
	}
}

// TestSocketNegativeDelays: a negative MinDelay sets no floor, a negative
// MaxDelay turns backoff off and a negative ConnectTimeout sets no bound,
// as negative values mean "off" across the module.
func TestSocketNegativeDelays(t *testing.T) {
	d := &Dialer{}
	s, err := d.Socket("http://127.0.0.1:1/", &SocketOptions{MinDelay: -1, MaxDelay: -1, ConnectTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := backoff{min: s.opts.MinDelay, max: s.opts.MaxDelay, failures: 5}
	if d := b.next(windowOf); s.opts.MinDelay != 0 || s.opts.MaxDelay != 0 || d != 0 {
		t.Errorf("MinDelay %v, MaxDelay %v, wait after 5 failures %v; want all 0", s.opts.MinDelay, s.opts.MaxDelay, d)
	}
	ctx, cancel := s.attemptContext()
	defer cancel()
	if _, ok := ctx.Deadline(); ok {
		t.Error("an attempt has a deadline with a negative ConnectTimeout")
	}

	s2, err := d.Socket("http://127.0.0.1:1/", &SocketOptions{MinDelay: 100 * time.Millisecond, MaxDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	b = backoff{min: s2.opts.MinDelay, max: s2.opts.MaxDelay, failures: 5}
	if got := b.next(windowOf); got != 100*time.Millisecond-1 {
		t.Errorf("longest wait after 5 failures without backoff = %v, want under MinDelay", got)
	}
}
