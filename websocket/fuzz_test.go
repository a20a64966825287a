package websocket

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

// refHeader decodes a frame header as RFC 6455 §5.2 draws it. state is
// 0 for a header, 1 for too few bytes, 2 for one no valid frame has.
func refHeader(b []byte) (fin bool, rsv, op byte, masked bool, key [4]byte, length uint64, n, state int) {
	if len(b) < 2 {
		return fin, rsv, op, masked, key, 0, 0, 1
	}
	fin, rsv, op, masked = b[0]>>7 == 1, b[0]&0x70, b[0]&0x0F, b[1]>>7 == 1
	length, n = uint64(b[1]&0x7F), 2
	switch length {
	case 126:
		if len(b) < 4 {
			return fin, rsv, op, masked, key, 0, 0, 1
		}
		length, n = uint64(b[2])<<8|uint64(b[3]), 4
		if length < 126 {
			return fin, rsv, op, masked, key, 0, 0, 2
		}
	case 127:
		if len(b) < 10 {
			return fin, rsv, op, masked, key, 0, 0, 1
		}
		length = 0
		for _, c := range b[2:10] {
			length = length<<8 | uint64(c)
		}
		n = 10
		if length>>63 == 1 || length <= 0xFFFF {
			return fin, rsv, op, masked, key, 0, 0, 2
		}
	}
	if masked {
		if len(b) < n+4 {
			return fin, rsv, op, masked, key, 0, 0, 1
		}
		copy(key[:], b[n:n+4])
		n += 4
	}
	return fin, rsv, op, masked, key, length, n, 0
}

func FuzzParseHeader(f *testing.F) {
	for _, v := range frameVectors {
		f.Add(hx(v.wire))
	}
	for _, v := range badHeaderVectors {
		f.Add(hx(v.wire))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := parseHeader(b)
		fin, rsv, op, masked, key, length, rn, state := refHeader(b)
		switch {
		case err != nil:
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Code != StatusProtocolError {
				t.Fatalf("% x: error %v, want a ProtocolError with 1002", b, err)
			}
			if state != 2 {
				t.Fatalf("% x: rejected (%v), but the reference says state %d", b, err, state)
			}
		case n == 0:
			if state != 1 {
				t.Fatalf("% x: incomplete, but the reference says state %d", b, state)
			}
		default:
			if state != 0 || n != rn {
				t.Fatalf("% x: parsed %d bytes, reference state %d n %d", b, n, state, rn)
			}
			if h.fin != fin || h.rsv != rsv || byte(h.op) != op || h.masked != masked || uint64(h.length) != length ||
				(masked && h.key != binary.LittleEndian.Uint32(key[:])) {
				t.Fatalf("% x: %+v, reference fin=%v rsv=%#x op=%#x masked=%v key=% x length=%d", b, h, fin, rsv, op, masked, key, length)
			}
			// Only minimal encodings parse, so encoding gives the same bytes back.
			var out [maxHeaderSize]byte
			if m := putHeader(out[:], h); !bytes.Equal(out[:m], b[:n]) {
				t.Fatalf("% x: putHeader gives % x", b[:n], out[:m])
			}
		}
	})
}

func FuzzClosePayload(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{3})
	f.Add(closeBody(1000, "bye"))
	f.Add(closeBody(1005, ""))
	f.Add(closeBody(4999, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"))
	f.Add(closeBody(1000, "\xff"))
	f.Add(closeBody(2999, "x"))
	f.Fuzz(func(t *testing.T, p []byte) {
		ce, err := parseClosePayload(p)
		var want StatusCode // the failure code the RFC calls for, or 0
		switch {
		case len(p) == 0:
		case len(p) == 1:
			want = StatusProtocolError
		case !validCloseCode(binary.BigEndian.Uint16(p)):
			want = StatusProtocolError
		case !utf8.Valid(p[2:]):
			want = StatusInvalidFramePayloadData
		}
		if want != 0 {
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Code != want {
				t.Fatalf("% x: %v, want a ProtocolError with %d", p, err, want)
			}
			if want == StatusInvalidFramePayloadData && !errors.Is(err, ErrInvalidUTF8) {
				t.Fatalf("% x: %v does not wrap ErrInvalidUTF8", p, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("% x: %v", p, err)
		}
		if len(p) == 0 {
			if ce.Code != StatusNoStatusRcvd || ce.Reason != "" {
				t.Fatalf("empty payload: %+v", ce)
			}
			return
		}
		if ce.Code != StatusCode(binary.BigEndian.Uint16(p)) || ce.Reason != string(p[2:]) {
			t.Fatalf("% x: %+v", p, ce)
		}
		// What was received whole can be sent back, when it fits.
		if err := checkClose(ce.Code, ce.Reason); (err == nil) != (len(p) <= 125) {
			t.Fatalf("checkClose(%d, %d bytes) = %v", ce.Code, len(ce.Reason), err)
		}
		if got := appendClosePayload(nil, ce.Code, ce.Reason); !bytes.Equal(got, p) {
			t.Fatalf("appendClosePayload gives % x, want % x", got, p)
		}
	})
}

// FuzzHandshakeRequest feeds raw bytes to AcceptConn as the opening
// request. It must not panic; what it accepts must be a valid request,
// answered by a valid 101; what it refuses gets an HTTP error.
func FuzzHandshakeRequest(f *testing.F) {
	for _, tc := range handshakeCases {
		f.Add([]byte(tc.request))
	}
	f.Add([]byte(rawRequest(nil, "Sec-WebSocket-Protocol: chat, , x,chat2")))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Origin: http://h\r\n\r\n\x81\x80\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		// Through checkRequest alone.
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return
		}
		u, herr := checkRequest(req)
		if herr == nil {
			if req.Method != http.MethodGet || !req.ProtoAtLeast(1, 1) || req.ProtoMajor != 1 {
				t.Fatalf("accepted %s %s", req.Method, req.Proto)
			}
			if !refHasToken(req.Header, "Upgrade", "websocket") || !refHasToken(req.Header, "Connection", "upgrade") {
				t.Fatalf("accepted without Upgrade/Connection: %v", req.Header)
			}
			v := req.Header.Values("Sec-WebSocket-Version")
			if len(v) != 1 || (v[0] != "13" && v[0] != "8") || u.version != map[string]int{"13": 13, "8": 8}[v[0]] {
				t.Fatalf("accepted version %q as %d", v, u.version)
			}
			keys := req.Header.Values("Sec-WebSocket-Key")
			if k, err := base64.StdEncoding.DecodeString(u.key); len(keys) != 1 || keys[0] != u.key || err != nil || len(k) != 16 {
				t.Fatalf("accepted key %q", keys)
			}
		} else if !errors.Is(herr, ErrBadHandshake) || herr.Status < 400 || herr.Status > 499 {
			t.Fatalf("refusal %v", herr)
		}

		// Through AcceptConn, with the response checked on the wire.
		sc := &scriptConn{in: raw}
		opts := &AcceptOptions{Subprotocols: []string{"chat", "chat2"}, InsecureSkipOriginCheck: true}
		c, _, aerr := AcceptConn(t.Context(), sc, opts)
		resp, rerr := http.ReadResponse(bufio.NewReader(bytes.NewReader(sc.written())), nil)
		if aerr != nil {
			if c != nil {
				t.Fatal("a Conn with an error")
			}
			if errors.Is(aerr, ErrBadHandshake) && (rerr != nil || resp.StatusCode < 400) {
				t.Fatalf("refused (%v) without an error response: %v", aerr, rerr)
			}
			return
		}
		defer c.CloseNow()
		if herr != nil {
			t.Fatalf("AcceptConn accepted what checkRequest refused: %v", herr)
		}
		if rerr != nil || resp.StatusCode != 101 {
			t.Fatalf("accepted, answering %v %v", resp, rerr)
		}
		if got := resp.Header.Get("Sec-WebSocket-Accept"); got != wantAccept(u.key) {
			t.Fatalf("Sec-WebSocket-Accept %q for key %q", got, u.key)
		}
		if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != c.Subprotocol() ||
			p != "" && !refHasToken(req.Header, "Sec-WebSocket-Protocol", p) {
			t.Fatalf("selected %q (Conn says %q), offered %q", p, c.Subprotocol(), req.Header.Values("Sec-WebSocket-Protocol"))
		}
	})
}

// refHasToken looks for token in a comma-separated header field.
func refHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.Trim(t, " \t"), token) {
				return true
			}
		}
	}
	return false
}

// FuzzUTF8: the incremental validator, fed b cut at points chosen by
// seed, agrees with utf8.Valid and rejects in the right piece.
func FuzzUTF8(f *testing.F) {
	for _, v := range utf8Vectors {
		f.Add(uint64(len(v.in)), []byte(v.in))
	}
	f.Fuzz(func(t *testing.T, seed uint64, b []byte) {
		r := rand.New(rand.NewPCG(seed, 0))
		checkIncremental(t, b, splitRandomly(r, b), "fuzz")
		pieces := make([][]byte, len(b))
		for i := range b {
			pieces[i] = b[i : i+1]
		}
		checkIncremental(t, b, pieces, "bytewise")
	})
}

// FuzzConnRead feeds arbitrary bytes from a peer to a Conn (the first
// byte picks role, API, chunking and limits) and holds what it does to
// the reference model: messages, pongs, close frame and error.
func FuzzConnRead(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		cfgByte := byte(r.Uint32())
		in := genConversation(r, configFrom(cfgByte).client)
		f.Add(append([]byte{cfgByte}, in...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 || len(b) > 1<<16 {
			return
		}
		checkAgainstModel(t, configFrom(b[0]), b[1:])
	})
}
