package capacity

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/centrifugal/centrifuge"
	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/interop/internal/benchproc"
	"github.com/realtime-go/realtime/websocket"
)

// ServeEnv names the environment variable that turns a process started
// by Run into the server under test: its value is the server's name.
// Both the capbench command and its test binary call MaybeServe first.
const ServeEnv = "CAPACITY_SERVE"

// heapEnv, set to any value, makes a server sample its heap profile
// finely (see Config.HeapDir).
const heapEnv = "CAPACITY_HEAP"

// channel is the one channel every socket is on and every broadcast goes to.
const channel = "bench"

// A goServer is a server under test that runs in this binary (see
// MaybeServe): serve serves the listener, count is the sockets it holds,
// publish sends one message to all of them.
type goServer struct {
	serve   func(ln net.Listener) error
	count   func() int
	publish func(text string) error
}

// goServers are the servers of the Go rows, by name. The Node socket.io
// server is node/sio-server.mjs.
var goServers = map[string]func() goServer{
	"realtime":   newRealtimeServer,
	"centrifuge": newCentrifugeServer,
	"raw-ws":     newRawWSServer,
	"raw-tcp":    newRawTCPServer,
	"drv-ws":     newDriverWSServer,
	"drv-es":     newDriverESServer,
}

// MaybeServe runs the server named by $CAPACITY_SERVE and exits, if that
// variable is set; else it returns at once.
func MaybeServe() {
	name := os.Getenv(ServeEnv)
	if name == "" {
		return
	}
	mk, ok := goServers[name]
	if !ok {
		log.Fatalf("capacity: no server %q", name)
	}
	if os.Getenv(heapEnv) != "" {
		// Finer than the default 512 KiB, so that the heap profile of
		// 10,000 sockets of a few KiB each tells their parts apart.
		runtime.MemProfileRate = 4096
	}
	s := mk()
	var seq int64
	err := benchproc.Serve("127.0.0.1:0", "", func(cmd string, out io.Writer) {
		fmt.Fprintln(out, s.command(cmd, &seq))
	}, s.serve)
	log.Fatalf("capacity: server %s: %v", name, err)
}

// command answers one line of the parent's (see node/sio-server.mjs for
// the protocol, which both speak).
func (s goServer) command(cmd string, seq *int64) string {
	f := strings.Fields(cmd)
	switch {
	case len(f) == 1 && f[0] == "stats":
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		// Where the memory is, in KiB: live heap objects, and goroutine
		// stacks (a grown stack per socket shows here, not in a heap
		// profile).
		return fmt.Sprintf("sockets=%d goroutines=%d heap=%d stacks=%d", s.count(), runtime.NumGoroutine(), ms.HeapAlloc>>10, ms.StackInuse>>10)
	case len(f) == 4 && f[0] == "publish" && s.publish != nil:
		n, _ := strconv.Atoi(f[1])
		size, _ := strconv.Atoi(f[2])
		rate, _ := strconv.ParseFloat(f[3], 64)
		first := *seq + 1
		start := time.Now()
		memLog = memLog[:0]
		nextMem := start
		buf := make([]byte, 0, size+64)
		for i := range n {
			if rate > 0 {
				if d := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
					time.Sleep(d)
				}
			}
			if rate > 0 && !time.Now().Before(nextMem) {
				// The memory a second, for "memlog": the commands run one
				// at a time, so none can ask while this one runs.
				memLog = append(memLog, readMem(time.Since(start)))
				nextMem = nextMem.Add(time.Second)
			}
			*seq++
			buf = AppendPayload(buf[:0], *seq, time.Now().UnixNano(), size)
			if err := s.publish(string(buf)); err != nil {
				return "error=" + strings.ReplaceAll(err.Error(), " ", "_")
			}
		}
		return fmt.Sprintf("first=%d last=%d start=%d end=%d", first, *seq, start.UnixNano(), time.Now().UnixNano())
	case len(f) == 2 && f[0] == "profile":
		// A CPU profile of what follows, until "profile-stop": the
		// burst alone, without the handshakes before it.
		pf, err := os.Create(f[1])
		if err == nil {
			if err = pprof.StartCPUProfile(pf); err != nil {
				pf.Close()
			}
		}
		if err != nil {
			return "error=" + strings.ReplaceAll(err.Error(), " ", "_")
		}
		profile = pf
		return "ok=1"
	case len(f) == 1 && f[0] == "mem":
		return readMem(0)
	case len(f) == 1 && f[0] == "memlog":
		// The readings of the last paced publish, a second apart.
		return strings.Join(memLog, ",")
	case len(f) == 2 && f[0] == "heap":
		// A heap profile of the live objects, after a collection.
		runtime.GC()
		pf, err := os.Create(f[1])
		if err == nil {
			err = pprof.Lookup("heap").WriteTo(pf, 0)
			if cerr := pf.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			return "error=" + strings.ReplaceAll(err.Error(), " ", "_")
		}
		return "ok=1"
	case len(f) == 1 && f[0] == "profile-stop" && profile != nil:
		pprof.StopCPUProfile()
		err := profile.Close()
		profile = nil
		if err != nil {
			return "error=" + strings.ReplaceAll(err.Error(), " ", "_")
		}
		return "ok=1"
	}
	return "error=unknown-command"
}

// memLog is the memory a second during the last paced publish (see
// readMem).
var memLog []string

// readMem reads where the RSS is, without a collection (that would
// change it): "ms=MS k=KiB ...", the time at and the metrics of
// memMetrics by their short names, the k=v pairs separated by spaces.
func readMem(at time.Duration) string {
	metrics.Read(memMetrics)
	var b strings.Builder
	fmt.Fprintf(&b, "ms=%d", at.Milliseconds())
	for _, m := range memMetrics {
		fmt.Fprintf(&b, " %s=%d", memNames[m.Name], m.Value.Uint64()>>10)
	}
	return b.String()
}

// memMetrics are what readMem reports, by the names of
// memNames: the live heap as of the last collection, the heap goal the
// next one runs at, the heap's spans (objects, live or not yet swept),
// the free heap the runtime keeps and what it gave back to the system,
// and the goroutine stacks. A heap that grows toward its goal and stays
// there, with the live heap flat, is the collector's headroom, not a
// leak.
var memMetrics = func() []metrics.Sample {
	var s []metrics.Sample
	for name := range memNames {
		s = append(s, metrics.Sample{Name: name})
	}
	slices.SortFunc(s, func(a, b metrics.Sample) int { return strings.Compare(memNames[a.Name], memNames[b.Name]) })
	return s
}()

var memNames = map[string]string{
	"/gc/heap/live:bytes":                        "live",
	"/gc/heap/goal:bytes":                        "goal",
	"/memory/classes/heap/objects:bytes":         "objects",
	"/memory/classes/heap/free:bytes":            "free",
	"/memory/classes/heap/released:bytes":        "released",
	"/memory/classes/heap/stacks:bytes":          "stacks",
	"/memory/classes/heap/unused:bytes":          "unused",
	"/memory/classes/metadata/other:bytes":       "meta",
	"/memory/classes/metadata/mspan/inuse:bytes": "mspan",
}

// profile is the file of the CPU profile the parent started, if any; the
// commands run one at a time.
var profile *os.File

// AppendPayload appends a broadcast's text of size bytes (more if the
// marker does not fit): "@@SEQ:UNIXNANO;" padded with x. The load client
// finds the marker in any framing and reads the sequence number (to check
// that each socket gets each message exactly once) and the time it was
// published (for the latency).
func AppendPayload(b []byte, seq, unixNano int64, size int) []byte {
	n := len(b)
	b = append(b, "@@"...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, unixNano, 10)
	b = append(b, ';')
	for len(b)-n < size {
		b = append(b, 'x')
	}
	return b
}

// newRealtimeServer is realtime.Handler with every socket on one channel
// (a Hub with the default options), at /rt: the realtime.v1 WebSocket
// protocol and EventSource on the same URL, as the README shows.
func newRealtimeServer() goServer {
	hub := realtime.NewHub(nil)
	h := realtime.Handler(&realtime.Options{Hub: hub, Channels: []string{channel}}, nil)
	mux := http.NewServeMux()
	mux.Handle("/rt", h)
	return goServer{
		serve: func(ln net.Listener) error { return (&http.Server{Handler: mux}).Serve(ln) },
		count: hub.Len,
		publish: func(text string) error {
			_, err := hub.Publish(context.Background(), channel, text)
			return err
		},
	}
}

// newCentrifugeServer is one centrifuge node with its in-memory broker,
// anonymous clients subscribed to the channel on the server side, its
// WebSocket handler and its SSE handler (the bidirectional emulation
// transport; the pong check is off so that a client that only reads
// stays, as in the baseline of 2026-12-06).
func newCentrifugeServer() goServer {
	node, err := centrifuge.New(centrifuge.Config{LogLevel: centrifuge.LogLevelError})
	if err != nil {
		log.Fatal(err)
	}
	node.OnConnecting(func(context.Context, centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
		return centrifuge.ConnectReply{
			Credentials:   &centrifuge.Credentials{},
			Subscriptions: map[string]centrifuge.SubscribeOptions{channel: {}},
		}, nil
	})
	node.OnConnect(func(*centrifuge.Client) {})
	if err := node.Run(); err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/connection/websocket", centrifuge.NewWebsocketHandler(node, centrifuge.WebsocketConfig{}))
	mux.Handle("/connection/sse", centrifuge.NewSSEHandler(node, centrifuge.SSEConfig{
		PingPongConfig: centrifuge.PingPongConfig{PongTimeout: -1}}))
	return goServer{
		serve: func(ln net.Listener) error { return (&http.Server{Handler: mux}).Serve(ln) },
		count: func() int { return len(node.Hub().Connections()) },
		publish: func(text string) error {
			// The JSON protocol embeds the data as it is: make it a
			// JSON string.
			_, err := node.Publish(channel, []byte(`"`+text+`"`))
			return err
		},
	}
}

// newRawWSServer is websocket.Serve holding idle connections, each
// reading with ReadAppend: the floor under the realtime WebSocket row.
func newRawWSServer() goServer {
	var n atomic.Int64
	return goServer{
		serve: func(ln net.Listener) error {
			return websocket.Serve(ln, &websocket.AcceptOptions{InsecureSkipOriginCheck: true}, func(c *websocket.Conn, _ *http.Request) {
				n.Add(1)
				defer n.Add(-1)
				readAll(c)
			})
		},
		count: func() int { return int(n.Load()) },
	}
}

// readAll reads c, reusing one buffer (ReadAppend), until it fails: the
// connection closed or broke. The reads answer pings and the close.
func readAll(c *websocket.Conn) {
	var buf []byte
	for {
		_, p, err := c.ReadAppend(context.Background(), buf[:0])
		if err != nil {
			return
		}
		buf = p
	}
}

// newRawTCPServer holds plain TCP connections, a goroutine reading each:
// the floor under every row. It writes one byte on accepting, so that
// the client knows the connection was accepted.
func newRawTCPServer() goServer {
	var n atomic.Int64
	return goServer{
		serve: func(ln net.Listener) error {
			return benchproc.AcceptEach(ln, func(nc net.Conn) {
				n.Add(1)
				defer n.Add(-1)
				if _, err := nc.Write([]byte{'+'}); err != nil {
					return
				}
				var buf [512]byte
				for {
					if _, err := nc.Read(buf[:]); err != nil {
						return
					}
				}
			})
		},
		count: func() int { return int(n.Load()) },
	}
}
