// Command rtnode is one realtime node: one process serving
// realtime.Handler on /rt over a Hub whose channels it shares with the
// other nodes through a broker. The multi-node interop test runs three
// of them behind nginx, and the multi-node benchmark (interop/mnbench)
// runs them as its server.
//
//	rtnode -addr 127.0.0.1:0 -node n1 -redis unix:///tmp/redis.sock
//	rtnode -addr 127.0.0.1:0 -node n2 -nats nats://127.0.0.1:4222
//	rtnode -addr 127.0.0.1:0                  # memory broker: one node
//
// The first line it writes to stdout is the address it listens on
// (HOST:PORT), so -addr 127.0.0.1:0 lets it pick a free port; its logs go
// to stderr. SIGINT or SIGTERM shuts it down gracefully; kill -9 is how
// the tests make a node die.
//
// What it serves:
//
//	/rt            the realtime socket (both transports, realtime.v1 and v2).
//	               Query parameters: user and info set the socket's presence
//	               (Socket.SetPresence); each channel=NAME is joined by the
//	               server before the hello (for clients that cannot
//	               subscribe, such as realtime.v1 ones). Clients may
//	               subscribe to any channel whose name does not start with
//	               $, and publish to the channels they are in. Plain
//	               messages (OnMessage) are dropped: nothing is echoed.
//	/realtime.js   the browser client.
//	/              a test page (see page.html).
//	POST /publish?channel=NAME   publishes the request body, answers the
//	               position EPOCH-OFFSET (503 when the broker is down).
//	GET /presence?channel=NAME   the channel's presence across all nodes,
//	               as a JSON array of realtime.PresenceEntry.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/examples/chat/brokers"
)

//go:embed page.html
var page []byte

// maxPublish bounds a POST /publish body.
const maxPublish = 1 << 20

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address; port 0 picks a free one (printed on stdout)")
	node := flag.String("node", "", "this node's name, unique in the cluster (empty: random)")
	redisURL := flag.String("redis", "", "Redis URL (redis://HOST:PORT or unix:///PATH): share channels through Redis Streams")
	natsURL := flag.String("nats", "", "NATS URL (nats://HOST:PORT): share channels through NATS JetStream")
	presenceTTL := flag.Duration("presence-ttl", 0, "how long a presence entry of a dead node can outlive it (0: realtime.DefaultPresenceTTL)")
	flag.Parse()
	log.SetFlags(log.Lmicroseconds)
	log.SetPrefix("rtnode " + *node + ": ")
	if err := run(*addr, *node, *redisURL, *natsURL, *presenceTTL); err != nil {
		log.Fatal(err)
	}
}

func run(addr, node, redisURL, natsURL string, presenceTTL time.Duration) error {
	broker, err := brokers.Open(redisURL, natsURL, "rtnode "+node)
	if err != nil {
		return err
	}
	hub := realtime.NewHub(&realtime.HubOptions{Broker: broker, Node: node, PresenceTTL: presenceTTL})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		hub.Close()
		if broker != nil {
			broker.Close()
		}
		return err
	}
	// The address first, alone on its line: the tests read it.
	fmt.Println(ln.Addr().String())
	log.Printf("serving http://%s/ (broker: %s)", ln.Addr(), brokerName(redisURL, natsURL))

	srv := &http.Server{
		Handler:           handler(hub),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	sig, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case err = <-served:
	case <-sig.Done():
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// Hub.Shutdown tells every socket to go elsewhere (1001,
		// realtime.close); they resume on another node.
		hub.Shutdown(ctx)
		err = srv.Shutdown(ctx)
	}
	hub.Close()
	if broker != nil {
		broker.Close()
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func brokerName(redisURL, natsURL string) string {
	switch {
	case redisURL != "":
		return "redis " + redisURL
	case natsURL != "":
		return "nats " + natsURL
	}
	return "memory (this node only)"
}

// errReserved refuses a client's subscribe to a library channel.
var errReserved = errors.New("channel names starting with $ are reserved")

// errNotJoined refuses a client's publish to a channel it is not in.
var errNotJoined = errors.New("publish to a channel the socket is not in")

func handler(hub *realtime.Hub) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	mux.Handle("/realtime.js", realtime.ClientJS())
	mux.Handle("/rt", realtime.Handler(&realtime.Options{
		Hub:       hub,
		OnConnect: connect,
		OnSubscribe: func(_ context.Context, _ *realtime.Socket, channel string) error {
			if strings.HasPrefix(channel, "$") {
				return errReserved
			}
			return nil
		},
		OnPublish: func(_ context.Context, s *realtime.Socket, channel, _ string) error {
			if !slices.Contains(s.Channels(), channel) {
				return errNotJoined
			}
			return nil
		},
		OnMessage: func(context.Context, *realtime.Socket, string) {},
	}, nil))
	mux.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		text, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPublish))
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		pos, err := hub.Publish(r.Context(), r.URL.Query().Get("channel"), string(text))
		if err != nil {
			status := http.StatusBadRequest
			if errors.Is(err, realtime.ErrBrokerUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				status = http.StatusServiceUnavailable
			}
			http.Error(w, err.Error(), status)
			return
		}
		io.WriteString(w, pos.String())
	})
	mux.HandleFunc("GET /presence", func(w http.ResponseWriter, r *http.Request) {
		entries, err := hub.Presence(r.Context(), r.URL.Query().Get("channel"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		if entries == nil {
			entries = []realtime.PresenceEntry{}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(entries)
	})
	return mux
}

// connect sets the socket's presence and joins the channels its URL
// names, before its hello.
func connect(ctx context.Context, s *realtime.Socket) error {
	q := s.Request().URL.Query()
	if user := q.Get("user"); user != "" {
		s.SetPresence(user, q.Get("info"))
	}
	for _, ch := range q["channel"] {
		if strings.HasPrefix(ch, "$") {
			return errReserved
		}
		if err := s.Join(ctx, ch); err != nil {
			return err
		}
	}
	return nil
}
