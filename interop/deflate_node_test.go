package interop

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/realtime-go/realtime/extensions"
	"github.com/realtime-go/realtime/extensions/deflate"
	"github.com/realtime-go/realtime/websocket"
)

// deflateMode is one permessage-deflate configuration: context takeover
// and window size of the server's and of the client's compressor.
type deflateMode struct {
	serverNoCtx, clientNoCtx bool
	serverBits, clientBits   int
}

func (m deflateMode) String() string {
	return fmt.Sprintf("server-noctx=%v/client-noctx=%v/server-bits=%d/client-bits=%d", m.serverNoCtx, m.clientNoCtx, m.serverBits, m.clientBits)
}

// deflateModes covers both context takeover settings on each side and
// every window size from 9 to 15 bits on each side.
func deflateModes() []deflateMode {
	var modes []deflateMode
	for _, s := range []bool{false, true} {
		for _, c := range []bool{false, true} {
			for b := 9; b <= 15; b++ {
				modes = append(modes, deflateMode{s, c, b, b})
				if b != 24-b {
					modes = append(modes, deflateMode{s, c, b, 24 - b})
				}
			}
		}
	}
	return modes
}

// deflateMsgs are echoed through the peer in every mode; repeats exercise
// context takeover.
func deflateMsgs(big bool) []msg {
	m := []msg{
		textMsg("empty-text", ""),
		binMsg("one-byte", []byte{7}),
		genMsg("text-300", 300, 1, true),
		genMsg("text-300-again", 300, 1, true),
		binMsg("empty-binary", []byte{}),
		genMsg("binary-5000", 5000, 2, false),
		genMsg("text-70000", 70000, 3, true),
		genMsg("text-300-once-more", 300, 1, true),
		binMsg("far-repeats", farRepeats()),
		binMsg("random-20000", randomish(20000, 1)),
		binMsg("random-20000-again", randomish(20000, 1)), // refers back into the previous message
	}
	if big {
		m = append(m, genMsg("text-1MiB", 1<<20, 4, true), genMsg("binary-1MiB", 1<<20, 5, false))
	}
	return m
}

// randomish returns n bytes that do not compress, the same for a seed.
func randomish(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// farRepeats holds blocks of random bytes each followed by itself, so a
// compressor finds matches 300 bytes to 20 KB back: one that ignores its
// window limit produces distances the peer's inflater rejects.
func farRepeats() []byte {
	var b []byte
	for i, n := range []int{300, 600, 1200, 2500, 5000, 10000, 20000} {
		r := randomish(n, uint64(100+i))
		b = append(append(b, r...), r...)
	}
	return b
}

// startDeflateNode starts node/deflate-peer.mjs, which speaks the command
// protocol of nodePeer; it is stopped at test cleanup.
func startDeflateNode(t *testing.T) *nodePeer {
	t.Helper()
	return startLinePeer(t, "deflate", nodeDir(t), needNodeWS(t), "deflate-peer.mjs")
}

// startLinePeer starts a peer program that reads commands on stdin and
// answers in lines on stdout, which nodePeer.readLine returns. Closing
// stdin at test cleanup must make it exit.
func startLinePeer(t *testing.T, name, dir, exe string, args ...string) *nodePeer {
	t.Helper()
	cmd := exec.Command(exe, args...)
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	p := &nodePeer{mode: name, lines: make(chan string, 16), stderr: &syncBuffer{}}
	cmd.Stderr = p.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.stdin = stdin
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s peer: %v", name, err)
	}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer close(p.lines)
		br := bufio.NewReader(stdout)
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				p.lines <- strings.TrimSpace(line)
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() {
			for range p.lines { // answers a failed test left unread
			}
			done <- cmd.Wait()
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s peer: %v", name, err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("%s peer did not exit after stdin closed", name)
		}
		<-readerDone
		if t.Failed() {
			t.Logf("%s peer stderr:\n%s", name, p.stderr.String())
		}
	})
	return p
}

// nodeNegotiated is what deflate-peer.mjs reports of a handshake.
type nodeNegotiated struct {
	Port   int            `json:"port"`
	Names  string         `json:"names"`
	Params map[string]any `json:"params"`
}

func parseNodeNegotiated(t *testing.T, r nodeReply) nodeNegotiated {
	t.Helper()
	var n nodeNegotiated
	if err := json.Unmarshal([]byte(r.raw), &n); err != nil {
		t.Fatalf("node: %s: %v", r.raw, err)
	}
	return n
}

// paramsOf parses a Sec-WebSocket-Extensions value holding one
// permessage-deflate element into name -> value (true when it has none).
func paramsOf(t *testing.T, header string) map[string]any {
	t.Helper()
	offers, err := extensions.Parse(header)
	if err != nil || len(offers) != 1 || offers[0].Name != "permessage-deflate" {
		t.Fatalf("extensions %q: %v", header, err)
	}
	m := map[string]any{}
	for _, p := range offers[0].Params {
		if p.Value == "" {
			m[p.Name] = true
		} else {
			n, _ := strconv.Atoi(p.Value)
			m[p.Name] = float64(n)
		}
	}
	return m
}

// echoThroughNode sends every message to the node peer, which echoes it,
// and checks what comes back; then closes with 1000.
func echoThroughNode(t *testing.T, node *nodePeer, c *websocket.Conn, msgs []msg) {
	t.Helper()
	id := node.start(t, "echo", nil)
	ctx := testCtx(t)
	for _, m := range msgs {
		if err := c.Write(ctx, m.typ, m.data); err != nil {
			t.Fatalf("write %s: %v", m.name, err)
		}
		typ, p, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read echo of %s: %v", m.name, err)
		}
		checkMsg(t, "echo from node", m, typ, p)
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close: %v", err)
	}
	if r := node.result(t, id); r.Echoed != len(msgs) || r.Code != 1000 {
		t.Fatalf("node echoed %d messages and saw close %d; want %d and 1000", r.Echoed, r.Code, len(msgs))
	}
}

// TestDeflateNodeClient: the ws client negotiates permessage-deflate with
// our server in every mode. Each setting comes from our server's options
// or from the ws client's offer, in turn.
func TestDeflateNodeClient(t *testing.T) {
	node := startDeflateNode(t)
	for i, mode := range deflateModes() {
		t.Run(mode.String(), func(t *testing.T) {
			ours := &deflate.Options{Threshold: -1}
			theirs := map[string]any{"threshold": 0}
			want := map[string]any{}
			viaOurs := i%2 == 0
			if mode.serverNoCtx {
				if viaOurs {
					ours.NoContextTakeover = true
				} else {
					theirs["serverNoContextTakeover"] = true
				}
				want["server_no_context_takeover"] = true
			}
			if mode.clientNoCtx {
				if viaOurs {
					ours.RequestNoContextTakeover = true
				} else {
					theirs["clientNoContextTakeover"] = true
				}
				want["client_no_context_takeover"] = true
			}
			if mode.serverBits < 15 {
				if viaOurs {
					ours.MaxWindowBits = mode.serverBits
				} else {
					theirs["serverMaxWindowBits"] = mode.serverBits
				}
				want["server_max_window_bits"] = float64(mode.serverBits)
			}
			if mode.clientBits < 15 {
				if viaOurs {
					ours.RequestMaxWindowBits = mode.clientBits
					want["client_max_window_bits"] = float64(mode.clientBits)
				} else {
					theirs["clientMaxWindowBits"] = mode.clientBits // offered, not answered
				}
			}
			srv := startOurServer(t, &websocket.AcceptOptions{Extensions: []extensions.Extension{deflate.New(ours)}}, nil)
			id := node.start(t, "connect", map[string]any{"url": srv.WSURL, "deflate": theirs})
			c, r := srv.next(t)
			rep := node.result(t, id)
			n := parseNodeNegotiated(t, rep)
			if rep.Extensions != c.Extensions() || n.Names != "permessage-deflate" {
				t.Fatalf("node saw %q (%q), our server answered %q to %q", rep.Extensions, n.Names, c.Extensions(), r.Header.Get("Sec-WebSocket-Extensions"))
			}
			if got := paramsOf(t, c.Extensions()); !reflect.DeepEqual(got, want) {
				t.Fatalf("negotiated %q, want %v", c.Extensions(), want)
			}
			echoThroughNode(t, node, c, deflateMsgs(mode.serverBits == mode.clientBits && mode.serverNoCtx == mode.clientNoCtx))
		})
	}
}

// TestDeflateNodeServer: our client negotiates permessage-deflate with the
// ws server in every mode. The ws server states every parameter; in
// alternate modes our client also asks for them itself.
func TestDeflateNodeServer(t *testing.T) {
	node := startDeflateNode(t)
	for i, mode := range deflateModes() {
		t.Run(mode.String(), func(t *testing.T) {
			theirs := map[string]any{
				"threshold":           0,
				"serverMaxWindowBits": mode.serverBits,
				"clientMaxWindowBits": mode.clientBits,
			}
			ours := &deflate.Options{Threshold: -1}
			want := map[string]any{
				"server_max_window_bits": float64(mode.serverBits),
				"client_max_window_bits": float64(mode.clientBits),
			}
			ask := i%2 == 1
			if mode.serverNoCtx {
				if ask {
					ours.RequestNoContextTakeover = true // ws accepts it by echoing
				} else {
					theirs["serverNoContextTakeover"] = true
				}
				want["server_no_context_takeover"] = true
			}
			if mode.clientNoCtx {
				if ask {
					ours.NoContextTakeover = true // offered; ws echoes the offer's parameters
				} else {
					theirs["clientNoContextTakeover"] = true
				}
				want["client_no_context_takeover"] = true
			}
			if ask {
				ours.MaxWindowBits = mode.clientBits
				if mode.serverBits < 15 {
					ours.RequestMaxWindowBits = mode.serverBits
				}
			}
			port := parseNodeNegotiated(t, node.do(t, "listen", map[string]any{"deflate": theirs})).Port
			id := node.start(t, "accept", map[string]any{"port": port})
			ext := deflate.New(ours)
			c, _ := dialOurs(t, fmt.Sprintf("ws://127.0.0.1:%d/", port), &websocket.ClientOptions{Extensions: []extensions.Extension{ext}})
			rep := node.result(t, id)
			n := parseNodeNegotiated(t, rep)
			if offer := extensions.Format(extensions.ClientOffers([]extensions.Extension{ext})); rep.OfferedExtensions != offer {
				t.Fatalf("node saw the offer %q, we sent %q", rep.OfferedExtensions, offer)
			}
			if got := paramsOf(t, c.Extensions()); !reflect.DeepEqual(got, want) || !reflect.DeepEqual(n.Params, want) {
				t.Fatalf("negotiated %q (ws: %v), want %v", c.Extensions(), n.Params, want)
			}
			echoThroughNode(t, node, c, deflateMsgs(mode.serverBits == mode.clientBits && mode.serverNoCtx == mode.clientNoCtx))
		})
	}
}
