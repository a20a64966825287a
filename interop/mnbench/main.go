// Command mnbench measures channels across nodes: N node processes on one
// broker on this machine, sockets (half WebSocket, half EventSource)
// connected straight to the nodes in turn (socket i to node i mod N, no
// proxy), each in several channels, and a publisher per channel (channel c's
// on node c mod N). It runs each row in turn, in one invocation, so that
// their ratios come from one run on one machine:
//
//   - rt-memory: realtime, ONE node, in-memory broker (the single-node baseline)
//   - rt-redis:  realtime, N nodes on Redis Streams (redis-server on loopback)
//   - rt-nats:   realtime, N nodes on NATS JetStream (nats-server -js on loopback)
//   - cf-redis:  centrifuge v0.40.1, N nodes (cmd/cfnode) on its Redis broker
//   - cf-memory: centrifuge, one node, in-memory broker (not run by default)
//   - floor-redis: cmd/floornode, N nodes on Redis PUBLISH: no protocol,
//     history, queue or deadline, one write system call per delivery as
//     each message comes, so about the most deliveries a second a server
//     can make in this topology on this machine without holding messages
//     back to share writes; its sockets are plain streams, not half
//     WebSocket and half EventSource
//
// and prints a Markdown table and the command that produced it:
//
//	cd interop && go run ./mnbench [-sockets 10000] [-channels 100] [-per-socket 3] [-rows rt-memory,rt-redis,rt-nats,cf-redis,floor-redis]
//
// The same load client (this process) drives every row: realtime.v2 with
// package websocket and package eventsource's Decoder, centrifuge's JSON
// protocol over its WebSocket and unidirectional EventSource transports.
// Each socket reads on its own goroutine and allocates nothing per
// message beyond what its decoder needs; its GOMAXPROCS is -client-procs
// (1), so that the nodes and the broker keep at least one core. The node
// programs are cmd/rtnode and cmd/cfnode, built with go build (or taken
// from -bin). A publisher publishes through its node's POST /publish, one
// request at a time (-publish http, what an application's backend does),
// or as a WebSocket client in its channel without waiting for answers
// (-publish ws, which hands the nodes messages in bursts). Each row has
// two phases:
//
//   - latency: -rate publishes per second in all, for -latency-time; every
//     message carries its publish time (the same host clock), and the p50
//     and p99 of publish-to-receive are over every delivery;
//   - burst: publishes as fast as the nodes take them, so that each socket
//     gets about -burst messages; deliveries per second are deliveries
//     over the time from the first publish to the last delivery.
//
// Broker operations per publish are the delta of Redis's INFO
// commandstats (or of nats-server's in_msgs) over a phase, divided by its
// publishes. RSS per socket is the nodes' RSS growth while the sockets
// connected and subscribed; CPU is from /proc/PID/stat, for each node, the
// broker and this process (the load client), during the burst.
//
// Each socket checks that its messages come in order per channel, with no
// gap and no duplicate, and the row reports what was lost and the
// connections a server ended. -profile DIR records node 1 of each row
// with perf during its burst. Keep -burst below 256 (realtime's default
// Options.MaxQueue): a socket sent more at once is ended as too slow.
//
// The machine's cores are shared by every process of a row: report the
// rows of one run side by side, never as absolute capacity.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/realtime-go/realtime/interop/internal/benchproc"
)

type config struct {
	rows        []string
	nodes       int
	sockets     int
	channels    int
	perSocket   int
	size        int
	rate        int
	latencyTime time.Duration
	burst       int
	conc        int
	clientProcs int
	nodeProcs   int
	bin         string
	rtPath      string
	cfHistory   int
	profile     string
	settle      time.Duration
	publish     string
}

func main() {
	var cfg config
	rows := flag.String("rows", "rt-memory,rt-redis,rt-nats,cf-redis,floor-redis", "rows to run, in order: rt-memory, rt-redis, rt-nats, cf-redis, cf-memory, floor-redis")
	flag.IntVar(&cfg.nodes, "nodes", 3, "node processes of the multi-node rows")
	flag.IntVar(&cfg.sockets, "sockets", 10000, "subscriber sockets, half WebSocket and half EventSource, spread over the nodes")
	flag.IntVar(&cfg.channels, "channels", 100, "channels")
	flag.IntVar(&cfg.perSocket, "per-socket", 3, "channels each socket is in")
	flag.IntVar(&cfg.size, "size", 64, "message size in bytes")
	flag.IntVar(&cfg.rate, "rate", 100, "publishes per second in all, in the latency phase")
	flag.DurationVar(&cfg.latencyTime, "latency-time", 10*time.Second, "length of the latency phase")
	flag.IntVar(&cfg.burst, "burst", 60, "messages each socket gets in the burst phase (about)")
	flag.IntVar(&cfg.conc, "conc", 100, "handshakes in flight while connecting")
	flag.IntVar(&cfg.clientProcs, "client-procs", 1, "GOMAXPROCS of the load client (this process)")
	flag.IntVar(&cfg.nodeProcs, "node-procs", 0, "GOMAXPROCS of each node process (0: Go's default)")
	flag.StringVar(&cfg.bin, "bin", "", "directory holding prebuilt rtnode and cfnode (default: go build them)")
	flag.StringVar(&cfg.rtPath, "rt-path", "/rt", "path of the realtime handler on rtnode")
	flag.IntVar(&cfg.cfHistory, "cf-history", 1000, "centrifuge: messages kept per channel for recovery (0: no history, plain PUBLISH)")
	flag.StringVar(&cfg.profile, "profile", "", "directory: record the CPU of the first node of each row during its burst with perf (ROW.data, and perf report's summary in ROW.txt)")
	flag.DurationVar(&cfg.settle, "settle", 2*time.Second, "pause after connecting, before reading RSS")
	flag.StringVar(&cfg.publish, "publish", "http", `how each channel's publisher publishes: "http" (the node's POST /publish, one request at a time) or "ws" (a WebSocket client in the channel, not waiting for answers)`)
	flag.Parse()
	cfg.rows = strings.Split(*rows, ",")
	if err := run(&cfg); err != nil {
		log.Fatal(err)
	}
}

// rowSpec is what a row runs.
type rowSpec struct {
	label  string
	proto  proto
	multi  bool   // cfg.nodes nodes, else one
	broker string // "memory", "redis" or "nats"
}

var rowSpecs = map[string]rowSpec{
	"rt-memory":   {"realtime, 1 node, in-memory broker", protoRT, false, "memory"},
	"rt-redis":    {"realtime, %d nodes, Redis Streams", protoRT, true, "redis"},
	"rt-nats":     {"realtime, %d nodes, NATS JetStream", protoRT, true, "nats"},
	"cf-redis":    {"centrifuge v0.40.1, %d nodes, Redis", protoCF, true, "redis"},
	"cf-memory":   {"centrifuge v0.40.1, 1 node, in-memory broker", protoCF, false, "memory"},
	"floor-redis": {"floor: %d nodes, a write per delivery, Redis PUBLISH", protoFloor, true, "redis"},
}

func run(cfg *config) error {
	for _, r := range cfg.rows {
		if _, ok := rowSpecs[r]; !ok {
			return fmt.Errorf("unknown row %q", r)
		}
	}
	if cfg.perSocket < 1 || cfg.perSocket > cfg.channels || cfg.sockets < 2 || cfg.nodes < 1 {
		return fmt.Errorf("need 1 <= -per-socket <= -channels, -sockets >= 2, -nodes >= 1")
	}
	if cfg.publish != "http" && cfg.publish != "ws" {
		return fmt.Errorf(`-publish is "http" or "ws"`)
	}
	if cfg.size < 48 {
		return fmt.Errorf("-size must be at least 48 bytes: a message carries its time, channel and number")
	}
	if _, err := benchproc.RaiseNOFILE(); err != nil {
		return err
	}
	runtime.GOMAXPROCS(cfg.clientProcs)
	tmp, err := os.MkdirTemp("", "mnbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if cfg.bin == "" {
		cfg.bin = tmp
		if err := build(tmp, cfg.rows); err != nil {
			return err
		}
	}
	if cfg.profile != "" {
		if err := os.MkdirAll(cfg.profile, 0o755); err != nil {
			return err
		}
	}
	var results []*result
	for i, name := range cfg.rows {
		fmt.Fprintf(os.Stderr, "mnbench: row %s\n", name)
		res, err := runRow(cfg, name, i, tmp)
		if err != nil {
			return fmt.Errorf("row %s: %w", name, err)
		}
		results = append(results, res)
		fmt.Fprintf(os.Stderr, "mnbench: %s\n", res.summary())
	}
	report(os.Stdout, cfg, results)
	return nil
}

// build compiles the node programs the rows need into dir.
func build(dir string, rows []string) error {
	var pkgs []string
	if slices.ContainsFunc(rows, func(r string) bool { return rowSpecs[r].proto == protoRT }) {
		pkgs = append(pkgs, "rtnode")
	}
	if slices.ContainsFunc(rows, func(r string) bool { return rowSpecs[r].proto == protoCF }) {
		pkgs = append(pkgs, "cfnode")
	}
	if slices.ContainsFunc(rows, func(r string) bool { return rowSpecs[r].proto == protoFloor }) {
		pkgs = append(pkgs, "floornode")
	}
	for _, p := range pkgs {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, p), "github.com/realtime-go/realtime/interop/cmd/"+p)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building %s (run mnbench from the interop module, or give -bin): %w", p, err)
		}
	}
	return nil
}

// nodeArgs is the command line of node i of a row.
func nodeArgs(cfg *config, spec rowSpec, i int, brokerURL string) (bin string, args []string) {
	name := fmt.Sprintf("n%d", i+1)
	switch spec.proto {
	case protoRT:
		bin = filepath.Join(cfg.bin, "rtnode")
		args = []string{"-addr", "127.0.0.1:0", "-node", name}
		switch spec.broker {
		case "redis":
			args = append(args, "-redis", brokerURL)
		case "nats":
			args = append(args, "-nats", brokerURL)
		}
	case protoCF:
		bin = filepath.Join(cfg.bin, "cfnode")
		args = []string{"-addr", "127.0.0.1:0", "-node", name, "-history", fmt.Sprint(cfg.cfHistory), "-redis", "none"}
		if spec.broker == "redis" {
			args[len(args)-1] = brokerURL
		}
	case protoFloor:
		bin = filepath.Join(cfg.bin, "floornode")
		args = []string{"-addr", "127.0.0.1:0", "-node", name}
		if spec.broker == "redis" {
			args = append(args, "-redis", brokerURL)
		}
	}
	return bin, args
}

// perfRecord samples the CPU of process pid with perf record (which sees
// the kernel's share too: on loopback most of a delivery is system calls
// and softirq) until stop is called, then writes perf report's summary
// next to the data, returning its path.
func perfRecord(pid int, file string) (stop func() (string, error), err error) {
	cmd := exec.Command("perf", "record", "-F", "997", "-g", "-p", strconv.Itoa(pid), "-o", file)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("perf record: %w", err)
	}
	return func() (string, error) {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait() // perf may report the interrupt as its exit status
		if _, err := os.Stat(file); err != nil {
			return "", fmt.Errorf("perf record wrote nothing: %w", err)
		}
		txt := strings.TrimSuffix(file, ".data") + ".txt"
		// By binary (kernel or user), then inclusive time by function
		// (the call paths), then self time by function.
		var out []byte
		for _, args := range [][]string{
			{"--sort", "dso", "-g", "none"},
			{"--children", "--sort", "symbol", "--percent-limit", "3", "-g", "none"},
			{"--no-children", "--sort", "dso,symbol", "--percent-limit", "0.5", "-g", "none"},
		} {
			b, err := exec.Command("perf", append([]string{"report", "-i", file, "--stdio"}, args...)...).Output()
			if err != nil {
				return "", fmt.Errorf("perf report: %w", err)
			}
			out = append(out, b...)
		}
		return txt, os.WriteFile(txt, out, 0o644)
	}, nil
}
