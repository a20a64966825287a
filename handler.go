package realtime

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/realtime-go/realtime/eventsource"
	"github.com/realtime-go/realtime/internal/eshook"
	"github.com/realtime-go/realtime/internal/origin"
	"github.com/realtime-go/realtime/internal/quote"
	"github.com/realtime-go/realtime/websocket"
)

// Handler returns an http.Handler that serves realtime sockets on one
// URL: a WebSocket upgrade becomes a TransportWebSocket socket, a GET that
// accepts text/event-stream a TransportEventSource socket, and a POST
// carrying an EventSource socket's session token delivers a message
// from that client to Options.OnMessage. A GET of the URL with the query
// "?client.js" returns the browser client (see ClientJS). Any other GET is answered 426
// (Upgrade Required), OPTIONS (a CORS preflight) 204, other methods
// 405. A browser request of another origin is answered 403 unless
// Options.OriginPatterns allows it. The package documentation describes
// the wire protocol.
//
// Before a socket opens (before the WebSocket upgrade or the event
// stream's response), it joins Options.Channels and Options.OnConnect
// runs, which may refuse it (403). serve is then called with the socket,
// once its position and missed messages are queued. ctx ends when the
// socket ends; when serve returns, the socket is closed (as by Close),
// so serve should return when ctx ends. A nil serve leaves the socket
// open until the client or the server closes it.
//
// A WebSocket's connection leaves net/http at the upgrade, and an
// EventSource stream's over HTTP/1.1 when Accept hijacks it (see
// eventsource.HijackMode, Options.EventSource.Hijack): the handler then
// returns at once and serve runs on a goroutine of its own, which spares
// an idle socket the request goroutine's stack and net/http's
// goroutine and buffers. An EventSource stream that stays with net/http
// (HTTP/2, middleware that hides the connection, HijackNever) runs serve
// on the request's goroutine, and the handler returns once the stream
// and its goroutines have ended, as net/http requires.
//
// While Options.Hub is shutting down, new sockets are refused with 503.
func Handler(opts *Options, serve func(ctx context.Context, s *Socket)) http.Handler {
	h := &handler{cfg: newConfig(opts), serve: serve}
	if h.cfg.hub != nil {
		h.reg = h.cfg.hub.reg
	} else {
		h.reg = newRegistry("")
	}
	return h
}

type handler struct {
	cfg        config
	serve      func(context.Context, *Socket)
	reg        *registry                  // the hub's, or the handler's own without one
	httpValues atomic.Pointer[httpValues] // see netHTTPValues
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead || r.URL.RawQuery != "client.js" {
		// The client script is for any page, as a script tag loads it;
		// everything else only for the allowed origins.
		if !h.allowOrigin(w, r) {
			return
		}
	}
	switch {
	case r.Method == http.MethodOptions:
		h.serveOptions(w, r)
	case r.Method == http.MethodPost:
		h.servePost(w, r)
	case websocket.IsWebSocket(r):
		h.serveWebSocket(w, r)
	case eventsource.IsEventSource(r):
		h.serveEventSource(w, r)
	case (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.URL.RawQuery == "client.js":
		serveClientJS(w, r)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		// Not an upgrade: a proxy may have dropped the Upgrade header.
		// Accept answers 426, which tells a browser the WebSocket failed.
		_, err := websocket.Accept(w, r, &h.cfg.ws)
		h.observeRefuse(r, RefuseHandshake, err)
	default:
		w.Header().Set("Allow", "GET, POST, OPTIONS")
		http.Error(w, "realtime: method not allowed", http.StatusMethodNotAllowed)
	}
}

// allowOrigin answers 403 to a browser request of a foreign origin that
// Options.OriginPatterns does not allow, and returns false. An allowed
// foreign origin gets the CORS headers, on whatever the answer will be
// (a refusal too, so that the page can read its status). No credentials
// are allowed: the session token is the credential, and a cookie-bearing
// request of another site must not pass as the user.
func (h *handler) allowOrigin(w http.ResponseWriter, r *http.Request) bool {
	o := r.Header.Get("Origin")
	if same, _ := origin.Check(r.Host, o, nil); same {
		return true
	}
	if ok, _ := origin.Check(r.Host, o, h.cfg.origins); !ok && !h.cfg.anyOrigin {
		h.observeRefuse(r, RefuseOrigin, nil)
		http.Error(w, "realtime: origin "+quotePrefix(o)+" not allowed", http.StatusForbidden)
		return false
	}
	hd := w.Header()
	hd.Set("Access-Control-Allow-Origin", o)
	hd.Add("Vary", "Origin")
	return true
}

// serveOptions answers a CORS preflight, which a browser sends before a
// cross-origin POST with the token header. allowOrigin has checked the
// origin and set Access-Control-Allow-Origin.
func (h *handler) serveOptions(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Allow", "GET, POST, OPTIONS")
	if hd.Get("Access-Control-Allow-Origin") != "" {
		hd.Set("Access-Control-Allow-Methods", "POST")
		hd.Set("Access-Control-Allow-Headers", TokenHeader+", "+SeqHeader+", Content-Type")
		hd.Set("Access-Control-Max-Age", "600")
	}
	w.WriteHeader(http.StatusNoContent)
}

// refuseShutdown answers 503 while the hub is shutting down, so that
// clients come back after the restart instead of joining a closing hub.
func (h *handler) refuseShutdown(w http.ResponseWriter, r *http.Request) bool {
	if h.cfg.hub == nil || !h.cfg.hub.shuttingDown() {
		return false
	}
	h.observeRefuse(r, RefuseShutdown, nil)
	w.Header().Set("Retry-After", "1")
	http.Error(w, "realtime: shutting down", http.StatusServiceUnavailable)
	return true
}

func (h *handler) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if h.refuseShutdown(w, r) {
		return
	}
	s := newSocket(h, TransportWebSocket, r)
	switch selectedProtocol(r, h.cfg.ws.Subprotocols) {
	case SubprotocolV2:
		s.proto = protoV2
	case Subprotocol:
		s.proto = protoV1
	}
	if !h.connect(w, s) {
		return
	}
	c, err := websocket.Accept(w, r, &h.cfg.ws)
	if err != nil {
		s.discard() // Accept has answered
		h.observeRefuse(r, RefuseHandshake, err)
		return
	}
	s.ws = c
	s.mu.Lock()
	s.hasReader = true
	s.mu.Unlock()
	s.observeOpen()
	h.run(s)
	if r.ProtoMajor >= 2 {
		// Over HTTP/2 (RFC 8441) the WebSocket is the request's
		// stream, which ends when this handler returns.
		<-c.Done()
	}
}

// selectedProtocol returns the subprotocol websocket.Accept selects for
// r among supported: the first the client offered that is supported. It
// is needed before the upgrade, which OnConnect may refuse.
func selectedProtocol(r *http.Request, supported []string) string {
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); slices.Contains(supported, p) {
				return p
			}
		}
	}
	return ""
}

func (h *handler) serveEventSource(w http.ResponseWriter, r *http.Request) {
	if h.refuseShutdown(w, r) {
		return
	}
	s := newSocket(h, TransportEventSource, r)
	s.proto = protoV1
	if r.URL != nil && r.URL.RawQuery != "" && r.URL.Query().Get(ProtocolParam) == SubprotocolV2 {
		s.proto = protoV2
	}
	if !h.connect(w, s) {
		return
	}
	if s.proto == protoV2 {
		// A client cannot tell otherwise whether the server knew the
		// query parameter, as a realtime.v1 server ignores it.
		w.Header().Set(ProtocolHeader, SubprotocolV2)
	}
	opts := &h.cfg.es
	if s.proto == protoV2 {
		opts = &h.cfg.esV2
	}
	st, err := eventsource.Accept(w, r, opts)
	if err != nil {
		s.discard() // Accept has answered
		h.observeRefuse(r, RefuseHandshake, err)
		return
	}
	s.es = st
	s.observeOpen()
	h.run(s)
}

// connect prepares a socket before its transport opens: it reads the
// client's cursor, joins the hub and Options.Channels, and runs
// OnConnect. It answers the request and returns false when the socket
// is refused.
func (h *handler) connect(w http.ResponseWriter, s *Socket) bool {
	if s.proto != protoPlain {
		s.lastEventID = requestLastEventID(s.req.Load(), h.cfg.idParam)
		s.presented, s.badCursor = decodeCursor(s.lastEventID)
		s.badCursor = !s.badCursor
		if len(s.presented) > h.cfg.maxChannels {
			s.presented, s.badCursor = nil, true
		}
	}
	refuse := func(status int, msg string, reason RefuseReason, err error) bool {
		s.discard()
		h.observeRefuse(s.req.Load(), reason, err)
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		http.Error(w, msg, status)
		return false
	}
	if hub := h.cfg.hub; hub != nil {
		if err := hub.attach(s); err != nil {
			return refuse(http.StatusServiceUnavailable, "realtime: shutting down", RefuseShutdown, err)
		}
		for _, name := range h.cfg.channels {
			if err := s.Join(s.context(), name); err != nil {
				return refuse(http.StatusServiceUnavailable, "realtime: joining "+quotePrefix(name)+": "+quote.Error(err), RefuseChannel, err)
			}
		}
	}
	if h.cfg.onConnect != nil {
		if err := h.cfg.onConnect(s.context(), s); err != nil {
			return refuse(http.StatusForbidden, "realtime: forbidden", RefuseForbidden, err)
		}
	}
	return true
}

// run starts the socket's goroutines and serve.
//
// A WebSocket over HTTP/1.1, or an EventSource stream on a hijacked
// connection, no longer belongs to net/http, so its handler returns at
// once: the request's goroutine, whose stack grew while parsing the
// request, and net/http's goroutine and buffers for the connection are
// freed, and serve runs on a fresh goroutine. Over HTTP/2 the WebSocket
// is the request's stream, so serveWebSocket then waits for it to end.
// An EventSource stream written through the ResponseWriter (HTTP/2, or
// middleware that hides the connection) needs its handler until the
// stream ends, so the handler runs serve, or, without one, waits.
// The first writer writes the position; later ones start when there is
// something to write (see kickLocked).
func (h *handler) run(s *Socket) {
	if s.ws != nil {
		s.rq = copyRequest(s.req.Load())
	}
	s.req.Store(nil) // see Request
	h.reg.add(s)
	s.mu.Lock()
	ended := s.ended
	if !ended {
		s.dl = s.newBatchDeadline()
		s.started, s.writing = true, true
	}
	s.mu.Unlock()
	if !ended {
		startWriter(s)
	}
	if s.ws != nil {
		go s.readLoop()
	} else {
		h.watchStream(s)
	}
	switch {
	case s.ws != nil || s.es.Hijacked():
		if h.serve != nil {
			go h.serveSocket(s)
		}
	case h.serve != nil:
		h.serveSocket(s)
	default:
		s.wait(true)
	}
}

// watchStream ends an EventSource socket when its stream ends
// underneath (the client left, a keep-alive failed), with no goroutine
// waiting for that.
func (h *handler) watchStream(s *Socket) {
	eshook.OnEnd(s.es, func() { s.end(s.es.Err()) })
}

// serveSocket runs serve and closes the socket when it returns.
func (h *handler) serveSocket(s *Socket) {
	h.serve(s.context(), s)
	s.startClose(websocket.StatusNormalClosure, "", nil)
	s.wait(true)
}

// requestLastEventID finds the id a client resumes from: the
// Last-Event-ID header, else the query parameter.
func requestLastEventID(r *http.Request, param string) string {
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		return id
	}
	if r.URL == nil || r.URL.RawQuery == "" {
		return ""
	}
	return r.URL.Query().Get(param)
}
