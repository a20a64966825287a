package main

import (
	"encoding/json"
	"log"
	"net/http"
	"sync"
	"time"

	"github.com/centrifugal/centrifuge"
)

// The centrifuge library (v0.40.1) has no unidirectional EventSource
// handler: Centrifugo's uni_sse lives in the server, which cannot be
// imported. uniSSEHandler is that transport on the library's public API,
// with the wire format of Centrifugo's uni_sse: a GET whose cf_connect
// query parameter is a JSON connect request ({"subs":{"CHANNEL":{}}} asks
// for server-side subscriptions), answered by one "data:" event per push
// ({"connect":...}, {"channel":...,"pub":...}, {} as a ping, which needs
// no pong). Its write loop is the library's SSEHandler's: a batch is
// written and flushed before WriteMany returns, because the client's
// writer reuses the buffers of a batch once WriteMany returns.
type uniSSEHandler struct {
	node *centrifuge.Node
}

func newUniSSEHandler(node *centrifuge.Node) *uniSSEHandler { return &uniSSEHandler{node: node} }

// connectRequest is the JSON of Centrifugo's uni connect request
// (protocol.ConnectRequest).
type connectRequest struct {
	Token   string                     `json:"token"`
	Data    json.RawMessage            `json:"data"`
	Name    string                     `json:"name"`
	Version string                     `json:"version"`
	Subs    map[string]subscribeRecord `json:"subs"`
}

type subscribeRecord struct {
	Recover bool   `json:"recover"`
	Epoch   string `json:"epoch"`
	Offset  uint64 `json:"offset"`
}

// streamingWriteTimeout bounds one flush to a client that stops reading,
// as the library's streaming handlers do.
const streamingWriteTimeout = time.Second

func (h *uniSSEHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	var req connectRequest
	if s := r.URL.Query().Get("cf_connect"); s != "" {
		if err := json.Unmarshal([]byte(s), &req); err != nil {
			http.Error(w, "malformed cf_connect", http.StatusBadRequest)
			return
		}
	}
	t := &uniSSETransport{
		messages:     make(chan [][]byte),
		ack:          make(chan struct{}),
		disconnectCh: make(chan struct{}),
		closedCh:     make(chan struct{}),
		protoMajor:   uint8(r.ProtoMajor),
	}
	c, closeFn, err := centrifuge.NewClient(r.Context(), h.node, t)
	if err != nil {
		log.Printf("cfnode: uni_sse: new client: %v", err)
		return
	}
	defer func() { _ = closeFn() }()
	defer close(t.closedCh) // after closeFn, which waits for Close

	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "private, no-cache, no-store, must-revalidate, max-age=0")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if _, err := w.Write([]byte("\r\n")); err != nil {
		return
	}
	_ = rc.Flush()

	cr := centrifuge.ConnectRequest{Token: req.Token, Data: req.Data, Name: req.Name, Version: req.Version}
	if len(req.Subs) > 0 {
		cr.Subs = make(map[string]centrifuge.SubscribeRequest, len(req.Subs))
		for ch, s := range req.Subs {
			cr.Subs[ch] = centrifuge.SubscribeRequest{Recover: s.Recover, Epoch: s.Epoch, Offset: s.Offset}
		}
	}
	// Connect runs the connecting handler and writes the connect push
	// through WriteMany, which waits for this loop: run it aside.
	go c.Connect(cr)

	sendAck := func() {
		select {
		case t.ack <- struct{}{}:
		case <-r.Context().Done():
		}
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-t.disconnectCh:
			return
		case batch := <-t.messages:
			_ = rc.SetWriteDeadline(time.Now().Add(streamingWriteTimeout))
			for _, m := range batch {
				if _, err := w.Write(append(append([]byte("data: "), m...), '\n', '\n')); err != nil {
					sendAck()
					return
				}
			}
			_ = rc.Flush()
			_ = rc.SetWriteDeadline(time.Time{})
			sendAck()
		}
	}
}

// uniSSETransport is a centrifuge.Transport for uniSSEHandler.
type uniSSETransport struct {
	mu           sync.Mutex
	closed       bool
	messages     chan [][]byte
	ack          chan struct{}
	disconnectCh chan struct{}
	closedCh     chan struct{}
	protoMajor   uint8
}

func (t *uniSSETransport) Name() string { return "uni_sse" }

func (t *uniSSETransport) AcceptProtocol() string {
	if t.protoMajor == 2 {
		return "h2"
	}
	return "h1"
}

func (t *uniSSETransport) Protocol() centrifuge.ProtocolType { return centrifuge.ProtocolTypeJSON }

func (t *uniSSETransport) ProtocolVersion() centrifuge.ProtocolVersion {
	return centrifuge.ProtocolVersion2
}

func (t *uniSSETransport) Unidirectional() bool { return true }

func (t *uniSSETransport) Emulation() bool { return false }

func (t *uniSSETransport) DisabledPushFlags() uint64 { return 0 }

func (t *uniSSETransport) PingPongConfig() centrifuge.PingPongConfig {
	return centrifuge.PingPongConfig{}
}

func (t *uniSSETransport) Write(message []byte) error { return t.WriteMany(message) }

func (t *uniSSETransport) WriteMany(messages ...[]byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	select {
	case t.messages <- messages:
	case <-t.closedCh:
		return nil
	}
	select {
	case <-t.ack:
	case <-t.closedCh:
	}
	return nil
}

func (t *uniSSETransport) Close(centrifuge.Disconnect) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	close(t.disconnectCh)
	<-t.closedCh
	return nil
}
