// Command capbench is the capacity benchmark of issue 15: per row, a
// fresh server process holding -sockets idle sockets (connection setup
// rate, RSS per idle socket), one broadcast reaching all of them (time to
// the last delivery, deliveries per second, server CPU per delivery), a
// burst of -messages broadcasts, and a sustained run of -rate broadcasts
// a second to -sustain-sockets sockets for -sustain. It prints Markdown
// tables that state the machine, GOMAXPROCS and the pinning.
//
//	cd interop && go build -o /tmp/capbench ./capbench && /tmp/capbench [-sockets 100000] [-rows rt-mixed,rt-ws,...] [-sustain 60s] [-sysctl] [-profile dir] [-heap dir] [-settle 20s]
//
// A row may be named more than once in -rows (rt-ws,drv-ws,rt-ws,drv-ws
// interleaves repeated runs on a noisy machine); the ratio of the
// realtime rows' server CPU per delivery to the driver rows' (drv-ws,
// drv-es) is then over the median of each.
//
// The servers (see internal/capacity) run as this binary with
// $CAPACITY_SERVE set, under taskset -c -server-cpus with GOMAXPROCS
// -gomaxprocs; this process, the load client, pins itself to
// -client-cpus. socket.io runs as node node/sio-server.mjs (npm ci in
// interop/node first).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/realtime-go/realtime/interop/internal/benchproc"
	"github.com/realtime-go/realtime/interop/internal/capacity"
)

func main() {
	capacity.MaybeServe()
	var names []string
	for _, r := range capacity.Rows {
		names = append(names, r.Name)
	}
	sockets := flag.Int("sockets", 100000, "idle sockets per row")
	rows := flag.String("rows", strings.Join(names, ","), "rows to run, in order (empty: only the sustained run)")
	messages := flag.Int("messages", 10, "broadcasts in the burst after the single one")
	size := flag.Int("size", 64, "bytes per broadcast")
	conc := flag.Int("conc", 100, "handshakes in flight")
	sustain := flag.Duration("sustain", 60*time.Second, "sustained run's duration (0: none)")
	rate := flag.Float64("rate", 1000, "sustained run's broadcasts a second")
	sustainSockets := flag.Int("sustain-sockets", 10000, "sustained run's sockets")
	sustainRows := flag.String("sustain-rows", "rt-mixed,cf-ws,sio-ws", "rows of the sustained run")
	serverCPUs := flag.String("server-cpus", "1", "taskset CPU list of the server process (empty: not pinned)")
	clientCPUs := flag.String("client-cpus", "0", "CPU list this process, the load client, binds itself to (empty: not pinned)")
	gomaxprocs := flag.Int("gomaxprocs", 1, "GOMAXPROCS of the server and the client (0: the runtime's default)")
	sysctl := flag.Bool("sysctl", false, "raise somaxconn, tcp_max_syn_backlog and fs.nr_open where lower for the run, and put them back after (root)")
	settle := flag.Duration("settle", 2*time.Second, "how long the sockets stay idle before their memory is read (past the heartbeat, 15 s for realtime, to count what a heartbeat leaves)")
	out := flag.String("out", "", "also write the report to this file")
	profile := flag.String("profile", "", "directory for a CPU profile of each Go server over its burst (ROW-N.pprof)")
	heap := flag.String("heap", "", "directory for heap profiles of each Go server: idle (ROW-N-idle.heap), and before, at the end of and after the sustained run (ROW-N-start.heap, -end, -after)")
	flag.Parse()

	if *sysctl {
		changed, restore, err := capacity.Sysctls()
		cleanup = restore
		for _, c := range changed {
			fmt.Fprintln(os.Stderr, "capbench: sysctl", c)
		}
		if err != nil {
			fatal("sysctl: %v", err)
		}
	}
	need := 0
	if strings.TrimSpace(*rows) != "" {
		need = *sockets
	}
	if *sustain > 0 && *sustainRows != "" {
		need = max(need, *sustainSockets)
	}
	if _, err := capacity.RaiseNOFILE(uint64(need) + 1000); err != nil {
		fatal("%v", err)
	}
	if *clientCPUs != "" {
		if err := capacity.PinSelf(*clientCPUs, *gomaxprocs); err != nil {
			fatal("pinning the client: %v", err)
		}
	}
	wd, _ := os.Getwd()
	cfg := capacity.Config{
		Sockets: *sockets, Messages: *messages, Size: *size, Conc: *conc,
		Sustain:    capacity.Sustain{Sockets: *sustainSockets, Rate: *rate, Duration: *sustain},
		ServerCPUs: *serverCPUs, ClientCPUs: *clientCPUs, GOMAXPROCS: *gomaxprocs,
		NodeDir: filepath.Join(wd, "node"), ProfileDir: *profile, HeapDir: *heap, Settle: *settle,
	}
	var results []*capacity.Result
	// Both lists are checked before anything runs.
	mainRows, sustainList := parseRows(*rows, names), []capacity.Row(nil)
	if *sustain > 0 {
		sustainList = parseRows(*sustainRows, names)
	}
	failed := false
	for _, row := range mainRows {
		r, err := capacity.RunRow(cfg, row)
		if err != nil {
			fmt.Fprintln(os.Stderr, "capbench:", err)
			failed = true
			continue
		}
		results = append(results, r)
	}
	var sustained []*capacity.SustainResult
	var sRows []capacity.Row
	for _, row := range sustainList {
		r, err := capacity.RunSustain(cfg, row)
		if err != nil {
			fmt.Fprintln(os.Stderr, "capbench:", err)
			failed = true
			continue
		}
		sustained = append(sustained, r)
		sRows = append(sRows, row)
	}
	var b strings.Builder
	capacity.Report(&b, cfg, benchproc.CommandLine("capbench"), results, sustained, sRows)
	fmt.Print(b.String())
	if *out != "" {
		if err := os.WriteFile(*out, []byte(b.String()), 0o644); err != nil {
			fatal("%v", err)
		}
	}
	cleanup()
	if failed {
		os.Exit(1)
	}
}

// parseRows returns the rows of a comma-separated list of names.
func parseRows(list string, names []string) []capacity.Row {
	var rows []capacity.Row
	for _, n := range strings.Split(list, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		row, ok := capacity.RowByName(n)
		if !ok {
			fatal("unknown row %q (have %s)", n, strings.Join(names, ","))
		}
		rows = append(rows, row)
	}
	return rows
}

// cleanup puts back the kernel settings -sysctl changed.
var cleanup = func() {}

func fatal(format string, args ...any) {
	cleanup()
	fmt.Fprintf(os.Stderr, "capbench: "+format+"\n", args...)
	os.Exit(1)
}
