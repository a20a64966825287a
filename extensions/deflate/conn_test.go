package deflate_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/flate"

	"github.com/realtime-go/realtime/extensions"
	"github.com/realtime-go/realtime/extensions/deflate"
	"github.com/realtime-go/realtime/websocket"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// server accepts WebSocket connections on a loopback listener with opts
// and hands them to the test.
type server struct {
	ln    net.Listener
	conns chan *websocket.Conn
	errs  chan error
	done  chan struct{}
}

func startServer(t *testing.T, opts *websocket.AcceptOptions) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln, conns: make(chan *websocket.Conn, 128), errs: make(chan error, 128), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			c, _, err := websocket.AcceptConn(context.Background(), nc, opts)
			if err != nil {
				s.errs <- err
				continue
			}
			s.conns <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-s.done
		close(s.conns)
		for c := range s.conns {
			c.CloseNow()
		}
	})
	return s
}

func (s *server) next(t *testing.T) *websocket.Conn {
	t.Helper()
	select {
	case c := <-s.conns:
		t.Cleanup(func() { c.CloseNow() })
		return c
	case err := <-s.errs:
		t.Fatalf("server: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server: no connection")
	}
	return nil
}

func dial(t *testing.T, s *server, opts *websocket.ClientOptions) (*websocket.Conn, error) {
	t.Helper()
	nc, err := net.Dial("tcp", s.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	u := &url.URL{Scheme: "ws", Host: s.ln.Addr().String(), Path: "/"}
	c, _, err := websocket.NewClient(ctxT(t), nc, u, opts)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.CloseNow() })
	return c, nil
}

// connPair connects a client to a server, each with its extension
// options, and returns both ends.
func connPair(t *testing.T, so, co *deflate.Options, soc, coc websocket.ConnOptions) (srv, cli *websocket.Conn) {
	t.Helper()
	s := startServer(t, &websocket.AcceptOptions{ConnOptions: soc, Extensions: []extensions.Extension{deflate.New(so)}})
	c, err := dial(t, s, &websocket.ClientOptions{ConnOptions: coc, Extensions: []extensions.Extension{deflate.New(co)}})
	if err != nil {
		t.Fatal(err)
	}
	return s.next(t), c
}

// echo echoes messages on c until it fails, alternating whole-message and
// streamed reads and writes.
func echo(c *websocket.Conn) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx := context.Background()
		for i := 0; ; i++ {
			if i%2 == 0 {
				typ, p, err := c.Read(ctx)
				if err != nil {
					done <- err
					return
				}
				if err := c.Write(ctx, typ, p); err != nil {
					done <- err
					return
				}
				continue
			}
			typ, r, err := c.Reader(ctx)
			if err != nil {
				done <- err
				return
			}
			w, err := c.Writer(ctx, typ)
			if err != nil {
				done <- err
				return
			}
			if _, err := io.CopyBuffer(w, r, make([]byte, 1000)); err != nil {
				done <- err
				return
			}
			if err := w.Close(); err != nil {
				done <- err
				return
			}
		}
	}()
	return done
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func textOf(n, seed int) []byte {
	words := []string{"alpha ", "beta ", "gamma ", "délta ", "epsilon ", "ζeta ", "eta ", "θ ", "iota ", "kappa\n"}
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		b.WriteString(words[(i*7+seed+i/13)%len(words)])
	}
	p := b.Bytes()[:n]
	for len(p) > 0 && !isValidUTF8(p) {
		p[len(p)-1] = 'x'
	}
	return p
}

func isValidUTF8(p []byte) bool { return strings.ToValidUTF8(string(p), "\uFFFD") == string(p) }

type testMsg struct {
	typ  websocket.MessageType
	data []byte
}

// exchange sends every message from cli to an echoing srv and checks what
// comes back, using each API in turn.
func exchange(t *testing.T, srv, cli *websocket.Conn, msgs []testMsg) {
	t.Helper()
	echoDone := echo(srv)
	ctx := ctxT(t)
	for i, m := range msgs {
		var err error
		switch i % 3 {
		case 0:
			err = cli.Write(ctx, m.typ, m.data)
		case 1:
			var w io.WriteCloser
			if w, err = cli.Writer(ctx, m.typ); err == nil {
				for p := m.data; len(p) > 0 && err == nil; {
					k := min(len(p), 1+len(p)/3)
					_, err = w.Write(p[:k])
					p = p[k:]
				}
				if cerr := w.Close(); err == nil {
					err = cerr
				}
			}
		case 2:
			err = cli.WriteUncompressed(ctx, m.typ, m.data)
		}
		if err != nil {
			t.Fatalf("message %d: write: %v", i, err)
		}
		var typ websocket.MessageType
		var got []byte
		if i%2 == 0 {
			typ, got, err = cli.Read(ctx)
		} else {
			var r io.Reader
			if typ, r, err = cli.Reader(ctx); err == nil {
				got, err = io.ReadAll(r)
			}
		}
		if err != nil {
			t.Fatalf("message %d (%d bytes): read: %v", i, len(m.data), err)
		}
		if typ != m.typ || !bytes.Equal(got, m.data) {
			t.Fatalf("message %d: got type %v, %d bytes; want %v, %d bytes", i, typ, len(got), m.typ, len(m.data))
		}
	}
	if err := cli.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := <-echoDone; websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("server: %v", err)
	}
}

// TestModes runs messages both ways in every mode: context takeover on
// and off on each side, and every window size from 9 to 15 bits on each
// side, each set by one side's own option or by the other's request.
func TestModes(t *testing.T) {
	big := []testMsg{{websocket.MessageBinary, randomBytes(1 << 20)}, {websocket.MessageText, textOf(1<<20, 3)}}
	for _, sNoCtx := range []bool{false, true} {
		for _, cNoCtx := range []bool{false, true} {
			for sBits := 9; sBits <= 15; sBits++ {
				for cBits := 9; cBits <= 15; cBits++ {
					name := fmt.Sprintf("server-noctx=%v/client-noctx=%v/server-bits=%d/client-bits=%d", sNoCtx, cNoCtx, sBits, cBits)
					t.Run(name, func(t *testing.T) {
						t.Parallel()
						byOwn := (sBits+cBits)%2 == 0 // set by one's own options or by the peer's request
						so := &deflate.Options{Threshold: -1}
						co := &deflate.Options{Threshold: 64}
						want := []string{"permessage-deflate"}
						if sNoCtx {
							if byOwn {
								so.NoContextTakeover = true
							} else {
								co.RequestNoContextTakeover = true
							}
							want = append(want, "server_no_context_takeover")
						}
						if cNoCtx {
							if byOwn {
								co.NoContextTakeover = true
							} else {
								so.RequestNoContextTakeover = true
							}
							want = append(want, "client_no_context_takeover")
						}
						if sBits < 15 {
							if byOwn {
								so.MaxWindowBits = sBits
							} else {
								co.RequestMaxWindowBits = sBits
							}
							want = append(want, fmt.Sprintf("server_max_window_bits=%d", sBits))
						}
						if cBits < 15 {
							if byOwn {
								co.MaxWindowBits = cBits // offered, not echoed
							} else {
								so.RequestMaxWindowBits = cBits
								want = append(want, fmt.Sprintf("client_max_window_bits=%d", cBits))
							}
						}
						srv, cli := connPair(t, so, co, websocket.ConnOptions{}, websocket.ConnOptions{})
						if w := strings.Join(want, "; "); srv.Extensions() != w || cli.Extensions() != w {
							t.Fatalf("negotiated %q (server) and %q (client), want %q", srv.Extensions(), cli.Extensions(), w)
						}
						var msgs []testMsg
						for i, n := range []int{0, 1, 63, 64, 200, 200, 1000, 5000, 70000, 70000, 3, 130000} {
							typ := websocket.MessageBinary
							data := randomBytes(n)
							if i%2 == 0 {
								typ, data = websocket.MessageText, textOf(n, i)
							}
							msgs = append(msgs, testMsg{typ, data})
						}
						msgs = append(msgs, msgs[4], msgs[6], msgs[7]) // repeats reach back over messages
						if sBits == cBits {
							msgs = append(msgs, big...)
						}
						exchange(t, srv, cli, msgs)
					})
				}
			}
		}
	}
}

// Windows of 8 bits: ours honours them exactly, and a peer told 8 may use 9.
func TestWindow8(t *testing.T) {
	for _, tt := range []struct{ so, co deflate.Options }{
		{deflate.Options{MaxWindowBits: 8, RequestMaxWindowBits: 8}, deflate.Options{}},
		{deflate.Options{}, deflate.Options{MaxWindowBits: 8, RequestMaxWindowBits: 8}},
		{deflate.Options{NoContextTakeover: true, MaxWindowBits: 8}, deflate.Options{NoContextTakeover: true, MaxWindowBits: 8}},
	} {
		srv, cli := connPair(t, &tt.so, &tt.co, websocket.ConnOptions{}, websocket.ConnOptions{})
		if !strings.Contains(srv.Extensions(), "window_bits=8") {
			t.Fatalf("negotiated %q", srv.Extensions())
		}
		msgs := []testMsg{{websocket.MessageText, textOf(3000, 1)}, {websocket.MessageText, textOf(3000, 1)}, {websocket.MessageBinary, randomBytes(100000)}}
		exchange(t, srv, cli, msgs)
	}
	// A peer limited to 8 bits that compresses with a 9-bit window, as
	// zlib does: the history kept covers it.
	s, _ := pair(t, &deflate.Options{RequestMaxWindowBits: 8}, nil)
	first := randomBytes(2000)
	if got, err := decode(s, compressRaw(first), extensions.RSV1, nil); err != nil || !bytes.Equal(got, first) {
		t.Fatalf("first message: %v", err)
	}
	piece := first[1700:1900] // 300 bytes back from the end of the history
	var buf bytes.Buffer
	fw, _ := flate.NewWriterDict(&buf, 9, first)
	fw.Write(piece)
	fw.Flush()
	wire := buf.Bytes()[:buf.Len()-4]
	if len(wire) > 20 {
		t.Fatalf("the piece compressed to %d bytes: no back-reference", len(wire))
	}
	if got, err := decode(s, wire, extensions.RSV1, nil); err != nil || !bytes.Equal(got, piece) {
		t.Fatalf("second message: %v", err)
	}
}

// countingExt counts the messages its sessions compress.
type countingExt struct {
	extensions.Extension
	n *atomic.Int64
}

type countingSession struct {
	extensions.Session
	n *atomic.Int64
}

type countingSharedSession struct {
	countingSession
	extensions.SharedEncoder
}

func (s countingSession) Encode(dst io.Writer, m extensions.Message) (io.WriteCloser, byte, error) {
	w, rsv, err := s.Session.Encode(dst, m)
	if w != nil {
		s.n.Add(1)
	}
	return w, rsv, err
}

func (e countingExt) ServerNegotiate(offers []extensions.Offer) (extensions.Offer, extensions.Session, bool) {
	resp, s, ok := e.Extension.ServerNegotiate(offers)
	if !ok {
		return resp, s, ok
	}
	cs := countingSession{s, e.n}
	if se, shared := s.(extensions.SharedEncoder); shared {
		return resp, countingSharedSession{cs, se}, true
	}
	return resp, cs, true
}

// TestPreparedShared broadcasts prepared messages to 100 connections: the
// server compresses each once per set of parameters when it does not take
// over context, and once per connection when it does.
func TestPreparedShared(t *testing.T) {
	for _, tt := range []struct {
		noCtx bool
		want  int64
	}{{true, 2}, {false, 100}} {
		t.Run(fmt.Sprintf("noctx=%v", tt.noCtx), func(t *testing.T) {
			var n atomic.Int64
			ext := countingExt{deflate.New(&deflate.Options{NoContextTakeover: tt.noCtx}), &n}
			s := startServer(t, &websocket.AcceptOptions{Extensions: []extensions.Extension{ext}})
			var clients, servers []*websocket.Conn
			for i := range 100 {
				co := &deflate.Options{}
				if i%2 == 1 {
					co.RequestMaxWindowBits = 10 // a second parameter set
				}
				c, err := dial(t, s, &websocket.ClientOptions{Extensions: []extensions.Extension{deflate.New(co)}})
				if err != nil {
					t.Fatal(err)
				}
				clients = append(clients, c)
				servers = append(servers, s.next(t))
			}
			ctx := ctxT(t)
			data := textOf(4000, 9)
			pm, err := websocket.NewPreparedMessage(websocket.MessageText, data)
			if err != nil {
				t.Fatal(err)
			}
			small, _ := websocket.NewPreparedMessage(websocket.MessageBinary, []byte("tiny")) // under the threshold
			var wg sync.WaitGroup
			for _, c := range servers {
				wg.Go(func() {
					if err := c.WritePrepared(ctx, pm); err != nil {
						t.Error(err)
					}
					if err := c.WritePrepared(ctx, small); err != nil {
						t.Error(err)
					}
				})
			}
			for i, c := range clients {
				for _, want := range [][]byte{data, []byte("tiny")} {
					_, got, err := c.Read(ctx)
					if err != nil || !bytes.Equal(got, want) {
						t.Fatalf("client %d: %v, %d bytes", i, err, len(got))
					}
				}
			}
			wg.Wait()
			if got := n.Load(); got != tt.want {
				t.Fatalf("%d compressions for 100 connections, want %d", got, tt.want)
			}
			// Later messages on a shared connection still decode.
			if err := servers[0].Write(ctx, websocket.MessageText, data); err != nil {
				t.Fatal(err)
			}
			if _, got, err := clients[0].Read(ctx); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("after broadcast: %v", err)
			}
		})
	}
}

// rawPeer is a client that speaks frames by hand, to see and send what
// the websocket package never would.
type rawPeer struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, s *server, extHeader string) (*rawPeer, string) {
	t.Helper()
	nc, err := net.Dial("tcp", s.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	req := "GET / HTTP/1.1\r\nHost: " + s.ln.Addr().String() + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	if extHeader != "" {
		req += "Sec-WebSocket-Extensions: " + extHeader + "\r\n"
	}
	if _, err := io.WriteString(nc, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	return &rawPeer{t, nc, br}, resp.Header.Get("Sec-WebSocket-Extensions")
}

func (p *rawPeer) writeFrame(fin bool, rsv, op byte, payload []byte) {
	b := []byte{rsv | op, 0x80}
	if fin {
		b[0] |= 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b[1] |= byte(n)
	case n < 1<<16:
		b[1] |= 126
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b[1] |= 127
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	key := [4]byte{1, 2, 3, 4}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	if _, err := p.nc.Write(b); err != nil {
		p.t.Fatal(err)
	}
}

type rawFrame struct {
	fin     bool
	rsv, op byte
	payload []byte
}

func (p *rawPeer) readFrame() (rawFrame, error) {
	var h [2]byte
	if _, err := io.ReadFull(p.br, h[:]); err != nil {
		return rawFrame{}, err
	}
	f := rawFrame{fin: h[0]&0x80 != 0, rsv: h[0] & 0x70, op: h[0] & 0x0f}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		io.ReadFull(p.br, e[:])
		n = uint64(binary.BigEndian.Uint16(e[:]))
	case 127:
		var e [8]byte
		io.ReadFull(p.br, e[:])
		n = binary.BigEndian.Uint64(e[:])
	}
	f.payload = make([]byte, n)
	_, err := io.ReadFull(p.br, f.payload)
	return f, err
}

// closeCode reads frames until a close frame and returns its code.
func (p *rawPeer) closeCode() int {
	for {
		f, err := p.readFrame()
		if err != nil {
			p.t.Errorf("no close frame: %v", err)
			return 0
		}
		if f.op == 8 {
			p.nc.Close() // the server need not wait for our close frame
			if len(f.payload) < 2 {
				return 1005
			}
			return int(binary.BigEndian.Uint16(f.payload))
		}
	}
}

func compressRaw(p []byte) []byte {
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, 9)
	fw.Write(p)
	fw.Flush()
	return buf.Bytes()[:buf.Len()-4]
}

// serverReads runs the server's reads of one connection and reports
// what they returned.
func serverReads(c *websocket.Conn) <-chan error {
	done := make(chan error, 1)
	go func() {
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				done <- err
				return
			}
		}
	}()
	return done
}

func protocolCode(err error) websocket.StatusCode {
	var pe *websocket.ProtocolError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return -1
}

func TestRSVRules(t *testing.T) {
	ext := []extensions.Extension{deflate.New(nil)}
	compressed := compressRaw([]byte("hello hello hello"))

	t.Run("RSV1 on a continuation frame", func(t *testing.T) {
		s := startServer(t, &websocket.AcceptOptions{Extensions: ext})
		p, _ := dialRaw(t, s, "permessage-deflate")
		done := serverReads(s.next(t))
		p.writeFrame(false, 0x40, 1, compressed[:5])
		p.writeFrame(true, 0x40, 0, compressed[5:])
		if code := p.closeCode(); code != 1002 {
			t.Fatalf("close code %d, want 1002", code)
		}
		if err := <-done; protocolCode(err) != 1002 {
			t.Fatalf("server: %v", err)
		}
	})
	t.Run("RSV1 not negotiated", func(t *testing.T) {
		s := startServer(t, &websocket.AcceptOptions{Extensions: ext})
		p, resp := dialRaw(t, s, "") // no offer
		if resp != "" {
			t.Fatalf("negotiated %q without an offer", resp)
		}
		done := serverReads(s.next(t))
		p.writeFrame(true, 0x40, 1, compressed)
		if code := p.closeCode(); code != 1002 {
			t.Fatalf("close code %d, want 1002", code)
		}
		<-done
	})
	for _, tc := range []struct {
		name    string
		rsv, op byte
		payload []byte
		code    int
	}{
		{"RSV1 on a control frame", 0x40, 9, []byte("ping"), 1002},
		{"RSV2 with deflate", 0x20, 1, []byte("x"), 1002},
		{"corrupt data", 0x40, 2, []byte{0xff, 0xff, 0xff, 0xff}, 1007},
		{"invalid UTF-8 inside compressed text", 0x40, 1, compressRaw([]byte("ok \xff\xfe")), 1007},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, &websocket.AcceptOptions{Extensions: ext})
			p, _ := dialRaw(t, s, "permessage-deflate")
			done := serverReads(s.next(t))
			p.writeFrame(true, tc.rsv, tc.op, tc.payload)
			if code := p.closeCode(); code != tc.code {
				t.Fatalf("close code %d, want %d", code, tc.code)
			}
			<-done
		})
	}
	t.Run("fragmented compressed message", func(t *testing.T) {
		s := startServer(t, &websocket.AcceptOptions{Extensions: ext})
		p, _ := dialRaw(t, s, "permessage-deflate")
		c := s.next(t)
		msg := textOf(10000, 4)
		wire := compressRaw(msg)
		p.writeFrame(false, 0x40, 1, wire[:1])
		p.writeFrame(false, 0, 0, nil)
		p.writeFrame(false, 0, 0, wire[1:100])
		p.writeFrame(true, 0, 0, wire[100:])
		p.writeFrame(true, 0, 1, []byte("plain after")) // RSV1 clear: not compressed
		ctx := ctxT(t)
		for _, want := range [][]byte{msg, []byte("plain after")} {
			if _, got, err := c.Read(ctx); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%v, %d bytes", err, len(got))
			}
		}
	})
}

// TestServerFrames checks the RSV1 bit on what the server sends.
func TestServerFrames(t *testing.T) {
	s := startServer(t, &websocket.AcceptOptions{Extensions: []extensions.Extension{deflate.New(nil)}, ConnOptions: websocket.ConnOptions{WriteBufferSize: 1024}})
	p, resp := dialRaw(t, s, "permessage-deflate; client_max_window_bits")
	if resp != "permessage-deflate" {
		t.Fatalf("response %q", resp)
	}
	c := s.next(t)
	ctx := ctxT(t)
	big := randomBytes(5000)
	c.Write(ctx, websocket.MessageBinary, big)
	c.Write(ctx, websocket.MessageText, []byte("short"))
	c.WriteUncompressed(ctx, websocket.MessageBinary, big)
	big2 := randomBytes(5000)
	w, _ := c.Writer(ctx, websocket.MessageBinary)
	w.Write(big2)
	w.Close()

	inflate := func(p []byte) []byte {
		r := flate.NewReader(io.MultiReader(bytes.NewReader(p), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff})))
		out, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	f, _ := p.readFrame()
	if !f.fin || f.rsv != 0x40 || f.op != 2 || !bytes.Equal(inflate(f.payload), big) {
		t.Fatalf("compressed message: fin=%v rsv=%#x op=%d", f.fin, f.rsv, f.op)
	}
	if f, _ = p.readFrame(); f.rsv != 0 || string(f.payload) != "short" {
		t.Fatalf("message under the threshold: rsv=%#x %q", f.rsv, f.payload)
	}
	if f, _ = p.readFrame(); f.rsv != 0 || !bytes.Equal(f.payload, big) {
		t.Fatalf("WriteUncompressed: rsv=%#x", f.rsv)
	}
	// Streamed: RSV1 on the first frame only. The server keeps context,
	// so this message refers back to the first.
	var frames []rawFrame
	var stream []byte
	for {
		f, err := p.readFrame()
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, f)
		stream = append(stream, f.payload...)
		if f.fin {
			break
		}
	}
	if len(frames) < 2 {
		t.Fatalf("streamed message in %d frame(s)", len(frames))
	}
	for i, f := range frames {
		if want := byte(0); i == 0 && f.rsv != 0x40 || i > 0 && f.rsv != want {
			t.Fatalf("frame %d of a streamed message: rsv=%#x", i, f.rsv)
		}
	}
	r := flate.NewReaderDict(io.MultiReader(bytes.NewReader(stream), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff})), big)
	if out, err := io.ReadAll(r); err != nil || !bytes.Equal(out, big2) {
		t.Fatalf("streamed message: %v", err)
	}
}

// TestDecompressionBomb sends 64 MiB of zeros compressed to a few
// kilobytes to a server that accepts 1 MiB: it fails with 1009 having
// inflated little more than the limit.
func TestDecompressionBomb(t *testing.T) {
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, 1)
	zeros := make([]byte, 1<<20)
	for range 64 {
		fw.Write(zeros)
	}
	fw.Flush()
	bomb := buf.Bytes()[:buf.Len()-4]
	if len(bomb) > 256<<10 {
		t.Fatalf("bomb is %d bytes", len(bomb))
	}

	for _, typ := range []byte{1, 2} {
		s := startServer(t, &websocket.AcceptOptions{
			Extensions:  []extensions.Extension{deflate.New(nil)},
			ConnOptions: websocket.ConnOptions{MaxMessageSize: 1 << 20},
		})
		p, _ := dialRaw(t, s, "permessage-deflate")
		c := s.next(t)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		done := serverReads(c)
		start := time.Now()
		p.writeFrame(true, 0x40, typ, bomb)
		if code := p.closeCode(); code != 1009 {
			t.Fatalf("close code %d, want 1009", code)
		}
		err := <-done
		elapsed := time.Since(start)
		runtime.ReadMemStats(&after)
		if protocolCode(err) != 1009 || !errors.Is(err, websocket.ErrMessageTooBig) {
			t.Fatalf("server: %v", err)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
			t.Fatalf("the server allocated %d bytes for a %d-byte bomb", alloc, len(bomb))
		}
		t.Logf("type %d: failed after %v, %d bytes allocated", typ, elapsed, after.TotalAlloc-before.TotalAlloc)
	}

	// The same through a streaming reader.
	s := startServer(t, &websocket.AcceptOptions{
		Extensions:  []extensions.Extension{deflate.New(nil)},
		ConnOptions: websocket.ConnOptions{MaxMessageSize: 1 << 20},
	})
	p, _ := dialRaw(t, s, "permessage-deflate")
	c := s.next(t)
	p.writeFrame(true, 0x40, 2, bomb)
	code := make(chan int, 1)
	go func() { code <- p.closeCode() }() // the server waits for our close
	_, r, err := c.Reader(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, r)
	if !errors.Is(err, websocket.ErrMessageTooBig) || n > 2<<20 {
		t.Fatalf("read %d bytes, then %v", n, err)
	}
	if code := <-code; code != 1009 {
		t.Fatalf("close code %d, want 1009", code)
	}
}
