package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/eventsource"
	"github.com/realtime-go/realtime/interop/internal/latency"
	"github.com/realtime-go/realtime/websocket"
)

// proto is the protocol the load client speaks to a row's nodes.
type proto int

const (
	protoRT    proto = iota // realtime.v2 (package realtime)
	protoCF                 // centrifuge's JSON protocol
	protoFloor              // cmd/floornode's raw stream: a message a line
)

// rtSubprotocol is the realtime wire protocol with channels.
const rtSubprotocol = realtime.SubprotocolV2

// counters are the load client's tallies, shared by all its sockets.
type counters struct {
	delivered atomic.Int64 // messages received
	expected  atomic.Int64 // deliveries the publishes so far call for
	reordered atomic.Int64 // a message of a channel not after the last one: duplicate or out of order
	skipped   atomic.Int64 // messages jumped over within a channel (a gap)
	protoErrs atomic.Int64 // anything a server sent that a subscriber did not expect
	ready     atomic.Int64 // sockets subscribed to all their channels
	dropped   atomic.Int64 // connections a server ended before the row did
	ending    atomic.Bool  // the row is closing its connections
	hist      atomic.Pointer[latency.Histogram]
	firstErr  atomic.Pointer[string] // the first unexpected thing, for the report
	firstDrop atomic.Pointer[string] // the first connection a server ended
}

func (c *counters) unexpected(format string, args ...any) {
	c.protoErrs.Add(1)
	s := fmt.Sprintf(format, args...)
	c.firstErr.CompareAndSwap(nil, &s)
}

// sock is one subscriber.
type sock struct {
	id    int
	chans []int    // channel indexes
	last  []uint32 // last message number seen per channel, same order
	acks  int
	c     *counters
	close func()
}

// channelName is the name of the channel of index i.
func channelName(i int) string { return "c" + strconv.Itoa(i) }

// deliver counts every message marker in p, received at now.
func deliver[T ~string | ~[]byte](s *sock, p T, now int64) {
	for {
		ts, ch, seq, rest, found, ok := parsePayload(p)
		if !found {
			return
		}
		if !ok {
			s.c.unexpected("malformed message %q", string(p))
			return
		}
		p = rest
		slot := -1
		for i, c := range s.chans {
			if c == ch {
				slot = i
				break
			}
		}
		if slot < 0 {
			s.c.unexpected("socket %d got a message of channel %d, which it is not in", s.id, ch)
			continue
		}
		switch last := s.last[slot]; {
		case seq <= last:
			s.c.reordered.Add(1)
		case seq > last+1:
			s.c.skipped.Add(int64(seq - last - 1))
		}
		s.last[slot] = max(s.last[slot], seq)
		s.c.hist.Load().Add(s.id, time.Duration(now-ts))
		s.c.delivered.Add(1)
	}
}

func (s *sock) ack() {
	s.acks++
	if s.acks == len(s.chans) {
		s.c.ready.Add(1)
	}
}

// rtMessage handles the "HEADER\nDATA" of a realtime.v2 message.
func rtMessage[T ~string | ~[]byte](s *sock, m T, now int64) {
	header, data := m, m[:0]
	for i := 0; i < len(m); i++ {
		if m[i] == '\n' {
			header, data = m[:i], m[i+1:]
			break
		}
	}
	switch {
	case hasPrefix(header, "message "):
		deliver(s, data, now)
	case hasPrefix(header, "subscribed "):
		if string(data) != "fresh" {
			s.c.unexpected("%s: %s", header, data)
		}
		s.ack()
	case string(header) == "heartbeat":
		// The server's sign of life on an idle link.
	default:
		s.c.unexpected("realtime message %q", string(m))
	}
}

func hasPrefix[T ~string | ~[]byte](s T, prefix string) bool {
	return len(s) >= len(prefix) && string(s[:len(prefix)]) == prefix
}

// cfLine handles one line of a centrifuge JSON frame or event. It
// returns true for a ping.
func cfLine[T ~string | ~[]byte](s *sock, line T, now int64) (ping bool) {
	switch {
	case string(line) == "{}":
		return true
	case hasPrefix(line, `{"push":`), hasPrefix(line, `{"channel":`): // bidirectional, unidirectional
		if !strings.Contains(string(line), `"pub":`) {
			s.c.unexpected("centrifuge push %s", line)
			return false
		}
		deliver(s, line, now)
	case hasPrefix(line, `{"id":`):
		if strings.Contains(string(line), `"error":`) {
			s.c.unexpected("centrifuge reply %s", line)
		} else if strings.Contains(string(line), `"subscribe":`) {
			s.ack()
		}
	case hasPrefix(line, `{"connect":`): // unidirectional: subscribed to all at once
		for range s.chans {
			s.ack()
		}
	default:
		s.c.unexpected("centrifuge frame %s", line)
	}
	return false
}

// client dials the sockets and publishers of one row.
type client struct {
	proto  proto
	nodes  []string // host:port of each node
	rtPath string
	src    [4]byte // source addresses 127.X.0.1-50, X per row, so TIME_WAIT of earlier rows never collides
	c      *counters
	posts  *http.Client // EventSource subscribe requests (realtime)
	wg     sync.WaitGroup
}

// ended counts a connection that ended before the row closed it.
func (cl *client) ended(what string, err error) {
	if !cl.c.ending.Load() {
		cl.c.dropped.Add(1)
		s := fmt.Sprintf("%s ended: %v", what, err)
		cl.c.firstDrop.CompareAndSwap(nil, &s)
	}
}

func (cl *client) dialer(i int) *net.Dialer {
	ip := net.IPv4(cl.src[0], cl.src[1], cl.src[2], byte(1+i%50))
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 10 * time.Second}
}

// dial connects sock s to node addr over WebSocket or EventSource and
// subscribes it; it returns once the subscribe requests are sent.
func (cl *client) dial(ctx context.Context, s *sock, addr string, ws bool) error {
	nc, err := cl.dialer(s.id).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	switch {
	case cl.proto == protoFloor: // one transport
		return cl.floorSub(ctx, s, nc, addr)
	case ws && cl.proto == protoRT:
		return cl.rtWS(ctx, s, nc, addr)
	case ws:
		return cl.cfWS(ctx, s, nc, addr)
	case cl.proto == protoRT:
		return cl.rtES(ctx, s, nc, addr)
	default:
		return cl.cfSSE(ctx, s, nc, addr)
	}
}

func (cl *client) wsClient(ctx context.Context, nc net.Conn, addr, path string, subprotocols []string) (*websocket.Conn, error) {
	u := &url.URL{Scheme: "ws", Host: addr, Path: path}
	c, _, err := websocket.NewClient(ctx, nc, u, &websocket.ClientOptions{Subprotocols: subprotocols})
	if err != nil {
		return nil, err
	}
	if len(subprotocols) > 0 && c.Subprotocol() != subprotocols[0] {
		c.CloseNow()
		return nil, fmt.Errorf("%s: subprotocol %q, not %s", addr, c.Subprotocol(), subprotocols[0])
	}
	return c, nil
}

// readWS reads c until it closes, handing each message to handle.
func (cl *client) readWS(what string, c *websocket.Conn, handle func(p []byte, now int64)) {
	cl.wg.Add(1)
	go func() {
		defer cl.wg.Done()
		var buf []byte
		ctx := context.Background()
		for {
			_, p, err := c.ReadAppend(ctx, buf[:0])
			if err != nil {
				cl.ended(what, err)
				return
			}
			handle(p, time.Now().UnixNano())
			buf = p
		}
	}()
}

func (cl *client) rtWS(ctx context.Context, s *sock, nc net.Conn, addr string) error {
	c, err := cl.wsClient(ctx, nc, addr, cl.rtPath, []string{rtSubprotocol})
	if err != nil {
		return err
	}
	s.close = func() { c.CloseNow() }
	cl.readWS(fmt.Sprintf("socket %d (WebSocket, %s)", s.id, addr), c, func(p []byte, now int64) {
		i := 0
		for i < len(p) && p[i] != '\n' {
			i++
		}
		if i < len(p) { // "ID" alone is the first message
			rtMessage(s, p[i+1:], now)
		}
	})
	for _, ch := range s.chans {
		if err := c.Write(ctx, websocket.MessageText, []byte("subscribe "+channelName(ch))); err != nil {
			return err
		}
	}
	return nil
}

func (cl *client) cfWS(ctx context.Context, s *sock, nc net.Conn, addr string) error {
	c, err := cl.wsClient(ctx, nc, addr, "/connection/websocket", nil)
	if err != nil {
		return err
	}
	s.close = func() { c.CloseNow() }
	pong := []byte("{}")
	cl.readWS(fmt.Sprintf("socket %d (WebSocket, %s)", s.id, addr), c, func(p []byte, now int64) {
		for len(p) > 0 {
			var line []byte
			line, p = cutLine(p)
			if cfLine(s, line, now) {
				c.Write(context.Background(), websocket.MessageText, pong)
			}
		}
	})
	var b strings.Builder
	b.WriteString(`{"id":1,"connect":{}}`)
	for i, ch := range s.chans {
		fmt.Fprintf(&b, "\n{\"id\":%d,\"subscribe\":{\"channel\":%q}}", i+2, channelName(ch))
	}
	return c.Write(ctx, websocket.MessageText, []byte(b.String()))
}

// cutLine splits the first line of a centrifuge frame, which holds
// replies and pushes one a line, from the rest.
func cutLine(p []byte) (line, rest []byte) {
	if i := indexByte(p, '\n'); i >= 0 {
		return p[:i], p[i+1:]
	}
	return p, nil
}

func indexByte(p []byte, c byte) int {
	for i, b := range p {
		if b == c {
			return i
		}
	}
	return -1
}

// eventStream sends a GET for an event stream on nc and returns its
// decoder once the response head has come.
func eventStream(nc net.Conn, addr, target string) (*eventsource.Decoder, error) {
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(nc, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", target, addr); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(nc, 4096), nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("%s%s: %s %q", addr, target, resp.Status, b)
	}
	nc.SetDeadline(time.Time{})
	return eventsource.NewDecoder(resp.Body, nil), nil
}

// readES reads events until the stream ends, handing each to handle.
func (cl *client) readES(what string, d *eventsource.Decoder, handle func(ev *eventsource.Event, now int64)) {
	cl.wg.Add(1)
	go func() {
		defer cl.wg.Done()
		for {
			ev, err := d.Next()
			if err != nil {
				cl.ended(what, err)
				return
			}
			handle(&ev, time.Now().UnixNano())
		}
	}()
}

func (cl *client) rtES(ctx context.Context, s *sock, nc net.Conn, addr string) error {
	s.close = func() { nc.Close() }
	d, err := eventStream(nc, addr, cl.rtPath+"?"+realtime.ProtocolParam+"="+rtSubprotocol)
	if err != nil {
		nc.Close()
		return err
	}
	hello, err := d.Next()
	if err != nil || hello.Type != "realtime.hello" {
		nc.Close()
		return fmt.Errorf("%s: no hello (%v, %q)", addr, err, hello.Type)
	}
	cl.readES(fmt.Sprintf("socket %d (EventSource, %s)", s.id, addr), d, func(ev *eventsource.Event, now int64) {
		if ev.Type != "message" {
			s.c.unexpected("realtime event %q: %q", ev.Type, ev.Data)
			return
		}
		rtMessage(s, ev.Data, now)
	})
	for _, ch := range s.chans {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+cl.rtPath, strings.NewReader("subscribe "+channelName(ch)))
		if err != nil {
			return err
		}
		req.Header.Set(realtime.TokenHeader, hello.Data)
		resp, err := cl.posts.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("%s: subscribe POST: %s", addr, resp.Status)
		}
	}
	return nil
}

// floorSub subscribes s on a floornode: its messages come a line each
// after the response head.
func (cl *client) floorSub(ctx context.Context, s *sock, nc net.Conn, addr string) error {
	s.close = func() { nc.Close() }
	var b strings.Builder
	for i, ch := range s.chans {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(ch))
	}
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(nc, "GET /sub?c=%s HTTP/1.1\r\nHost: %s\r\n\r\n", b.String(), addr); err != nil {
		nc.Close()
		return err
	}
	br := bufio.NewReaderSize(nc, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		nc.Close()
		return fmt.Errorf("%s: subscribe: %v %v", addr, err, resp)
	}
	nc.SetDeadline(time.Time{})
	for range s.chans {
		s.ack()
	}
	what := fmt.Sprintf("socket %d (floor, %s)", s.id, addr)
	cl.wg.Add(1)
	go func() {
		defer cl.wg.Done()
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				cl.ended(what, err)
				return
			}
			deliver(s, line, time.Now().UnixNano())
		}
	}()
	return nil
}

func (cl *client) cfSSE(ctx context.Context, s *sock, nc net.Conn, addr string) error {
	s.close = func() { nc.Close() }
	var b strings.Builder
	b.WriteString(`{"subs":{`)
	for i, ch := range s.chans {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:{}", channelName(ch))
	}
	b.WriteString("}}")
	d, err := eventStream(nc, addr, "/connection/uni_sse?cf_connect="+url.QueryEscape(b.String()))
	if err != nil {
		nc.Close()
		return err
	}
	cl.readES(fmt.Sprintf("socket %d (EventSource, %s)", s.id, addr), d, func(ev *eventsource.Event, now int64) { cfLine(s, ev.Data, now) })
	return nil
}

// publisher publishes in one channel, one message at a time so that
// the channel's messages keep their order, while the publishers of the
// other channels publish at the same time. Over HTTP it posts to the
// node's publish endpoint (POST /publish?channel=NAME on both rtnode and
// cfnode), as an application's backend would, and waits for each answer.
// Over WebSocket it is a client in its channel (rtnode lets a socket
// publish only where it is) sending publish requests without waiting for
// answers, so that a node gets them in bursts.
type publisher struct {
	url  string
	http *http.Client
	ws   *websocket.Conn
	cf   bool // centrifuge's protocol on ws
	id   int  // the last centrifuge command id
	acks atomic.Int64
	ch   int
	seq  uint32 // the last number it gave
	buf  []byte
	subs int // the channel's subscribers, to count what is expected
	c    *counters
}

// publishClient is the HTTP client of a row's publishers: a kept-alive
// connection for each.
func (cl *client) publishClient(i, conns int) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: cl.dialer(i).DialContext, MaxIdleConnsPerHost: conns, DisableCompression: true}}
}

// newPublisher makes channel ch's publisher on node addr: over HTTP
// with hc, or over a WebSocket of its own when hc is nil.
func (cl *client) newPublisher(ctx context.Context, hc *http.Client, i int, addr string, ch, subs int) (*publisher, error) {
	p := &publisher{ch: ch, subs: subs, c: cl.c}
	if hc != nil {
		p.url, p.http = "http://"+addr+"/publish?channel="+channelName(ch), hc
		return p, nil
	}
	nc, err := cl.dialer(i).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	what := fmt.Sprintf("publisher %d (WebSocket, %s)", ch, addr)
	if cl.proto == protoRT {
		if p.ws, err = cl.wsClient(ctx, nc, addr, cl.rtPath, []string{rtSubprotocol}); err != nil {
			return nil, err
		}
		cl.readWS(what, p.ws, func(m []byte, _ int64) {
			i := indexByte(m, '\n')
			if i < 0 {
				return // the first message, a position
			}
			switch m = m[i+1:]; {
			case hasPrefix(m, "message "):
			case hasPrefix(m, "subscribed "):
				p.acks.Add(1)
			case hasPrefix(m, "heartbeat\n"):
			default:
				cl.c.unexpected("publisher got %q", m)
			}
		})
		return p, p.ws.Write(ctx, websocket.MessageText, []byte("subscribe "+channelName(ch)))
	}
	p.cf = true
	if p.ws, err = cl.wsClient(ctx, nc, addr, "/connection/websocket", nil); err != nil {
		return nil, err
	}
	cl.readWS(what, p.ws, func(m []byte, _ int64) {
		for len(m) > 0 {
			var line []byte
			line, m = cutLine(m)
			switch {
			case string(line) == "{}":
				p.ws.Write(context.Background(), websocket.MessageText, []byte("{}"))
			case strings.Contains(string(line), `"error":`):
				cl.c.unexpected("publisher got %s", line)
			case hasPrefix(line, `{"id":`) && strings.Contains(string(line), `"subscribe":`):
				p.acks.Add(1)
			}
		}
	})
	p.id = 2
	return p, p.ws.Write(ctx, websocket.MessageText,
		[]byte(`{"id":1,"connect":{}}`+"\n"+`{"id":2,"subscribe":{"channel":"`+channelName(ch)+`"}}`))
}

// ready reports whether the publisher may publish: a WebSocket one once
// it is in its channel.
func (p *publisher) ready() bool { return p.ws == nil || p.acks.Load() > 0 }

func (p *publisher) close() {
	if p.ws != nil {
		p.ws.CloseNow()
	}
}

// publish sends the channel's next message.
func (p *publisher) publish(ctx context.Context, size int) error {
	p.seq++
	b := p.buf[:0]
	switch {
	case p.ws == nil:
	case p.cf:
		p.id++
		b = append(b, `{"id":`...)
		b = strconv.AppendInt(b, int64(p.id), 10)
		b = append(b, `,"publish":{"channel":"`...)
		b = append(b, channelName(p.ch)...)
		b = append(b, `","data":`...)
	default:
		b = append(b, "publish "...)
		b = append(b, channelName(p.ch)...)
		b = append(b, '\n')
	}
	b = appendPayload(b, time.Now().UnixNano(), p.ch, p.seq, size)
	if p.cf {
		b = append(b, "}}"...)
	}
	p.buf = b
	p.c.expected.Add(int64(p.subs))
	if p.ws != nil {
		return p.ws.Write(ctx, websocket.MessageText, b)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s %q", req.URL, resp.Status, msg)
	}
	return nil
}

var errNotReady = errors.New("not every socket subscribed in time")
