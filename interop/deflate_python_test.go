package interop

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/realtime-go/realtime/extensions"
	"github.com/realtime-go/realtime/extensions/deflate"
	"github.com/realtime-go/realtime/websocket"
)

// debianPython is the interpreter that has python3-websockets; the
// python3 first on PATH may be another one.
const debianPython = "/usr/bin/python3"

// needPythonWebsockets returns the interpreter after checking that it can
// import websockets.
func needPythonWebsockets(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(debianPython); err != nil {
		missingPeer(t, "%s: %v", debianPython, err)
	}
	if out, err := exec.Command(debianPython, "-c", "import websockets").CombinedOutput(); err != nil {
		missingPeer(t, "python3-websockets (Debian package): %v: %s", err, out)
	}
	return debianPython
}

func startPythonPeer(t *testing.T, args ...string) *nodePeer {
	t.Helper()
	py := needPythonWebsockets(t)
	dir, err := filepath.Abs("python")
	if err != nil {
		t.Fatal(err)
	}
	return startLinePeer(t, "python", dir, py, append([]string{"deflate_peer.py"}, args...)...)
}

// pyReport is a line of deflate_peer.py.
type pyReport struct {
	Ports      []int         `json:"ports"`
	Port       int           `json:"port"`
	Extensions []pyExtension `json:"extensions"`
	Echoed     int           `json:"echoed"`
	Code       int           `json:"code"`
	Error      string        `json:"error"`
}

type pyExtension struct {
	Name                    string `json:"name"`
	LocalNoContextTakeover  bool   `json:"local_no_context_takeover"`
	RemoteNoContextTakeover bool   `json:"remote_no_context_takeover"`
	LocalMaxWindowBits      int    `json:"local_max_window_bits"`
	RemoteMaxWindowBits     int    `json:"remote_max_window_bits"`
}

func readPy(t *testing.T, p *nodePeer, what string) pyReport {
	t.Helper()
	line := p.readLine(t, what)
	var r pyReport
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("python: %q: %v", line, err)
	}
	if r.Error != "" {
		t.Fatalf("python: %s: %s", what, r.Error)
	}
	return r
}

// echoThrough sends the messages to an echoing peer, checks the echoes and
// closes with 1000.
func echoThrough(t *testing.T, who string, c *websocket.Conn, msgs []msg) {
	t.Helper()
	ctx := testCtx(t)
	for _, m := range msgs {
		if err := c.Write(ctx, m.typ, m.data); err != nil {
			t.Fatalf("write %s: %v", m.name, err)
		}
		typ, p, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read echo of %s: %v", m.name, err)
		}
		checkMsg(t, "echo from "+who, m, typ, p)
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// pyWant is what a websockets endpoint should report: its own and its
// peer's settings.
func checkPy(t *testing.T, r pyReport, want pyExtension, msgs int) {
	t.Helper()
	want.Name = "permessage-deflate"
	if len(r.Extensions) != 1 || !reflect.DeepEqual(r.Extensions[0], want) {
		t.Fatalf("python negotiated %+v, want %+v", r.Extensions, want)
	}
	if r.Echoed != msgs || r.Code != 1000 {
		t.Fatalf("python echoed %d messages and saw close %d; want %d and 1000", r.Echoed, r.Code, msgs)
	}
}

// TestDeflatePythonServer: our client against websockets servers, the
// default one (server_max_window_bits=12, client_max_window_bits=12) and
// others.
func TestDeflatePythonServer(t *testing.T) {
	configs := []map[string]any{
		nil,
		{"server_no_context_takeover": true, "client_no_context_takeover": true, "server_max_window_bits": 9, "client_max_window_bits": 10},
		{"server_max_window_bits": 15},
	}
	b, _ := json.Marshal(configs)
	py := startPythonPeer(t, "server", string(b))
	ports := readPy(t, py, "the ports").Ports
	if len(ports) != len(configs) {
		t.Fatalf("python listens on %v", ports)
	}
	for _, tt := range []struct {
		port   int
		ours   deflate.Options
		header string
		py     pyExtension // local: the python server
	}{
		{ports[0], deflate.Options{},
			"permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
			pyExtension{LocalMaxWindowBits: 12, RemoteMaxWindowBits: 12}},
		{ports[0], deflate.Options{NoContextTakeover: true, RequestNoContextTakeover: true, MaxWindowBits: 11, RequestMaxWindowBits: 10},
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=11",
			pyExtension{LocalNoContextTakeover: true, RemoteNoContextTakeover: true, LocalMaxWindowBits: 10, RemoteMaxWindowBits: 11}},
		{ports[1], deflate.Options{},
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=10",
			pyExtension{LocalNoContextTakeover: true, RemoteNoContextTakeover: true, LocalMaxWindowBits: 9, RemoteMaxWindowBits: 10}},
		{ports[2], deflate.Options{MaxWindowBits: 9},
			"permessage-deflate; server_max_window_bits=15; client_max_window_bits=9",
			pyExtension{LocalMaxWindowBits: 15, RemoteMaxWindowBits: 9}},
	} {
		t.Run(fmt.Sprintf("server%d/%+v", slices.Index(ports, tt.port), tt.ours), func(t *testing.T) {
			ours := tt.ours
			ours.Threshold = -1
			c, _ := dialOurs(t, fmt.Sprintf("ws://127.0.0.1:%d/", tt.port), &websocket.ClientOptions{Extensions: []extensions.Extension{deflate.New(&ours)}})
			if c.Extensions() != tt.header {
				t.Fatalf("negotiated %q, want %q", c.Extensions(), tt.header)
			}
			msgs := deflateMsgs(true)
			echoThrough(t, "python", c, msgs)
			checkPy(t, readPy(t, py, "the connection report"), tt.py, len(msgs))
		})
	}
}

// TestDeflatePythonClient: websockets clients, the default one and
// others, against our server.
func TestDeflatePythonClient(t *testing.T) {
	py := startPythonPeer(t, "client")
	for _, tt := range []struct {
		ours   deflate.Options
		theirs map[string]any
		header string
		py     pyExtension // local: the python client
	}{
		{deflate.Options{}, nil, "permessage-deflate",
			pyExtension{LocalMaxWindowBits: 15, RemoteMaxWindowBits: 15}},
		{deflate.Options{NoContextTakeover: true, RequestMaxWindowBits: 11, MaxWindowBits: 13}, nil,
			"permessage-deflate; server_no_context_takeover; server_max_window_bits=13; client_max_window_bits=11",
			pyExtension{RemoteNoContextTakeover: true, LocalMaxWindowBits: 11, RemoteMaxWindowBits: 13}},
		{deflate.Options{}, map[string]any{"server_no_context_takeover": true, "client_no_context_takeover": true, "server_max_window_bits": 10, "client_max_window_bits": 9},
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10",
			pyExtension{LocalNoContextTakeover: true, RemoteNoContextTakeover: true, LocalMaxWindowBits: 9, RemoteMaxWindowBits: 10}},
		// zlib inflates 8-bit windows; our compressor honours them exactly.
		{deflate.Options{}, map[string]any{"server_max_window_bits": 8},
			"permessage-deflate; server_max_window_bits=8",
			pyExtension{LocalMaxWindowBits: 15, RemoteMaxWindowBits: 8}},
		{deflate.Options{RequestNoContextTakeover: true}, map[string]any{"client_max_window_bits": 12},
			"permessage-deflate; client_no_context_takeover",
			pyExtension{LocalNoContextTakeover: true, LocalMaxWindowBits: 12, RemoteMaxWindowBits: 15}},
	} {
		t.Run(fmt.Sprintf("%+v/%v", tt.ours, tt.theirs), func(t *testing.T) {
			ours := tt.ours
			ours.Threshold = -1
			srv := startOurServer(t, &websocket.AcceptOptions{Extensions: []extensions.Extension{deflate.New(&ours)}}, nil)
			cmd, _ := json.Marshal(map[string]any{"url": srv.WSURL, "config": tt.theirs})
			if _, err := py.stdin.Write(append(cmd, '\n')); err != nil {
				t.Fatal(err)
			}
			c, _ := srv.next(t)
			if c.Extensions() != tt.header {
				t.Fatalf("negotiated %q, want %q", c.Extensions(), tt.header)
			}
			msgs := deflateMsgs(true)
			echoThrough(t, "python", c, msgs)
			checkPy(t, readPy(t, py, "the connection report"), tt.py, len(msgs))
		})
	}
}
