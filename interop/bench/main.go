// Command bench measures WebSocket echo servers built on several Go
// libraries against a plain TCP echo, with one load client, and prints a
// Markdown table.
//
//	cd interop && go run ./bench [-quick] [-out FILE] [-servers a,b] [-cpuprofile DIR]
//	cd interop && go run ./bench -deflate [-scenarios efgh] [-mem-conns 1000] ...
//
// Each server runs in a child process (this binary with -serve NAME), a
// fresh one per scenario, measured one at a time: scenario by scenario,
// every server in turn within each. The load client runs in this process
// on raw sockets: it performs the upgrade itself, sends pre-built masked
// frames and counts the echoed frames; for the plain TCP echo it skips the
// upgrade and sends the same frames.
//
// Build with -tags norealtime to leave out this module's own server (for
// working on the bench while the websocket package does not compile).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/realtime-go/realtime/interop/internal/benchproc"
	"github.com/realtime-go/realtime/interop/internal/report"
)

type scenario struct {
	key         string
	title       string
	size, conns int
	depth       int
	idle        bool
	idleConns   int
	idleSettle  time.Duration
	warmup, dur time.Duration
}

// noisy is the CPU use by other processes, in cores, above which a
// measurement is flagged (and retried).
const noisy = 0.15

type rowResult struct {
	load   map[string]loadResult
	idle   idleResult
	errs   map[string]error // per scenario key
	sanity error
}

func main() {
	serve := flag.String("serve", "", "internal: run the named echo server in this process")
	addr := flag.String("addr", "127.0.0.1:0", "internal: listen address for -serve")
	quick := flag.Bool("quick", false, "short run: 1 s per scenario, shorter idle wait")
	out := flag.String("out", "", "also write the Markdown report to this file")
	only := flag.String("servers", "", "comma-separated servers to run (default all: "+strings.Join(registeredServers(), ",")+")")
	dur := flag.Duration("dur", 0, "measured time per throughput scenario (default 5s, -quick 1s)")
	idleN := flag.Int("idle", 10000, "connections for the idle-memory scenario")
	retries := flag.Int("retries", 1, "repeat a throughput scenario up to this many times when other processes used over 0.15 cores during it; the quietest attempt counts")
	onlyScenarios := flag.String("scenarios", "abcd", "which scenarios to run, by key: a (16 B), b (1 KiB), c (64 KiB), d (idle)")
	waitQuiet := flag.Duration("wait-quiet", 0, "before each scenario, wait up to this long for other processes to leave the CPUs idle")
	profDir := flag.String("cpuprofile", "", "write a CPU profile of each server process to DIR/SERVER-SCENARIO.pprof (with -serve: the profile file)")
	pmd := flag.Bool("deflate", false, "run the permessage-deflate scenarios instead (see deflate.go): e (1 KiB JSON, no context takeover), f (context takeover offered), g and h (memory of -mem-conns connections in each mode)")
	memConns := flag.Int("mem-conns", 1000, "connections for the -deflate memory scenarios")
	memMsgs := flag.Int("mem-msgs", 5, "messages each connection echoes in the -deflate memory scenarios")
	flag.Parse()

	if *serve != "" {
		if err := runServe(*serve, *addr, *profDir); err != nil {
			fmt.Fprintln(os.Stderr, "serve:", err)
			os.Exit(1)
		}
		return
	}

	limit, err := benchproc.RaiseNOFILE()
	if err != nil {
		fatal("raise RLIMIT_NOFILE: %v", err)
	}
	if need := uint64(*idleN + 200); limit < need {
		fatal("RLIMIT_NOFILE is %d (hard limit), the idle scenario needs about %d: lower -idle", limit, need)
	}

	d, warm, settle := 5*time.Second, time.Second, 2*time.Second
	if *quick {
		d, warm, settle = time.Second, 300*time.Millisecond, time.Second
	}
	if *dur > 0 {
		d = *dur
	}
	if *pmd {
		var sel []string
		if *only != "" {
			sel = strings.Split(*only, ",")
		}
		scen := ""
		flag.Visit(func(f *flag.Flag) {
			if f.Name == "scenarios" {
				scen = f.Value.String()
			}
		})
		runPMDBench(pmdConfig{servers: sel, scenarios: scen, memConns: *memConns, memMsgs: *memMsgs, dur: d, warmup: warm, settle: settle,
			retries: *retries, waitQuiet: *waitQuiet, out: *out, profDir: *profDir})
		return
	}

	names := slices.DeleteFunc(registeredServers(), isPMD)
	if *only != "" {
		names = nil
		for _, n := range strings.Split(*only, ",") {
			n = strings.TrimSpace(n)
			if _, ok := servers[n]; !ok {
				fatal("unknown server %q (have %s)", n, strings.Join(registeredServers(), ","))
			}
			names = append(names, n)
		}
	}

	scenarios := []scenario{
		{key: "a", title: "16 B × 100 conns × 16 deep", size: 16, conns: 100, depth: 16},
		{key: "b", title: "1 KiB × 100 conns", size: 1024, conns: 100, depth: 1},
		{key: "c", title: "64 KiB × 10 conns", size: 64 << 10, conns: 10, depth: 1},
		{key: "d", title: fmt.Sprintf("idle: %d conns", *idleN), idle: true, idleConns: *idleN, idleSettle: settle},
	}
	for i := range scenarios {
		scenarios[i].warmup, scenarios[i].dur = warm, d
	}
	scenarios = slices.DeleteFunc(scenarios, func(sc scenario) bool { return !strings.Contains(*onlyScenarios, sc.key) })

	start := time.Now()
	results := map[string]*rowResult{}
	for _, name := range names {
		r := &rowResult{load: map[string]loadResult{}, errs: map[string]error{}}
		results[name] = r
		if ch, err := startChild(name, ""); err != nil {
			r.sanity = err
		} else {
			r.sanity = sanity(ch.Addr, name != "tcp")
			ch.Stop()
		}
		if r.sanity != nil {
			logf("%s: sanity check failed: %v", name, r.sanity)
		}
	}
	// Scenario by scenario, every server in turn, so that the servers a
	// ratio compares are measured next to each other, with the load
	// client in the same state: rates drift by a few percent over a run,
	// and the 10,000 connections of the idle scenario, which comes last,
	// leave the load client slower for a while.
	m := measurer{waitQuiet: *waitQuiet, retries: *retries, profDir: *profDir}
	for _, sc := range scenarios {
		for _, name := range names {
			m.measureWS(name, sc, results[name])
		}
	}
	elapsed := time.Since(start)

	text, problems := render(names, scenarios, results, d, warm, settle, elapsed)
	fmt.Print(text)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(text), 0o644); err != nil {
			fatal("write %s: %v", *out, err)
		}
	}
	if problems > 0 {
		fatal("%d problems (listed under Details)", problems)
	}
}

// measurer runs one scenario against one server.
type measurer struct {
	waitQuiet time.Duration
	retries   int
	profDir   string
}

// run starts a fresh child process serving name and has measure measure
// it, after waiting for a quiet machine. It starts over, up to m.retries
// more times, while measure reports that other processes used over noisy
// cores; measure keeps the quietest attempt. Errors go into errs under
// key.
func (m measurer) run(name, key, title string, errs map[string]error, measure func(ch *child, attempt int) (otherCPU float64, err error)) {
	logf("%s: %s", name, title)
	prof := ""
	if m.profDir != "" {
		prof = filepath.Join(m.profDir, name+"-"+key+".pprof")
	}
	for attempt := 0; ; attempt++ {
		if m.waitQuiet > 0 {
			if busy := awaitQuiet(m.waitQuiet); busy > 0.1 {
				logf("machine still busy (%.2f cores) after %v; measuring anyway", busy, m.waitQuiet)
			}
		}
		ch, err := startChild(name, prof)
		if err == nil {
			var other float64
			other, err = measure(ch, attempt)
			ch.Stop()
			if err == nil && other > noisy && attempt < m.retries {
				logf("%s: %s: other processes used %.2f cores; again", name, title, other)
				continue
			}
		}
		if err != nil {
			errs[key] = err
			logf("%s: %s: %v", name, title, err)
		}
		return
	}
}

// keepQuietest records lr in load under key unless an earlier attempt was
// quieter, and reports whether it did.
func keepQuietest(load map[string]loadResult, key string, lr loadResult, attempt int) bool {
	if prev, ok := load[key]; ok && prev.otherCPU <= lr.otherCPU {
		return false
	}
	lr.attempts = attempt + 1
	load[key] = lr
	return true
}

// measureWS measures one scenario of the plain benchmark into r.
func (m measurer) measureWS(name string, sc scenario, r *rowResult) {
	ws := name != "tcp"
	m.run(name, sc.key, sc.title, r.errs, func(ch *child, attempt int) (float64, error) {
		if sc.idle {
			var err error
			r.idle, err = runIdle(ch, ws, sc.idleConns, sc.idleSettle)
			return 0, err
		}
		lr, err := runLoad(ch, ws, sc.conns, sc.depth, sc.size, sc.warmup, sc.dur)
		if err != nil {
			return 0, err
		}
		if lr.firstErr != nil {
			logf("%s: %s: %d connections failed, first: %v", name, sc.title, lr.errs, lr.firstErr)
		}
		keepQuietest(r.load, sc.key, lr, attempt)
		return lr.otherCPU, nil
	})
}

// render formats the report and counts the failures it lists.
func render(names []string, scs []scenario, res map[string]*rowResult, d, warm, settle time.Duration, elapsed time.Duration) (string, int) {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }

	p("## WebSocket echo benchmark\n\n")
	p("%s · %s %s/%s · %d CPUs, GOMAXPROCS %d in the load client and in each server process (they share the CPUs) · `%s`\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.NumCPU(), runtime.GOMAXPROCS(0), benchproc.CommandLine("bench"))
	p("Loopback 127.0.0.1, binary messages, no compression. Each throughput scenario: %v warm-up, then %v measured; echoed messages per second (ratio to the plain TCP echo). Idle: RSS growth of the server process per connection, %v after the last handshake, after a runtime.GC + debug.FreeOSMemory done by the harness in every server alike. A fresh server process per scenario. Total run time %v.\n\n",
		warm, d, settle, elapsed.Round(time.Second))

	var load []scenario
	var idle *scenario
	for i := range scs {
		if scs[i].idle {
			idle = &scs[i]
		} else {
			load = append(load, scs[i])
		}
	}
	var busiest float64
	for _, name := range names {
		for _, lr := range res[name].load {
			busiest = max(busiest, lr.otherCPU)
		}
	}
	if busiest > noisy {
		p("⚠ Other processes used up to %.2f cores during the measured windows (see Details): the machine was not quiet, rates are depressed and noisy.\n\n", busiest)
	}
	p("| server |")
	for _, sc := range load {
		p(" %s msg/s |", sc.title)
	}
	if idle != nil {
		p(" KiB RSS / idle conn (%d conns) |", idle.idleConns)
	}
	p("\n|---|")
	for range load {
		p("--:|")
	}
	if idle != nil {
		p("--:|")
	}
	p("\n")
	tcp := res["tcp"]
	for _, name := range names {
		r := res[name]
		p("| %s |", name)
		for _, sc := range load {
			if err := r.errs[sc.key]; err != nil {
				p(" failed |")
				continue
			}
			lr := r.load[sc.key]
			cell := report.Rate(lr.rate)
			if tcp != nil && tcp.errs[sc.key] == nil && tcp.load[sc.key].rate > 0 {
				cell += fmt.Sprintf(" (%.2f)", lr.rate/tcp.load[sc.key].rate)
			}
			if lr.errs > 0 {
				cell += fmt.Sprintf(" ⚠ %d conn errors", lr.errs)
			}
			p(" %s |", cell)
		}
		if idle != nil {
			if r.errs[idle.key] != nil {
				p(" failed |")
			} else {
				p(" %.1f |", r.idle.gcPerConn)
			}
		}
		p("\n")
	}

	p("\nServers:\n\n")
	for _, name := range names {
		s := servers[name]
		p("- `%s` %s: %s\n", name, report.ModuleVersion(s.pkg), s.notes)
	}
	p("\n<details><summary>Details</summary>\n\n")
	p("CPU used during the measured window, in cores (of %d): server process / load client process / everything else on the machine (should be near 0); then the server's read / write system calls per echoed message (%s, for %v after the measured window; – where perf could not count them).\n\n", runtime.NumCPU(), benchproc.SyscallsCounted, syscallCountWindow)
	p("| server |")
	for _, sc := range load {
		p(" %s: CPU · syscalls/msg |", sc.title)
	}
	p(" idle: KiB RSS/conn before GC | idle: KiB heap/conn | idle: KiB stack/conn | idle: goroutines/conn |\n|---|")
	for range len(load) + 4 {
		p("--:|")
	}
	p("\n")
	for _, name := range names {
		r := res[name]
		p("| %s |", name)
		for _, sc := range load {
			if r.errs[sc.key] != nil {
				p(" – |")
				continue
			}
			lr := r.load[sc.key]
			retry := lr.retryNote()
			calls := "– / –"
			if lr.reads >= 0 {
				calls = fmt.Sprintf("%.2f / %.2f", lr.reads, lr.writes)
			}
			p(" %.2f / %.2f / %.2f · %s%s |", lr.serverCPU, lr.clientCPU, lr.otherCPU, calls, retry)
		}
		if idle != nil && r.errs[idle.key] == nil {
			p(" %.1f | %.1f | %.1f | %.2f |", r.idle.rawPerConn, r.idle.heapPerConn, r.idle.stackPerConn, r.idle.goroutinesPerConn)
		} else {
			p(" – | – | – | – |")
		}
		p("\n")
	}
	var problems []string
	for _, name := range names {
		r := res[name]
		problems = append(problems, serverProblems(name, "echo of 0 B … 200 KB messages", r.sanity, r.errs, r.load, scenarioRefs(scs, func(sc scenario) (string, string) { return sc.key, sc.title }))...)
	}
	return endDetails(&b, problems), len(problems)
}

// scenarioRef names a scenario in a report: its key and title.
type scenarioRef struct{ key, title string }

func scenarioRefs[S any](scs []S, ref func(S) (key, title string)) []scenarioRef {
	out := make([]scenarioRef, len(scs))
	for i, sc := range scs {
		out[i].key, out[i].title = ref(sc)
	}
	return out
}

// serverProblems lists what went wrong for one server: its sanity check
// (sanityWhat says what it checks) and each scenario that failed.
func serverProblems(name, sanityWhat string, sanity error, errs map[string]error, load map[string]loadResult, scs []scenarioRef) []string {
	var problems []string
	if sanity != nil {
		problems = append(problems, fmt.Sprintf("- `%s` sanity check (%s): %v", name, sanityWhat, sanity))
	}
	for _, sc := range scs {
		if pr := scenarioProblem(name, sc.title, errs[sc.key], load[sc.key]); pr != "" {
			problems = append(problems, pr)
		}
	}
	return problems
}

// endDetails ends a report's details section with its problems and
// returns the whole report.
func endDetails(b *strings.Builder, problems []string) string {
	if len(problems) > 0 {
		fmt.Fprintf(b, "\nProblems:\n\n%s\n", strings.Join(problems, "\n"))
	}
	b.WriteString("\n</details>\n")
	return b.String()
}

// awaitQuiet waits until the machine's CPUs are idle for half a second,
// at most max, and returns the last busy reading in cores.
func awaitQuiet(max time.Duration) float64 {
	deadline := time.Now().Add(max)
	for {
		b0, t0 := benchproc.MachineBusy(), time.Now()
		time.Sleep(500 * time.Millisecond)
		busy := (benchproc.MachineBusy() - b0).Seconds() / time.Since(t0).Seconds()
		if busy < 0.1 || time.Now().After(deadline) {
			return busy
		}
	}
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "[bench] "+format+"\n", a...)
}

func fatal(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", a...)
	os.Exit(1)
}
