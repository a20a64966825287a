package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/realtime-go/realtime/interop/internal/benchproc"
	"github.com/realtime-go/realtime/interop/internal/latency"
)

// result is what a row measured.
type result struct {
	name, label string
	nodes       int
	sockets     int

	deliveriesPerSec float64
	burstDeliveries  int64
	burstTime        time.Duration
	burstP50         time.Duration
	burstP99         time.Duration
	latDeliveries    int64
	latRate          float64 // deliveries per second achieved in the latency phase
	latP50, latP99   time.Duration

	opsBurst, opsLatency float64 // broker operations per publish; -1 without a broker
	opsDetail            string  // the commands that made them
	idleOps              float64 // broker operations per second with nothing published

	rssPerSocketKiB float64
	nodeRSSMiB      float64 // all nodes, sockets connected
	brokerRSSMiB    float64

	cpu        []procCPU // during the burst, in cores
	cpuWall    time.Duration
	machineCPU float64
	clientCPU  float64

	missing, reordered, skipped, protoErrs, dropped int64
	firstErr, firstDrop                             string
	writeCalls                                      int64 // the nodes' write system calls in the burst, with -profile
	profile                                         string
}

type procCPU struct {
	name  string
	cores float64
}

// nodeCPUPerDelivery is the CPU time all nodes spent per delivery in
// the burst, in microseconds: on a machine shared with other work it is
// steadier than deliveries per second, which depend on the CPU the nodes
// could get.
func (r *result) nodeCPUPerDelivery() float64 {
	if r.burstDeliveries == 0 {
		return 0
	}
	var cores float64
	for _, p := range r.cpu {
		if strings.Contains(p.name, "node") {
			cores += p.cores
		}
	}
	return cores * r.cpuWall.Seconds() * 1e6 / float64(r.burstDeliveries)
}

func (r *result) summary() string {
	return fmt.Sprintf("%s: %.0f deliveries/s, p50 %v p99 %v at %.0f deliveries/s, lost %d reordered %d errors %d dropped %d",
		r.name, r.deliveriesPerSec, r.latP50, r.latP99, r.latRate, r.missing, r.reordered, r.protoErrs, r.dropped)
}

// channelsOf is the channels of socket i: perSocket of them, evenly
// spaced, so that every channel has the same number of subscribers when
// the sockets are a multiple of the channels.
func channelsOf(i, channels, perSocket int) []int {
	out := make([]int, perSocket)
	for k := range out {
		out[k] = (i + k*(channels/perSocket)) % channels
	}
	return out
}

func runRow(cfg *config, name string, rowIndex int, tmp string) (res *result, err error) {
	spec := rowSpecs[name]
	n := 1
	label := spec.label
	if spec.multi {
		n = cfg.nodes
		label = fmt.Sprintf(spec.label, n)
	}
	res = &result{name: name, label: label, nodes: n, sockets: cfg.sockets, opsBurst: -1, opsLatency: -1}
	dir, err := os.MkdirTemp(tmp, name+"-")
	if err != nil {
		return nil, err
	}

	// The broker.
	var broker *proc
	var brokerURL, natsMonitor string
	switch spec.broker {
	case "redis":
		if broker, err = startRedis(dir); err != nil {
			return nil, err
		}
		brokerURL = broker.addr
		if spec.proto == protoRT {
			brokerURL = "redis://" + broker.addr
		}
	case "nats":
		if broker, natsMonitor, err = startNATS(dir); err != nil {
			return nil, err
		}
		brokerURL = "nats://" + broker.addr
	}
	defer broker.stop()

	// The nodes.
	var env []string
	if cfg.nodeProcs > 0 {
		env = append(env, fmt.Sprintf("GOMAXPROCS=%d", cfg.nodeProcs))
	}
	nodes := make([]*proc, n)
	defer func() {
		for _, p := range nodes {
			p.stop()
		}
	}()
	for i := range nodes {
		bin, args := nodeArgs(cfg, spec, i, brokerURL)
		if nodes[i], err = startNode(fmt.Sprintf("%s node %d", name, i+1), bin, env, args...); err != nil {
			return nil, err
		}
	}
	addrs := make([]string, n)
	for i, p := range nodes {
		addrs[i] = p.addr
	}
	time.Sleep(300 * time.Millisecond) // let the nodes reach the broker
	rss0 := sumRSS(nodes)

	// The sockets.
	c := &counters{}
	c.hist.Store(&latency.Histogram{})
	cl := &client{proto: spec.proto, nodes: addrs, rtPath: cfg.rtPath, c: c,
		src:   [4]byte{127, byte(20 + rowIndex%200), 0, 0},
		posts: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.conc, MaxConnsPerHost: cfg.conc}, Timeout: 30 * time.Second}}
	defer cl.posts.CloseIdleConnections()
	subs := make([]int, cfg.channels)
	socks := make([]*sock, cfg.sockets)
	for i := range socks {
		s := &sock{id: i, chans: channelsOf(i, cfg.channels, cfg.perSocket), c: c}
		s.last = make([]uint32, len(s.chans))
		for _, ch := range s.chans {
			subs[ch]++
		}
		socks[i] = s
	}
	defer func() {
		c.ending.Store(true)
		for _, s := range socks {
			if s.close != nil {
				s.close()
			}
		}
		cl.wg.Wait()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	t0 := time.Now()
	if err := connectAll(ctx, cl, socks, addrs, cfg.conc); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(60 * time.Second); c.ready.Load() < int64(len(socks)); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) || c.protoErrs.Load() > 0 {
			return nil, fmt.Errorf("%w: %d of %d (%s)", errNotReady, c.ready.Load(), len(socks), firstErr(c))
		}
	}
	fmt.Fprintf(os.Stderr, "mnbench: %s: %d sockets subscribed in %v\n", name, len(socks), time.Since(t0).Round(time.Millisecond))

	// The publishers: channel ch's on node ch%n.
	var hc *http.Client
	if cfg.publish == "http" {
		hc = cl.publishClient(cfg.sockets, cfg.channels)
		defer hc.CloseIdleConnections()
	}
	pubs := make([]*publisher, cfg.channels)
	defer func() {
		c.ending.Store(true)
		for _, p := range pubs {
			if p != nil {
				p.close()
			}
		}
	}()
	for ch := range pubs {
		if pubs[ch], err = cl.newPublisher(ctx, hc, cfg.sockets+ch, addrs[ch%n], ch, subs[ch]); err != nil {
			return nil, fmt.Errorf("publisher %d: %w", ch, err)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); !allReady(pubs); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) || c.protoErrs.Load() > 0 {
			return nil, fmt.Errorf("publishers not subscribed in time (%s)", firstErr(c))
		}
	}
	ops := func() map[string]int64 {
		switch spec.broker {
		case "redis":
			m, err := redisCalls(broker.addr)
			if err != nil {
				return nil
			}
			delete(m, "info")
			return m
		case "nats":
			in, out, err := natsMsgs(natsMonitor)
			if err != nil {
				return nil
			}
			return map[string]int64{"in_msgs": in, "out_msgs": out}
		}
		return nil
	}

	idle0, idleAt := ops(), time.Now()
	time.Sleep(cfg.settle)
	if idle1 := ops(); idle0 != nil && idle1 != nil {
		res.idleOps = opsDelta(idle0, idle1, spec.broker) / time.Since(idleAt).Seconds()
	}
	rss1 := sumRSS(nodes)
	res.rssPerSocketKiB = float64(rss1-rss0) / float64(len(socks))
	res.nodeRSSMiB = float64(rss1) / 1024
	if broker != nil {
		kib, _ := benchproc.RSSKiB(broker.pid)
		res.brokerRSSMiB = float64(kib) / 1024
	}
	// Latency phase: a steady rate.
	c.hist.Store(&latency.Histogram{})
	ops0, base := ops(), c.delivered.Load()
	lt0 := time.Now()
	if err := publishAll(ctx, pubs, cfg, true); err != nil {
		return nil, err
	}
	lt := waitDelivered(c, 10*time.Second).Sub(lt0)
	ops1 := ops()
	res.latDeliveries = c.delivered.Load() - base
	res.latRate = float64(res.latDeliveries) / lt.Seconds()
	h := c.hist.Load()
	res.latP50, res.latP99 = h.Quantile(0.5), h.Quantile(0.99)
	latPublishes := published(pubs)
	if ops0 != nil && ops1 != nil {
		res.opsLatency = opsDelta(ops0, ops1, spec.broker) / float64(latPublishes)
	}

	// Burst phase: as fast as the nodes take them.
	c.hist.Store(&latency.Histogram{})
	ops0, base = ops(), c.delivered.Load()
	pids := []*proc{}
	pids = append(pids, nodes...)
	if broker != nil {
		pids = append(pids, broker)
	}
	cpu0 := make([]time.Duration, len(pids))
	var stopProfile func() (string, error)
	var counters []*benchproc.SyscallCounter
	if cfg.profile != "" {
		for _, p := range nodes {
			sc, err := benchproc.StartSyscallCounter(p.pid)
			if err != nil {
				return nil, err
			}
			counters = append(counters, sc)
		}
		time.Sleep(200 * time.Millisecond) // perf attaches
		for _, sc := range counters {
			if err := sc.Enable(); err != nil {
				return nil, err
			}
		}
		if stopProfile, err = perfRecord(nodes[0].pid, filepath.Join(cfg.profile, name+".data")); err != nil {
			return nil, err
		}
		time.Sleep(200 * time.Millisecond) // perf attaches
	}
	self := os.Getpid()
	for i, p := range pids {
		cpu0[i] = benchproc.CPUTime(p.pid)
	}
	client0, machine0 := benchproc.CPUTime(self), benchproc.MachineBusy()
	bt0 := time.Now()
	if err := publishAll(ctx, pubs, cfg, false); err != nil {
		return nil, err
	}
	res.burstTime = waitDelivered(c, 10*time.Second).Sub(bt0)
	res.cpuWall = time.Since(bt0) // the CPU window: longer when messages were lost
	wall := res.cpuWall.Seconds()
	for i, p := range pids {
		res.cpu = append(res.cpu, procCPU{p.name, (benchproc.CPUTime(p.pid) - cpu0[i]).Seconds() / wall})
	}
	res.clientCPU = (benchproc.CPUTime(self) - client0).Seconds() / wall
	res.machineCPU = (benchproc.MachineBusy() - machine0).Seconds() / wall
	ops1 = ops()
	res.burstDeliveries = c.delivered.Load() - base
	res.deliveriesPerSec = float64(res.burstDeliveries) / res.burstTime.Seconds()
	h = c.hist.Load()
	res.burstP50, res.burstP99 = h.Quantile(0.5), h.Quantile(0.99)
	if ops0 != nil && ops1 != nil {
		res.opsBurst = opsDelta(ops0, ops1, spec.broker) / float64(published(pubs)-latPublishes)
		res.opsDetail = opsTop(ops0, ops1, published(pubs)-latPublishes)
	}
	for _, sc := range counters {
		sc.Disable()
		_, w, err := sc.Finish()
		if err != nil {
			return nil, err
		}
		res.writeCalls += w
	}
	if stopProfile != nil {
		if res.profile, err = stopProfile(); err != nil {
			return nil, err
		}
	}

	res.missing = c.expected.Load() - c.delivered.Load()
	res.reordered, res.skipped, res.protoErrs, res.dropped = c.reordered.Load(), c.skipped.Load(), c.protoErrs.Load(), c.dropped.Load()
	res.firstErr = firstErr(c)
	if p := c.firstDrop.Load(); p != nil {
		res.firstDrop = *p
	}
	for _, p := range nodes {
		if p.exited() {
			return nil, fmt.Errorf("%s exited during the row", p.name)
		}
	}
	return res, nil
}

func allReady(pubs []*publisher) bool {
	for _, p := range pubs {
		if !p.ready() {
			return false
		}
	}
	return true
}

func firstErr(c *counters) string {
	if p := c.firstErr.Load(); p != nil {
		return *p
	}
	return ""
}

func sumRSS(ps []*proc) int64 {
	var sum int64
	for _, p := range ps {
		kib, _ := benchproc.RSSKiB(p.pid)
		sum += kib
	}
	return sum
}

// connectAll connects every socket, socket i to node i%len(addrs), even
// sockets over WebSocket and odd ones over EventSource, with conc
// handshakes in flight.
func connectAll(ctx context.Context, cl *client, socks []*sock, addrs []string, conc int) error {
	sem := make(chan struct{}, conc)
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for i, s := range socks {
		if firstErr.Load() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := cl.dial(ctx, s, addrs[i%len(addrs)], i%2 == 0); err != nil {
				err = fmt.Errorf("socket %d: %w", i, err)
				firstErr.CompareAndSwap(nil, &err)
			}
		}()
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return *p
	}
	return nil
}

// publishAll runs one phase on every publisher at once: in all -rate
// publishes a second for -latency-time, spread evenly, or (burst) the
// burst's publishes, each channel's as fast as its node answers.
func publishAll(ctx context.Context, pubs []*publisher, cfg *config, steady bool) error {
	errs := make(chan error, len(pubs))
	total := cfg.burst * cfg.channels / cfg.perSocket
	for j, p := range pubs {
		go func() {
			if steady {
				interval := time.Duration(float64(time.Second) * float64(len(pubs)) / float64(cfg.rate))
				next := time.Now().Add(time.Duration(j) * interval / time.Duration(len(pubs)))
				for end := time.Now().Add(cfg.latencyTime); next.Before(end); next = next.Add(interval) {
					time.Sleep(time.Until(next))
					if err := p.publish(ctx, cfg.size); err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
				return
			}
			share := total / len(pubs)
			if j < total%len(pubs) {
				share++
			}
			for range share {
				if err := p.publish(ctx, cfg.size); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	var first error
	for range pubs {
		if err := <-errs; err != nil && first == nil {
			first = fmt.Errorf("publishing: %w", err)
		}
	}
	return first
}

// waitDelivered waits until every expected delivery has come, or until
// none has come for patience (a lost message is a result of the row, not
// a failure of the benchmark), and returns when the last one came (to
// the millisecond).
func waitDelivered(c *counters, patience time.Duration) time.Time {
	last, lastAt := c.delivered.Load(), time.Now()
	for {
		d := c.delivered.Load()
		if d >= c.expected.Load() {
			return time.Now()
		}
		if d != last {
			last, lastAt = d, time.Now()
		} else if time.Since(lastAt) > patience {
			return lastAt
		}
		time.Sleep(time.Millisecond)
	}
}

func published(pubs []*publisher) int64 {
	var n int64
	for _, p := range pubs {
		n += int64(p.seq)
	}
	return n
}

// opsDelta is the broker operations between two readings: every Redis
// command, or the messages nats-server received.
func opsDelta(a, b map[string]int64, broker string) float64 {
	if broker == "nats" {
		return float64(b["in_msgs"] - a["in_msgs"])
	}
	var n int64
	for k, v := range b {
		n += v - a[k]
	}
	return float64(n)
}

// opsTop names the operations per publish between two readings, most
// first: "evalsha 1.00, publish 1.00".
func opsTop(a, b map[string]int64, publishes int64) string {
	type kv struct {
		k string
		v int64
	}
	var l []kv
	for k, v := range b {
		if d := v - a[k]; d > 0 {
			l = append(l, kv{k, d})
		}
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v || l[i].v == l[j].v && l[i].k < l[j].k })
	var parts []string
	for _, e := range l[:min(len(l), 8)] {
		parts = append(parts, fmt.Sprintf("%s %.2f", e.k, float64(e.v)/float64(max(1, publishes))))
	}
	return strings.Join(parts, ", ")
}

// report prints the table and what is needed to read it.
func report(w io.Writer, cfg *config, rs []*result) {
	how := "POST /publish, one at a time"
	if cfg.publish == "ws" {
		how = "a WebSocket client in the channel, not waiting for answers"
	}
	fmt.Fprintf(w, "\n%d sockets (half WebSocket, half EventSource), each in %d of %d channels; a publisher per channel on node CHANNEL mod N (%s); %d-byte messages; "+
		"latency at %d publishes/s for %v, burst of about %d messages per socket.\n\n",
		cfg.sockets, cfg.perSocket, cfg.channels, how, cfg.size, cfg.rate, cfg.latencyTime, cfg.burst)
	fmt.Fprintln(w, "| server | deliveries/s (burst) | p50 / p99 at steady rate | p99 in burst | broker ops per publish | RSS per socket | CPU in burst, cores (nodes + broker + client) | nodes' CPU per delivery | lost / dup / dropped sockets |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		ops := "—"
		if r.opsBurst >= 0 {
			ops = fmt.Sprintf("%.2f (%.2f steady)", r.opsBurst, r.opsLatency)
		}
		var nodes, broker float64
		for _, p := range r.cpu {
			if strings.Contains(p.name, "node") {
				nodes += p.cores
			} else {
				broker += p.cores
			}
		}
		fmt.Fprintf(w, "| %s | %.0f | %s / %s | %s | %s | %.1f KiB | %.2f + %.2f + %.2f | %.1f µs | %d / %d / %d |\n",
			r.label, r.deliveriesPerSec, ms(r.latP50), ms(r.latP99), ms(r.burstP99), ops, r.rssPerSocketKiB,
			nodes, broker, r.clientCPU, r.nodeCPUPerDelivery(), r.missing, r.reordered, r.dropped)
	}
	fmt.Fprintln(w)
	if i := slices.IndexFunc(rs, func(r *result) bool { return r.name == "cf-redis" }); i >= 0 && rs[i].deliveriesPerSec > 0 {
		for _, r := range rs {
			if rowSpecs[r.name].proto == protoRT {
				fmt.Fprintf(w, "%s: %.2fx centrifuge's deliveries/s, %.2fx its nodes' CPU per delivery, p99 %s vs %s.\n", r.label,
					r.deliveriesPerSec/rs[i].deliveriesPerSec, r.nodeCPUPerDelivery()/rs[i].nodeCPUPerDelivery(), ms(r.latP99), ms(rs[i].latP99))
			}
		}
		fmt.Fprintln(w)
	}
	if i := slices.IndexFunc(rs, func(r *result) bool { return r.name == "floor-redis" }); i >= 0 && rs[i].deliveriesPerSec > 0 {
		for _, r := range rs {
			if r.name != "floor-redis" {
				fmt.Fprintf(w, "%s: %.0f%% of the floor's deliveries/s.\n", r.label, 100*r.deliveriesPerSec/rs[i].deliveriesPerSec)
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Where the CPU went during each burst (cores; the machine has %d):\n", runtime.NumCPU())
	for _, r := range rs {
		var parts []string
		for _, p := range r.cpu {
			parts = append(parts, fmt.Sprintf("%s %.2f", shortName(p.name), p.cores))
		}
		parts = append(parts, fmt.Sprintf("load client %.2f (GOMAXPROCS %d)", r.clientCPU, cfg.clientProcs))
		var sum float64
		for _, p := range r.cpu {
			sum += p.cores
		}
		parts = append(parts, fmt.Sprintf("other %.2f, idle %.2f", max(0, r.machineCPU-sum-r.clientCPU), max(0, float64(runtime.NumCPU())-r.machineCPU)))
		fmt.Fprintf(w, "- %s: %s.", r.name, strings.Join(parts, ", "))
		if r.clientCPU > 0.9*float64(cfg.clientProcs) {
			fmt.Fprint(w, " The load client used all its GOMAXPROCS: it may have limited this row.")
		}
		if r.opsDetail != "" {
			fmt.Fprintf(w, " Broker ops per publish: %s; with nothing published, %.0f ops/s.", r.opsDetail, r.idleOps)
		}
		fmt.Fprintf(w, " %d deliveries in %v (burst), %d at %.0f/s (steady); p50 in burst %s; nodes' RSS %.0f MiB, broker's %.0f MiB.",
			r.burstDeliveries, r.burstTime.Round(time.Millisecond), r.latDeliveries, r.latRate, ms(r.burstP50), r.nodeRSSMiB, r.brokerRSSMiB)
		if r.skipped > 0 || r.protoErrs > 0 {
			fmt.Fprintf(w, " Skipped %d, unexpected %d (first: %s).", r.skipped, r.protoErrs, r.firstErr)
		}
		if r.dropped > 0 {
			fmt.Fprintf(w, " Dropped %d connections (first: %s).", r.dropped, r.firstDrop)
		}
		if r.writeCalls > 0 {
			fmt.Fprintf(w, " Nodes' write system calls (write, writev, sendto, sendmsg, sendmmsg) per delivery: %.2f.", float64(r.writeCalls)/float64(r.burstDeliveries))
		}
		if r.profile != "" {
			fmt.Fprintf(w, " perf profile of node 1 during the burst: %s.", r.profile)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "\nCommand: `%s`\n", benchproc.CommandLine("mnbench"))
}

func shortName(s string) string {
	if i := strings.Index(s, "node "); i >= 0 {
		return "node" + s[i+5:]
	}
	return s
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
