package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/realtime-go/realtime/extensions"
	"github.com/realtime-go/realtime/extensions/deflate"
	"github.com/realtime-go/realtime/interop/internal/benchproc"
	"github.com/realtime-go/realtime/interop/internal/rawframe"
	"github.com/realtime-go/realtime/interop/internal/report"
)

// The compressed scenarios (-deflate): echo of 1 KiB JSON messages with
// permessage-deflate, and the memory a compressed connection holds.
//
// The load client speaks permessage-deflate itself, with the sessions of
// this module's extensions/deflate package (the same client code for
// every server): it offers the extension in its upgrade request and
// decompresses the echoes, comparing them with what it sent. As the
// uncompressed scenarios send pre-built frames, the throughput scenarios
// send pre-built compressed frames: each message compressed on its own,
// which a sender may always do, so that the load client spends its CPU
// on what the server sends. It decompresses every echo of a server that
// keeps its compression context (it must, to follow the context) and
// every 8th otherwise. The memory scenarios compress every message as
// they send it, with the context the server granted.
//
//   - "no context takeover": the client offers
//     "permessage-deflate; server_no_context_takeover;
//     client_no_context_takeover; client_max_window_bits", so every server
//     compresses each message on its own, and so does the client.
//   - "context takeover": the client offers
//     "permessage-deflate; client_max_window_bits", as browsers do; a
//     server that can keeps its compression context (15-bit windows)
//     between messages both ways, the others answer with the no context
//     takeover parameters. The table shows what each answered.
//
// The messages are 64 different JSON objects of exactly 1 KiB, sent in
// turn, so that context takeover has similar but not identical messages
// to work with, as a feed of updates would.

type pmdScenario struct {
	key   string
	title string
	ctx   bool // offer context takeover
	mem   bool // the memory scenario, else throughput
}

func pmdScenarios(memConns, memMsgs int) []pmdScenario {
	return []pmdScenario{
		{key: "e", title: "1 KiB JSON × 100 conns, no context takeover"},
		{key: "f", title: "1 KiB JSON × 100 conns, context takeover offered", ctx: true},
		{key: "g", title: fmt.Sprintf("KiB RSS / conn, %d conns × %d msgs, no context takeover", memConns, memMsgs), mem: true},
		{key: "h", title: fmt.Sprintf("KiB RSS / conn, %d conns × %d msgs, context takeover offered", memConns, memMsgs), ctx: true, mem: true},
	}
}

const (
	pmdMsgSize  = 1024
	pmdMsgCount = 64
)

// pmdMessages are the JSON messages, each exactly pmdMsgSize bytes.
var pmdMessages = func() [][]byte {
	rng := mrand.New(mrand.NewPCG(2024, 1))
	symbols := []string{"ACME", "GLOBX", "INITECH", "UMBRL", "HOOLI", "STARK", "WAYNE", "CYBDN"}
	msgs := make([][]byte, pmdMsgCount)
	for i := range msgs {
		var b bytes.Buffer
		fmt.Fprintf(&b, `{"type":"update","seq":%d,"ts":%d,"channel":"prices","items":[`, 100000+i*37, 1700000000000+int64(i)*1375+int64(rng.IntN(999)))
		for k := 0; b.Len() < pmdMsgSize-120; k++ {
			if k > 0 {
				b.WriteByte(',')
			}
			s := symbols[rng.IntN(len(symbols))]
			fmt.Fprintf(&b, `{"symbol":"%s","bid":%d.%02d,"ask":%d.%02d,"volume":%d,"venue":"X%d"}`,
				s, 100+rng.IntN(50), rng.IntN(100), 100+rng.IntN(50), rng.IntN(100), rng.IntN(1000000), rng.IntN(9))
		}
		b.WriteString(`],"note":"`)
		for b.Len() < pmdMsgSize-2 {
			b.WriteByte("abcdefghij"[rng.IntN(10)])
		}
		b.WriteString(`"}`)
		msgs[i] = b.Bytes()
	}
	return msgs
}()

// pmdOffer is the client's extension for a scenario.
func pmdOffer(ctx bool) extensions.Extension {
	if ctx {
		return deflate.New(&deflate.Options{Threshold: -1})
	}
	return deflate.New(&deflate.Options{Threshold: -1, NoContextTakeover: true, RequestNoContextTakeover: true})
}

// pmdConn is one client connection of the compressed scenarios.
type pmdConn struct {
	nc       *net.TCPConn
	br       *bufio.Reader
	sess     extensions.Session
	accepted string // the server's Sec-WebSocket-Extensions
	next     int    // the next message to send

	sample int // decompress every sample-th echo; 1 when the server keeps context
	count  int
	inWire int // payload bytes received

	wire  bytes.Buffer // compressed payload being sent
	frame []byte       // the masked frame
	in    []byte       // payload of the message being received
	out   []byte       // decompressed message
}

func (c *pmdConn) close() {
	c.nc.SetLinger(0)
	c.nc.Close()
	if c.sess != nil {
		c.sess.Close()
	}
}

// pmdConnect dials addr and performs the opening handshake offering ext.
func pmdConnect(d *dialer, addr string, ext extensions.Extension) (*pmdConn, error) {
	nc, err := d.dial(addr)
	if err != nil {
		return nil, err
	}
	c := &pmdConn{nc: nc, br: bufio.NewReaderSize(nc, 64<<10), next: mrand.IntN(pmdMsgCount)}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.handshake(addr, ext); err != nil {
		c.close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return c, nil
}

func (c *pmdConn) handshake(host string, ext extensions.Extension) error {
	var k [16]byte
	rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	offer := extensions.Format(extensions.ClientOffers([]extensions.Extension{ext}))
	req := "GET / HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Extensions: " + offer + "\r\n\r\n"
	if _, err := c.nc.Write([]byte(req)); err != nil {
		return err
	}
	status, err := c.br.ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading handshake response: %w", err)
	}
	if f := strings.Fields(status); len(f) < 2 || f[1] != "101" {
		return fmt.Errorf("handshake: status line %q", strings.TrimSpace(status))
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	wantAccept := base64.StdEncoding.EncodeToString(sum[:])
	var accept string
	var exts []string
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			return fmt.Errorf("reading handshake response: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		name, val, _ := strings.Cut(line, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "sec-websocket-accept":
			accept = strings.TrimSpace(val)
		case "sec-websocket-extensions":
			exts = append(exts, strings.TrimSpace(val))
		}
	}
	if accept != wantAccept {
		return fmt.Errorf("handshake: Sec-WebSocket-Accept %q, want %q", accept, wantAccept)
	}
	if len(exts) == 0 {
		return errors.New("handshake: the server did not accept permessage-deflate")
	}
	n, err := extensions.ClientActivate([]extensions.Extension{ext}, exts)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	c.sess = n.Sessions[0]
	c.accepted = strings.Join(exts, ", ")
	return nil
}

// send compresses and sends m.
func (c *pmdConn) send(m []byte) error {
	if err := c.compress(m); err != nil {
		return err
	}
	_, err := c.nc.Write(c.frame)
	return err
}

// compress makes c.frame the masked frame of m, compressed.
func (c *pmdConn) compress(m []byte) error {
	c.wire.Reset()
	w, rsv, err := c.sess.Encode(&c.wire, extensions.Message{Binary: true, Size: int64(len(m))})
	if err != nil {
		return err
	}
	if w == nil {
		c.wire.Write(m)
	} else {
		w.Write(m)
		if err := w.Close(); err != nil {
			return err
		}
	}
	c.frame = rawframe.AppendMasked(c.frame[:0], 0x82|rsv, loadKey, c.wire.Bytes())
	return nil
}

// receive reads one message and decompresses it into c.out.
func (c *pmdConn) receive() error { return c.receiveMaybe(true) }

// receiveMaybe reads one message, and decompresses it into c.out if
// decode is set.
func (c *pmdConn) receiveMaybe(decode bool) error {
	c.in = c.in[:0]
	var rsv byte
	first := true
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.br, h[:]); err != nil {
			return err
		}
		op := h[0] & 0x0f
		n := int64(h[1] & 0x7f)
		switch n {
		case 126:
			var x [2]byte
			if _, err := io.ReadFull(c.br, x[:]); err != nil {
				return err
			}
			n = int64(binary.BigEndian.Uint16(x[:]))
		case 127:
			var x [8]byte
			if _, err := io.ReadFull(c.br, x[:]); err != nil {
				return err
			}
			n = int64(binary.BigEndian.Uint64(x[:]))
		}
		var key [4]byte
		masked := h[1]&0x80 != 0
		if masked {
			if _, err := io.ReadFull(c.br, key[:]); err != nil {
				return err
			}
		}
		if n > 64<<20 {
			return fmt.Errorf("frame of %d bytes", n)
		}
		start := len(c.in)
		c.in = slices.Grow(c.in, int(n))[:start+int(n)]
		if _, err := io.ReadFull(c.br, c.in[start:]); err != nil {
			return err
		}
		if masked {
			for i := range c.in[start:] {
				c.in[start+i] ^= key[i&3]
			}
		}
		switch {
		case op >= 8:
			if op == 8 {
				return errors.New("the server closed the connection")
			}
			c.in = c.in[:start] // ping or pong: ignored
			continue
		case first:
			rsv = h[0] & 0x70
			first = false
		}
		if h[0]&0x80 != 0 {
			break
		}
	}
	c.inWire += len(c.in)
	if !decode {
		if rsv == 0 && len(c.in) != pmdMsgSize {
			return fmt.Errorf("uncompressed echo of %d bytes", len(c.in))
		}
		return nil
	}
	if rsv == 0 {
		c.out = append(c.out[:0], c.in...)
		return nil
	}
	r, err := c.sess.Decode(bytes.NewReader(c.in), rsv)
	if err != nil {
		return err
	}
	c.out = c.out[:0]
	for {
		if len(c.out) == cap(c.out) {
			c.out = slices.Grow(c.out, 4096)
		}
		k, err := r.Read(c.out[len(c.out):cap(c.out)])
		c.out = c.out[:len(c.out)+k]
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// pmdFrames are the messages compressed each on its own, as masked
// frames, for the throughput scenarios.
var pmdFrames = sync.OnceValue(func() [][]byte {
	n, err := extensions.ClientActivate([]extensions.Extension{pmdOffer(false)},
		[]string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover"})
	if err != nil {
		panic(err)
	}
	c := &pmdConn{sess: n.Sessions[0]}
	frames := make([][]byte, pmdMsgCount)
	for i, m := range pmdMessages {
		if err := c.compress(m); err != nil {
			panic(err)
		}
		frames[i] = append([]byte(nil), c.frame...)
	}
	return frames
})

// pmdSentWire is the average compressed size of the messages as the
// throughput scenarios send them.
func pmdSentWire() float64 {
	n := 0
	for _, f := range pmdFrames() {
		n += len(f) - 8 // header with 16-bit length and mask
	}
	return float64(n) / pmdMsgCount
}

// fastRoundTrip sends the next pre-built frame and checks its echo, or
// only its length when this echo is not to be decompressed.
func (c *pmdConn) fastRoundTrip(frames [][]byte) error {
	i := c.next % pmdMsgCount
	c.next++
	if _, err := c.nc.Write(frames[i]); err != nil {
		return err
	}
	c.count++
	skip := c.sample > 1 && c.count%c.sample != 0
	if err := c.receiveMaybe(!skip); err != nil {
		return err
	}
	if skip {
		return nil
	}
	if m := pmdMessages[i]; !bytes.Equal(c.out, m) {
		return fmt.Errorf("echo of %d bytes differs from the %d sent", len(c.out), len(m))
	}
	return nil
}

// roundTrip compresses and sends the next message and checks its echo.
func (c *pmdConn) roundTrip() error {
	m := pmdMessages[c.next%pmdMsgCount]
	c.next++
	if err := c.send(m); err != nil {
		return err
	}
	if err := c.receive(); err != nil {
		return err
	}
	if !bytes.Equal(c.out, m) {
		return fmt.Errorf("echo of %d bytes differs from the %d sent", len(c.out), len(m))
	}
	return nil
}

// pmdConnectN opens n connections with a few dialing goroutines.
func pmdConnectN(addr string, n int, ctx bool) ([]*pmdConn, error) {
	d := newDialer(n)
	conns := make([]*pmdConn, n)
	err := forEach(n, 32, func(i int) (err error) {
		conns[i], err = pmdConnect(d, addr, pmdOffer(ctx))
		return err
	})
	if err != nil {
		pmdCloseAll(conns)
		return nil, err
	}
	return conns, nil
}

func pmdCloseAll(conns []*pmdConn) {
	for _, c := range conns {
		if c != nil {
			c.close()
		}
	}
}

// pmdAnswer is what a server answered to an offer, and the average
// payload size of its echoes.
type pmdAnswer struct {
	accepted string
	wire     float64
}

// pmdSanity echoes every message once in each mode on one connection and
// returns what the server answered in each.
func pmdSanity(addr string) (noCtx, ctx pmdAnswer, err error) {
	for _, withCtx := range []bool{false, true} {
		conns, err := pmdConnectN(addr, 1, withCtx)
		if err != nil {
			return noCtx, ctx, err
		}
		c := conns[0]
		c.nc.SetDeadline(time.Now().Add(20 * time.Second))
		for range pmdMsgCount {
			if err := c.roundTrip(); err != nil {
				c.close()
				return noCtx, ctx, err
			}
		}
		a := pmdAnswer{c.accepted, float64(c.inWire) / pmdMsgCount}
		if withCtx {
			ctx = a
		} else {
			noCtx = a
		}
		c.close()
	}
	return noCtx, ctx, nil
}

// runPMDLoad keeps one message in flight on each of conns connections
// for warmup+dur and returns the echo rate over dur.
func runPMDLoad(ch *child, conns int, ctx bool, warmup, dur time.Duration) (loadResult, string, error) {
	cs, err := pmdConnectN(ch.Addr, conns, ctx)
	if err != nil {
		return loadResult{}, "", err
	}
	accepted := cs[0].accepted
	frames := pmdFrames()
	for _, c := range cs {
		c.sample = 1
		if strings.Contains(c.accepted, "server_no_context_takeover") {
			c.sample = 8
		}
	}
	pumpOne := func(i int, echoes *atomic.Int64) error {
		for {
			if err := cs[i].fastRoundTrip(frames); err != nil {
				return err
			}
			echoes.Add(1)
		}
	}
	res := measureLoad(ch, conns, pumpOne, func() { pmdCloseAll(cs) }, warmup, dur, false)
	return res, accepted, nil
}

// pmdMemResult is the memory a compressed connection holds.
type pmdMemResult struct {
	gcPerConn, rawPerConn, heapPerConn, stackPerConn float64 // KiB
}

// runPMDMem opens n connections, has each echo msgs messages, waits
// settle and measures the server's RSS growth per connection, as the idle
// scenario does.
func runPMDMem(ch *child, n, msgs int, ctx bool, settle time.Duration) (pmdMemResult, string, error) {
	var res pmdMemResult
	time.Sleep(200 * time.Millisecond)
	raw0, err := benchproc.RSSKiB(ch.PID)
	if err != nil {
		return res, "", err
	}
	ms0, err := command(ch, "gc")
	if err != nil {
		return res, "", err
	}
	gc0, _ := benchproc.RSSKiB(ch.PID)
	cs, err := pmdConnectN(ch.Addr, n, ctx)
	if err != nil {
		return res, "", err
	}
	defer pmdCloseAll(cs)
	accepted := cs[0].accepted
	err = forEach(n, 32, func(i int) error {
		c := cs[i]
		c.nc.SetDeadline(time.Now().Add(30 * time.Second))
		for range msgs {
			if err := c.roundTrip(); err != nil {
				return err
			}
		}
		c.nc.SetDeadline(time.Time{})
		return nil
	})
	if err != nil {
		return res, accepted, err
	}
	time.Sleep(settle)
	raw1, err := benchproc.RSSKiB(ch.PID)
	if err != nil {
		return res, accepted, err
	}
	ms1, err := command(ch, "gc")
	if err != nil {
		return res, accepted, err
	}
	gc1, _ := benchproc.RSSKiB(ch.PID)
	fn := float64(n)
	res.rawPerConn = float64(raw1-raw0) / fn
	res.gcPerConn = float64(gc1-gc0) / fn
	res.heapPerConn = (float64(ms1.heapInuse) - float64(ms0.heapInuse)) / 1024 / fn
	res.stackPerConn = (float64(ms1.stackInuse) - float64(ms0.stackInuse)) / 1024 / fn
	return res, accepted, nil
}

// pmdConfig is what main passes to the compressed bench.
type pmdConfig struct {
	servers     []string // empty: all compressed servers
	scenarios   string   // keys; empty: all
	memConns    int
	memMsgs     int
	dur, warmup time.Duration
	settle      time.Duration
	retries     int
	waitQuiet   time.Duration
	out         string
	profDir     string
}

type pmdRow struct {
	sanity           error
	noCtxAns, ctxAns pmdAnswer
	load             map[string]loadResult
	accepted         map[string]string
	mem              map[string]pmdMemResult
	errs             map[string]error
}

// runPMDBench runs the compressed scenarios and prints their report.
func runPMDBench(cfg pmdConfig) {
	names := cfg.servers
	if len(names) == 0 {
		for _, n := range pmdOrder {
			if _, ok := servers[n]; ok {
				names = append(names, n)
			}
		}
	}
	for _, n := range names {
		if !isPMD(n) {
			fatal("server %q has no permessage-deflate variant (have %s)", n, strings.Join(pmdOrder, ","))
		}
	}
	scs := pmdScenarios(cfg.memConns, cfg.memMsgs)
	if cfg.scenarios != "" {
		scs = slices.DeleteFunc(scs, func(sc pmdScenario) bool { return !strings.Contains(cfg.scenarios, sc.key) })
	}
	start := time.Now()
	rows := map[string]*pmdRow{}
	for _, name := range names {
		r := &pmdRow{load: map[string]loadResult{}, accepted: map[string]string{}, mem: map[string]pmdMemResult{}, errs: map[string]error{}}
		rows[name] = r
		if ch, err := startChild(name, ""); err != nil {
			r.sanity = err
		} else {
			r.noCtxAns, r.ctxAns, r.sanity = pmdSanity(ch.Addr)
			ch.Stop()
		}
		if r.sanity != nil {
			logf("%s: sanity check failed: %v", name, r.sanity)
		}
	}
	// Scenario by scenario, every server in turn, as in the plain benchmark.
	m := measurer{waitQuiet: cfg.waitQuiet, retries: cfg.retries, profDir: cfg.profDir}
	for _, sc := range scs {
		for _, name := range names {
			if r := rows[name]; r.sanity == nil {
				m.measurePMD(name, sc, r, cfg)
			}
		}
	}
	text, problems := renderPMD(names, scs, rows, cfg, time.Since(start))
	fmt.Print(text)
	if cfg.out != "" {
		if err := os.WriteFile(cfg.out, []byte(text), 0o644); err != nil {
			fatal("write %s: %v", cfg.out, err)
		}
	}
	if problems > 0 {
		fatal("%d problems (listed under Details)", problems)
	}
}

// measurePMD measures one scenario of the permessage-deflate benchmark
// into r.
func (m measurer) measurePMD(name string, sc pmdScenario, r *pmdRow, cfg pmdConfig) {
	m.run(name, sc.key, sc.title, r.errs, func(ch *child, attempt int) (float64, error) {
		if sc.mem {
			mem, acc, err := runPMDMem(ch, cfg.memConns, cfg.memMsgs, sc.ctx, cfg.settle)
			r.mem[sc.key], r.accepted[sc.key] = mem, acc
			return 0, err
		}
		lr, acc, err := runPMDLoad(ch, 100, sc.ctx, cfg.warmup, cfg.dur)
		if err != nil {
			return 0, err
		}
		if lr.firstErr != nil {
			logf("%s: %s: %d connections failed, first: %v", name, sc.title, lr.errs, lr.firstErr)
		}
		if keepQuietest(r.load, sc.key, lr, attempt) {
			r.accepted[sc.key] = acc
		}
		return lr.otherCPU, nil
	})
}

func renderPMD(names []string, scs []pmdScenario, rows map[string]*pmdRow, cfg pmdConfig, elapsed time.Duration) (string, int) {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("## WebSocket echo benchmark with permessage-deflate\n\n")
	p("%s · %s %s/%s · %d CPUs, GOMAXPROCS %d in the load client and in each server process (they share the CPUs) · `%s`\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.NumCPU(), runtime.GOMAXPROCS(0), benchproc.CommandLine("bench"))
	p("Loopback, binary messages: %d different JSON objects of exactly 1 KiB, sent in turn, one in flight per connection. The load client compresses what it sends and decompresses and checks every echo (extensions/deflate sessions, the same for every server); the scenario fixes its offer, the server its answer (shown under Details). Throughput: %v warm-up, then %v measured, echoed messages per second. Memory: RSS growth of the server process per connection after every connection echoed %d messages, %v after the last, after runtime.GC + debug.FreeOSMemory in every server alike. A fresh server process per scenario. Total run time %v.\n\n",
		pmdMsgCount, cfg.warmup, cfg.dur, cfg.memMsgs, cfg.settle, elapsed.Round(time.Second))
	var busiest float64
	for _, name := range names {
		for _, lr := range rows[name].load {
			busiest = max(busiest, lr.otherCPU)
		}
	}
	if busiest > noisy {
		p("⚠ Other processes used up to %.2f cores during the measured windows (see Details): rates are depressed and noisy.\n\n", busiest)
	}
	p("| server |")
	for _, sc := range scs {
		if sc.mem {
			p(" %s |", sc.title)
		} else {
			p(" %s msg/s |", sc.title)
		}
	}
	p("\n|---|")
	for range scs {
		p("--:|")
	}
	p("\n")
	for _, name := range names {
		r := rows[name]
		p("| %s |", name)
		for _, sc := range scs {
			switch {
			case r.sanity != nil || r.errs[sc.key] != nil:
				p(" failed |")
			case sc.mem:
				p(" %.1f |", r.mem[sc.key].gcPerConn)
			default:
				lr := r.load[sc.key]
				cell := report.Rate(lr.rate)
				if lr.errs > 0 {
					cell += fmt.Sprintf(" ⚠ %d conn errors", lr.errs)
				}
				p(" %s |", cell)
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
	p("What each server answered to the two offers, and the average size of its compressed echoes of the %d messages in a row (the client sends them compressed to %.0f bytes on average); CPU during the measured window in cores: server / load client / everything else, and the server's CPU time per echoed message (the steadiest figure when the machine is not quiet); memory: KiB RSS per connection before GC, Go heap and stack per connection after GC.\n\n", pmdMsgCount, pmdSentWire())
	p("| server | answer to the no-context-takeover offer | answer to the context-takeover offer |")
	for _, sc := range scs {
		p(" %s |", sc.key)
	}
	p("\n|---|---|---|")
	for range scs {
		p("--:|")
	}
	p("\n")
	for _, name := range names {
		r := rows[name]
		p("| %s | `%s` (%.0f B) | `%s` (%.0f B) |", name, r.noCtxAns.accepted, r.noCtxAns.wire, r.ctxAns.accepted, r.ctxAns.wire)
		for _, sc := range scs {
			switch {
			case r.sanity != nil || r.errs[sc.key] != nil:
				p(" – |")
			case sc.mem:
				m := r.mem[sc.key]
				p(" %.1f raw · %.1f heap · %.1f stack |", m.rawPerConn, m.heapPerConn, m.stackPerConn)
			default:
				lr := r.load[sc.key]
				retry := lr.retryNote()
				us := 0.0
				if lr.rate > 0 {
					us = lr.serverCPU / lr.rate * 1e6
				}
				p(" %.2f / %.2f / %.2f%s · %.1f µs server CPU/msg |", lr.serverCPU, lr.clientCPU, lr.otherCPU, retry, us)
			}
		}
		p("\n")
	}
	var problems []string
	for _, name := range names {
		r := rows[name]
		problems = append(problems, serverProblems(name, "echo of every message in both modes", r.sanity, r.errs, r.load, scenarioRefs(scs, func(sc pmdScenario) (string, string) { return sc.key, sc.title }))...)
	}
	return endDetails(&b, problems), len(problems)
}
