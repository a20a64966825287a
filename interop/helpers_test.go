package interop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/realtime-go/realtime/websocket"
)

// opTimeout bounds every single step of a test (one message, one handshake).
// 16 MiB messages under -race on 2 loaded cores need a few seconds.
const opTimeout = 30 * time.Second

// testCtx returns a context that ends after opTimeout or at test cleanup.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	t.Cleanup(cancel)
	return ctx
}

// closeCodes are the codes an endpoint may send in a close frame (RFC 6455
// §7.4.1 and the IANA registry), plus the two ends of the private range.
var closeCodes = []websocket.StatusCode{
	1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999,
}

// closeReason is the reason sent with code; it is not ASCII on purpose.
func closeReason(code websocket.StatusCode) string {
	return fmt.Sprintf("bye %d ✓ é", int(code))
}

// ---------------------------------------------------------------------------
// Peers: under CI=true a missing peer fails the test; elsewhere it skips.
// ---------------------------------------------------------------------------

func inCI() bool { return os.Getenv("CI") == "true" }

func missingPeer(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := "missing peer: " + fmt.Sprintf(format, args...) + " (interop/run.sh installs the peers)"
	if inCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func needExec(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missingPeer(t, "%s: %v", name, err)
	}
	return p
}

// nodeDir is interop/node, where the peer scripts and node_modules live.
func nodeDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs("node")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// needNodeWS returns the node binary, after checking that the npm "ws"
// package is installed.
func needNodeWS(t *testing.T) string {
	t.Helper()
	node := needExec(t, "node")
	if _, err := os.Stat(filepath.Join(nodeDir(t), "node_modules", "ws", "package.json")); err != nil {
		missingPeer(t, "npm package ws in interop/node (npm ci): %v", err)
	}
	return node
}

// ---------------------------------------------------------------------------
// Payloads. genPayload must stay identical to gen() in node/peer.mjs.
// ---------------------------------------------------------------------------

var genRunes = []string{"a", "b", "c", " ", "ü", "€", "😀", "\n", "Z", "é", "0"}

func genPayload(size, seed int, text bool) []byte {
	b := make([]byte, size)
	if !text {
		for i := range b {
			b[i] = byte(i*131 + seed*17 + i>>11)
		}
		return b
	}
	n := 0
	for i := 0; ; i++ {
		r := genRunes[(i*7+seed)%len(genRunes)]
		if n+len(r) > size {
			break
		}
		n += copy(b[n:], r)
	}
	for ; n < size; n++ {
		b[n] = 'a'
	}
	return b
}

func sha256hex(p []byte) string {
	s := sha256.Sum256(p)
	return hex.EncodeToString(s[:])
}

// msg is one test message: what it is, and how to name it to a node peer.
type msg struct {
	name string
	typ  websocket.MessageType
	data []byte
	spec map[string]any // the "data" of a node command
}

func textMsg(name, s string) msg {
	return msg{name, websocket.MessageText, []byte(s), map[string]any{"text": s}}
}

func binMsg(name string, b []byte) msg {
	return msg{name, websocket.MessageBinary, b, map[string]any{"b64": base64.StdEncoding.EncodeToString(b)}}
}

func genMsg(name string, size, seed int, text bool) msg {
	typ := websocket.MessageBinary
	if text {
		typ = websocket.MessageText
	}
	return msg{name, typ, genPayload(size, seed, text),
		map[string]any{"gen": map[string]any{"size": size, "seed": seed, "text": text}}}
}

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// checkMsg compares a received message with the expected one.
func checkMsg(t *testing.T, who string, want msg, typ websocket.MessageType, got []byte) {
	t.Helper()
	if typ != want.typ {
		t.Fatalf("%s: message %s: type %d, want %d", who, want.name, typ, want.typ)
	}
	if !bytes.Equal(got, want.data) {
		t.Fatalf("%s: message %s: got %d bytes (sha256 %s), want %d bytes (sha256 %s)%s",
			who, want.name, len(got), sha256hex(got), len(want.data), sha256hex(want.data), firstDiff(got, want.data))
	}
}

func firstDiff(a, b []byte) string {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return fmt.Sprintf("; first difference at byte %d: %#x vs %#x", i, a[i], b[i])
		}
	}
	return ""
}

// checkCloseErr checks that err reports the peer's close frame.
func checkCloseErr(t *testing.T, who string, err error, code websocket.StatusCode, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: read returned no error, want the peer's close %d", who, code)
	}
	if got := websocket.CloseStatus(err); got != code {
		t.Fatalf("%s: CloseStatus(%v) = %d, want %d", who, err, got, code)
	}
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("%s: %v does not carry a websocket.CloseError", who, err)
	}
	if ce.Reason != reason {
		t.Fatalf("%s: close reason %q, want %q", who, ce.Reason, reason)
	}
	if !errors.Is(err, net.ErrClosed) {
		t.Fatalf("%s: errors.Is(%v, net.ErrClosed) = false after the peer closed", who, err)
	}
}

// ---------------------------------------------------------------------------
// Our server: an httptest server whose /ws handler accepts with our package
// and hands the connection to the test.
// ---------------------------------------------------------------------------

type accepted struct {
	c   *websocket.Conn
	r   *http.Request
	err error
}

type ourServer struct {
	srv   *httptest.Server
	Addr  string // 127.0.0.1:port
	WSURL string // ws://127.0.0.1:port/ws
	conns chan accepted
}

// startOurServer starts the server. opts may be nil. extra adds handlers to
// the mux next to /ws.
func startOurServer(t *testing.T, opts *websocket.AcceptOptions, extra map[string]http.HandlerFunc) *ourServer {
	t.Helper()
	s := &ourServer{conns: make(chan accepted, 64)}
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, opts)
		select {
		case s.conns <- accepted{c, r, err}:
		case <-release:
		}
		if c != nil {
			// Keep the handler until the test ends, so the connection's
			// lifetime never depends on the handler returning.
			<-release
			c.CloseNow()
		}
	})
	for p, h := range extra {
		mux.HandleFunc(p, h)
	}
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	s.Addr = s.srv.Listener.Addr().String()
	s.WSURL = "ws://" + s.Addr + "/ws"
	return s
}

// next returns the next connection the handler accepted.
func (s *ourServer) next(t *testing.T) (*websocket.Conn, *http.Request) {
	t.Helper()
	select {
	case a := <-s.conns:
		if a.err != nil {
			t.Fatalf("server: Accept: %v", a.err)
		}
		t.Cleanup(func() { a.c.CloseNow() })
		return a.c, a.r
	case <-time.After(opTimeout):
		t.Fatal("server: no connection accepted")
		return nil, nil
	}
}

// dialOurs opens a TCP connection and runs our client handshake over it.
func dialOurs(t *testing.T, rawURL string, opts *websocket.ClientOptions) (*websocket.Conn, *http.Response) {
	t.Helper()
	c, resp, err := tryDialOurs(t, rawURL, opts)
	if err != nil {
		t.Fatalf("client: NewClient %s: %v", rawURL, err)
	}
	return c, resp
}

func tryDialOurs(t *testing.T, rawURL string, opts *websocket.ClientOptions) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		t.Fatalf("client: dial %s: %v", u.Host, err)
	}
	c, resp, err := websocket.NewClient(ctx, nc, u, opts)
	if err != nil {
		nc.Close()
		return nil, resp, err
	}
	t.Cleanup(func() { c.CloseNow() })
	return c, resp, nil
}

// readAsync reads one message on a goroutine, so that control frames are
// processed while the test does something else.
type readResult struct {
	typ  websocket.MessageType
	data []byte
	err  error
}

func readAsync(ctx context.Context, c *websocket.Conn) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		typ, p, err := c.Read(ctx)
		ch <- readResult{typ, p, err}
	}()
	return ch
}

func waitRead(t *testing.T, who string, ch <-chan readResult) readResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(opTimeout + 5*time.Second):
		t.Fatalf("%s: read did not return", who)
		return readResult{}
	}
}

// ---------------------------------------------------------------------------
// Node peers (node/peer.mjs), driven by JSON lines.
// ---------------------------------------------------------------------------

type nodeReply struct {
	ID     int    `json:"id"`
	Op     string `json:"op"`
	OK     bool   `json:"ok"`
	Error  string `json:"error"`
	Status int    `json:"status"`

	Protocol          string `json:"protocol"`
	Extensions        string `json:"extensions"`
	Version           string `json:"version"`
	Path              string `json:"path"`
	Origin            string `json:"origin"`
	SecOrigin         string `json:"secOrigin"`
	OfferedExtensions string `json:"offeredExtensions"`

	Binary bool    `json:"binary"`
	Len    int     `json:"len"`
	SHA256 string  `json:"sha256"`
	Text   *string `json:"text"`
	B64    *string `json:"b64"`

	Code   int     `json:"code"`
	Reason string  `json:"reason"`
	Echoed int     `json:"echoed"`
	Frames int     `json:"frames"`
	RTTms  float64 `json:"rttMs"`

	raw string
}

type nodePeer struct {
	mode   string
	stdin  io.WriteCloser
	lines  chan string
	stderr *syncBuffer
	nextID int
	Port   int // server mode
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startNode starts node/peer.mjs in mode "client" or "server"; it is stopped
// at test cleanup.
func startNode(t *testing.T, mode string) *nodePeer {
	t.Helper()
	node := needNodeWS(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, "peer.mjs", mode)
	cmd.Dir = nodeDir(t)
	cmd.WaitDelay = 5 * time.Second
	p := &nodePeer{mode: mode, lines: make(chan string), stderr: &syncBuffer{}}
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
		cancel()
		t.Fatalf("start node peer: %v", err)
	}
	quit := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		br := bufio.NewReader(stdout)
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				select {
				case p.lines <- strings.TrimSpace(line):
				case <-quit:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		stdin.Close() // the peer exits when stdin closes
		waitErr := make(chan error, 1)
		go func() { waitErr <- cmd.Wait() }()
		var err error
		select {
		case err = <-waitErr:
		case <-time.After(5 * time.Second):
			cancel()
			err = <-waitErr
			t.Errorf("node %s peer did not exit after stdin closed; killed (%v)", mode, err)
			err = nil
		}
		cancel()
		close(quit)
		<-readerDone
		if err != nil {
			t.Errorf("node %s peer: %v", mode, err)
		}
		if se := p.stderr.String(); t.Failed() && se != "" {
			t.Logf("node %s peer stderr:\n%s", mode, se)
		}
	})
	if mode == "server" {
		line := p.readLine(t, "the port line")
		var hello struct {
			Port int `json:"port"`
		}
		if err := json.Unmarshal([]byte(line), &hello); err != nil || hello.Port == 0 {
			t.Fatalf("node server: first line %q is not {\"port\":N} (%v)", line, err)
		}
		p.Port = hello.Port
	}
	return p
}

func (p *nodePeer) readLine(t *testing.T, what string) string {
	t.Helper()
	select {
	case l := <-p.lines:
		return l
	case <-time.After(opTimeout + 10*time.Second):
		t.Fatalf("node %s peer: no answer for %s within %v; stderr:\n%s", p.mode, what, opTimeout+10*time.Second, p.stderr.String())
		return ""
	}
}

// start sends a command and returns its id; result reads its answer. The
// peer runs commands one at a time, so answers come in order. t is the
// (sub)test calling, which may differ from the one that started the peer.
func (p *nodePeer) start(t *testing.T, op string, args map[string]any) int {
	t.Helper()
	p.nextID++
	cmd := map[string]any{"id": p.nextID, "op": op, "timeoutMs": opTimeout.Milliseconds()}
	for k, v := range args {
		cmd[k] = v
	}
	b, err := json.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		t.Fatalf("node %s peer: write command %s: %v", p.mode, op, err)
	}
	return p.nextID
}

// result returns the answer to command id, failing the test if the command
// failed.
func (p *nodePeer) result(t *testing.T, id int) nodeReply {
	t.Helper()
	r := p.tryResult(t, id)
	if !r.OK {
		t.Fatalf("node %s peer: %s failed: %s", p.mode, r.Op, r.Error)
	}
	return r
}

// tryResult returns the answer to command id, whether it succeeded or not.
func (p *nodePeer) tryResult(t *testing.T, id int) nodeReply {
	t.Helper()
	line := p.readLine(t, fmt.Sprintf("command %d", id))
	var r nodeReply
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("node %s peer: bad answer %q: %v", p.mode, line, err)
	}
	if r.ID != id {
		t.Fatalf("node %s peer: answer %q is not for command %d", p.mode, line, id)
	}
	r.raw = line
	return r
}

func (p *nodePeer) do(t *testing.T, op string, args map[string]any) nodeReply {
	t.Helper()
	return p.result(t, p.start(t, op, args))
}

// checkNodeMsg compares a message the node peer reports with the expected one.
func checkNodeMsg(t *testing.T, want msg, r nodeReply) {
	t.Helper()
	wantBinary := want.typ == websocket.MessageBinary
	if r.Binary != wantBinary || r.Len != len(want.data) || r.SHA256 != sha256hex(want.data) {
		t.Fatalf("node: message %s: got binary=%v len=%d sha256=%s, want binary=%v len=%d sha256=%s (answer %.300s)",
			want.name, r.Binary, r.Len, r.SHA256, wantBinary, len(want.data), sha256hex(want.data), r.raw)
	}
}

// payloadLog records the payloads an OnPing or OnPong hook sees.
type payloadLog chan []byte

func newPayloadLog() payloadLog { return make(chan []byte, 256) }

func (l payloadLog) add(p []byte) {
	select {
	case l <- bytes.Clone(p):
	default:
	}
}

func (l payloadLog) drain() {
	for {
		select {
		case <-l:
		default:
			return
		}
	}
}

// expect checks that the next recorded payload is want.
func (l payloadLog) expect(t *testing.T, who string, want []byte) {
	t.Helper()
	select {
	case got := <-l:
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: payload %q, want %q", who, got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: hook was not called (want payload %q)", who, want)
	}
}
