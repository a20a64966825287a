package websocket

// Test scaffolding: a raw RFC 6455 peer that frames and parses bytes on its
// own (independently of the package under test), so tests can send what a
// well-behaved endpoint never would and see exactly what the Conn sends back.

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// waitLong bounds what must happen; a passing test never waits this long.
const waitLong = 5 * time.Second

// eofWait bounds how long a peer waits for the Conn to shut its side of a
// TCP connection after the close frame. It is well under the default
// CloseTimeout, so a Conn that waits for the peer to close first fails.
const eofWait = 2 * time.Second

type transport string

const (
	overTCP  transport = "tcp"
	overPipe transport = "pipe"
)

// transports are those every test of the Conn runs over.
var transports = []transport{overTCP, overPipe, overH2}

// netTransports are those with a pair of net.Conns (netPair), which
// tests and benchmarks of what a Conn does with its net.Conn run over.
var netTransports = []transport{overTCP, overPipe}

// hx decodes a readable hex string such as "81 85 37 fa".
func hx(s string) []byte {
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "\n", "", "\t", "").Replace(s))
	if err != nil {
		panic(err)
	}
	return b
}

// netPair returns two connected net.Conns: loopback TCP or net.Pipe.
func netPair(t testing.TB, tr transport) (a, b net.Conn) {
	t.Helper()
	switch tr {
	case overH2:
		t.Fatal("netPair: an HTTP/2 stream is no pair of net.Conns")
	case overPipe:
		a, b = net.Pipe()
		return a, b
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		ch <- result{c, err}
	}()
	b, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		b.Close()
		t.Fatal(r.err)
	}
	return r.c, b
}

// wireFrame is a frame as the peer received it.
type wireFrame struct {
	fin     bool
	rsv     byte
	op      opcode
	masked  bool
	key     [4]byte
	hdr     []byte // the header bytes as they came
	payload []byte // unmasked
}

func (f wireFrame) String() string {
	p := f.payload
	if len(p) > 32 {
		p = p[:32]
	}
	return fmt.Sprintf("{fin=%v rsv=%#x op=%#x masked=%v len=%d payload=%q}", f.fin, f.rsv, byte(f.op), f.masked, len(f.payload), p)
}

// closeCode returns the code of a close frame, or StatusNoStatusRcvd for
// an empty one.
func (f wireFrame) closeCode() StatusCode {
	if len(f.payload) < 2 {
		return StatusNoStatusRcvd
	}
	return StatusCode(binary.BigEndian.Uint16(f.payload))
}

// readWireFrame reads one frame; it checks nothing but lengths.
func readWireFrame(r io.Reader) (wireFrame, error) {
	var f wireFrame
	var h [14]byte
	if _, err := io.ReadFull(r, h[:2]); err != nil {
		return f, err
	}
	f.fin = h[0]&0x80 != 0
	f.rsv = h[0] & 0x70
	f.op = opcode(h[0] & 0x0F)
	f.masked = h[1]&0x80 != 0
	n := 2
	length := uint64(h[1] & 0x7F)
	switch length {
	case 126:
		if _, err := io.ReadFull(r, h[2:4]); err != nil {
			return f, eofMid(err)
		}
		length = uint64(binary.BigEndian.Uint16(h[2:4]))
		n = 4
	case 127:
		if _, err := io.ReadFull(r, h[2:10]); err != nil {
			return f, eofMid(err)
		}
		length = binary.BigEndian.Uint64(h[2:10])
		n = 10
	}
	if f.masked {
		if _, err := io.ReadFull(r, h[n:n+4]); err != nil {
			return f, eofMid(err)
		}
		copy(f.key[:], h[n:n+4])
		n += 4
	}
	f.hdr = append([]byte(nil), h[:n]...)
	if length > 1<<28 {
		return f, fmt.Errorf("frame of %d bytes", length)
	}
	f.payload = make([]byte, length)
	if _, err := io.ReadFull(r, f.payload); err != nil {
		return f, eofMid(err)
	}
	if f.masked {
		for i := range f.payload {
			f.payload[i] ^= f.key[i&3]
		}
	}
	return f, nil
}

func eofMid(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// appendFrame appends a frame with a minimally encoded length, masked with
// key when masked is set.
func appendFrame(b []byte, fin bool, rsv byte, op opcode, masked bool, key [4]byte, payload []byte) []byte {
	b0 := rsv | byte(op)
	if fin {
		b0 |= 0x80
	}
	var m byte
	if masked {
		m = 0x80
	}
	b = append(b, b0)
	switch n := len(payload); {
	case n < 126:
		b = append(b, m|byte(n))
	case n <= 0xFFFF:
		b = append(b, m|126, byte(n>>8), byte(n))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if masked {
		b = append(b, key[:]...)
	}
	start := len(b)
	b = append(b, payload...)
	if masked {
		for i := range payload {
			b[start+i] ^= key[i&3]
		}
	}
	return b
}

// frameHeaderLen is the header size of a frame with n payload bytes.
func frameHeaderLen(n int, masked bool) int {
	h := 2
	switch {
	case n >= 1<<16:
		h = 10
	case n >= 126:
		h = 4
	}
	if masked {
		h += 4
	}
	return h
}

func closeBody(code StatusCode, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// peer is the raw endpoint on the other side of a Conn.
type peer struct {
	tr       transport
	nc       net.Conn
	client   bool // the peer is the client: it masks, and expects no mask
	frames   chan wireFrame
	done     chan struct{}
	rerr     error // why reading stopped; set before frames is closed
	autoPong atomic.Bool

	wmu sync.Mutex
	rng *mrand.Rand

	vmu        sync.Mutex
	violations []string
}

func newPeer(tr transport, nc net.Conn, br *bufio.Reader, client bool) *peer {
	p := &peer{
		tr:     tr,
		nc:     nc,
		client: client,
		frames: make(chan wireFrame, 4096),
		done:   make(chan struct{}),
		rng:    mrand.New(mrand.NewPCG(1, 2)),
	}
	go p.readLoop(br)
	return p
}

func (p *peer) readLoop(br *bufio.Reader) {
	defer close(p.done)
	defer close(p.frames)
	for {
		f, err := readWireFrame(br)
		if err != nil {
			p.rerr = err
			return
		}
		// RFC 6455 §5.1: a client masks every frame, a server none.
		if p.client && f.masked {
			p.violate("server Conn sent a masked frame: %v", f)
		}
		if !p.client && !f.masked {
			p.violate("client Conn sent an unmasked frame: %v", f)
		}
		if f.op == opPing && p.autoPong.Load() {
			p.write(p.frame(true, 0, opPong, f.payload))
		}
		p.frames <- f
	}
}

func (p *peer) violate(format string, args ...any) {
	p.vmu.Lock()
	p.violations = append(p.violations, fmt.Sprintf(format, args...))
	p.vmu.Unlock()
}

func (p *peer) checkViolations(t testing.TB) {
	t.Helper()
	p.vmu.Lock()
	defer p.vmu.Unlock()
	for _, v := range p.violations {
		t.Error(v)
	}
}

func (p *peer) key() [4]byte {
	var k [4]byte
	for i := range k {
		k[i] = byte(1 + p.rng.IntN(255)) // never 0: an unmasking bug must show
	}
	return k
}

// frame builds a frame as this peer sends it: masked when it is the client.
func (p *peer) frame(fin bool, rsv byte, op opcode, payload []byte) []byte {
	p.wmu.Lock()
	k := p.key()
	p.wmu.Unlock()
	return appendFrame(nil, fin, rsv, op, p.client, k, payload)
}

// rawHeader builds a header from its first byte, the 7-bit length and the
// extended length bytes, adding the mask bit and a key when the peer is the
// client.
func (p *peer) rawHeader(b0, len7 byte, ext ...byte) []byte {
	b := []byte{b0, len7}
	b = append(b, ext...)
	if p.client {
		b[1] |= 0x80
		b = append(b, 0x11, 0x22, 0x33, 0x44)
	}
	return b
}

func (p *peer) hdrLen(n int) int { return frameHeaderLen(n, p.client) }

func (p *peer) write(b []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_, err := p.nc.Write(b)
	return err
}

// send writes b and fails the test if the write fails.
func (p *peer) send(t testing.TB, b []byte) {
	t.Helper()
	if err := p.write(b); err != nil {
		t.Fatalf("peer write: %v", err)
	}
}

// sendAsync writes b from a goroutine, for net.Pipe, where a write waits
// for the reader. Its error goes to the returned channel.
func (p *peer) sendAsync(b []byte) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- p.write(b) }()
	return ch
}

// next returns the next frame the Conn sent.
func (p *peer) next(t testing.TB) wireFrame {
	t.Helper()
	select {
	case f, ok := <-p.frames:
		if !ok {
			t.Fatalf("peer: no frame, connection ended: %v", p.rerr)
		}
		return f
	case <-time.After(waitLong):
		t.Fatalf("peer: no frame within %v", waitLong)
	}
	panic("unreachable")
}

// expectFrame reads the next frame and checks its opcode, fin bit and payload.
func (p *peer) expectFrame(t testing.TB, op opcode, payload []byte) wireFrame {
	t.Helper()
	f := p.next(t)
	if f.op != op || !f.fin || f.rsv != 0 || string(f.payload) != string(payload) {
		t.Fatalf("peer got %v, want op %#x fin payload %q", f, byte(op), trunc(payload))
	}
	return f
}

// expectClose reads the next frame, which must be a close frame with code.
func (p *peer) expectClose(t testing.TB, code StatusCode) wireFrame {
	t.Helper()
	f := p.next(t)
	if f.op != opClose {
		t.Fatalf("peer got %v, want a close frame with code %d", f, code)
	}
	if !f.fin || f.rsv != 0 {
		t.Fatalf("bad close frame %v", f)
	}
	if len(f.payload) == 1 {
		t.Fatalf("close frame with a 1-byte payload: %v", f)
	}
	if got := f.closeCode(); got != code {
		t.Fatalf("peer got close code %d (%q), want %d", got, f.payload, code)
	}
	if len(f.payload) > 2 && !utf8.Valid(f.payload[2:]) {
		t.Fatalf("close reason is not UTF-8: %q", f.payload[2:])
	}
	return f
}

// expectEOF checks that the Conn sends nothing more and ends the
// connection within d.
func (p *peer) expectEOF(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case f, ok := <-p.frames:
		if ok {
			t.Fatalf("peer got %v, want the connection to end", f)
		}
		if p.rerr != io.EOF && !errors.Is(p.rerr, net.ErrClosed) && !isReset(p.rerr) {
			t.Fatalf("connection ended with %v, want EOF", p.rerr)
		}
	case <-time.After(d):
		t.Fatalf("connection not closed by the Conn within %v", d)
	}
}

// isReset reports whether err is the abrupt end of a connection: a TCP
// reset, or an HTTP/2 stream the other end cancelled (RST_STREAM with
// CANCEL, as the client's transport sends when a stream is closed before
// both sides have ended it).
func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.HasSuffix(err.Error(), "; CANCEL"))
}

// expectNothing checks that no frame arrives within d.
func (p *peer) expectNothing(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case f, ok := <-p.frames:
		if ok {
			t.Fatalf("peer got %v, want nothing", f)
		}
		t.Fatalf("connection ended (%v), want it open", p.rerr)
	case <-time.After(d):
	}
}

// expectFail checks the Conn failed the connection with code (RFC 6455
// §7.1.7): a close frame with that code and then, over TCP, the end of
// the Conn's side of the stream without the peer having to act first.
// The peer then closes its side.
func (p *peer) expectFail(t testing.TB, code StatusCode) {
	t.Helper()
	p.expectClose(t, code)
	if p.tr != overPipe {
		p.expectEOF(t, eofWait)
	}
	p.nc.Close()
}

// finishClose completes a closing handshake after the Conn's close frame
// (its echo of ours, or its own after ours). A server Conn must then close
// the TCP connection first (RFC 6455 §7.1.1); for a client Conn the peer,
// as the server, closes it.
func (p *peer) finishClose(t testing.TB) {
	t.Helper()
	if p.client && p.tr != overPipe {
		p.expectEOF(t, eofWait)
	}
	p.nc.Close()
}

// closePeer closes the peer's connection and waits for its reader.
func (p *peer) closePeer() {
	p.nc.Close()
	<-p.done
}

// testKey is the Sec-WebSocket-Key of RFC 6455 §1.3.
const testKey = "dGhlIHNhbXBsZSBub25jZQ=="

// wantAccept computes Sec-WebSocket-Accept as RFC 6455 §4.2.2 defines it.
func wantAccept(key string) string {
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(sum[:])
}

const testRequest = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n" +
	"Connection: Upgrade\r\nSec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n"

func testResponse(key string) string {
	return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + wantAccept(key) + "\r\n\r\n"
}

// acceptOn runs the server side of the opening handshake on nc through the
// public API, while the caller plays the client.
func acceptOn(nc net.Conn, opts ConnOptions) <-chan connResult {
	ch := make(chan connResult, 1)
	go func() {
		c, _, err := AcceptConn(context.Background(), nc, &AcceptOptions{ConnOptions: opts})
		ch <- connResult{c, err}
	}()
	return ch
}

// dialOn runs the client side of the opening handshake on nc.
func dialOn(nc net.Conn, opts ConnOptions) <-chan connResult {
	ch := make(chan connResult, 1)
	go func() {
		u, _ := url.Parse("ws://server.example.com/chat")
		c, _, err := NewClient(context.Background(), nc, u, &ClientOptions{ConnOptions: opts})
		ch <- connResult{c, err}
	}()
	return ch
}

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

// readResponse reads a handshake response, which must be 101.
func readResponse(t testing.TB, br *bufio.Reader) *http.Response {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the handshake response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake answered %s", resp.Status)
	}
	return resp
}

type connResult struct {
	c   *Conn
	err error
}

// newTestConn connects a Conn (a client Conn when client is set) to a raw
// peer playing the other role. The opening handshake goes through the
// public API; the peer does its half by hand.
func newTestConn(t testing.TB, tr transport, client bool, opts ConnOptions) (*Conn, *peer) {
	t.Helper()
	if tr == overH2 {
		c, nc := newH2TestConn(t, client, opts)
		return c, watchPeer(t, c, nc, client)
	}
	a, b := netPair(t, tr)
	br := bufio.NewReader(b)
	var ch <-chan connResult
	if client {
		ch = dialOn(a, opts)
		req, err := http.ReadRequest(br)
		if err != nil {
			a.Close()
			b.Close()
			t.Fatalf("peer reading the request: %v", err)
		}
		if _, err := io.WriteString(b, testResponse(req.Header.Get("Sec-WebSocket-Key"))); err != nil {
			t.Fatal(err)
		}
	} else {
		ch = acceptOn(a, opts)
		if _, err := io.WriteString(b, testRequest); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			a.Close()
			b.Close()
			t.Fatalf("peer reading the response: %v", err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("handshake answered %s", resp.Status)
		}
	}
	r := <-ch
	if r.err != nil {
		b.Close()
		t.Fatalf("handshake: %v", r.err)
	}
	c := r.c
	p := newPeer(tr, b, br, !client)
	t.Cleanup(func() {
		c.CloseNow()
		p.closePeer()
		p.checkViolations(t)
	})
	return c, p
}

// connPair connects a server Conn and a client Conn.
func connPair(t testing.TB, tr transport, sopts, copts ConnOptions) (server, client *Conn) {
	t.Helper()
	if tr == overH2 {
		s, c := h2ConnPair(t, &AcceptOptions{ConnOptions: sopts}, &ClientOptions{ConnOptions: copts})
		t.Cleanup(func() {
			s.CloseNow()
			c.CloseNow()
		})
		return s, c
	}
	a, b := netPair(t, tr)
	sch := acceptOn(a, sopts)
	cch := dialOn(b, copts)
	s, c := <-sch, <-cch
	if s.err != nil || c.err != nil {
		a.Close()
		b.Close()
		if s.c != nil {
			s.c.CloseNow()
		}
		if c.c != nil {
			c.c.CloseNow()
		}
		t.Fatalf("handshake: server %v, client %v", s.err, c.err)
	}
	t.Cleanup(func() {
		s.c.CloseNow()
		c.c.CloseNow()
	})
	return s.c, c.c
}

type readResult struct {
	typ MessageType
	p   []byte
	err error
}

// startReader reads c in a goroutine until an error, passing on what
// each Read returns.
func startReader(t testing.TB, c *Conn) <-chan readResult {
	ch := make(chan readResult, 64)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		for {
			typ, p, err := c.Read(context.Background())
			select {
			case ch <- readResult{typ, p, err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		c.CloseNow()
		close(stop)
		<-done
	})
	return ch
}

// startEcho echoes every message c reads until an error, which it sends
// on the returned channel.
func startEcho(t testing.TB, c *Conn) <-chan error {
	ch := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ch <- echo(c)
	}()
	t.Cleanup(func() {
		c.CloseNow()
		<-done
	})
	return ch
}

// echo writes back every message c reads until an error, which it
// returns.
func echo(c *Conn) error {
	ctx := context.Background()
	for {
		typ, p, err := c.Read(ctx)
		if err == nil {
			err = c.Write(ctx, typ, p)
		}
		if err != nil {
			return err
		}
	}
}

func recvMsg(t testing.TB, ch <-chan readResult) readResult {
	t.Helper()
	select {
	case r, ok := <-ch:
		if !ok {
			t.Fatal("reader ended")
		}
		return r
	case <-time.After(waitLong):
		t.Fatalf("Read did not return within %v", waitLong)
	}
	panic("unreachable")
}

// expectMsg checks that the next Read returns typ and payload.
func expectMsg(t testing.TB, ch <-chan readResult, typ MessageType, payload []byte) {
	t.Helper()
	r := recvMsg(t, ch)
	if r.err != nil {
		t.Fatalf("Read: %v, want a %v message of %d bytes", r.err, typ, len(payload))
	}
	if r.typ != typ || string(r.p) != string(payload) {
		t.Fatalf("Read = %v %q, want %v %q", r.typ, trunc(r.p), typ, trunc(payload))
	}
}

// expectReadErr checks that the next Read fails, and that the connection
// is then closed.
func expectReadErr(t testing.TB, ch <-chan readResult) error {
	t.Helper()
	r := recvMsg(t, ch)
	if r.err == nil {
		t.Fatalf("Read = %v %q, want an error", r.typ, trunc(r.p))
	}
	if !errors.Is(r.err, net.ErrClosed) {
		t.Fatalf("Read error %v: want errors.Is(err, net.ErrClosed)", r.err)
	}
	return r.err
}

// expectProtocolError checks err is a *ProtocolError with code.
func expectProtocolError(t testing.TB, err error, code StatusCode) *ProtocolError {
	t.Helper()
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T): want a *ProtocolError with code %d", err, err, code)
	}
	if pe.Code != code {
		t.Fatalf("ProtocolError code %d (%v), want %d", pe.Code, pe, code)
	}
	switch code {
	case StatusInvalidFramePayloadData:
		if !errors.Is(err, ErrInvalidUTF8) {
			t.Fatalf("error %v: want errors.Is(err, ErrInvalidUTF8)", err)
		}
	case StatusMessageTooBig:
		if !errors.Is(err, ErrMessageTooBig) {
			t.Fatalf("error %v: want errors.Is(err, ErrMessageTooBig)", err)
		}
	}
	return pe
}

func trunc(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

// within runs f and fails the test if it does not return within d.
func within(t testing.TB, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

// byteConn hands out at most max bytes per Read, so a Conn reads its
// input in small pieces.
type byteConn struct {
	net.Conn
	max int
}

func (c byteConn) Read(p []byte) (int, error) {
	if len(p) > c.max {
		p = p[:c.max]
	}
	return c.Conn.Read(p)
}

// pattern returns n bytes that differ from one offset to the next.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed + byte(i>>8)
	}
	return b
}

// textPattern returns about n bytes of valid UTF-8 mixing 1- to 4-byte
// characters.
func textPattern(n int) []byte {
	runes := []string{"a", "é", "€", "😀", "z", "ß", "中"}
	var b []byte
	for i := 0; len(b) < n; i++ {
		b = append(b, runes[i%len(runes)]...)
	}
	for len(b) > n { // cut back to a character boundary at most n long
		b = b[:len(b)-1]
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
	}
	for len(b) < n {
		b = append(b, 'x')
	}
	return b
}
