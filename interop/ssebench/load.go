package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The load client: raw TCP sockets, a hand-written HTTP/1.1 GET, a
// de-chunker and an SSE parser that counts events, checks that each
// subscriber's sequence numbers have no gap, and, while recording, takes
// the latency from the publisher's timestamp in each event.

// sub is one subscriber connection.
type sub struct {
	nc *net.TCPConn

	events   atomic.Int64 // events received
	gaps     atomic.Int64 // events missing between two received ones
	disorder atomic.Int64 // events at or below the last sequence number
	err      atomic.Value // error that ended the reader, if any
	head     atomic.Bool  // response head received
	_        [64]byte

	record *atomic.Bool // shared: record latencies now
	lat    []int32      // microseconds; written by the reader only
	last   uint64

	// parser state
	chunked   bool
	chunkLeft int    // data bytes left in the current chunk; -1: reading a size line
	skipCRLF  int    // bytes of the CRLF after a chunk's data still to skip
	sizeLine  []byte // partial chunk-size line
	line      []byte // partial SSE line
	dataSeq   uint64 // from the current event's data line
	dataTS    int64
	hasData   bool
	otherType bool // the current event has a type other than message: not counted
	bodyEnded bool
}

// dialer spreads connections over several loopback source addresses when
// one address has too few ephemeral ports.
type dialer struct {
	sources int
	next    atomic.Uint32
}

func newDialer(n int) *dialer {
	d := &dialer{sources: 1}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			lo, _ := strconv.Atoi(f[0])
			hi, _ := strconv.Atoi(f[1])
			if usable := (hi - lo + 1) * 3 / 4; usable > 0 {
				d.sources = min(n/usable+1, 250)
			}
		}
	}
	return d
}

func (d *dialer) dial(addr string, rcvbuf int) (*net.TCPConn, error) {
	nd := net.Dialer{Timeout: 10 * time.Second}
	var local net.IP
	if d.sources > 1 {
		local = net.IPv4(127, 0, 0, byte(1+d.next.Add(1)%uint32(d.sources)))
		nd.LocalAddr = &net.TCPAddr{IP: local}
	}
	nd.Control = func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if local != nil {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, 24 /* IP_BIND_ADDRESS_NO_PORT */, 1)
			}
			if serr == nil && rcvbuf > 0 {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
	c, err := nd.Dial("tcp4", addr)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// open dials and sends the GET; it does not wait for the answer (go-sse
// sends its response head only with the first event).
func open(d *dialer, addr string, rcvbuf int, record *atomic.Bool) (*sub, error) {
	nc, err := d.dial(addr, rcvbuf)
	if err != nil {
		return nil, err
	}
	req := "GET /events HTTP/1.1\r\nHost: " + addr + "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
	nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write([]byte(req)); err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetWriteDeadline(time.Time{})
	return &sub{nc: nc, record: record, chunkLeft: -1}, nil
}

func (s *sub) close() {
	s.nc.SetLinger(0) // reset: no TIME_WAIT to eat ports between scenarios
	s.nc.Close()
}

// openN opens n subscribers with a few dialing goroutines and starts their
// readers (unless stalled).
func openN(addr string, n int, record *atomic.Bool, wg *sync.WaitGroup) ([]*sub, error) {
	d := newDialer(n)
	subs := make([]*sub, n)
	var next atomic.Int64
	var firstErr atomic.Value
	var dwg sync.WaitGroup
	for range min(n, 32) {
		dwg.Add(1)
		go func() {
			defer dwg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || firstErr.Load() != nil {
					return
				}
				s, err := open(d, addr, 0, record)
				if err != nil {
					firstErr.CompareAndSwap(nil, fmt.Errorf("connection %d: %w", i, err))
					return
				}
				subs[i] = s
				wg.Add(1)
				go func() {
					defer wg.Done()
					s.read()
				}()
			}
		}()
	}
	dwg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		closeAll(subs)
		return nil, err
	}
	return subs, nil
}

func closeAll(subs []*sub) {
	for _, s := range subs {
		if s != nil {
			s.close()
		}
	}
}

var errBodyEnded = errors.New("the server ended the stream")

// read is the reader goroutine of a subscriber.
func (s *sub) read() {
	buf := make([]byte, 16<<10)
	n := 0
	// Response head.
	for {
		m, err := s.nc.Read(buf[n:])
		n += m
		if i := bytes.Index(buf[:n], []byte("\r\n\r\n")); i >= 0 {
			if err := s.parseHead(string(buf[:i])); err != nil {
				s.err.Store(err)
				return
			}
			s.head.Store(true)
			if err := s.feed(buf[i+4 : n]); err != nil {
				s.err.Store(err)
				return
			}
			break
		}
		if err != nil {
			s.err.Store(fmt.Errorf("reading the response head: %w", err))
			return
		}
		if n == len(buf) {
			s.err.Store(errors.New("response head too long"))
			return
		}
	}
	for {
		m, err := s.nc.Read(buf)
		if m > 0 {
			if ferr := s.feed(buf[:m]); ferr != nil {
				s.err.Store(ferr)
				return
			}
		}
		if err != nil {
			s.err.Store(err)
			return
		}
	}
}

func (s *sub) parseHead(head string) error {
	lines := strings.Split(head, "\r\n")
	if f := strings.Fields(lines[0]); len(f) < 2 || f[1] != "200" {
		return fmt.Errorf("status line %q", lines[0])
	}
	ct := false
	for _, l := range lines[1:] {
		name, val, _ := strings.Cut(l, ":")
		val = strings.TrimSpace(val)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "transfer-encoding":
			s.chunked = strings.EqualFold(val, "chunked")
		case "content-type":
			ct = strings.HasPrefix(val, "text/event-stream")
		}
	}
	if !ct {
		return fmt.Errorf("no text/event-stream Content-Type in %q", head)
	}
	return nil
}

// feed de-chunks b and parses the SSE stream in it.
func (s *sub) feed(b []byte) error {
	if !s.chunked {
		return s.sse(b)
	}
	for len(b) > 0 {
		if s.bodyEnded {
			return errBodyEnded
		}
		if s.skipCRLF > 0 {
			k := min(s.skipCRLF, len(b))
			s.skipCRLF -= k
			b = b[k:]
			continue
		}
		if s.chunkLeft < 0 {
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				s.sizeLine = append(s.sizeLine, b...)
				if len(s.sizeLine) > 64 {
					return errors.New("chunk size line too long")
				}
				return nil
			}
			line := b[:i]
			if len(s.sizeLine) > 0 {
				line = append(s.sizeLine, line...)
				s.sizeLine = s.sizeLine[:0]
			}
			b = b[i+1:]
			line = bytes.TrimRight(line, "\r")
			if j := bytes.IndexByte(line, ';'); j >= 0 {
				line = line[:j]
			}
			size, err := strconv.ParseUint(string(line), 16, 31)
			if err != nil {
				return fmt.Errorf("bad chunk size %q", line)
			}
			if size == 0 {
				s.bodyEnded = true
				return errBodyEnded
			}
			s.chunkLeft = int(size)
			continue
		}
		k := min(s.chunkLeft, len(b))
		if err := s.sse(b[:k]); err != nil {
			return err
		}
		s.chunkLeft -= k
		b = b[k:]
		if s.chunkLeft == 0 {
			s.chunkLeft = -1
			s.skipCRLF = 2
		}
	}
	return nil
}

// sse parses event-stream bytes: lines end with LF (the servers measured
// here send no CR). Only data lines matter; a blank line dispatches.
func (s *sub) sse(b []byte) error {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			s.line = append(s.line, b...)
			if len(s.line) > 4096 {
				return errors.New("SSE line too long")
			}
			return nil
		}
		line := b[:i]
		if len(s.line) > 0 {
			line = append(s.line, line...)
			s.line = s.line[:0]
		}
		b = b[i+1:]
		if err := s.sseLine(line); err != nil {
			return err
		}
	}
	return nil
}

func (s *sub) sseLine(line []byte) error {
	if len(line) == 0 {
		if s.hasData && !s.otherType {
			s.dispatch()
		}
		s.hasData, s.otherType = false, false
		return nil
	}
	if t, ok := bytes.CutPrefix(line, []byte("event:")); ok {
		// realtime.Handler's hello and close events.
		s.otherType = string(bytes.TrimPrefix(t, []byte(" "))) != "message"
		return nil
	}
	if s.otherType || !bytes.HasPrefix(line, []byte("data:")) {
		return nil // id, retry, comments, the data of other events
	}
	d := line[5:]
	if len(d) > 0 && d[0] == ' ' {
		d = d[1:]
	}
	if len(d) != payloadSize {
		return fmt.Errorf("data of %d bytes, want %d: %q", len(d), payloadSize, d)
	}
	seq, rest, ok := parseUint(d)
	if !ok || len(rest) == 0 || rest[0] != ' ' {
		return fmt.Errorf("bad data %q", d)
	}
	ts, _, ok := parseUint(rest[1:])
	if !ok {
		return fmt.Errorf("bad data %q", d)
	}
	s.dataSeq, s.dataTS, s.hasData = seq, int64(ts), true
	return nil
}

func parseUint(b []byte) (uint64, []byte, bool) {
	var n uint64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + uint64(b[i]-'0')
	}
	return n, b[i:], i > 0
}

func (s *sub) dispatch() {
	s.hasData = false
	seq := s.dataSeq
	switch {
	case s.last == 0:
	case seq == s.last+1:
	case seq > s.last+1:
		s.gaps.Add(int64(seq - s.last - 1))
	default:
		s.disorder.Add(1)
	}
	if seq > s.last {
		s.last = seq
	}
	if s.record.Load() {
		us := time.Since(time.Unix(0, s.dataTS)).Microseconds()
		s.lat = append(s.lat, int32(min(us, 1<<31-1)))
	}
	s.events.Add(1)
}

func sumEvents(subs []*sub) int64 {
	var n int64
	for _, s := range subs {
		n += s.events.Load()
	}
	return n
}

// percentile returns the p-th percentile (0..100) of sorted microseconds.
func percentile(sorted []int32, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return time.Duration(sorted[i]) * time.Microsecond
}

func mergeLatencies(subs []*sub) []int32 {
	var all []int32
	for _, s := range subs {
		all = append(all, s.lat...)
	}
	slices.Sort(all)
	return all
}
