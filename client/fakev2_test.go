package client

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/realtime-go/realtime/websocket"
)

// fakeServer speaks the realtime.v2 wire protocol by hand, so that tests
// control every frame, well formed or not, on both transports: each
// connection is handed to its script, which sends frames and reads the
// client's requests.
type fakeServer struct {
	URL    string
	srv    *httptest.Server
	conns  chan *fakeConn
	protos []string // WebSocket subprotocols the server selects from
	esSays string   // the Realtime-Protocol header field of event streams that ask for it

	mu     sync.Mutex
	tokens map[string]*fakeConn
	n      atomic.Int64
	wg     sync.WaitGroup
}

// fakeConn is one connection of a fakeServer.
type fakeConn struct {
	transport Transport
	query     string // the request's query
	lastID    string // the id the client presented
	reqs      chan string
	out       chan string // frames to send: "ID\nHEADER\nDATA" on both transports
	done      chan struct{}
	closeOnce sync.Once
}

func startFake(t *testing.T, protos []string, esSays string) *fakeServer {
	t.Helper()
	noProxyEnv(t)
	fs := &fakeServer{conns: make(chan *fakeConn, 64), protos: protos, esSays: esSays, tokens: map[string]*fakeConn{}}
	fs.srv = httptest.NewServer(http.HandlerFunc(fs.serve))
	t.Cleanup(func() {
		fs.mu.Lock()
		for _, c := range fs.tokens {
			c.close()
		}
		fs.mu.Unlock()
		fs.srv.CloseClientConnections()
		fs.srv.Close()
		fs.wg.Wait()
	})
	fs.URL = fs.srv.URL + "/rt"
	return fs
}

func newFakeConn(tr Transport, r *http.Request) *fakeConn {
	id := r.Header.Get("Last-Event-ID")
	if id == "" {
		id = r.URL.Query().Get("lastEventId")
	}
	return &fakeConn{transport: tr, query: r.URL.RawQuery, lastID: id,
		reqs: make(chan string, 64), out: make(chan string, 64), done: make(chan struct{})}
}

func (c *fakeConn) close() { c.closeOnce.Do(func() { close(c.done) }) }

// send queues a frame.
func (c *fakeConn) send(frame string) { c.out <- frame }

// req returns the next request of the client on this connection.
func (c *fakeConn) req(t *testing.T) string {
	t.Helper()
	return within(t, c.reqs, "no request from the client")
}

func (fs *fakeServer) next(t *testing.T) *fakeConn {
	t.Helper()
	return within(t, fs.conns, "no connection reached the fake server")
}

func (fs *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost:
		fs.mu.Lock()
		c := fs.tokens[r.Header.Get(tokenHeader)]
		fs.mu.Unlock()
		if c == nil {
			http.Error(w, "no such stream", http.StatusGone)
			return
		}
		b, _ := io.ReadAll(r.Body)
		select {
		case <-c.done:
			http.Error(w, "stream ended", http.StatusGone)
		case c.reqs <- string(b):
			w.WriteHeader(http.StatusNoContent)
		}
	case r.Header.Get("Upgrade") != "":
		fs.serveWebSocket(w, r)
	default:
		fs.serveEventSource(w, r)
	}
}

func (fs *fakeServer) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: fs.protos})
	if err != nil {
		return
	}
	fs.wg.Add(1)
	defer fs.wg.Done()
	c := newFakeConn(TransportWebSocket, r)
	fs.mu.Lock()
	fs.tokens[fmt.Sprint("ws", fs.n.Add(1))] = c
	fs.mu.Unlock()
	fs.conns <- c
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fs.wg.Add(1)
	go func() {
		defer fs.wg.Done()
		for {
			_, p, err := ws.Read(ctx)
			if err != nil {
				c.close()
				return
			}
			c.reqs <- string(p)
		}
	}()
	for {
		select {
		case f := <-c.out:
			if ws.Write(ctx, websocket.MessageText, []byte(f)) != nil {
				return
			}
		case <-c.done:
			ws.CloseNow()
			return
		}
	}
}

func (fs *fakeServer) serveEventSource(w http.ResponseWriter, r *http.Request) {
	fs.wg.Add(1)
	defer fs.wg.Done()
	c := newFakeConn(TransportEventSource, r)
	token := fmt.Sprint("tok", fs.n.Add(1))
	fs.mu.Lock()
	fs.tokens[token] = c
	fs.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	if fs.esSays != "" && r.URL.Query().Get(protocolParam) == fs.esSays {
		w.Header().Set(protocolHeader, fs.esSays)
	}
	fs.conns <- c
	bw := bufio.NewWriter(w)
	flush := func() bool {
		if bw.Flush() != nil {
			return false
		}
		w.(http.Flusher).Flush()
		return true
	}
	// The first frame is the position, which comes in the hello.
	var first string
	select {
	case first = <-c.out:
	case <-c.done:
		return
	case <-r.Context().Done():
		return
	}
	fmt.Fprintf(bw, "event: %s\nid: %s\ndata: %s\n\n", helloEvent, first, token)
	if !flush() {
		return
	}
	for {
		select {
		case f := <-c.out:
			id, data, _ := strings.Cut(f, "\n")
			if strings.HasPrefix(f, "event:") {
				fmt.Fprint(bw, f) // raw
			} else {
				if id != "" {
					fmt.Fprintf(bw, "id: %s\n", id)
				}
				for _, line := range strings.Split(data, "\n") {
					fmt.Fprintf(bw, "data: %s\n", line)
				}
				fmt.Fprint(bw, "\n")
			}
			if !flush() {
				return
			}
		case <-c.done:
			return
		case <-r.Context().Done():
			c.close()
			return
		}
	}
}
