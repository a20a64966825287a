package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/realtime-go/realtime/interop/internal/benchproc"
	"github.com/realtime-go/realtime/interop/internal/rawframe"
)

// The load client: raw TCP sockets, its own upgrade request, pre-built
// masked frames, one large read buffer per connection, no allocation per
// message. The plain TCP echo gets the same frames without the upgrade
// and echoes them masked; the parser takes both.

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// clientFrame builds one masked binary frame with a size-byte payload.
func clientFrame(payload []byte) []byte {
	return rawframe.AppendMasked(nil, 0x82, loadKey, payload)
}

// loadKey masks every frame the load client sends.
var loadKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

func testPayload(size int) []byte {
	p := make([]byte, size)
	for i := range p {
		p[i] = byte(i*7 + i>>8)
	}
	return p
}

// parser counts the complete echoed frames in a byte stream, skipping
// payloads without copying them. Every frame must be a final binary frame
// of the expected length (masked or not).
type parser struct {
	want int
	skip int // payload bytes of the current frame still to come
}

// feed parses b and returns the frames completed and the bytes consumed;
// an incomplete header at the end of b is left unconsumed.
func (p *parser) feed(b []byte) (frames, i int, err error) {
	for {
		if p.skip > 0 {
			k := min(p.skip, len(b)-i)
			i += k
			p.skip -= k
			if p.skip > 0 {
				return frames, i, nil
			}
			frames++
		}
		if len(b)-i < 2 {
			return frames, i, nil
		}
		b0, b1 := b[i], b[i+1]
		hl, l := 2, int(b1&0x7f)
		switch l {
		case 126:
			hl += 2
		case 127:
			hl += 8
		}
		if b1&0x80 != 0 {
			hl += 4
		}
		if len(b)-i < hl {
			return frames, i, nil
		}
		switch l {
		case 126:
			l = int(binary.BigEndian.Uint16(b[i+2:]))
		case 127:
			l = int(binary.BigEndian.Uint64(b[i+2:]))
		}
		if b0 != 0x82 || l != p.want {
			return frames, i, fmt.Errorf("unexpected frame: first byte %#x, length %d (want 0x82, %d)", b0, l, p.want)
		}
		i += hl
		p.skip = l
		if l == 0 {
			frames++
		}
	}
}

type clientConn struct {
	nc   *net.TCPConn
	rest []byte // bytes read past the handshake response
}

// closeNow resets the connection (SO_LINGER 0): no TIME_WAIT left behind
// to eat ephemeral ports between scenarios.
func (c *clientConn) closeNow() {
	c.nc.SetLinger(0)
	c.nc.Close()
}

// dialer spreads connections over several loopback source addresses when
// one address has too few ephemeral ports for n connections.
type dialer struct {
	sources int
	next    atomic.Uint32
}

func newDialer(n int) *dialer {
	d := &dialer{sources: 1}
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 {
			lo, _ := strconv.Atoi(f[0])
			hi, _ := strconv.Atoi(f[1])
			if usable := (hi - lo + 1) * 3 / 4; usable > 0 {
				d.sources = min(n/usable+1, 250)
			}
		}
	}
	return d
}

func (d *dialer) dial(addr string) (*net.TCPConn, error) {
	nd := net.Dialer{Timeout: 10 * time.Second}
	if d.sources > 1 {
		i := d.next.Add(1) % uint32(d.sources)
		nd.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i))}
		// Pick the port at connect time, so a source port is only
		// unique per destination.
		nd.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, 24 /* IP_BIND_ADDRESS_NO_PORT */, 1)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	nc, err := nd.Dial("tcp4", addr)
	if err != nil {
		return nil, err
	}
	return nc.(*net.TCPConn), nil
}

// connect dials addr and, for a WebSocket server, performs the opening
// handshake.
func connect(d *dialer, addr string, ws bool) (*clientConn, error) {
	nc, err := d.dial(addr)
	if err != nil {
		return nil, err
	}
	c := &clientConn{nc: nc}
	if !ws {
		return c, nil
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.handshake(addr); err != nil {
		c.closeNow()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return c, nil
}

func (c *clientConn) handshake(host string) error {
	var k [16]byte
	rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	req := "GET / HTTP/1.1\r\n" +
		"Host: " + host + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.nc.Write([]byte(req)); err != nil {
		return err
	}
	buf := make([]byte, 0, 1024)
	for {
		if len(buf) == cap(buf) {
			return errors.New("handshake response too long")
		}
		n, err := c.nc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
			c.rest = append([]byte(nil), buf[i+4:]...)
			return checkResponse(string(buf[:i]), key)
		}
		if err != nil {
			return fmt.Errorf("reading handshake response: %w", err)
		}
	}
}

func checkResponse(head, key string) error {
	lines := strings.Split(head, "\r\n")
	if f := strings.Fields(lines[0]); len(f) < 2 || f[1] != "101" {
		return fmt.Errorf("handshake: status line %q", lines[0])
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	want := base64.StdEncoding.EncodeToString(sum[:])
	for _, l := range lines[1:] {
		name, val, ok := strings.Cut(l, ":")
		if ok && strings.EqualFold(strings.TrimSpace(name), "Sec-WebSocket-Accept") {
			if strings.TrimSpace(val) != want {
				return fmt.Errorf("handshake: Sec-WebSocket-Accept %q, want %q", strings.TrimSpace(val), want)
			}
			return nil
		}
	}
	return errors.New("handshake: no Sec-WebSocket-Accept")
}

// connectN opens n connections with a few dialing goroutines.
func connectN(addr string, ws bool, n int) ([]*clientConn, error) {
	d := newDialer(n)
	conns := make([]*clientConn, n)
	err := forEach(n, 32, func(i int) (err error) {
		conns[i], err = connect(d, addr, ws)
		return err
	})
	if err != nil {
		closeAll(conns)
		return nil, err
	}
	return conns, nil
}

// forEach calls do for every connection index below n on up to workers
// goroutines. The first error stops the rest and is returned, naming the
// connection.
func forEach(n, workers int, do func(i int) error) error {
	var next atomic.Int64
	var first atomic.Pointer[error]
	var wg sync.WaitGroup
	for range min(n, workers) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || first.Load() != nil {
					return
				}
				if err := do(i); err != nil {
					err = fmt.Errorf("connection %d: %w", i, err)
					first.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if p := first.Load(); p != nil {
		return *p
	}
	return nil
}

func closeAll(conns []*clientConn) {
	for _, c := range conns {
		if c != nil {
			c.closeNow()
		}
	}
}

// sanity sends one message of each size on one connection and checks the
// echo byte for byte.
func sanity(addr string, ws bool) error {
	conns, err := connectN(addr, ws, 1)
	if err != nil {
		return err
	}
	c := conns[0]
	defer c.closeNow()
	c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	buf := append([]byte(nil), c.rest...)
	for _, size := range []int{0, 16, 125, 126, 1024, 65535, 65536, 200000} {
		payload := testPayload(size)
		frame := clientFrame(payload)
		if _, err := c.nc.Write(frame); err != nil {
			return err
		}
		for {
			p := parser{want: size} // buf holds the whole echo so far
			frames, used, err := p.feed(buf)
			if err != nil {
				return fmt.Errorf("%d-byte echo: %w", size, err)
			}
			if frames > 0 {
				if frames > 1 || used != len(buf) {
					return fmt.Errorf("%d-byte echo: extra data", size)
				}
				var got []byte
				if ws {
					got = buf[len(buf)-size:]
				} else if !bytes.Equal(buf, frame) {
					return fmt.Errorf("%d-byte echo: bytes differ", size)
				}
				if ws && !bytes.Equal(got, payload) {
					return fmt.Errorf("%d-byte echo: payload differs", size)
				}
				buf = buf[:0]
				break
			}
			tmp := make([]byte, 64<<10)
			n, err := c.nc.Read(tmp)
			buf = append(buf, tmp[:n]...)
			if err != nil {
				return fmt.Errorf("%d-byte echo: %w", size, err)
			}
		}
	}
	return nil
}

type paddedCounter struct {
	n atomic.Int64
	_ [56]byte
}

type loadResult struct {
	rate      float64 // messages per second
	serverCPU float64 // cores
	clientCPU float64 // cores
	otherCPU  float64 // cores used by other processes on the machine
	reads     float64 // server read calls per message
	writes    float64 // server write calls per message
	errs      int
	firstErr  error
	attempts  int // which attempt this is (see -retries)
}

// runLoad keeps depth messages of size bytes in flight on each of conns
// connections for warmup+dur and returns the echo rate over dur.
func runLoad(ch *child, ws bool, conns, depth, size int, warmup, dur time.Duration) (loadResult, error) {
	cs, err := connectN(ch.Addr, ws, conns)
	if err != nil {
		return loadResult{}, err
	}
	frame := clientFrame(testPayload(size))
	wire := bytes.Repeat(frame, depth)
	pumpOne := func(i int, echoes *atomic.Int64) error {
		return pump(cs[i], wire, len(frame), depth, size, echoes)
	}
	return measureLoad(ch, conns, pumpOne, func() { closeAll(cs) }, warmup, dur, true), nil
}

// measureLoad runs pump for every connection on a goroutine of its own;
// pump counts the echoes and returns only on an error. It measures the
// echo rate and the server's usage over dur after warmup, and with
// countCalls its system calls per echo after that; then it calls end,
// which closes the connections and so ends the pumps.
func measureLoad(ch *child, conns int, pump func(i int, echoes *atomic.Int64) error, end func(), warmup, dur time.Duration, countCalls bool) loadResult {
	var res loadResult
	counters := make([]paddedCounter, conns)
	var stop atomic.Bool
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			err := pump(i, &counters[i].n)
			if stop.Load() {
				return // end closed the connection
			}
			mu.Lock()
			res.errs++
			if res.firstErr == nil {
				res.firstErr = err
			}
			mu.Unlock()
		})
	}
	sum := func() int64 {
		var s int64
		for i := range counters {
			s += counters[i].n.Load()
		}
		return s
	}
	time.Sleep(warmup)
	n0, u0 := sum(), benchproc.ReadUsage(ch.PID)
	time.Sleep(dur)
	n1, u1 := sum(), benchproc.ReadUsage(ch.PID)
	if countCalls {
		res.reads, res.writes = syscallsPerEcho(ch.PID, sum)
	}
	stop.Store(true)
	end()
	wg.Wait()
	w := u1.Since(u0)
	res.rate = float64(n1-n0) / w.Seconds
	res.serverCPU, res.clientCPU, res.otherCPU = w.ServerCPU, w.ClientCPU, w.OtherCPU
	return res
}

// syscallCountWindow is how long the server's system calls are counted,
// after the measured window: tracing them slows them.
const syscallCountWindow = time.Second

// syscallsPerEcho counts the server's read- and write-type system calls
// per echoed message (echoes counts the messages so far); -1 when they
// cannot be counted.
func syscallsPerEcho(pid int, echoes func() int64) (reads, writes float64) {
	sc, err := benchproc.StartSyscallCounter(pid)
	if err == nil {
		var n0, n1 int64
		if err = sc.Enable(); err == nil {
			n0 = echoes()
			time.Sleep(syscallCountWindow)
			n1 = echoes()
			err = sc.Disable()
		}
		r, w, ferr := sc.Finish()
		if err == nil && ferr == nil && n1 > n0 {
			return float64(r) / float64(n1-n0), float64(w) / float64(n1-n0)
		}
		err = errors.Join(err, ferr)
	}
	syscallWarning.Do(func() { logf("system calls not counted: %v", err) })
	return -1, -1
}

var syscallWarning sync.Once

// retryNote marks a measurement that needed more than one attempt.
func (lr loadResult) retryNote() string {
	if lr.attempts > 1 {
		return fmt.Sprintf(" (try %d)", lr.attempts)
	}
	return ""
}

// scenarioProblem is the line a report lists for a scenario that failed,
// or that lost connections while it ran; "" when all went well.
func scenarioProblem(name, title string, err error, lr loadResult) string {
	switch {
	case err != nil:
		return fmt.Sprintf("- `%s` %s: %v", name, title, err)
	case lr.firstErr != nil:
		return fmt.Sprintf("- `%s` %s: %d connections failed during the run, first: %v", name, title, lr.errs, lr.firstErr)
	}
	return ""
}

// pump is one connection's loop: send depth frames, then one more for
// every echo received.
func pump(c *clientConn, wire []byte, frameLen, depth, size int, counter *atomic.Int64) error {
	bufSize := 64 << 10
	if frameLen > bufSize/2 {
		bufSize = 256 << 10
	}
	buf := make([]byte, bufSize)
	n := copy(buf, c.rest)
	if _, err := c.nc.Write(wire); err != nil {
		return err
	}
	p := parser{want: size}
	inflight := depth
	for {
		frames, used, err := p.feed(buf[:n])
		if err != nil {
			return err
		}
		n = copy(buf, buf[used:n])
		if frames > 0 {
			if frames > inflight {
				return fmt.Errorf("%d echoes for %d messages in flight", frames, inflight)
			}
			counter.Add(int64(frames))
			if _, err := c.nc.Write(wire[:frames*frameLen]); err != nil {
				return err
			}
		}
		m, err := c.nc.Read(buf[n:])
		if err != nil {
			return err
		}
		n += m
	}
}

type idleResult struct {
	rawPerConn, gcPerConn float64 // KiB
	heapPerConn           float64 // KiB, Go heap in use after GC
	stackPerConn          float64 // KiB
	goroutinesPerConn     float64
}

// runIdle opens n connections, waits settle, and measures the server's
// RSS growth per connection: as found, then after the harness's GC +
// FreeOSMemory (done the same way for every server).
func runIdle(ch *child, ws bool, n int, settle time.Duration) (idleResult, error) {
	var res idleResult
	time.Sleep(200 * time.Millisecond)
	raw0, err := benchproc.RSSKiB(ch.PID)
	if err != nil {
		return res, err
	}
	ms0, err := command(ch, "gc")
	if err != nil {
		return res, err
	}
	gc0, _ := benchproc.RSSKiB(ch.PID)
	cs, err := connectN(ch.Addr, ws, n)
	if err != nil {
		return res, err
	}
	defer closeAll(cs)
	time.Sleep(settle)
	raw1, err := benchproc.RSSKiB(ch.PID)
	if err != nil {
		return res, err
	}
	ms1, err := command(ch, "gc")
	if err != nil {
		return res, err
	}
	gc1, _ := benchproc.RSSKiB(ch.PID)
	fn := float64(n)
	res.rawPerConn = float64(raw1-raw0) / fn
	res.gcPerConn = float64(gc1-gc0) / fn
	res.heapPerConn = (float64(ms1.heapInuse) - float64(ms0.heapInuse)) / 1024 / fn
	res.stackPerConn = (float64(ms1.stackInuse) - float64(ms0.stackInuse)) / 1024 / fn
	res.goroutinesPerConn = float64(ms1.goroutines-ms0.goroutines) / fn
	return res, nil
}
