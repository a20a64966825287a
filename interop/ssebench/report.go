package main

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/realtime-go/realtime/interop/internal/benchproc"
	"github.com/realtime-go/realtime/interop/internal/report"
)

// render formats the report and counts the failures it lists.
func render(names []string, scs []scenario, res map[string]map[string]*result, d, warm, elapsed time.Duration) (string, int) {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	has := map[string]*scenario{}
	for i := range scs {
		has[scs[i].key] = &scs[i]
	}
	get := func(name, key string) *result {
		if r := res[name][key]; r != nil && r.err == nil {
			return r
		}
		return nil
	}
	// The best library peer per flat-out scenario, for the ratio.
	bestLib := map[string]float64{}
	bestLibP99 := map[string]time.Duration{}
	for _, name := range names {
		if !servers[name].library {
			continue
		}
		for _, k := range []string{"a", "b"} {
			if r := get(name, k); r != nil {
				bestLib[k] = max(bestLib[k], r.rate)
			}
		}
		for _, k := range []string{"c", "d"} {
			if r := get(name, k); r != nil && (bestLibP99[k] == 0 || r.p99 < bestLibP99[k]) {
				bestLibP99[k] = r.p99
			}
		}
	}

	p("## SSE broadcast benchmark\n\n")
	p("%s · %s %s/%s · %d CPUs shared by the load client and the server process · `%s`\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), benchproc.CommandLine("ssebench"))
	p("Loopback 127.0.0.1, HTTP/1.1, one publisher in the server process broadcasting events of 100 bytes of data (plus `id:`) to every subscriber; one load client. Each scenario: a fresh server process, %v warm-up, %v measured. Events/s are events received by all subscribers together; (×N) is the ratio to the best library peer (r3labs, go-sse) in the same column. Latency: publish call → event parsed by the client. RSS: growth of the server process per subscriber with 10,000 connected, each sent 2 events and now idle, after runtime.GC + debug.FreeOSMemory. Stalled: 100 subscribers flat out, a window without, then a 101st subscriber with a 4 KiB receive buffer that never reads joins; once the server's send queue to it stops growing (read from /proc/net/tcp: its writes block) and 2.5 s more, a window with it; events/s delivered to the 100 others, and the ratio. Total run time %v.\n\n",
		warm, d, elapsed.Round(time.Second))

	var busiest float64
	for _, name := range names {
		for _, r := range res[name] {
			if r.err == nil {
				busiest = max(busiest, r.otherCPU)
			}
		}
	}
	if busiest > noisy {
		p("⚠ Other processes used up to %.2f cores during the measured windows (see Details): rates are depressed and noisy.\n\n", busiest)
	}

	type col struct {
		key, head string
		cell      func(name string, r *result) string
	}
	rateCell := func(key string) func(string, *result) string {
		return func(_ string, r *result) string {
			c := report.Rate(r.rate)
			if bestLib[key] > 0 {
				c += fmt.Sprintf(" (×%.2f)", r.rate/bestLib[key])
			}
			if r.gaps > 0 || r.disorder > 0 {
				c += fmt.Sprintf(" ⚠ %d lost", r.gaps+r.disorder)
			}
			return c
		}
	}
	latCell := func(_ string, r *result) string {
		c := fmt.Sprintf("%s / %s", fmtDur(r.p50), fmtDur(r.p99))
		if r.samples == 0 {
			return "no events"
		}
		return c
	}
	var cols []col
	if sc := has["a"]; sc != nil {
		cols = append(cols, col{"a", "1,000 subs: events/s", rateCell("a")})
	}
	if sc := has["b"]; sc != nil {
		cols = append(cols, col{"b", "10,000 subs: events/s", rateCell("b")})
	}
	if sc := has["c"]; sc != nil {
		cols = append(cols, col{"c", fmt.Sprintf("paced 1,000 × %g/s: p50 / p99", sc.rate), latCell})
	}
	if sc := has["d"]; sc != nil {
		cols = append(cols, col{"d", fmt.Sprintf("paced 10,000 × %g/s: p50 / p99", sc.rate), latCell})
	}
	if sc := has["b"]; sc != nil {
		cols = append(cols, col{"b", "KiB RSS / subscriber", func(_ string, r *result) string { return fmt.Sprintf("%.1f", r.rssGC) }})
	}
	if sc := has["e"]; sc != nil {
		cols = append(cols, col{"e", "100 subs: events/s without → with 1 stalled", func(name string, r *result) string {
			c := report.Rate(r.baseRate) + " → " + report.Rate(r.rate)
			if r.baseRate > 0 {
				c += fmt.Sprintf(" (%.2f)", r.rate/r.baseRate)
			}
			if !r.bitten {
				c += " ⚠ buffers not full"
			}
			return c
		}})
	}
	p("| server |")
	for _, c := range cols {
		p(" %s |", c.head)
	}
	p("\n|---|")
	for range cols {
		p("--:|")
	}
	p("\n")
	for _, name := range names {
		p("| %s |", name)
		for _, c := range cols {
			if r := get(name, c.key); r != nil {
				p(" %s |", c.cell(name, r))
			} else {
				p(" failed |")
			}
		}
		p("\n")
	}

	// Targets for our server.
	if r := res["realtime"]; r != nil {
		p("\nTargets for `realtime`:")
		for _, k := range []string{"a", "b"} {
			if x := get("realtime", k); x != nil && bestLib[k] > 0 {
				p(" %s ×%.2f the best library peer (target ≥ 3: %s);", has[k].title, x.rate/bestLib[k], okStr(x.rate >= 3*bestLib[k]))
			}
		}
		for _, k := range []string{"c", "d"} {
			if x := get("realtime", k); x != nil && bestLibP99[k] > 0 {
				p(" %s p99 %s vs best peer %s (target: no worse: %s);", has[k].title, fmtDur(x.p99), fmtDur(bestLibP99[k]), okStr(x.p99 <= bestLibP99[k]))
			}
		}
		if x := get("realtime", "b"); x != nil {
			p(" %.1f KiB RSS per subscriber (target ≤ 20: %s);", x.rssGC, okStr(x.rssGC <= 20))
		}
		if x := get("realtime", "e"); x != nil && x.baseRate > 0 {
			p(" with a stalled subscriber %.0f%% of the rate without.", 100*x.rate/x.baseRate)
		}
		p("\n")
	}

	p("\nServers:\n\n")
	for _, name := range names {
		s := servers[name]
		p("- `%s` %s: %s\n", name, report.ModuleVersion(s.pkg), s.notes)
	}

	p("\n<details><summary>Details</summary>\n\n")
	p("Per scenario: CPU in cores (of %d) server / load client / everything else (should be near 0) · server write system calls per delivered event · events published per second · fewest–most events one subscriber got in the window · server counters.\n\n", runtime.NumCPU())
	p("| server | scenario | CPU | writes/event | published/s | per subscriber | notes |\n|---|---|--:|--:|--:|--:|---|\n")
	var problems []string
	for _, name := range names {
		for _, sc := range scs {
			r := res[name][sc.key]
			if r == nil {
				continue
			}
			if r.err != nil {
				problems = append(problems, fmt.Sprintf("- `%s` %s: %v", name, sc.title, r.err))
				p("| %s | %s | – | – | – | – | failed: %v |\n", name, sc.title, r.err)
				continue
			}
			var notes []string
			if r.extra != "" {
				notes = append(notes, r.extra)
			}
			if r.attempts > 1 {
				notes = append(notes, fmt.Sprintf("attempt %d (the quietest)", r.attempts))
			}
			if r.gaps+r.disorder > 0 {
				notes = append(notes, fmt.Sprintf("%d events missing, %d out of order", r.gaps, r.disorder))
			}
			if r.readerErrs > 0 {
				notes = append(notes, fmt.Sprintf("%d subscribers ended early, first: %v", r.readerErrs, r.firstErr))
			}
			if sc.rate > 0 {
				notes = append(notes, fmt.Sprintf("%d samples, max %s", r.samples, fmtDur(r.pmax)))
				if r.pubRate < 0.9*sc.rate {
					notes = append(notes, fmt.Sprintf("⚠ published %.1f/s of %g/s: not below saturation", r.pubRate, sc.rate))
				}
			}
			if sc.stall {
				notes = append(notes, fmt.Sprintf("without the stalled subscriber: %s events/s", report.Rate(r.baseRate)))
				if r.bitten {
					notes = append(notes, fmt.Sprintf("its send queue stopped growing after %s at %d KiB", fmtDur(r.bite), r.biteQueue>>10))
				} else {
					notes = append(notes, fmt.Sprintf("⚠ its send queue still grew after %s (%d KiB): the stall had not bitten yet", fmtDur(r.bite), r.biteQueue>>10))
				}
			}
			if sc.mem {
				notes = append(notes, fmt.Sprintf("idle per subscriber: RSS %.1f KiB before GC, heap %.1f KiB, stack %.1f KiB, %.2f goroutines; RSS growth at the end of the flat-out window %.1f KiB", r.rssRaw, r.heap, r.stack, r.gor, r.rssLoad))
			}
			p("| %s | %s | %.2f / %.2f / %.2f | %.3f | %s | %s–%s | %s |\n", name, sc.title, r.serverCPU, r.clientCPU, r.otherCPU, r.writesPerE,
				report.Rate(r.pubRate), report.Rate(float64(r.minSub)), report.Rate(float64(r.maxSub)), strings.Join(notes, "; "))
			if !sc.stall && r.readerErrs > 0 {
				problems = append(problems, fmt.Sprintf("- `%s` %s: %d subscribers ended early, first: %v", name, sc.title, r.readerErrs, r.firstErr))
			}
		}
	}
	if len(problems) > 0 {
		p("\nProblems:\n\n%s\n", strings.Join(problems, "\n"))
	}
	p("\n</details>\n")
	return b.String(), len(problems)
}

func okStr(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.0f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%d µs", d.Microseconds())
	}
}
