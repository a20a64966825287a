package interop

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/realtime-go/realtime/websocket"
)

var b64 = base64.StdEncoding.EncodeToString

// exchangeMsgs are sent in both directions between our endpoint and a peer.
func exchangeMsgs(large bool) []msg {
	m := []msg{
		textMsg("text", "hello, world"),
		textMsg("non-ascii", "héllo wörld ✓ 😀 — 日本語"),
		textMsg("empty-text", ""),
		binMsg("bytes-0-255", allBytes()),
		binMsg("empty-binary", []byte{}),
		genMsg("text-125", 125, 1, true),
		genMsg("binary-126", 126, 2, false),
		genMsg("binary-65535", 65535, 3, false),
		genMsg("text-65536", 65536, 4, true),
		genMsg("binary-1MiB", 1<<20, 5, false),
		genMsg("text-1MiB", 1<<20, 6, true),
	}
	if large {
		m = append(m,
			genMsg("binary-16MiB", 16<<20, 7, false),
			genMsg("text-16MiB", 16<<20, 8, true),
		)
	}
	return m
}

// readMsg reads one message with Read, or with Reader when stream is set.
func readMsg(ctx context.Context, c *websocket.Conn, stream bool) (websocket.MessageType, []byte, error) {
	if !stream {
		return c.Read(ctx)
	}
	typ, r, err := c.Reader(ctx)
	if err != nil {
		return 0, nil, err
	}
	p, err := io.ReadAll(r)
	return typ, p, err
}

// writeFragmented writes p as one message through Writer, in pieces cut at
// the given offsets.
func writeFragmented(ctx context.Context, c *websocket.Conn, typ websocket.MessageType, p []byte, cuts ...int) error {
	w, err := c.Writer(ctx, typ)
	if err != nil {
		return err
	}
	from := 0
	for _, to := range append(cuts, len(p)) {
		if _, err := w.Write(p[from:to]); err != nil {
			w.Close()
			return err
		}
		from = to
	}
	return w.Close()
}

// ---------------------------------------------------------------------------
// 1. Our server against the node ws client, hybi-13 and hybi-8.
// ---------------------------------------------------------------------------

func TestNodeClientOurServer(t *testing.T) {
	for _, v := range []int{13, 8} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			testNodeClientOurServer(t, v)
		})
	}
}

func testNodeClientOurServer(t *testing.T, version int) {
	node := startNode(t, "client")
	pings, pongs := newPayloadLog(), newPayloadLog()
	srv := startOurServer(t, &websocket.AcceptOptions{ConnOptions: websocket.ConnOptions{
		OnPing: pings.add,
		OnPong: pongs.add,
	}}, nil)

	connect := func(t *testing.T) *websocket.Conn {
		t.Helper()
		id := node.start(t, "connect", map[string]any{"url": srv.WSURL, "version": version})
		c, r := srv.next(t)
		rep := node.result(t, id)
		if got := r.Header.Get("Sec-WebSocket-Version"); got != strconv.Itoa(version) {
			t.Fatalf("server saw Sec-WebSocket-Version %q, want %d", got, version)
		}
		if c.Version() != version {
			t.Fatalf("server: Version() = %d, want %d", c.Version(), version)
		}
		if c.Extensions() != rep.Extensions {
			t.Fatalf("extensions disagree: server %q, node client %q", c.Extensions(), rep.Extensions)
		}
		if c.Subprotocol() != "" || rep.Protocol != "" {
			t.Fatalf("subprotocol negotiated without being offered: server %q, node %q", c.Subprotocol(), rep.Protocol)
		}
		pings.drain()
		pongs.drain()
		return c
	}

	t.Run("messages", func(t *testing.T) {
		c := connect(t)
		ctx := testCtx(t)
		for i, m := range exchangeMsgs(true) {
			// node -> server
			id := node.start(t, "send", map[string]any{"data": m.spec})
			typ, p, err := readMsg(ctx, c, i%2 == 1)
			if err != nil {
				t.Fatalf("server: read %s: %v", m.name, err)
			}
			node.result(t, id)
			checkMsg(t, "server", m, typ, p)
			// server -> node
			if err := c.Write(ctx, m.typ, m.data); err != nil {
				t.Fatalf("server: write %s: %v", m.name, err)
			}
			checkNodeMsg(t, m, node.do(t, "recv", nil))
		}

		// Fragmented messages from node, cut inside UTF-8 sequences and with
		// empty fragments.
		frags := []struct {
			m      msg
			splits []int
		}{
			{textMsg("text-cut-in-rune", "héllo 😀 wörld"), []int{2, 9, 10}},
			{genMsg("text-100KiB-4-frames", 100<<10, 9, true), []int{1, 5, 4097}},
			{genMsg("binary-empty-fragments", 1000, 10, false), []int{0, 0, 10, 10}},
			{genMsg("binary-4MiB-16-frames", 4<<20, 11, false), []int{1 << 18, 2 << 18, 3 << 18, 4 << 18, 5 << 18, 6 << 18, 7 << 18, 8 << 18, 9 << 18, 10 << 18, 11 << 18, 12 << 18, 13 << 18, 14 << 18, 15 << 18}},
			{textMsg("text-empty-final", "abc"), []int{3}},
		}
		for _, f := range frags {
			id := node.start(t, "sendFragments", map[string]any{"data": f.m.spec, "splits": f.splits})
			typ, p, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("server: read %s: %v", f.m.name, err)
			}
			if r := node.result(t, id); r.Frames != len(f.splits)+1 {
				t.Fatalf("node sent %d frames for %s, want %d", r.Frames, f.m.name, len(f.splits)+1)
			}
			checkMsg(t, "server", f.m, typ, p)
		}

		// A ping between the fragments of a message: the pong must come
		// back while the message is still open.
		rd := readAsync(ctx, c)
		node.do(t, "send", map[string]any{"data": map[string]any{"text": "first half, "}, "fin": false})
		if r := node.do(t, "ping", map[string]any{"b64": b64([]byte("mid-message"))}); r.B64 == nil || *r.B64 != b64([]byte("mid-message")) {
			t.Fatalf("node: pong during a fragmented message: %s", r.raw)
		}
		node.do(t, "send", map[string]any{"data": map[string]any{"text": "second half"}, "fin": true})
		res := waitRead(t, "server", rd)
		if res.err != nil {
			t.Fatalf("server: read interleaved message: %v", res.err)
		}
		checkMsg(t, "server", textMsg("interleaved", "first half, second half"), res.typ, res.data)
		pings.expect(t, "server OnPing", []byte("mid-message"))

		// Fragmented messages from our server through Writer.
		for _, f := range []struct {
			m    msg
			cuts []int
		}{
			{textMsg("writer-text-cut-in-rune", "héllo 😀 wörld"), []int{2, 9, 10}},
			{genMsg("writer-binary-1MiB", 1<<20, 12, false), []int{1, 65536, 65537, 500000}},
			{textMsg("writer-empty", ""), nil},
		} {
			if err := writeFragmented(ctx, c, f.m.typ, f.m.data, f.cuts...); err != nil {
				t.Fatalf("server: Writer %s: %v", f.m.name, err)
			}
			checkNodeMsg(t, f.m, node.do(t, "recv", nil))
		}
		if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Fatalf("server: Close: %v", err)
		}
		if r := node.do(t, "awaitClose", nil); r.Code != 1000 {
			t.Fatalf("node saw close %d %q, want 1000", r.Code, r.Reason)
		}
	})

	t.Run("origin", func(t *testing.T) {
		// The ws client sends Origin for hybi-13 and Sec-WebSocket-Origin
		// for hybi-8; both are checked against the Host.
		header := "Origin"
		if version == 8 {
			header = "Sec-WebSocket-Origin"
		}
		same := "http://" + srv.Addr
		id := node.start(t, "connect", map[string]any{"url": srv.WSURL, "version": version, "origin": same})
		c, r := srv.next(t)
		node.result(t, id)
		if got := r.Header.Get(header); got != same {
			t.Fatalf("server saw %s %q, want %q", header, got, same)
		}
		id = node.start(t, "awaitClose", nil)
		if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Fatalf("server: Close: %v", err)
		}
		node.result(t, id)

		id = node.start(t, "connect", map[string]any{"url": srv.WSURL, "version": version, "origin": "http://evil.example"})
		select {
		case a := <-srv.conns:
			if a.err == nil {
				a.c.CloseNow()
				t.Fatalf("server: Accept succeeded for %s http://evil.example", header)
			}
		case <-time.After(opTimeout):
			t.Fatal("server: handler did not return from Accept")
		}
		if r := node.tryResult(t, id); r.OK || r.Status != 403 {
			t.Fatalf("node: connect with a foreign %s: %s, want HTTP 403", header, r.raw)
		}
	})

	t.Run("ping", func(t *testing.T) {
		c := connect(t)
		ctx := testCtx(t)
		// node pings our server while it reads.
		rd := readAsync(ctx, c)
		for _, p := range [][]byte{[]byte("node-ping ✓"), {}, genPayload(125, 13, false)} {
			r := node.do(t, "ping", map[string]any{"b64": b64(p)})
			if r.B64 == nil || *r.B64 != b64(p) {
				t.Fatalf("node: pong payload %s, want b64 %q", r.raw, b64(p))
			}
			pings.expect(t, "server OnPing", p)
		}
		node.do(t, "send", map[string]any{"data": map[string]any{"text": "after node pings"}})
		res := waitRead(t, "server", rd)
		if res.err != nil {
			t.Fatalf("server: read: %v", res.err)
		}
		checkMsg(t, "server", textMsg("after", "after node pings"), res.typ, res.data)

		// our server pings node while it reads.
		rd = readAsync(ctx, c)
		for _, p := range [][]byte{[]byte("server-ping ✓"), {}, genPayload(125, 14, false)} {
			rtt, err := c.Ping(ctx, p)
			if err != nil {
				t.Fatalf("server: Ping(%q): %v", p, err)
			}
			if rtt <= 0 || rtt > opTimeout {
				t.Fatalf("server: Ping RTT %v out of range", rtt)
			}
			r := node.do(t, "recvPing", nil)
			if r.B64 == nil || *r.B64 != b64(p) {
				t.Fatalf("node: ping payload %s, want b64 %q", r.raw, b64(p))
			}
			pongs.expect(t, "server OnPong", p)
		}
		node.do(t, "send", map[string]any{"data": map[string]any{"text": "after server pings"}})
		res = waitRead(t, "server", rd)
		if res.err != nil {
			t.Fatalf("server: read: %v", res.err)
		}
		checkMsg(t, "server", textMsg("after", "after server pings"), res.typ, res.data)
		if err := c.Close(websocket.StatusNormalClosure, "ping done"); err != nil {
			t.Fatalf("server: Close: %v", err)
		}
		node.do(t, "awaitClose", nil)
	})

	// Conn controls: a server that only writes keeps control frames
	// flowing with CloseRead, tells node's ws an unsolicited pong, and
	// learns of the end from Done and Err.
	t.Run("controls", func(t *testing.T) {
		c := connect(t)
		ctx := testCtx(t)
		readCtx := c.CloseRead(ctx)
		r := node.do(t, "ping", map[string]any{"b64": b64([]byte("anyone?"))})
		if r.B64 == nil || *r.B64 != b64([]byte("anyone?")) {
			t.Fatalf("node: pong under CloseRead: %s", r.raw)
		}
		if err := c.Pong(ctx, []byte("unsolicited")); err != nil {
			t.Fatalf("server: Pong: %v", err)
		}
		if r := node.do(t, "recvPong", nil); r.B64 == nil || *r.B64 != b64([]byte("unsolicited")) {
			t.Fatalf("node: unsolicited pong: %s", r.raw)
		}
		if err := c.Write(ctx, websocket.MessageText, []byte("write-only")); err != nil {
			t.Fatalf("server: Write: %v", err)
		}
		if r := node.do(t, "recv", nil); r.Text == nil || *r.Text != "write-only" {
			t.Fatalf("node: recv: %s", r.raw)
		}
		// A data message is a policy violation for a write-only server.
		node.do(t, "send", map[string]any{"data": map[string]any{"text": "unexpected"}})
		if r := node.do(t, "awaitClose", nil); r.Code != int(websocket.StatusPolicyViolation) {
			t.Fatalf("node: close %d %q, want 1008", r.Code, r.Reason)
		}
		select {
		case <-c.Done():
		case <-time.After(opTimeout):
			t.Fatal("server: Done not closed after the close handshake")
		}
		<-readCtx.Done()
		if err := c.Err(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("server: Err = %v, want net.ErrClosed", err)
		}

		// The peer's close completes the handshake under CloseRead.
		c = connect(t)
		readCtx = c.CloseRead(ctx)
		if r := node.do(t, "close", map[string]any{"code": 4001, "reason": "done"}); r.Code != 4001 {
			t.Fatalf("node: close echoed as %d, want 4001", r.Code)
		}
		<-readCtx.Done()
		if websocket.CloseStatus(c.Err()) != 4001 {
			t.Fatalf("server: Err = %v, want the peer's 4001", c.Err())
		}
	})

	t.Run("close-by-node", func(t *testing.T) {
		type tc struct {
			code   websocket.StatusCode
			reason string
		}
		cases := []tc{}
		for _, code := range closeCodes {
			cases = append(cases, tc{code, closeReason(code)})
		}
		cases = append(cases, tc{1000, strings.Repeat("r", 121) + "é"}) // 123 bytes, the maximum
		for _, k := range cases {
			c := connect(t)
			ctx := testCtx(t)
			id := node.start(t, "close", map[string]any{"code": int(k.code), "reason": k.reason})
			_, _, err := c.Read(ctx)
			checkCloseErr(t, fmt.Sprintf("server (node closed with %d)", k.code), err, k.code, k.reason)
			r := node.result(t, id)
			if r.Code != int(k.code) {
				t.Fatalf("node closed with %d; the server's close frame carried %d %q, want the code echoed", k.code, r.Code, r.Reason)
			}
			// Every later read fails the same way.
			_, _, err = c.Read(ctx)
			if !errors.Is(err, net.ErrClosed) || websocket.CloseStatus(err) != k.code {
				t.Fatalf("server: second read after close: %v (CloseStatus %d), want net.ErrClosed and %d", err, websocket.CloseStatus(err), k.code)
			}
		}

		// A close frame without a code is reported as 1005.
		c := connect(t)
		id := node.start(t, "close", nil)
		_, _, err := c.Read(testCtx(t))
		checkCloseErr(t, "server (node closed without a code)", err, websocket.StatusNoStatusRcvd, "")
		if r := node.result(t, id); r.Code != 1005 {
			t.Fatalf("node closed without a code; server answered %d %q, want an empty close frame (1005)", r.Code, r.Reason)
		}
	})

	t.Run("close-by-server", func(t *testing.T) {
		for _, code := range closeCodes {
			c := connect(t)
			ctx := testCtx(t)
			id := node.start(t, "awaitClose", nil)
			if err := c.Close(code, closeReason(code)); err != nil {
				t.Fatalf("server: Close(%d): %v", code, err)
			}
			r := node.result(t, id)
			if r.Code != int(code) || r.Reason != closeReason(code) {
				t.Fatalf("node saw close %d %q, want %d %q", r.Code, r.Reason, code, closeReason(code))
			}
			if _, _, err := c.Read(ctx); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("server: read after Close: %v, want net.ErrClosed", err)
			}
		}
	})
}

// ---------------------------------------------------------------------------
// 2. Our client against the node ws server, hybi-13 and hybi-8.
// ---------------------------------------------------------------------------

func TestOurClientNodeServer(t *testing.T) {
	for _, v := range []int{13, 8} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			testOurClientNodeServer(t, v)
		})
	}
}

func testOurClientNodeServer(t *testing.T, version int) {
	node := startNode(t, "server")
	pings, pongs := newPayloadLog(), newPayloadLog()
	optVersion := version
	if version == 13 {
		optVersion = 0 // the default
	}
	n := 0
	connect := func(t *testing.T) *websocket.Conn {
		t.Helper()
		n++
		path := fmt.Sprintf("/echo?v=%d&n=%d", version, n)
		id := node.start(t, "accept", nil)
		c, resp := dialOurs(t, fmt.Sprintf("ws://127.0.0.1:%d%s", node.Port, path), &websocket.ClientOptions{
			Version:     optVersion,
			ConnOptions: websocket.ConnOptions{OnPing: pings.add, OnPong: pongs.add},
		})
		acc := node.result(t, id)
		if resp.StatusCode != 101 {
			t.Fatalf("client: handshake status %d, want 101", resp.StatusCode)
		}
		if acc.Version != strconv.Itoa(version) || acc.Path != path {
			t.Fatalf("node server saw version %q path %q, want %d %q", acc.Version, acc.Path, version, path)
		}
		if c.Version() != version {
			t.Fatalf("client: Version() = %d, want %d", c.Version(), version)
		}
		if c.Extensions() != "" || c.Subprotocol() != "" {
			t.Fatalf("client: extensions %q subprotocol %q negotiated with a server that has none", c.Extensions(), c.Subprotocol())
		}
		pings.drain()
		pongs.drain()
		return c
	}

	t.Run("echo", func(t *testing.T) {
		c := connect(t)
		ctx := testCtx(t)
		echoID := node.start(t, "echo", nil)
		msgs := exchangeMsgs(true)
		for i, m := range msgs {
			if err := c.Write(ctx, m.typ, m.data); err != nil {
				t.Fatalf("client: write %s: %v", m.name, err)
			}
			typ, p, err := readMsg(ctx, c, i%2 == 0)
			if err != nil {
				t.Fatalf("client: read echo of %s: %v", m.name, err)
			}
			checkMsg(t, "client", m, typ, p)
		}
		frag := genMsg("writer-text-300KiB", 300<<10, 15, true)
		if err := writeFragmented(ctx, c, frag.typ, frag.data, 1, 2, 3, 100000, 200001); err != nil {
			t.Fatalf("client: Writer: %v", err)
		}
		typ, p, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("client: read echo of %s: %v", frag.name, err)
		}
		checkMsg(t, "client", frag, typ, p)

		// Our client pings the node server while reading.
		rd := readAsync(ctx, c)
		for _, pl := range [][]byte{[]byte("client-ping ✓"), {}, genPayload(125, 16, false)} {
			rtt, err := c.Ping(ctx, pl)
			if err != nil {
				t.Fatalf("client: Ping(%q): %v", pl, err)
			}
			if rtt <= 0 || rtt > opTimeout {
				t.Fatalf("client: Ping RTT %v out of range", rtt)
			}
			pongs.expect(t, "client OnPong", pl)
		}
		if err := c.Write(ctx, websocket.MessageText, []byte("after pings")); err != nil {
			t.Fatal(err)
		}
		res := waitRead(t, "client", rd)
		if res.err != nil {
			t.Fatalf("client: read: %v", res.err)
		}
		checkMsg(t, "client", textMsg("after", "after pings"), res.typ, res.data)

		if err := c.Close(4001, "client bye ✓"); err != nil {
			t.Fatalf("client: Close: %v", err)
		}
		r := node.result(t, echoID)
		if r.Code != 4001 || r.Reason != "client bye ✓" || r.Echoed != len(msgs)+2 {
			t.Fatalf("node server: echoed %d messages and saw close %d %q; want %d messages and 4001 %q",
				r.Echoed, r.Code, r.Reason, len(msgs)+2, "client bye ✓")
		}
	})

	t.Run("server-ping-and-messages", func(t *testing.T) {
		c := connect(t)
		ctx := testCtx(t)
		rd := readAsync(ctx, c)
		for _, pl := range [][]byte{[]byte("server-ping ✓"), {}, genPayload(125, 17, false)} {
			r := node.do(t, "ping", map[string]any{"b64": b64(pl)})
			if r.B64 == nil || *r.B64 != b64(pl) {
				t.Fatalf("node server: pong payload %s, want b64 %q", r.raw, b64(pl))
			}
			pings.expect(t, "client OnPing", pl)
		}
		m := textMsg("after", "after server pings")
		node.do(t, "send", map[string]any{"data": m.spec})
		res := waitRead(t, "client", rd)
		if res.err != nil {
			t.Fatalf("client: read: %v", res.err)
		}
		checkMsg(t, "client", m, res.typ, res.data)
		// Fragmented from the node server.
		f := genMsg("node-fragments", 70000, 18, true)
		id := node.start(t, "sendFragments", map[string]any{"data": f.spec, "splits": []int{0, 3, 65536}})
		typ, p, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("client: read fragments: %v", err)
		}
		node.result(t, id)
		checkMsg(t, "client", f, typ, p)
		if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Fatalf("client: Close: %v", err)
		}
		if r := node.do(t, "awaitClose", nil); r.Code != 1000 {
			t.Fatalf("node server saw close %d, want 1000", r.Code)
		}
	})

	t.Run("close-by-client", func(t *testing.T) {
		for _, code := range closeCodes {
			c := connect(t)
			ctx := testCtx(t)
			id := node.start(t, "awaitClose", nil)
			if err := c.Close(code, closeReason(code)); err != nil {
				t.Fatalf("client: Close(%d): %v", code, err)
			}
			r := node.result(t, id)
			if r.Code != int(code) || r.Reason != closeReason(code) {
				t.Fatalf("node server saw close %d %q, want %d %q", r.Code, r.Reason, code, closeReason(code))
			}
			if _, _, err := c.Read(ctx); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("client: read after Close: %v, want net.ErrClosed", err)
			}
		}
	})

	t.Run("close-by-server", func(t *testing.T) {
		for _, code := range closeCodes {
			c := connect(t)
			ctx := testCtx(t)
			id := node.start(t, "close", map[string]any{"code": int(code), "reason": closeReason(code)})
			_, _, err := c.Read(ctx)
			checkCloseErr(t, fmt.Sprintf("client (node server closed with %d)", code), err, code, closeReason(code))
			if r := node.result(t, id); r.Code != int(code) {
				t.Fatalf("node server closed with %d; the client's close frame carried %d %q, want the code echoed", code, r.Code, r.Reason)
			}
		}
	})
}
