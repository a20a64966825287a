package capacity

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Machine describes the machine for the report: CPU model and count,
// kernel, Go and Node versions.
func Machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	var u unix.Utsname
	kernel := "?"
	if unix.Uname(&u) == nil {
		kernel = unix.ByteSliceToString(u.Release[:])
	}
	nodeV := "none"
	if out, err := exec.Command("node", "--version").Output(); err == nil {
		nodeV = strings.TrimSpace(string(out))
	}
	return fmt.Sprintf("%s, %d CPUs, Linux %s, %s, node %s", model, runtime.NumCPU(), kernel, runtime.Version(), nodeV)
}

func cores(b Broadcast) string { return fmt.Sprintf("%.2f / %.2f / %.2f", b.Server, b.Client, b.Other) }

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }

func us(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Microsecond)) }

// Report writes the Markdown tables of results and sustained runs.
func Report(w io.Writer, cfg Config, command string, results []*Result, sustained []*SustainResult, sustainedRows []Row) {
	cfg = cfg.defaults()
	pin := func(cpus string) string {
		if cpus == "" {
			return "not pinned"
		}
		return "taskset -c " + cpus
	}
	gmp := "default"
	if cfg.GOMAXPROCS > 0 {
		gmp = fmt.Sprint(cfg.GOMAXPROCS)
	}
	fmt.Fprintf(w, "Machine: %s. Server: its own process, GOMAXPROCS=%s, %s (Node: one event loop); load client: epoll on raw sockets in one process, %s. Payload %d B. Command: `%s`\n\n",
		Machine(), gmp, pin(cfg.ServerCPUs), pin(cfg.ClientCPUs), cfg.Size, command)
	if len(results) > 0 {
		fmt.Fprintf(w, "| row | sockets | handshakes/s | server RSS idle | KiB per idle socket | goroutines | one broadcast: to delivery p50 / p99 / max (ms) | deliveries/s (one) | %d broadcasts: deliveries/s | server CPU µs/delivery (one / burst) | server writes/delivery (burst, -profile) | burst cores: server / client / other | every message once |\n", cfg.Messages)
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
		for _, r := range results {
			once := "yes"
			if r.Wrong > 0 {
				once = fmt.Sprintf("**no: %d sockets**", r.Wrong)
			}
			bc := "– | – | – | – | – | –"
			if r.Row.Broadcast {
				writes := "–"
				if r.Burst.WritesPerMessage > 0 {
					writes = fmt.Sprintf("%.3f", r.Burst.WritesPerMessage)
				}
				bc = fmt.Sprintf("%s / %s / %s | %.0f | %.0f | %s / %s | %s | %s", ms(r.One.Latency[0]), ms(r.One.Latency[1]), ms(r.One.Latency[2]),
					r.One.PerSecond, r.Burst.PerSecond, us(r.One.CPUPerMessage), us(r.Burst.CPUPerMessage), writes, cores(r.Burst))
			} else {
				once = "–"
			}
			fmt.Fprintf(w, "| %s | %d | %.0f | %.1f MiB | %.2f | %d | %s | %s |\n", r.Row.Name, r.Sockets, r.HandshakesPerSec,
				float64(r.IdleKiB)/1024, r.KiBPerSocket(), r.Goroutines, bc, once)
		}
	}
	writeRatios(w, results)
	if len(sustained) > 0 {
		fmt.Fprintf(w, "\nSustained: %g broadcasts/s of %d B for %v.\n\n", cfg.Sustain.Rate, cfg.Size, cfg.Sustain.Duration)
		fmt.Fprintln(w, "| row | sockets | delivered / expected | deliveries/s | latency p50 / p99 / max (ms) | server RSS at 1 s → end (max) | server RSS idle, collected: before → after | server CPU µs/delivery | cores: server / client / other | sockets closed / wrong |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
		for i, r := range sustained {
			b := r.Broadcast
			idle := fmt.Sprintf("%.1f → %.1f MiB", float64(r.BeforeKiB)/1024, float64(r.AfterKiB)/1024)
			if b.Unfinished {
				idle = "fell behind: still publishing at the end"
			}
			fmt.Fprintf(w, "| %s | %d | %d / %d | %.0f | %s / %s / %s | %.1f → %.1f (%.1f) MiB | %s | %s | %s | %d / %d |\n", sustainedRows[i].Name, r.Sockets,
				b.Deliveries, r.Expected, b.PerSecond, ms(b.Latency[0]), ms(b.Latency[1]), ms(b.Latency[2]),
				float64(r.StartKiB)/1024, float64(r.EndKiB)/1024, float64(r.Max)/1024,
				idle, us(b.CPUPerMessage), cores(b), r.Closed, r.Wrong)
		}
		fmt.Fprintln(w)
		for i, r := range sustained {
			fmt.Fprintf(w, "- %s, server RSS over the run (MiB at s): %s\n", sustainedRows[i].Name, rssCurve(r.RSS, 10))
			if r.BeforeMem != nil && r.AfterMem != nil {
				fmt.Fprintf(w, "  - idle, collected, before → after (MiB: live heap / heap spans in use / unused in spans / stacks / runtime metadata): %s → %s\n", memLine(r.BeforeMem), memLine(r.AfterMem))
			}
			if len(r.Mem) > 0 {
				fmt.Fprintf(w, "  - its Go runtime's account (MiB at s: live heap / heap goal / heap spans in use / stacks / free heap kept): %s\n", memCurve(r.Mem, 10))
			}
		}
	}
	fmt.Fprintln(w, "\nRows:")
	seen := map[string]bool{}
	for _, r := range results {
		if !seen[r.Row.Name] {
			seen[r.Row.Name] = true
			fmt.Fprintf(w, "- %s: %s\n", r.Row.Name, r.Row.Notes)
		}
	}
}

// layerPairs are the realtime rows and the driver rows under them, by
// transport.
var layerPairs = []struct{ transport, layer, driver string }{
	{"WebSocket", "rt-ws", "drv-ws"},
	{"EventSource", "rt-es", "drv-es"},
}

// quietOther is the most "other" cores a burst may have seen (see
// Broadcast.Other) to count as taken on a quiet machine.
const quietOther = 0.5

// writeRatios writes, for each transport whose realtime row and driver
// row both ran, the server CPU per delivery of the burst of each (the
// median over the runs of the row, when it ran more than once) and their
// ratio: what the realtime layer costs over its own driver. On a shared
// machine the other processes inflate the figures, so the same is given
// over the quiet runs alone, where each row has some.
func writeRatios(w io.Writer, results []*Result) {
	header := false
	for _, p := range layerPairs {
		l, nl := medianBurstCPU(results, p.layer, false)
		d, nd := medianBurstCPU(results, p.driver, false)
		if nl == 0 || nd == 0 {
			continue
		}
		if !header {
			header = true
			fmt.Fprintf(w, "\n| transport | server CPU µs/delivery, burst, median: realtime layer (runs) | driver level (runs) | realtime / driver | the same over quiet runs (other < %.1f cores): realtime | driver | realtime / driver |\n", quietOther)
			fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
		}
		ql, nql := medianBurstCPU(results, p.layer, true)
		qd, nqd := medianBurstCPU(results, p.driver, true)
		quiet := "– | – | –"
		if nql > 0 && nqd > 0 {
			quiet = fmt.Sprintf("%s (%d) | %s (%d) | %s", us(ql), nql, us(qd), nqd, ratio(ql, qd))
		}
		fmt.Fprintf(w, "| %s | %s: %s (%d) | %s: %s (%d) | %s | %s |\n", p.transport, p.layer, us(l), nl, p.driver, us(d), nd, ratio(l, d), quiet)
	}
}

func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2fx", float64(a)/float64(b))
}

// medianBurstCPU is the median server CPU per delivery of the bursts of
// the row called name (the quiet ones only, if quiet), and how many runs
// it is taken over.
func medianBurstCPU(results []*Result, name string, quiet bool) (time.Duration, int) {
	var v []time.Duration
	for _, r := range results {
		if r.Row.Name == name && r.Burst.Deliveries > 0 && (!quiet || r.Burst.Other < quietOther) {
			v = append(v, r.Burst.CPUPerMessage)
		}
	}
	if len(v) == 0 {
		return 0, 0
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2], len(v)
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2, len(v)
}

// memLine is where a Go server's memory is, for the idle points of the
// sustained run.
func memLine(m map[string]int64) string {
	mib := func(k int64) string { return fmt.Sprintf("%.1f", float64(k)/1024) }
	return fmt.Sprintf("%s / %s / %s / %s / %s", mib(m["live"]), mib(m["objects"]), mib(m["unused"]), mib(m["stacks"]), mib(m["meta"]+m["mspan"]))
}

// memCurve is at most n of samples, as rssCurve.
func memCurve(samples []map[string]int64, n int) string {
	var b strings.Builder
	mib := func(k int64) string { return fmt.Sprintf("%.1f", float64(k)/1024) }
	for _, i := range spread(len(samples), n) {
		m := samples[i]
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s / %s / %s / %s / %s@%.0f", mib(m["live"]), mib(m["goal"]), mib(m["objects"]), mib(m["stacks"]), mib(m["free"]), float64(m["ms"])/1000)
	}
	return b.String()
}

// spread returns at most n indexes of a series of length l, evenly
// spread, the last always among them.
func spread(l, n int) []int {
	var idx []int
	step := max(1, (l+n-1)/n)
	for i := 0; i < l; i += step {
		if i+step >= l {
			i = l - 1
		}
		idx = append(idx, i)
	}
	return idx
}

// rssCurve is at most n of samples, evenly spread and the last always
// among them, as "95.1@1 97.3@4 ...": enough to tell a plateau from a
// climb.
func rssCurve(samples []RSSSample, n int) string {
	if len(samples) == 0 {
		return "–"
	}
	var b strings.Builder
	for _, i := range spread(len(samples), n) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.1f@%.0f", float64(samples[i].KiB)/1024, samples[i].At.Seconds())
	}
	return b.String()
}
