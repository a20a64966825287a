package websocket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

// frameVectors pairs frame headers as they stand on the wire (RFC 6455
// §5.2, with the examples of §5.7) with their decoded form. parseHeader
// must decode every one and putHeader must encode every one.
var frameVectors = []struct {
	name string
	wire string
	h    header
}{
	// RFC 6455 §5.7 examples.
	{"5.7 unmasked text Hello", "81 05", header{fin: true, op: opText, length: 5}},
	{"5.7 masked text Hello", "81 85 37 fa 21 3d", header{fin: true, op: opText, masked: true, key: 0x3d21fa37, length: 5}},
	{"5.7 first fragment Hel", "01 03", header{op: opText, length: 3}},
	{"5.7 last fragment lo", "80 02", header{fin: true, op: opContinuation, length: 2}},
	{"5.7 unmasked ping", "89 05", header{fin: true, op: opPing, length: 5}},
	{"5.7 masked pong", "8a 85 37 fa 21 3d", header{fin: true, op: opPong, masked: true, key: 0x3d21fa37, length: 5}},
	{"5.7 256 bytes binary", "82 7e 01 00", header{fin: true, op: opBinary, length: 256}},
	{"5.7 64KiB binary", "82 7f 00 00 00 00 00 01 00 00", header{fin: true, op: opBinary, length: 65536}},
	// Length boundaries.
	{"length 0", "81 00", header{fin: true, op: opText}},
	{"length 125", "82 7d", header{fin: true, op: opBinary, length: 125}},
	{"length 126", "82 7e 00 7e", header{fin: true, op: opBinary, length: 126}},
	{"length 127", "82 7e 00 7f", header{fin: true, op: opBinary, length: 127}},
	{"length 65535", "82 7e ff ff", header{fin: true, op: opBinary, length: 65535}},
	{"length 65536 masked", "82 ff 00 00 00 00 00 01 00 00 01 02 03 04", header{fin: true, op: opBinary, masked: true, key: 0x04030201, length: 65536}},
	{"length 2^32", "02 7f 00 00 00 01 00 00 00 00", header{op: opBinary, length: 1 << 32}},
	{"largest length", "82 7f 7f ff ff ff ff ff ff ff", header{fin: true, op: opBinary, length: 1<<63 - 1}},
	// Bits that the framing rules, not the parser, judge.
	{"rsv1", "c1 00", header{fin: true, rsv: rsv1, op: opText}},
	{"rsv2", "a1 00", header{fin: true, rsv: rsv2, op: opText}},
	{"rsv3", "91 00", header{fin: true, rsv: rsv3, op: opText}},
	{"reserved opcode 3", "83 00", header{fin: true, op: 3}},
	{"reserved opcode 0xF", "8f 00", header{fin: true, op: 0xF}},
	{"close masked", "88 82 ff 00 ff 00", header{fin: true, op: opClose, masked: true, key: 0x00ff00ff, length: 2}},
	{"every bit", "ff ff 7f ff ff ff ff ff ff ff ff ff ff ff", header{fin: true, rsv: rsvMask, op: 0xF, masked: true, key: 0xffffffff, length: 1<<63 - 1}},
}

// badHeaderVectors are headers no valid frame has (RFC 6455 §5.2: the
// most significant bit of a 64-bit length must be 0, and lengths must be
// encoded in the minimal number of bytes).
var badHeaderVectors = []struct {
	name string
	wire string
	// complete is how many bytes the parser needs to see the fault.
	complete int
}{
	{"16-bit length 0", "82 7e 00 00", 4},
	{"16-bit length 5", "81 7e 00 05", 4},
	{"16-bit length 125", "82 7e 00 7d", 4},
	{"16-bit length 125 masked, key absent", "82 fe 00 7d", 4},
	{"64-bit length 125", "82 7f 00 00 00 00 00 00 00 7d", 10},
	{"64-bit length 126", "82 7f 00 00 00 00 00 00 00 7e", 10},
	{"64-bit length 65535", "82 7f 00 00 00 00 00 00 ff ff", 10},
	{"64-bit length 0", "82 7f 00 00 00 00 00 00 00 00", 10},
	{"64-bit top bit set", "82 7f 80 00 00 00 00 00 00 00", 10},
	{"64-bit all ones", "82 7f ff ff ff ff ff ff ff ff", 10},
	{"64-bit top bit set masked", "82 ff 80 00 00 00 00 01 00 00 01 02 03 04", 10},
}

func TestParseHeaderVectors(t *testing.T) {
	for _, v := range frameVectors {
		t.Run(v.name, func(t *testing.T) {
			wire := hx(v.wire)
			h, n, err := parseHeader(wire)
			if err != nil || n != len(wire) || h != v.h {
				t.Fatalf("parseHeader(% x) = %+v, %d, %v; want %+v, %d, nil", wire, h, n, err, v.h, len(wire))
			}
			// Bytes after the header are not the header's business.
			more := append(append([]byte(nil), wire...), 0xde, 0xad, 0xbe, 0xef, 0x81, 0xff)
			h, n, err = parseHeader(more)
			if err != nil || n != len(wire) || h != v.h {
				t.Fatalf("with trailing bytes: %+v, %d, %v", h, n, err)
			}
			// Every strict prefix is an incomplete header, not an error.
			for i := range len(wire) {
				if _, n, err := parseHeader(wire[:i]); n != 0 || err != nil {
					t.Fatalf("prefix of %d bytes: n=%d err=%v, want 0, nil", i, n, err)
				}
			}
		})
	}
}

func TestPutHeaderVectors(t *testing.T) {
	for _, v := range frameVectors {
		t.Run(v.name, func(t *testing.T) {
			var b [maxHeaderSize + 4]byte
			for i := range b {
				b[i] = 0xAA // putHeader must not depend on what the buffer held
			}
			n := putHeader(b[:maxHeaderSize], v.h)
			if want := hx(v.wire); !bytes.Equal(b[:n], want) {
				t.Fatalf("putHeader(%+v) = % x, want % x", v.h, b[:n], want)
			}
			for _, c := range b[maxHeaderSize:] {
				if c != 0xAA {
					t.Fatal("putHeader wrote past maxHeaderSize")
				}
			}
		})
	}
}

func TestParseHeaderRejects(t *testing.T) {
	for _, v := range badHeaderVectors {
		t.Run(v.name, func(t *testing.T) {
			wire := hx(v.wire)
			_, n, err := parseHeader(wire)
			if err == nil {
				t.Fatalf("parseHeader(% x) accepted it (n=%d)", wire, n)
			}
			expectProtocolError(t, err, StatusProtocolError)
			for i := range v.complete {
				if _, n, err := parseHeader(wire[:i]); n != 0 || err != nil {
					t.Fatalf("prefix of %d bytes: n=%d err=%v, want 0, nil", i, n, err)
				}
			}
			if _, _, err := parseHeader(wire[:v.complete]); err == nil {
				t.Fatalf("fault not seen with the %d bytes that show it", v.complete)
			}
		})
	}
}

// TestPutParseRoundTrip encodes random headers and parses them back.
func TestPutParseRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	lengths := []int64{0, 1, 125, 126, 127, 65535, 65536, 1<<31 - 1, 1 << 40, 1<<63 - 1}
	for range 5000 {
		h := header{
			fin:    r.IntN(2) == 0,
			rsv:    byte(r.IntN(8)) << 4,
			op:     opcode(r.IntN(16)),
			masked: r.IntN(2) == 0,
			length: lengths[r.IntN(len(lengths))],
		}
		if r.IntN(3) == 0 {
			h.length = r.Int64N(1 << 20)
		}
		if h.masked {
			h.key = r.Uint32()
		}
		var b [maxHeaderSize]byte
		n := putHeader(b[:], h)
		if n != frameHeaderLen(int(min(h.length, 1<<40)), h.masked) {
			t.Fatalf("putHeader(%+v) used %d bytes, not the minimal encoding", h, n)
		}
		got, m, err := parseHeader(b[:n])
		if err != nil || m != n || got != h {
			t.Fatalf("round trip of %+v: %+v, %d, %v", h, got, m, err)
		}
	}
}

func TestFrameRulesCheck(t *testing.T) {
	type c struct {
		name  string
		rules frameRules
		h     header
		ok    bool
	}
	d := func(op opcode, fin bool) header { return header{fin: fin, op: op, masked: true, length: 3} }
	cases := []c{
		{"text", frameRules{}, d(opText, true), true},
		{"binary first fragment", frameRules{}, d(opBinary, false), true},
		{"continuation in message", frameRules{inMessage: true}, d(opContinuation, true), true},
		{"ping in message", frameRules{inMessage: true}, d(opPing, true), true},
		{"pong", frameRules{}, d(opPong, true), true},
		{"close", frameRules{}, d(opClose, true), true},
		{"client gets unmasked", frameRules{client: true}, header{fin: true, op: opText}, true},
		{"client gets masked", frameRules{client: true}, d(opText, true), false},
		{"server gets unmasked", frameRules{}, header{fin: true, op: opText}, false},
		{"continuation outside message", frameRules{}, d(opContinuation, true), false},
		{"text inside message", frameRules{inMessage: true}, d(opText, true), false},
		{"binary inside message", frameRules{inMessage: true}, d(opBinary, false), false},
		{"fragmented ping", frameRules{}, d(opPing, false), false},
		{"fragmented close", frameRules{}, d(opClose, false), false},
		{"ping of 126", frameRules{}, header{fin: true, op: opPing, masked: true, length: 126}, false},
		{"ping of 125", frameRules{}, header{fin: true, op: opPing, masked: true, length: 125}, true},
		{"rsv1 on text", frameRules{}, header{fin: true, op: opText, masked: true, rsv: rsv1}, false},
		{"rsv1 on text, negotiated", frameRules{rsvOK: rsv1}, header{fin: true, op: opText, masked: true, rsv: rsv1}, true},
		{"rsv1 on ping, negotiated", frameRules{rsvOK: rsv1}, header{fin: true, op: opPing, masked: true, rsv: rsv1}, false},
		{"rsv1 on continuation, negotiated", frameRules{rsvOK: rsv1, inMessage: true}, header{fin: true, op: opContinuation, masked: true, rsv: rsv1}, false},
		{"rsv2 on binary", frameRules{}, header{fin: true, op: opBinary, masked: true, rsv: rsv2}, false},
		{"rsv3 on close", frameRules{}, header{fin: true, op: opClose, masked: true, rsv: rsv3}, false},
	}
	for op := opcode(3); op <= 0xF; op++ {
		if op == opClose || op == opPing || op == opPong {
			continue
		}
		cases = append(cases, c{fmt.Sprintf("reserved opcode %#x", byte(op)), frameRules{}, d(op, true), false})
	}
	for _, tc := range cases {
		err := tc.rules.check(tc.h)
		if (err == nil) != tc.ok {
			t.Errorf("%s: check = %v, want ok=%v", tc.name, err, tc.ok)
			continue
		}
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Code != StatusProtocolError {
				t.Errorf("%s: %v, want a ProtocolError with 1002", tc.name, err)
			}
		}
	}
}

// maskRef is RFC 6455 §5.3 to the letter: octet i is XORed with key octet
// i MOD 4.
func maskRef(key [4]byte, pos int, b []byte) {
	for i := range b {
		b[i] ^= key[(pos+i)%4]
	}
}

func TestMaskRFCExample(t *testing.T) {
	// §5.7: "Hello" masked with 37 fa 21 3d.
	b := hx("7f 9f 4d 51 58")
	mask(0x3d21fa37, 0, b)
	if string(b) != "Hello" {
		t.Fatalf("unmasked to %q", b)
	}
}

func TestMaskMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	buf := make([]byte, 300)
	for length := range 140 {
		for pos := range 4 {
			for off := range 8 { // unaligned slices too
				kb := [4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())}
				key := uint32(kb[0]) | uint32(kb[1])<<8 | uint32(kb[2])<<16 | uint32(kb[3])<<24
				for i := range buf {
					buf[i] = byte(r.Uint32())
				}
				want := append([]byte(nil), buf...)
				maskRef(kb, pos, want[off:off+length])
				got := append([]byte(nil), buf...)
				next := mask(key, pos, got[off:off+length])
				if !bytes.Equal(got, want) {
					t.Fatalf("len %d pos %d off %d: mask differs from the reference", length, pos, off)
				}
				if next != (pos+length)%4 {
					t.Fatalf("len %d pos %d: returned %d, want %d", length, pos, next, (pos+length)%4)
				}
			}
		}
	}
	// Masking in pieces equals masking at once.
	data := pattern(1000, 3)
	whole := append([]byte(nil), data...)
	mask(0x01020304, 0, whole)
	for trial := range 200 {
		piece := append([]byte(nil), data...)
		pos := 0
		for i := 0; i < len(piece); {
			n := min(1+r.IntN(70), len(piece)-i)
			pos = mask(0x01020304, pos, piece[i:i+n])
			i += n
		}
		if !bytes.Equal(piece, whole) {
			t.Fatalf("trial %d: masking in pieces differs", trial)
		}
	}
}

// TestPayloadLengths sends frames at each length boundary both ways and
// checks what the Conn reads and how it encodes the length (RFC 6455
// §5.2: the minimal number of bytes).
func TestPayloadLengths(t *testing.T) {
	sizes := []int{0, 1, 125, 126, 127, 128, 65535, 65536, 65537, 200000}
	for _, tr := range transports {
		for _, client := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/client=%v", tr, client), func(t *testing.T) {
				c, p := newTestConn(t, tr, client, ConnOptions{})
				reads := startReader(t, c)
				for _, n := range sizes {
					for _, typ := range []MessageType{MessageBinary, MessageText} {
						payload := pattern(n, byte(n))
						if typ == MessageText {
							payload = textPattern(n)
						}
						// Peer to Conn.
						done := p.sendAsync(p.frame(true, 0, opcode(typ), payload))
						expectMsg(t, reads, typ, payload)
						if err := <-done; err != nil {
							t.Fatal(err)
						}
						// Conn to peer.
						if err := c.Write(context.Background(), typ, payload); err != nil {
							t.Fatal(err)
						}
						f := p.expectFrame(t, opcode(typ), payload)
						if want := frameHeaderLen(n, client); len(f.hdr) != want {
							t.Fatalf("%d bytes sent with a header of %d bytes (% x), want %d", n, len(f.hdr), f.hdr, want)
						}
					}
				}
			})
		}
	}
}

// TestMaxMessageSize checks that a message over MaxMessageSize fails the
// connection with 1009 as soon as its header shows it: the peer sends the
// header alone.
func TestMaxMessageSize(t *testing.T) {
	const limit = 1000
	cases := []struct {
		name   string
		frames func(p *peer) []byte // everything the peer sends
	}{
		{"single frame header only", func(p *peer) []byte {
			return p.frame(true, 0, opBinary, make([]byte, limit+1))[:p.hdrLen(limit+1)]
		}},
		{"single text frame header only", func(p *peer) []byte {
			return p.frame(true, 0, opText, make([]byte, limit+1))[:p.hdrLen(limit+1)]
		}},
		{"huge 64-bit length", func(p *peer) []byte {
			return p.rawHeader(0x82, 127, 0x00, 0x00, 0x00, 0x10, 0, 0, 0, 0)
		}},
		{"fragments adding up, last header only", func(p *peer) []byte {
			b := p.frame(false, 0, opBinary, make([]byte, 600))
			return append(b, p.frame(true, 0, opContinuation, make([]byte, 401))[:p.hdrLen(401)]...)
		}},
		{"fragments adding up, first fragment not final", func(p *peer) []byte {
			b := p.frame(false, 0, opText, bytes.Repeat([]byte("a"), 1000))
			return append(b, p.frame(false, 0, opContinuation, []byte("b"))[:p.hdrLen(1)]...)
		}},
	}
	for _, tr := range transports {
		for _, tc := range cases {
			t.Run(string(tr)+"/"+tc.name, func(t *testing.T) {
				c, p := newTestConn(t, tr, false, ConnOptions{MaxMessageSize: limit})
				reads := startReader(t, c)
				// A message of exactly the limit passes.
				ok := p.sendAsync(p.frame(true, 0, opBinary, make([]byte, limit)))
				expectMsg(t, reads, MessageBinary, make([]byte, limit))
				<-ok
				w := p.sendAsync(tc.frames(p))
				p.expectFail(t, StatusMessageTooBig)
				expectProtocolError(t, expectReadErr(t, reads), StatusMessageTooBig)
				<-w
			})
		}
	}
}

func TestMaxFragments(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) { testMaxFragments(t, tr) })
	}
}

func testMaxFragments(t *testing.T, tr transport) {
	c, p := newTestConn(t, tr, false, ConnOptions{MaxFragments: 4})
	reads := startReader(t, c)
	// Four fragments are fine.
	var b []byte
	for i := range 4 {
		op := opContinuation
		if i == 0 {
			op = opText
		}
		b = append(b, p.frame(i == 3, 0, op, []byte("ab"))...)
	}
	sent := p.sendAsync(b)
	expectMsg(t, reads, MessageText, []byte("abababab"))
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	// A fifth, even empty, is not.
	b = b[:0]
	for i := range 5 {
		op := opContinuation
		if i == 0 {
			op = opBinary
		}
		b = append(b, p.frame(false, 0, op, nil)...)
	}
	sent = p.sendAsync(b)
	p.expectFail(t, StatusMessageTooBig)
	expectProtocolError(t, expectReadErr(t, reads), StatusMessageTooBig)
	<-sent
}

// chunkedScript is a conversation with every kind of frame. The peer
// sends it in pieces as small as one byte.
func chunkedScript(p *peer) (wire []byte, msgs []readResult, pongs [][]byte) {
	add := func(fin bool, op opcode, payload string) {
		wire = append(wire, p.frame(fin, 0, op, []byte(payload))...)
	}
	add(true, opText, "hello")
	msgs = append(msgs, readResult{typ: MessageText, p: []byte("hello")})
	// "κόσμε" split inside characters, with control frames in between.
	add(false, opText, "\xce")
	add(true, opPing, "ping-1")
	add(false, opContinuation, "\xba\xe1\xbd")
	add(true, opPong, "unsolicited")
	add(false, opContinuation, "\xb9\xcf\x83\xce\xbc\xce")
	add(true, opContinuation, "\xb5")
	msgs = append(msgs, readResult{typ: MessageText, p: []byte("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5")})
	pongs = append(pongs, []byte("ping-1"))
	big := pattern(70000, 9)
	add(true, opBinary, string(big))
	msgs = append(msgs, readResult{typ: MessageBinary, p: big})
	add(false, opBinary, "")
	add(true, opContinuation, "")
	msgs = append(msgs, readResult{typ: MessageBinary, p: []byte{}})
	add(true, opPing, string(pattern(125, 1)))
	pongs = append(pongs, pattern(125, 1))
	add(true, opText, string(textPattern(300)))
	msgs = append(msgs, readResult{typ: MessageText, p: textPattern(300)})
	return wire, msgs, pongs
}

// TestChunkedReading feeds the Conn a conversation in small pieces: from a
// peer writing one byte at a time over net.Pipe or an HTTP/2 stream, and
// through a net.Conn that returns at most n bytes per Read.
func TestChunkedReading(t *testing.T) {
	type variant struct {
		name   string
		setup  func(t *testing.T) (*Conn, *peer)
		step   int // bytes per peer write
		reader bool
	}
	wrapTCP := func(max int, opts ConnOptions) func(t *testing.T) (*Conn, *peer) {
		return func(t *testing.T) (*Conn, *peer) {
			a, b := netPair(t, overTCP)
			br := bufioReader(b)
			ch := acceptOn(byteConn{a, max}, opts)
			if _, err := io.WriteString(b, testRequest); err != nil {
				t.Fatal(err)
			}
			readResponse(t, br)
			r := <-ch
			if r.err != nil {
				t.Fatal(r.err)
			}
			p := newPeer(overTCP, b, br, true)
			t.Cleanup(func() {
				r.c.CloseNow()
				p.closePeer()
				p.checkViolations(t)
			})
			return r.c, p
		}
	}
	pipe := func(opts ConnOptions) func(t *testing.T) (*Conn, *peer) {
		return func(t *testing.T) (*Conn, *peer) { return newTestConn(t, overPipe, false, opts) }
	}
	h2 := func(opts ConnOptions) func(t *testing.T) (*Conn, *peer) {
		return func(t *testing.T) (*Conn, *peer) { return newTestConn(t, overH2, false, opts) }
	}
	small := ConnOptions{ReadBufferSize: 1}
	variants := []variant{
		{"pipe one byte per write", pipe(ConnOptions{}), 1, false},
		{"pipe one byte per write, small buffer", pipe(small), 1, false},
		{"pipe one byte per write, Reader", pipe(small), 1, true},
		{"pipe 3 bytes per write", pipe(small), 3, false},
		{"tcp one byte per read", wrapTCP(1, ConnOptions{}), 0, false},
		{"tcp 7 bytes per read, small buffer", wrapTCP(7, small), 0, false},
		{"tcp one byte per read, Reader", wrapTCP(1, small), 0, true},
		{"h2 one byte per write, small buffer", h2(small), 1, false},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			c, p := v.setup(t)
			wire, msgs, pongs := chunkedScript(p)
			wire = append(wire, p.frame(true, 0, opClose, closeBody(StatusGoingAway, "bye"))...)
			sent := make(chan error, 1)
			go func() {
				if v.step == 0 {
					sent <- p.write(wire)
					return
				}
				for i := 0; i < len(wire); i += v.step {
					if err := p.write(wire[i:min(i+v.step, len(wire))]); err != nil {
						sent <- err
						return
					}
				}
				sent <- nil
			}()
			ctx := context.Background()
			for i, want := range msgs {
				var typ MessageType
				var got []byte
				var err error
				if v.reader {
					var r io.Reader
					typ, r, err = c.Reader(ctx)
					if err == nil {
						got, err = readAllSmall(r, 5)
					}
				} else {
					typ, got, err = c.Read(ctx)
				}
				if err != nil || typ != want.typ || !bytes.Equal(got, want.p) {
					t.Fatalf("message %d: %v %q %v, want %v %q", i, typ, trunc(got), err, want.typ, trunc(want.p))
				}
			}
			_, _, err := c.Read(ctx)
			if CloseStatus(err) != StatusGoingAway {
				t.Fatalf("Read after the close frame: %v, want CloseStatus 1001", err)
			}
			for _, want := range pongs {
				p.expectFrame(t, opPong, want)
			}
			p.expectClose(t, StatusGoingAway)
			p.expectEOF(t, eofWait)
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// readAllSmall reads r to its end in reads of at most n bytes.
func readAllSmall(r io.Reader, n int) ([]byte, error) {
	var out []byte
	buf := make([]byte, n)
	for {
		k, err := r.Read(buf)
		out = append(out, buf[:k]...)
		if err == io.EOF {
			if out == nil {
				out = []byte{}
			}
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// TestClientMasksEveryFrameFreshly checks a client's masking keys vary
// (RFC 6455 §5.3: a fresh, unpredictable key for every frame).
func TestClientMasksEveryFrameFreshly(t *testing.T) {
	c, p := newTestConn(t, overTCP, true, ConnOptions{})
	keys := map[[4]byte]bool{}
	for i := range 64 {
		if err := c.Write(context.Background(), MessageBinary, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		f := p.expectFrame(t, opBinary, []byte{byte(i)})
		keys[f.key] = true
	}
	if len(keys) < 60 {
		t.Fatalf("64 frames used only %d masking keys", len(keys))
	}
}

// TestMaxFragmentsNegative: a negative MaxFragments removes the bound,
// as a negative limit does everywhere in the module.
func TestMaxFragmentsNegative(t *testing.T) {
	c, p := newTestConn(t, overTCP, false, ConnOptions{MaxFragments: -1})
	reads := startReader(t, c)
	n := DefaultMaxFragments + 2
	b := make([]byte, 0, 2*n)
	for i := range n {
		op := opContinuation
		if i == 0 {
			op = opBinary
		}
		b = append(b, p.frame(i == n-1, 0, op, nil)...)
	}
	p.send(t, b)
	expectMsg(t, reads, MessageBinary, nil)
}
