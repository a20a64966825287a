package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/realtime-go/realtime/internal/slowloris"
	"github.com/realtime-go/realtime/interop/internal/rawframe"
	"github.com/realtime-go/realtime/websocket"
)

// The Autobahn|Testsuite runs against the testee programs in cmd/, so
// these tests check the programs themselves: the client follows the
// fuzzingserver's protocol, and the server answers the kinds of frames
// the suite sends as a strict testee must.

// buildTestee builds cmd/name and returns the binary's path.
func buildTestee(t *testing.T, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	build := exec.Command("go", "build", "-o", bin, "./cmd/"+name)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/%s: %v\n%s", name, err, out)
	}
	return bin
}

// fuzzingServer plays the Autobahn fuzzingserver's protocol: it reports
// a case count, runs each case as an echo exchange, and notes the report
// request.
type fuzzingServer struct {
	cases int

	mu      sync.Mutex
	log     []string // "case N AGENT", "reports AGENT", in order
	echoErr error    // the first echo that came back wrong
}

func (f *fuzzingServer) note(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, s)
}

func (f *fuzzingServer) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.echoErr == nil {
		f.echoErr = err
	}
}

func (f *fuzzingServer) handler() http.Handler {
	mux := http.NewServeMux()
	accept := func(w http.ResponseWriter, r *http.Request) *websocket.Conn {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipOriginCheck: true})
		if err != nil {
			f.fail(fmt.Errorf("%s: Accept: %w", r.URL, err))
		}
		return c
	}
	mux.HandleFunc("/getCaseCount", func(w http.ResponseWriter, r *http.Request) {
		if c := accept(w, r); c != nil {
			ctx := r.Context()
			c.Write(ctx, websocket.MessageText, []byte(strconv.Itoa(f.cases)))
			c.Close(websocket.StatusNormalClosure, "")
		}
	})
	mux.HandleFunc("/runCase", func(w http.ResponseWriter, r *http.Request) {
		f.note("case " + r.URL.Query().Get("case") + " " + r.URL.Query().Get("agent"))
		c := accept(w, r)
		if c == nil {
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
		defer cancel()
		msgs := []struct {
			typ websocket.MessageType
			p   []byte
		}{
			{websocket.MessageText, []byte("case " + r.URL.Query().Get("case") + " κόσμε")},
			{websocket.MessageBinary, genPayload(70000, 3, false)},
			{websocket.MessageText, nil},
		}
		for _, m := range msgs {
			if err := c.Write(ctx, m.typ, m.p); err != nil {
				f.fail(fmt.Errorf("%s: Write: %w", r.URL, err))
				return
			}
			typ, got, err := c.Read(ctx)
			if err != nil || typ != m.typ || !bytes.Equal(got, m.p) {
				f.fail(fmt.Errorf("%s: echo of a %v message of %d bytes: %v message of %d bytes, %v", r.URL, m.typ, len(m.p), typ, len(got), err))
				return
			}
		}
		c.Close(websocket.StatusNormalClosure, "")
	})
	mux.HandleFunc("/updateReports", func(w http.ResponseWriter, r *http.Request) {
		f.note("reports " + r.URL.Query().Get("agent"))
		if c := accept(w, r); c != nil {
			c.Close(websocket.StatusNormalClosure, "")
		}
	})
	return mux
}

func TestAutobahnClientTestee(t *testing.T) {
	bin := buildTestee(t, "autobahn-client")
	f := &fuzzingServer{cases: 3}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f.handler()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	const agent = "realtime & co/1.0" // the query must escape it
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-url", "ws://"+ln.Addr().String(), "-agent", agent)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("autobahn-client: %v\n%s", err, out)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.echoErr != nil {
		t.Fatalf("%v\nautobahn-client output:\n%s", f.echoErr, out)
	}
	want := []string{"case 1 " + agent, "case 2 " + agent, "case 3 " + agent, "reports " + agent}
	if !slices.Equal(f.log, want) {
		t.Fatalf("requests %q, want %q\nautobahn-client output:\n%s", f.log, want, out)
	}
}

var testeeListeningRE = regexp.MustCompile(`listening on (\S+)`)

// startServerTestee runs cmd/autobahn-server on a free port, with args
// added to its command line, and returns its address.
func startServerTestee(t *testing.T, args ...string) string {
	t.Helper()
	bin := buildTestee(t, "autobahn-server")
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(logs, sc.Text())
			if m := testeeListeningRE.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("autobahn-server output:\n%s", logs.String())
		}
	})
	select {
	case addr := <-addrc:
		return addr
	case <-time.After(opTimeout):
		t.Fatal("autobahn-server did not say where it listens")
		return ""
	}
}

// rawFrame is a frame as a client sends it: masked.
func rawFrame(fin bool, op byte, payload []byte) []byte {
	if fin {
		op |= 0x80
	}
	return rawframe.AppendMasked(nil, op, [4]byte{0x12, 0x34, 0x56, 0x78}, payload)
}

// readRawFrame reads one unmasked frame as a server sends it.
func readRawFrame(br *bufio.Reader) (fin bool, op byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return false, 0, nil, err
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var l [2]byte
		_, err = io.ReadFull(br, l[:])
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		_, err = io.ReadFull(br, l[:])
		n = binary.BigEndian.Uint64(l[:])
	}
	if err != nil {
		return false, 0, nil, err
	}
	if h[1]&0x80 != 0 || n > 1<<20 {
		return false, 0, nil, fmt.Errorf("server frame masked or %d bytes long", n)
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(br, payload)
	return h[0]&0x80 != 0, h[0] & 0x0F, payload, err
}

// expectFrame reads the next frame and fails unless it is a final frame
// with opcode op and payload want.
func expectFrame(t *testing.T, br *bufio.Reader, op byte, want []byte) {
	t.Helper()
	fin, gotOp, got, err := readRawFrame(br)
	if err != nil || !fin || gotOp != op || !bytes.Equal(got, want) {
		t.Fatalf("got frame fin=%v op=%#x payload %q (%v), want a final frame op=%#x payload %q", fin, gotOp, got, err, op, want)
	}
}

func closePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// expectClose reads the next frame and fails unless it is a close frame
// with the status code.
func expectClose(t *testing.T, br *bufio.Reader, code uint16) {
	t.Helper()
	fin, op, p, err := readRawFrame(br)
	if err != nil || !fin || op != 0x8 || len(p) < 2 || binary.BigEndian.Uint16(p) != code {
		t.Fatalf("got frame op=%#x payload %q (%v), want a close with %d", op, p, err, code)
	}
}

// TestAutobahnServerTestee sends the server testee frames shaped like
// those of a few Autobahn cases and checks the strict answers.
func TestAutobahnServerTestee(t *testing.T) {
	addr := startServerTestee(t)
	upgrade := func(t *testing.T) (net.Conn, *bufio.Reader) {
		resp, nc, br := rawUpgrade(t, addr, "Upgrade: websocket", "Connection: Upgrade",
			"Sec-WebSocket-Key: "+sampleKey, "Sec-WebSocket-Version: 13")
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %s", resp.Status)
		}
		return nc, br
	}
	t.Run("fragments with a ping between them (5.6)", func(t *testing.T) {
		nc, br := upgrade(t)
		nc.Write(rawFrame(false, 0x1, []byte("Hello, ")))
		nc.Write(rawFrame(true, 0x9, []byte("ping payload")))
		nc.Write(rawFrame(true, 0x0, []byte("world!")))
		expectFrame(t, br, 0xA, []byte("ping payload"))
		expectFrame(t, br, 0x1, []byte("Hello, world!"))
		nc.Write(rawFrame(true, 0x8, closePayload(1000, "")))
		expectClose(t, br, 1000)
	})
	t.Run("invalid UTF-8 fails fast, mid-frame (6.4.3)", func(t *testing.T) {
		nc, br := upgrade(t)
		valid := []byte("κόσμε")
		invalid := []byte{0xF4, 0x90, 0x80, 0x80} // above U+10FFFF
		rest := []byte("-edited")
		frame := rawFrame(true, 0x1, slices.Concat(valid, invalid, rest))
		// Header and the valid bytes, then the bad ones; the rest of the
		// frame is never sent, and the close must come without it.
		cut := len(frame) - len(invalid) - len(rest)
		nc.Write(frame[:cut])
		time.Sleep(100 * time.Millisecond)
		nc.Write(frame[cut : cut+len(invalid)])
		expectClose(t, br, 1007)
	})
	t.Run("clean close is echoed (7.1.1)", func(t *testing.T) {
		nc, br := upgrade(t)
		nc.Write(rawFrame(true, 0x1, []byte("Hello World!")))
		expectFrame(t, br, 0x1, []byte("Hello World!"))
		nc.Write(rawFrame(true, 0x8, closePayload(1000, "bye")))
		expectClose(t, br, 1000)
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("after the close handshake: %v, want the server to close the TCP connection", err)
		}
	})
	t.Run("reserved close code fails with 1002 (7.9.*)", func(t *testing.T) {
		nc, br := upgrade(t)
		nc.Write(rawFrame(true, 0x8, closePayload(1005, "")))
		expectClose(t, br, 1002)
	})
}

// TestAutobahnServerTesteeSlowloris: 200 connections sending their
// request a byte at a time are dropped once -handshake-timeout passes,
// and a client is served meanwhile.
func TestAutobahnServerTesteeSlowloris(t *testing.T) {
	addr := startServerTestee(t, "-handshake-timeout", "300ms")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	attack := make(chan error, 1)
	go func() { attack <- slowloris.Attack(ctx, addr, 200, 100*time.Millisecond) }()
	resp, nc, br := rawUpgrade(t, addr, "Upgrade: websocket", "Connection: Upgrade",
		"Sec-WebSocket-Key: "+sampleKey, "Sec-WebSocket-Version: 13")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade during the attack: %s", resp.Status)
	}
	nc.Write(rawFrame(true, 0x1, []byte("served")))
	expectFrame(t, br, 0x1, []byte("served"))
	if err := <-attack; err != nil {
		t.Fatal(err)
	}
}
