// Command cfnode is one node of github.com/centrifugal/centrifuge, the peer
// that mnbench measures realtime against: the library's WebSocket handler
// at /connection/websocket and a unidirectional EventSource handler at
// /connection/uni_sse, on its Redis broker (-redis ADDR) or its in-memory
// one (-redis none), so that several cfnode processes share channels the
// way several realtime nodes do.
//
//	cfnode -addr 127.0.0.1:0 -node n1 -redis 127.0.0.1:6379 [-history 1000] [-pprof]
//
// With -addr 127.0.0.1:0 the first line on stdout is the address it
// listens on. Clients may subscribe to and publish in any channel, and
// POST /publish?channel=NAME publishes the request body (valid JSON, as
// centrifuge's JSON protocol embeds it) through the node's broker, like
// rtnode's POST /publish. Channels keep -history messages (0: none) so that
// a client can recover what it missed, the guarantee realtime gives every
// channel.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/centrifugal/centrifuge"
)

// maxPublish bounds a POST /publish body.
const maxPublish = 1 << 20

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on; port 0 prints the chosen address as the first line on stdout")
	name := flag.String("node", "", "node name (for logs)")
	redisAddr := flag.String("redis", "none", `Redis address host:port (or a redis:// URL) of the broker, or "none" for the in-memory broker`)
	history := flag.Int("history", 1000, "messages kept per channel for recovery; 0 disables history and recovery")
	historyTTL := flag.Duration("history-ttl", 5*time.Minute, "how long a channel's history is kept")
	withPprof := flag.Bool("pprof", false, "serve net/http/pprof at /debug/pprof/")
	flag.Parse()
	if err := run(*addr, *name, *redisAddr, *history, *historyTTL, *withPprof); err != nil {
		log.Fatalf("cfnode %s: %v", *name, err)
	}
}

func run(addr, name, redisAddr string, history int, historyTTL time.Duration, withPprof bool) error {
	node, err := centrifuge.New(centrifuge.Config{Name: name, LogLevel: centrifuge.LogLevelError,
		LogHandler: func(e centrifuge.LogEntry) { log.Printf("cfnode %s: %s %v", name, e.Message, e.Fields) }})
	if err != nil {
		return err
	}
	if redisAddr != "none" {
		shard, err := centrifuge.NewRedisShard(node, centrifuge.RedisShardConfig{Address: redisAddr})
		if err != nil {
			return err
		}
		broker, err := centrifuge.NewRedisBroker(node, centrifuge.RedisBrokerConfig{Shards: []*centrifuge.RedisShard{shard}})
		if err != nil {
			return err
		}
		node.SetBroker(broker)
	}
	subOpts := centrifuge.SubscribeOptions{EnableRecovery: history > 0, EnablePositioning: history > 0}
	pubOpts := centrifuge.PublishOptions{HistorySize: history, HistoryTTL: historyTTL}
	if history <= 0 {
		pubOpts = centrifuge.PublishOptions{}
	}
	node.OnConnecting(func(ctx context.Context, e centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
		// Anonymous clients; the channels a unidirectional client asks for
		// in its connect request become server-side subscriptions, as a
		// Centrifugo connect proxy would grant them.
		reply := centrifuge.ConnectReply{Credentials: &centrifuge.Credentials{}}
		if len(e.Channels) > 0 {
			reply.Subscriptions = make(map[string]centrifuge.SubscribeOptions, len(e.Channels))
			for _, ch := range e.Channels {
				reply.Subscriptions[ch] = subOpts
			}
		}
		return reply, nil
	})
	node.OnConnect(func(c *centrifuge.Client) {
		c.OnSubscribe(func(e centrifuge.SubscribeEvent, cb centrifuge.SubscribeCallback) {
			cb(centrifuge.SubscribeReply{Options: subOpts}, nil)
		})
		c.OnPublish(func(e centrifuge.PublishEvent, cb centrifuge.PublishCallback) {
			cb(centrifuge.PublishReply{Options: pubOpts}, nil)
		})
	})
	if err := node.Run(); err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("/connection/websocket", centrifuge.NewWebsocketHandler(node, centrifuge.WebsocketConfig{}))
	mux.Handle("/connection/uni_sse", newUniSSEHandler(node))
	mux.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPublish))
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		var opts []centrifuge.PublishOption
		if history > 0 {
			opts = append(opts, centrifuge.WithHistory(history, historyTTL))
		}
		res, err := node.Publish(r.URL.Query().Get("channel"), data, opts...)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "%s-%d", res.Epoch, res.Offset)
	})
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Close()
		node.Shutdown(ctx)
		os.Exit(0)
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	select {} // the signal handler exits
}
