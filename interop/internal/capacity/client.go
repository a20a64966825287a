package capacity

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/realtime-go/realtime/interop/internal/latency"
	"github.com/realtime-go/realtime/interop/internal/rawframe"
)

// The load client is one goroutine on epoll over raw non-blocking
// sockets: it costs a few hundred bytes per socket and no allocation per
// message, so that the server, not the client, is what is measured. It
// parses only what counting needs: the HTTP response's status and
// whether it is chunked, WebSocket frame headers, chunk sizes, and the
// "@@SEQ:NS;" marker in each broadcast.

// Phases of a connection.
const (
	phConnecting = iota
	phHeaders
	phOpen
)

// Chunked decoding states.
const (
	csSize = iota
	csExt
	csData
	csCRLF
)

// conn is one socket's state; the client's loop owns it.
type conn struct {
	fd      int32
	proto   *proto
	phase   uint8
	ready   bool
	chunked bool
	// WebSocket frame parser.
	hdr     [14]byte
	hdrN    uint8
	inFrame bool
	opcode  uint8
	fin     bool
	remain  uint64
	ctrl    []byte // a ping frame's payload, to echo
	// Chunked decoder.
	cs    uint8
	csize uint64
	// Marker scanner: state, the sequence number and time so far.
	ms     uint8
	num    [2]int64
	pm     int8 // characters of the ping line matched, -1: not a ping
	lastNL bool // the byte before was '\n' (event streams)
	msgs   uint32
	// What arrived: the last sequence number in order, and how many were
	// not the one after it (duplicate, lost or reordered).
	next int64
	bad  uint32
	hbuf []byte // response headers while they arrive
}

// Client is the load client.
type Client struct {
	addr  unix.SockaddrInet4
	host  string
	src   [2]byte // 127.src[0].src[1].x: the source addresses
	conc  int
	epfd  int
	stop  atomic.Bool
	done  chan struct{}
	mu    sync.Mutex // held by the loop while it works; the rest read under it
	conns []*conn    // by file descriptor
	kinds []*proto   // socket i is of kind kinds[i%len(kinds)]

	target, started, inflight int
	opened                    int // sockets set up
	failed                    int // sockets that could not be set up
	closed                    int // sockets the server closed after setup
	firstErr                  error
	lastReady                 time.Time

	delivered atomic.Int64
	hist      *latency.Histogram
	lastAt    int64 // unix ns of the latest delivery
	buf       []byte
	now       int64
}

// NewClient makes a load client for the server at 127.0.0.1:port, with
// up to conc handshakes in flight and source addresses 127.a.b.1-200 for
// b from src[1] up (so that 100,000 connections never run out of
// ephemeral ports). It starts its loop; Close ends it and closes every
// socket.
func NewClient(port int, kinds []*proto, conc int, src [2]byte) (*Client, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return nil, err
	}
	c := &Client{
		addr:  unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}},
		host:  fmt.Sprintf("127.0.0.1:%d", port),
		src:   src,
		conc:  conc,
		epfd:  epfd,
		done:  make(chan struct{}),
		conns: make([]*conn, rl.Cur),
		kinds: kinds,
		hist:  &latency.Histogram{},
		buf:   make([]byte, 256<<10),
	}
	go c.loop()
	return c, nil
}

// Dial opens sockets up to n in all (more of them, if n is more than
// before), through the loop.
func (c *Client) Dial(n int) {
	c.mu.Lock()
	c.target = n
	c.mu.Unlock()
}

// Stats is a snapshot of the client's counters.
type Stats struct {
	Opened, Failed, Closed int
	Err                    error
	LastReady              time.Time
	Delivered              int64
	LastDelivery           time.Time
}

// Stats returns the counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Opened: c.opened, Failed: c.failed, Closed: c.closed, Err: c.firstErr,
		LastReady: c.lastReady, Delivered: c.delivered.Load(), LastDelivery: time.Unix(0, c.lastAt)}
}

// ResetLatency starts counting latencies afresh and returns the
// histogram of those before.
func (c *Client) ResetLatency() *latency.Histogram {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.hist
	c.hist = &latency.Histogram{}
	return h
}

// Check reports how many open sockets have not got exactly the messages
// 1..last, each once and in order.
func (c *Client) Check(last int64) (open, wrong int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range c.conns {
		if k == nil || !k.ready {
			continue
		}
		open++
		if k.next != last || k.bad != 0 {
			wrong++
		}
	}
	return open, wrong
}

// Close ends the loop and closes every socket.
func (c *Client) Close() {
	c.stop.Store(true)
	<-c.done
	for fd, k := range c.conns {
		if k != nil {
			unix.Close(fd)
		}
	}
	unix.Close(c.epfd)
}

func (c *Client) loop() {
	defer close(c.done)
	events := make([]unix.EpollEvent, 1024)
	for !c.stop.Load() {
		n, err := unix.EpollWait(c.epfd, events, 20)
		if err != nil && !errors.Is(err, unix.EINTR) {
			c.mu.Lock()
			c.fail(nil, fmt.Errorf("epoll_wait: %w", err))
			c.mu.Unlock()
			return
		}
		c.mu.Lock()
		c.now = time.Now().UnixNano()
		for _, ev := range events[:max(n, 0)] {
			if k := c.conns[ev.Fd]; k != nil {
				c.event(k, ev.Events)
			}
		}
		c.dialMore()
		c.mu.Unlock()
		if n <= 0 {
			runtime.Gosched()
		}
	}
}

// dialMore starts connections while fewer than conc are being set up.
func (c *Client) dialMore() {
	for c.started < c.target && c.inflight < c.conc {
		i := c.started
		c.started++
		src := [4]byte{127, c.src[0], c.src[1] + byte(i/200), byte(1 + i%200)}
		if err := c.dial(c.kinds[i%len(c.kinds)], src); err != nil {
			c.failed++
			if c.firstErr == nil {
				c.firstErr = err
			}
			continue
		}
		c.inflight++
	}
}

func (c *Client) dial(p *proto, src [4]byte) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	// Choose the port at connect time, by the whole 4-tuple: bind would
	// take one of the source address's ports for good.
	unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: src}); err != nil {
		unix.Close(fd)
		return fmt.Errorf("bind %v: %w", netip.AddrFrom4(src), err)
	}
	if err := unix.Connect(fd, &c.addr); err != nil && !errors.Is(err, unix.EINPROGRESS) {
		unix.Close(fd)
		return fmt.Errorf("connect from %v: %w", netip.AddrFrom4(src), err)
	}
	if fd >= len(c.conns) {
		unix.Close(fd)
		return fmt.Errorf("descriptor %d over RLIMIT_NOFILE", fd)
	}
	k := &conn{fd: int32(fd), proto: p, pm: 0}
	c.conns[fd] = k
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP, Fd: int32(fd)}
	if err := unix.EpollCtl(c.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		c.conns[fd] = nil
		unix.Close(fd)
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

// fail closes k (if not nil) and counts err.
func (c *Client) fail(k *conn, err error) {
	if c.firstErr == nil {
		c.firstErr = err
	}
	if k == nil || c.conns[k.fd] != k {
		return
	}
	if k.ready {
		c.closed++
	} else {
		c.failed++
		c.inflight--
	}
	c.conns[k.fd] = nil
	unix.Close(int(k.fd))
}

func (c *Client) event(k *conn, events uint32) {
	if k.phase == phConnecting {
		if events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return
		}
		if e, err := unix.GetsockoptInt(int(k.fd), unix.SOL_SOCKET, unix.SO_ERROR); err != nil || e != 0 {
			c.fail(k, fmt.Errorf("connect: %v", unix.Errno(e)))
			return
		}
		if k.proto.request != nil {
			if !c.write(k, k.proto.request(c.host)) {
				return
			}
			k.phase = phHeaders
		} else {
			k.phase = phOpen
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: k.fd}
		unix.EpollCtl(c.epfd, unix.EPOLL_CTL_MOD, int(k.fd), &ev)
		return
	}
	for {
		n, err := unix.Read(int(k.fd), c.buf)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			return
		}
		if err != nil || n <= 0 {
			c.fail(k, fmt.Errorf("%s socket closed by the server (%v)", k.proto.name, err))
			return
		}
		if !c.input(k, c.buf[:n]) {
			return
		}
		if n < len(c.buf) {
			return
		}
	}
}

// write writes a short message whole (the socket's buffer is empty or
// nearly so: these are requests and pongs).
func (c *Client) write(k *conn, p []byte) bool {
	for len(p) > 0 {
		n, err := unix.Write(int(k.fd), p)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			c.fail(k, fmt.Errorf("write: %w", err))
			return false
		}
		p = p[n:]
	}
	return true
}

func (c *Client) setReady(k *conn) {
	k.ready = true
	c.opened++
	c.inflight--
	c.lastReady = time.Unix(0, c.now)
}

// input handles bytes read from k; false if k was closed.
func (c *Client) input(k *conn, p []byte) bool {
	switch k.phase {
	case phHeaders:
		k.hbuf = append(k.hbuf, p...)
		end := bytes.Index(k.hbuf, []byte("\r\n\r\n"))
		if end < 0 {
			if len(k.hbuf) > 8192 {
				c.fail(k, fmt.Errorf("%s: response headers too long", k.proto.name))
				return false
			}
			return true
		}
		h := k.hbuf[:end]
		want := "200"
		if k.proto.ws {
			want = "101"
		}
		if len(h) < 12 || string(h[9:12]) != want {
			line, _, _ := bytes.Cut(h, []byte("\r\n"))
			c.fail(k, fmt.Errorf("%s: response %q", k.proto.name, line))
			return false
		}
		k.chunked = bytes.Contains(bytes.ToLower(h), []byte("transfer-encoding: chunked"))
		rest := k.hbuf[end+4:]
		k.hbuf = nil
		k.phase = phOpen
		if k.proto.afterOpen != nil && !c.write(k, k.proto.afterOpen) {
			return false
		}
		if k.proto.readyAt == 0 {
			c.setReady(k)
		}
		return c.body(k, rest)
	case phOpen:
		if k.proto.request == nil { // raw TCP: the server's byte
			if !k.ready {
				c.setReady(k)
			}
			return true
		}
		return c.body(k, p)
	}
	return true
}

func (c *Client) body(k *conn, p []byte) bool {
	if k.proto.ws {
		return c.frames(k, p)
	}
	if !k.chunked {
		return c.scan(k, p)
	}
	for len(p) > 0 {
		switch k.cs {
		case csSize, csExt:
			ch := p[0]
			p = p[1:]
			switch {
			case ch == '\n':
				if k.csize == 0 {
					c.fail(k, fmt.Errorf("%s: the stream ended", k.proto.name))
					return false
				}
				k.cs = csData
			case k.cs == csExt || ch == '\r':
			case ch == ';':
				k.cs = csExt
			default:
				v, ok := unhex(ch)
				if !ok {
					c.fail(k, fmt.Errorf("%s: bad chunk size byte %q", k.proto.name, ch))
					return false
				}
				k.csize = k.csize<<4 | uint64(v)
			}
		case csData:
			n := min(k.csize, uint64(len(p)))
			if !c.scan(k, p[:n]) {
				return false
			}
			p = p[n:]
			k.csize -= n
			if k.csize == 0 {
				k.cs = csCRLF
			}
		case csCRLF:
			if p[0] == '\n' {
				k.cs = csSize
			}
			p = p[1:]
		}
	}
	return true
}

func unhex(ch byte) (byte, bool) {
	switch {
	case '0' <= ch && ch <= '9':
		return ch - '0', true
	case 'a' <= ch && ch <= 'f':
		return ch - 'a' + 10, true
	case 'A' <= ch && ch <= 'F':
		return ch - 'A' + 10, true
	}
	return 0, false
}

// frames parses server WebSocket frames (unmasked).
func (c *Client) frames(k *conn, p []byte) bool {
	for len(p) > 0 {
		if !k.inFrame {
			k.hdr[k.hdrN] = p[0]
			k.hdrN++
			p = p[1:]
			if k.hdrN < 2 {
				continue
			}
			need := uint8(2)
			switch k.hdr[1] & 0x7f {
			case 126:
				need = 4
			case 127:
				need = 10
			}
			if k.hdrN < need {
				continue
			}
			k.fin = k.hdr[0]&0x80 != 0
			if op := k.hdr[0] & 0x0f; op != 0 {
				k.opcode = op
			}
			switch need {
			case 2:
				k.remain = uint64(k.hdr[1] & 0x7f)
			case 4:
				k.remain = uint64(k.hdr[2])<<8 | uint64(k.hdr[3])
			default:
				k.remain = 0
				for _, b := range k.hdr[2:10] {
					k.remain = k.remain<<8 | uint64(b)
				}
			}
			k.hdrN = 0
			k.inFrame = true
			if k.opcode >= 8 {
				k.ctrl = k.ctrl[:0]
			}
		}
		n := min(k.remain, uint64(len(p)))
		switch {
		case k.opcode < 8:
			if !c.scan(k, p[:n]) {
				return false
			}
		case k.opcode == 9:
			k.ctrl = append(k.ctrl, p[:n]...)
		}
		p = p[n:]
		k.remain -= n
		if k.remain == 0 && !c.frameEnd(k) {
			return false
		}
	}
	return true
}

func (c *Client) frameEnd(k *conn) bool {
	k.inFrame = false
	switch k.opcode {
	case 8:
		c.fail(k, fmt.Errorf("%s: close frame", k.proto.name))
		return false
	case 9: // pong with the ping's payload, zero mask
		return c.write(k, rawframe.AppendMasked(nil, 0x8a, [4]byte{}, k.ctrl))
	case 10:
		return true
	}
	if !k.fin {
		return true
	}
	if !c.lineEnd(k) {
		return false
	}
	k.pm = 0
	k.msgs++
	if !k.ready && int(k.msgs) >= k.proto.readyAt {
		c.setReady(k)
	}
	return true
}

// lineEnd answers the peer's ping if the line that ends was one.
func (c *Client) lineEnd(k *conn) bool {
	ping := k.proto.ping
	m := k.pm
	k.pm = 0
	if ping != nil && int(m) == len(ping) {
		return c.write(k, k.proto.pong)
	}
	return true
}

// scan reads the message bytes p: markers, ping lines, and (in event
// streams) the blank lines that end events.
func (c *Client) scan(k *conn, p []byte) bool {
	ping := k.proto.ping
	for _, ch := range p {
		if ch == '\n' {
			if !c.lineEnd(k) {
				return false
			}
			if !k.proto.ws && k.lastNL {
				k.msgs++
				if !k.ready && int(k.msgs) >= k.proto.readyAt {
					c.setReady(k)
				}
			}
			k.lastNL = true
			k.ms = 0
			continue
		}
		if ch != '\r' {
			k.lastNL = false
		}
		if k.pm >= 0 {
			if int(k.pm) < len(ping) && ping[k.pm] == ch {
				k.pm++
			} else {
				k.pm = -1
			}
		}
		switch k.ms {
		case 0:
			if ch == '@' {
				k.ms = 1
			}
		case 1:
			if ch == '@' {
				k.ms, k.num[0] = 2, 0
			} else {
				k.ms = 0
			}
		case 2, 3: // the digits of the sequence number, then of the time
			acc := &k.num[k.ms-2]
			switch {
			case '0' <= ch && ch <= '9':
				*acc = *acc*10 + int64(ch-'0')
			case k.ms == 2 && ch == ':':
				k.ms, k.num[1] = 3, 0
			case k.ms == 3 && ch == ';':
				k.ms = 0
				c.deliver(k, k.num[0], k.num[1])
			default:
				k.ms = 0
			}
		}
	}
	return true
}

func (c *Client) deliver(k *conn, seq, ts int64) {
	if seq == k.next+1 {
		k.next = seq
	} else {
		k.bad++
		k.next = max(k.next, seq)
	}
	c.delivered.Add(1)
	c.hist.Add(0, time.Duration(c.now-ts))
	c.lastAt = c.now
}
