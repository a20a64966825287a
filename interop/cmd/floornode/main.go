// Command floornode is the floor of mnbench's rows: the least a push
// server can do per delivery in its topology, against which realtime and
// centrifuge are read. It has no protocol, no history, no queue, no
// heartbeat and no write deadline: a subscriber's stream is the bytes
// of each message and a newline, written with one write system call per
// delivery as each message comes, by the goroutine that received it.
// A slow subscriber holds up every other one: it is a measuring stick,
// not a server.
//
//	GET /sub?c=1,5,9             holds the connection, subscribed to
//	                             channels c1, c5 and c9, and streams
//	                             their messages after a 200 head
//	POST /publish?channel=NAME   publishes the body; 204 once the broker
//	                             took it (or, alone, once written)
//
// With -redis ADDR, nodes share channels through Redis PUBLISH (no
// history, no recovery: a message published while a node's link is down
// is lost); without, the node is alone. It prints its address on stdout
// once it listens.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/redis/go-redis/v9"
)

const prefix = "floor:"

// node is the channels' subscribers of this process.
type node struct {
	mu   sync.Mutex
	subs map[string]map[net.Conn]bool
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	redisAddr := flag.String("redis", "", "Redis host:port shared by the nodes (empty: this node alone)")
	flag.String("node", "", "node name (unused; for the same command line as the other nodes)")
	flag.Parse()
	n := &node{subs: make(map[string]map[net.Conn]bool)}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	publish := func(ctx context.Context, ch string, msg []byte) error {
		n.deliver(ch, msg)
		return nil
	}
	if *redisAddr != "" {
		rdb := redis.NewClient(&redis.Options{Addr: *redisAddr})
		defer rdb.Close()
		ps := rdb.PSubscribe(ctx, prefix+"*")
		defer ps.Close()
		if _, err := ps.Receive(ctx); err != nil {
			log.Fatal(err)
		}
		go func() {
			for m := range ps.Channel(redis.WithChannelSize(4096)) {
				n.deliver(strings.TrimPrefix(m.Channel, prefix), []byte(m.Payload))
			}
		}()
		publish = func(ctx context.Context, ch string, msg []byte) error {
			return rdb.Publish(ctx, prefix+ch, msg).Err()
		}
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /sub", func(w http.ResponseWriter, r *http.Request) {
		var chans []string
		for _, c := range strings.Split(r.URL.Query().Get("c"), ",") {
			chans = append(chans, "c"+c)
		}
		nc, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		brw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n")
		if brw.Flush() != nil {
			nc.Close()
			return
		}
		n.mu.Lock()
		for _, c := range chans {
			if n.subs[c] == nil {
				n.subs[c] = make(map[net.Conn]bool)
			}
			n.subs[c][nc] = true
		}
		n.mu.Unlock()
		go func() { // until the subscriber goes
			io.Copy(io.Discard, bufio.NewReaderSize(nc, 16))
			n.mu.Lock()
			for _, c := range chans {
				delete(n.subs[c], nc)
			}
			n.mu.Unlock()
			nc.Close()
		}()
	})
	mux.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		msg, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		if err != nil {
			return
		}
		if err := publish(r.Context(), r.URL.Query().Get("channel"), msg); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ln.Addr())
	srv := &http.Server{Handler: mux}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

// deliver writes msg and a newline to each subscriber of channel ch on
// this node, one write each.
func (n *node) deliver(ch string, msg []byte) {
	line := append(msg[:len(msg):len(msg)], '\n')
	n.mu.Lock()
	defer n.mu.Unlock()
	for c := range n.subs[ch] {
		c.Write(line)
	}
}
