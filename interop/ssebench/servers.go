package main

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"

	r3sse "github.com/r3labs/sse/v2"
	gosse "github.com/tmaxmax/go-sse"
)

// A server serves GET /events as an SSE stream to every subscriber and
// broadcasts what publish is given: one event with id seq and data payload
// (100 bytes, see makePayload) to all current subscribers. publish may block
// (backpressure) as the library's own publish call does.
type server struct {
	name    string
	pkg     string // module path, for the version line
	library bool   // a third-party library (the ratio column compares to the best of these)
	notes   string
	// start builds the server; the harness serves handler on its listener
	// and calls publish from one goroutine.
	start func(cfg serverConfig) (handler http.Handler, publish func(seq uint64, payload []byte), stats func() string)
}

// serverConfig is passed from the parent to each child process.
type serverConfig struct {
	memprofile string // a directory for heap profiles (written at each "gc")
	cpuprofile string // a directory for CPU profiles (one per process)
}

var servers = map[string]server{}

func register(s server) { servers[s.name] = s }

// serverOrder is the row order of the table. A server in
// optionalServers runs only when named with -servers.
var serverOrder = []string{"realtime", "realtime-hub", "r3labs", "go-sse", "minimal", "minimal-batch"}

var optionalServers = map[string]bool{}

func registeredServers() []string {
	var out []string
	for _, n := range serverOrder {
		if _, ok := servers[n]; ok {
			out = append(out, n)
		}
	}
	return out
}

func defaultServers() []string {
	var out []string
	for _, n := range registeredServers() {
		if !optionalServers[n] {
			out = append(out, n)
		}
	}
	return out
}

func init() {
	register(server{
		name:    "r3labs",
		pkg:     "github.com/r3labs/sse/v2",
		library: true,
		notes:   "sse.New() with AutoReplay off (its event log would otherwise grow without bound), one stream; Server.Publish; the library's ServeHTTP (a shim adds ?stream=)",
		start:   startR3labs,
	})
	register(server{
		name:    "go-sse",
		pkg:     "github.com/tmaxmax/go-sse",
		library: true,
		notes:   "sse.Server with the default Joe provider; Server.Publish of a Message with ID and AppendData; the library's ServeHTTP",
		start:   startGoSSE,
	})
	register(server{
		name:  "minimal",
		notes: "hand-written: goroutine per subscriber (the handler), channel of 64 pre-encoded events, Write + Flush per event; the publisher blocks on a full channel; no write deadline",
		start: func(cfg serverConfig) (http.Handler, func(uint64, []byte), func() string) {
			return startMinimal(false)
		},
	})
	register(server{
		name:  "minimal-batch",
		notes: "as minimal, but the subscriber drains its channel (Write each queued event) before one Flush",
		start: func(cfg serverConfig) (http.Handler, func(uint64, []byte), func() string) {
			return startMinimal(true)
		},
	})
	register(server{
		name:  "floor",
		notes: "what net/http alone costs: the handler has the head written and flushed on a short-lived goroutine (so that its own stack stays small) and waits for the request's end; the publisher goroutine writes and flushes each event to each subscriber in turn (no queue, no write deadline, no replay); a memory floor, not a design",
		start: func(cfg serverConfig) (http.Handler, func(uint64, []byte), func() string) {
			h := &floorHub{subs: map[*floorSub]struct{}{}}
			return h, h.publish, nil
		},
	})
}

// serveHTTP serves h on ln until ln is closed.
func serveHTTP(ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// ---------------------------------------------------------------------------
// r3labs/sse
// ---------------------------------------------------------------------------

func startR3labs(serverConfig) (http.Handler, func(uint64, []byte), func() string) {
	s := r3sse.New()
	s.AutoReplay = false
	s.CreateStream("s")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.RawQuery = "stream=s"
		s.ServeHTTP(w, r)
	})
	publish := func(seq uint64, payload []byte) {
		s.Publish("s", &r3sse.Event{ID: strconv.AppendUint(nil, seq, 10), Data: payload})
	}
	return h, publish, nil
}

// ---------------------------------------------------------------------------
// tmaxmax/go-sse
// ---------------------------------------------------------------------------

func startGoSSE(serverConfig) (http.Handler, func(uint64, []byte), func() string) {
	s := &gosse.Server{}
	publish := func(seq uint64, payload []byte) {
		m := &gosse.Message{ID: gosse.ID(strconv.FormatUint(seq, 10))}
		m.AppendData(string(payload))
		s.Publish(m)
	}
	return s, publish, nil
}

// ---------------------------------------------------------------------------
// floor: net/http's own cost of a held streaming response
// ---------------------------------------------------------------------------

type floorSub struct {
	mu sync.Mutex // the handler may have returned: ResponseWriter is dead then
	w  http.ResponseWriter
}

type floorHub struct {
	mu   sync.Mutex
	subs map[*floorSub]struct{}
	snap []*floorSub
}

func (h *floorHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The head is written on another goroutine, so that the handler's
	// stack does not grow for it and can stay small while it waits.
	started := make(chan struct{})
	go func() {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		close(started)
	}()
	<-started
	s := &floorSub{w: w}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	<-r.Context().Done()
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
	s.mu.Lock()
	s.w = nil
	s.mu.Unlock()
}

func (h *floorHub) publish(seq uint64, payload []byte) {
	b := fmt.Appendf(nil, "id: %d\ndata: %s\n\n", seq, payload)
	h.mu.Lock()
	h.snap = h.snap[:0]
	for s := range h.subs {
		h.snap = append(h.snap, s)
	}
	h.mu.Unlock()
	for _, s := range h.snap {
		s.mu.Lock()
		if s.w != nil {
			if _, err := s.w.Write(b); err == nil {
				http.NewResponseController(s.w).Flush()
			}
		}
		s.mu.Unlock()
	}
}

// ---------------------------------------------------------------------------
// minimal hand-written SSE writer
// ---------------------------------------------------------------------------

type minSub struct {
	ch   chan []byte
	done chan struct{} // closed when the handler returns
}

type minHub struct {
	mu    sync.Mutex
	subs  map[*minSub]struct{}
	batch bool
	snap  []*minSub
}

func startMinimal(batch bool) (http.Handler, func(uint64, []byte), func() string) {
	h := &minHub{subs: map[*minSub]struct{}{}, batch: batch}
	return h, h.publish, nil
}

func (h *minHub) publish(seq uint64, payload []byte) {
	b := make([]byte, 0, len(payload)+32)
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, "\ndata: "...)
	b = append(b, payload...)
	b = append(b, "\n\n"...)
	h.mu.Lock()
	h.snap = h.snap[:0]
	for s := range h.subs {
		h.snap = append(h.snap, s)
	}
	snap := h.snap
	h.mu.Unlock()
	for _, s := range snap {
		select {
		case s.ch <- b:
		case <-s.done:
		}
	}
}

func (h *minHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	f.Flush()
	s := &minSub{ch: make(chan []byte, 64), done: make(chan struct{})}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.subs, s)
		h.mu.Unlock()
		close(s.done)
	}()
	ctx := r.Context()
	for {
		select {
		case b := <-s.ch:
			if _, err := w.Write(b); err != nil {
				return
			}
			if h.batch {
			drain:
				for {
					select {
					case b := <-s.ch:
						if _, err := w.Write(b); err != nil {
							return
						}
					default:
						break drain
					}
				}
			}
			f.Flush()
		case <-ctx.Done():
			return
		}
	}
}

// ---------------------------------------------------------------------------
// The payload: 100 bytes, "SEQ TIMESTAMP " then padding. TIMESTAMP is the
// publisher's clock (Unix nanoseconds) when publish was called; the load
// client on the same machine computes the latency from it.
// ---------------------------------------------------------------------------

const payloadSize = 100

func makePayload(seq uint64, unixNano int64) []byte {
	b := make([]byte, 0, payloadSize)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, unixNano, 10)
	b = append(b, ' ')
	for len(b) < payloadSize {
		b = append(b, 'x')
	}
	if len(b) != payloadSize {
		panic(fmt.Sprintf("payload of %d bytes", len(b)))
	}
	return b
}
