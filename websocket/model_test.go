package websocket

// A reference model of the receiving side of RFC 6455, written from the
// RFC for the tests: given what a peer sends, it says which messages a
// strict endpoint delivers, which pongs it sends, and how it ends (the
// close frame it sends, if any). FuzzConnRead and TestConnMatchesModel
// hold the Conn to it.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

type modelEnd int

const (
	endEOF       modelEnd = iota // input ran out: no close frame
	endFail                      // the endpoint fails the connection with code
	endPeerClose                 // the peer closed; the endpoint echoes
)

type modelOutcome struct {
	msgs  []readResult
	pongs [][]byte
	end   modelEnd
	code  StatusCode // endFail: the code sent; endPeerClose: the peer's (1005 for none)
}

func (o modelOutcome) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d messages [", len(o.msgs))
	for _, m := range o.msgs {
		fmt.Fprintf(&b, " %v:%q", m.typ, trunc(m.p))
	}
	fmt.Fprintf(&b, " ], %d pongs, end %d code %d", len(o.pongs), o.end, o.code)
	return b.String()
}

func validCloseCode(c uint16) bool {
	return c >= 1000 && c <= 1003 || c >= 1007 && c <= 1014 || c >= 3000 && c <= 4999
}

// modelRead runs the model over in, the bytes a peer sends after the
// handshake, for an endpoint of the given role and limits.
func modelRead(in []byte, client bool, maxSize uint64, maxFrags int) (o modelOutcome) {
	fail := func(code StatusCode) modelOutcome { o.end, o.code = endFail, code; return o }
	var (
		inMsg bool
		typ   opcode
		buf   []byte
		size  uint64
		frags int
	)
	for {
		if len(in) < 2 {
			return o
		}
		fin, rsv, op, masked := in[0]&0x80 != 0, in[0]&0x70, opcode(in[0]&0x0F), in[1]&0x80 != 0
		n, length := 2, uint64(in[1]&0x7F)
		switch length {
		case 126:
			if len(in) < 4 {
				return o
			}
			if length, n = uint64(binary.BigEndian.Uint16(in[2:])), 4; length < 126 {
				return fail(StatusProtocolError) // not minimal (§5.2)
			}
		case 127:
			if len(in) < 10 {
				return o
			}
			if length, n = binary.BigEndian.Uint64(in[2:]), 10; length>>63 != 0 || length < 1<<16 {
				return fail(StatusProtocolError)
			}
		}
		var key [4]byte
		if masked {
			if len(in) < n+4 {
				return o
			}
			copy(key[:], in[n:])
			n += 4
		}
		in = in[n:]
		// §5.1: clients mask, servers do not.
		if masked == client {
			return fail(StatusProtocolError)
		}
		switch op {
		case opContinuation, opText, opBinary, opClose, opPing, opPong:
		default:
			return fail(StatusProtocolError) // §5.2: reserved opcodes
		}
		if rsv != 0 {
			return fail(StatusProtocolError) // no extension negotiated
		}
		unmask := func(p []byte) []byte {
			p = append([]byte(nil), p...)
			if masked {
				for i := range p {
					p[i] ^= key[i&3]
				}
			}
			return p
		}
		if op >= opClose {
			// §5.5: control frames are final and at most 125 bytes.
			if !fin || length > 125 {
				return fail(StatusProtocolError)
			}
			if uint64(len(in)) < length {
				return o
			}
			p := unmask(in[:length])
			in = in[length:]
			switch op {
			case opPing:
				o.pongs = append(o.pongs, p)
			case opClose:
				switch {
				case len(p) == 0:
					o.end, o.code = endPeerClose, StatusNoStatusRcvd
					return o
				case len(p) == 1:
					return fail(StatusProtocolError)
				case !validCloseCode(binary.BigEndian.Uint16(p)):
					return fail(StatusProtocolError)
				case !utf8.Valid(p[2:]):
					return fail(StatusInvalidFramePayloadData)
				}
				o.end, o.code = endPeerClose, StatusCode(binary.BigEndian.Uint16(p))
				return o
			}
			continue
		}
		// §5.4: fragments of one message, uninterrupted by others.
		if op == opContinuation && !inMsg || op != opContinuation && inMsg {
			return fail(StatusProtocolError)
		}
		if !inMsg {
			typ, buf, size, frags = op, []byte{}, 0, 0
		}
		frags++
		if length > maxSize || size+length > maxSize || frags > maxFrags {
			return fail(StatusMessageTooBig)
		}
		size += length
		inMsg = !fin
		avail := min(length, uint64(len(in)))
		buf = append(buf, unmask(in[:avail])...)
		in = in[avail:]
		// §8.1: fail as soon as the text can no longer be valid.
		if typ == opText && !validPrefix(buf) {
			return fail(StatusInvalidFramePayloadData)
		}
		if avail < length {
			return o
		}
		if fin {
			if typ == opText && !utf8.Valid(buf) {
				return fail(StatusInvalidFramePayloadData)
			}
			o.msgs = append(o.msgs, readResult{typ: MessageType(typ), p: buf})
			inMsg = false
		}
	}
}

// scriptConn is a net.Conn that serves a fixed input in chunks of at most
// chunk bytes, then io.EOF, and records what is written to it.
type scriptConn struct {
	mu        sync.Mutex
	in        []byte
	chunk     int
	out       bytes.Buffer
	closed    bool
	respond   func(written []byte) []byte // answers the client's request on the first read
	responded bool
}

func (c *scriptConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	if c.respond != nil && !c.responded {
		c.responded = true
		c.in = append(c.respond(c.out.Bytes()), c.in...)
	}
	if len(c.in) == 0 {
		return 0, io.EOF
	}
	if c.chunk > 0 && len(p) > c.chunk {
		p = p[:c.chunk]
	}
	n := copy(p, c.in)
	c.in = c.in[n:]
	return n, nil
}

func (c *scriptConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.out.Write(p)
}

func (c *scriptConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

func (c *scriptConn) written() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.out.Bytes()...)
}

type scriptAddr struct{}

func (scriptAddr) Network() string { return "script" }
func (scriptAddr) String() string  { return "script" }

func (c *scriptConn) LocalAddr() net.Addr              { return scriptAddr{} }
func (c *scriptConn) RemoteAddr() net.Addr             { return scriptAddr{} }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// scriptConfig picks the Conn's role, API and limits from one byte.
type scriptConfig struct {
	client   bool
	reader   bool
	chunk    int
	maxSize  int64
	maxFrags int
	rbuf     int
}

func configFrom(b byte) scriptConfig {
	return scriptConfig{
		client:   b&1 != 0,
		reader:   b&2 != 0,
		chunk:    []int{0, 1, 7, 64}[b>>2&3],
		maxSize:  []int64{1 << 16, 16, 1000, 200}[b>>4&3],
		maxFrags: []int{DefaultMaxFragments, 3}[b>>6&1],
		rbuf:     []int{0, 1}[b>>7&1],
	}
}

// runScript connects a Conn through the public handshake to a scriptConn
// that then serves in, reads until the Conn fails, and returns what Read
// delivered, the Conn's last error and the frames it wrote.
func runScript(t testing.TB, cfg scriptConfig, in []byte) (msgs []readResult, frames []wireFrame, lastErr error) {
	t.Helper()
	opts := ConnOptions{MaxMessageSize: cfg.maxSize, MaxFragments: cfg.maxFrags, ReadBufferSize: cfg.rbuf, CloseTimeout: time.Second}
	sc := &scriptConn{chunk: cfg.chunk}
	var c *Conn
	var err error
	if cfg.client {
		sc.in = in
		sc.respond = func(w []byte) []byte {
			req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(w)))
			if err != nil {
				return nil
			}
			return []byte(testResponse(req.Header.Get("Sec-WebSocket-Key")))
		}
		u, _ := url.Parse("ws://script/")
		c, _, err = NewClient(context.Background(), sc, u, &ClientOptions{ConnOptions: opts})
	} else {
		sc.in = append([]byte(testRequest), in...)
		c, _, err = AcceptConn(context.Background(), sc, &AcceptOptions{ConnOptions: opts})
	}
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer c.CloseNow()
	ctx := context.Background()
	for range len(in) + 2 {
		var typ MessageType
		var p []byte
		var err error
		if cfg.reader {
			var r io.Reader
			if typ, r, err = c.Reader(ctx); err == nil {
				p, err = readAllSmall(r, 3)
			}
		} else {
			typ, p, err = c.Read(ctx)
		}
		if err != nil {
			lastErr = err
			break
		}
		msgs = append(msgs, readResult{typ: typ, p: p})
	}
	if lastErr == nil {
		t.Fatal("Read never failed on a finite input")
	}
	c.CloseNow()
	out := sc.written()
	// Skip the handshake.
	i := bytes.Index(out, []byte("\r\n\r\n"))
	if i < 0 {
		t.Fatalf("no handshake in the output %q", trunc(out))
	}
	r := bytes.NewReader(out[i+4:])
	for r.Len() > 0 {
		f, err := readWireFrame(r)
		if err != nil {
			t.Fatalf("the Conn wrote a broken frame: %v", err)
		}
		if f.masked != cfg.client {
			t.Fatalf("the Conn (client=%v) wrote %v", cfg.client, f)
		}
		frames = append(frames, f)
	}
	return msgs, frames, lastErr
}

// checkAgainstModel runs in through a Conn and through the model and
// compares every observable.
func checkAgainstModel(t testing.TB, cfg scriptConfig, in []byte) {
	t.Helper()
	want := modelRead(in, cfg.client, uint64(cfg.maxSize), cfg.maxFrags)
	msgs, frames, err := runScript(t, cfg, in)
	report := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("config %+v, input % x\nmodel: %v\n%s", cfg, trunc(in), want, fmt.Sprintf(format, args...))
	}
	if len(msgs) != len(want.msgs) {
		report("Conn delivered %d messages (last error %v)", len(msgs), err)
	}
	for i := range msgs {
		if msgs[i].typ != want.msgs[i].typ || !bytes.Equal(msgs[i].p, want.msgs[i].p) {
			report("message %d: %v %q", i, msgs[i].typ, trunc(msgs[i].p))
		}
		if msgs[i].typ == MessageText && !utf8.Valid(msgs[i].p) {
			report("message %d is text but not UTF-8", i)
		}
		if int64(len(msgs[i].p)) > cfg.maxSize {
			report("message %d of %d bytes exceeds MaxMessageSize", i, len(msgs[i].p))
		}
	}
	k := 0
	for _, f := range frames {
		if f.op != opPong {
			break
		}
		if k >= len(want.pongs) || !bytes.Equal(f.payload, want.pongs[k]) {
			report("unexpected pong %v", f)
		}
		k++
	}
	if k != len(want.pongs) {
		report("%d pongs sent, frames %v", k, frames)
	}
	rest := frames[k:]
	switch want.end {
	case endEOF:
		if len(rest) != 0 {
			report("after the pongs the Conn sent %v; want nothing (input ran out); error %v", rest, err)
		}
	case endFail, endPeerClose:
		if len(rest) != 1 || rest[0].op != opClose || rest[0].closeCode() != want.code {
			report("after the pongs the Conn sent %v; want one close frame with code %d; error %v", rest, want.code, err)
		}
		if want.code == StatusNoStatusRcvd && len(rest[0].payload) != 0 {
			report("an empty close frame answered with %v", rest[0])
		}
	}
	if !errors.Is(err, net.ErrClosed) {
		report("final error %v does not satisfy errors.Is(err, net.ErrClosed)", err)
	}
	switch want.end {
	case endFail:
		var pe *ProtocolError
		if !errors.As(err, &pe) || pe.Code != want.code {
			report("final error %v, want a ProtocolError with %d", err, want.code)
		}
	case endPeerClose:
		if CloseStatus(err) != want.code {
			report("final error %v, want CloseStatus %d", err, want.code)
		}
	}
}

// genConversation builds what a peer might send: mostly valid frames with
// faults of every kind now and then, sometimes cut short.
func genConversation(r *rand.Rand, client bool) []byte {
	peerMasks := !client
	var b []byte
	inMsg := false
	n := 1 + r.IntN(12)
	for range n {
		key := [4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())}
		masked := peerMasks
		if r.IntN(40) == 0 {
			masked = !masked
		}
		var rsv byte
		if r.IntN(40) == 0 {
			rsv = byte(1+r.IntN(7)) << 4
		}
		var payload []byte
		switch r.IntN(4) {
		case 0:
			payload = randomUTF8ish(r)
		case 1:
			payload = textPattern(r.IntN(300))
		case 2:
			payload = pattern(r.IntN(2000), byte(r.Uint32()))
		}
		fin := r.IntN(3) != 0
		var op opcode
		switch {
		case r.IntN(60) == 0:
			op, fin = opcode([]byte{3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}[r.IntN(10)]), true
		case r.IntN(4) == 0:
			switch k := r.IntN(20); {
			case k < 9:
				op, fin = opPing, r.IntN(30) != 0
				payload = payload[:min(len(payload), 125+r.IntN(2)*r.IntN(3))]
			case k < 15:
				op, fin = opPong, true
				payload = payload[:min(len(payload), 125)]
			default:
				op, fin = opClose, true
				codes := append(append([]StatusCode(nil), validCloseCodes...), invalidCloseCodes[:4]...)
				switch r.IntN(8) {
				case 0:
					payload = nil
				case 1:
					payload = []byte{3}
				default:
					reason := randomUTF8ish(r)
					payload = closeBody(codes[r.IntN(len(codes))], string(reason[:min(len(reason), 123)]))
				}
			}
		case inMsg == (r.IntN(30) != 0):
			op = opContinuation
		case r.IntN(2) == 0:
			op = opText
		default:
			op = opBinary
		}
		b = appendFrame(b, fin, rsv, op, masked, key, payload)
		if op <= opBinary {
			inMsg = !fin
		}
	}
	if r.IntN(4) == 0 && len(b) > 0 {
		b = b[:r.IntN(len(b))]
	}
	return b
}

// TestConnMatchesModel holds the Conn to the model on generated
// conversations, every configuration of role, API, chunking and limits.
func TestConnMatchesModel(t *testing.T) {
	r := rand.New(rand.NewPCG(6455, 1))
	runs := 3000
	if testing.Short() {
		runs = 300
	}
	for i := range runs {
		cfg := configFrom(byte(r.Uint32()))
		in := genConversation(r, cfg.client)
		checkAgainstModel(t, cfg, in)
		if t.Failed() {
			t.Fatalf("run %d", i)
		}
	}
}
