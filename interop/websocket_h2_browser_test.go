package interop

// Browsers open WebSockets over HTTP/2 (RFC 8441) against our server:
// cmd/h2echo, a TLS server that negotiates h2 and runs with
// GODEBUG=http2xconnect=1, which net/http's HTTP/2 server needs to
// offer extended CONNECT. A browser uses RFC 8441 only on an HTTP/2
// connection it has already opened to the host, so the page comes from
// the same server; then every WebSocket of the page, the realtime
// client's included, is a stream of that one connection, which the
// server's log shows.

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/realtime-go/realtime/internal/testcert"
)

// h2BrowserScript runs in h2echo's page: four WebSockets at once (two
// with permessage-deflate, one with a subprotocol), each echoing text
// and binary messages larger than an HTTP/2 frame; then a
// close by the page (4000), one by the server (4001), a text message
// that is not UTF-8 (which the browser must fail), and the realtime
// client on the same connection beside the last WebSocket, which the
// server then pings. It returns what the page saw.
const h2BrowserScript = `(async () => {
	const R = {};
	const wsURL = 'wss://' + location.host + '/ws';
	const open = (u, protocols) => new Promise((resolve, reject) => {
		const ws = new WebSocket(u, protocols);
		ws.binaryType = 'arraybuffer';
		const waiters = [];
		ws.queue = [];
		ws.next = () => ws.queue.length ? Promise.resolve(ws.queue.shift()) : new Promise((r) => waiters.push(r));
		ws.onmessage = (e) => waiters.length ? waiters.shift()(e.data) : ws.queue.push(e.data);
		ws.closed = new Promise((r) => ws.addEventListener('close', (e) => r({ code: e.code, reason: e.reason, wasClean: e.wasClean })));
		ws.onopen = () => resolve(ws);
		ws.onerror = () => reject(new Error('WebSocket error before open'));
	});
	const eq = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);
	const big = new Uint8Array(300000).map((_, i) => (Math.imul(i, 131) + (i >>> 11)) & 0xff);
	const bytes = new Uint8Array(256).map((_, i) => i);
	const text = 'h2 ✓ 😀 ' + 'grüße '.repeat(5000);
	// Odd ones with permessage-deflate, 2 with a subprotocol.
	const socks = await Promise.all([0, 1, 2, 3].map((i) => open(wsURL + '?id=' + i + (i % 2 ? '&deflate' : ''), i === 2 ? ['h2echo.v1'] : [])));
	R.echo = await Promise.all(socks.map(async (ws, i) => {
		ws.send(text + i);
		const t = await ws.next();
		ws.send(big);
		const b = new Uint8Array(await ws.next());
		ws.send(bytes);
		const s = new Uint8Array(await ws.next());
		return { text: t === text + i, big: eq(b, big), bytes: eq(s, bytes), protocol: ws.protocol, extensions: ws.extensions };
	}));
	socks[0].close(4000, 'page bye ✓');
	R.pageClose = await socks[0].closed;
	socks[1].send('close 4001 server bye ✓');
	R.serverClose = await socks[1].closed;
	socks[2].send('send-invalid-utf8');
	R.invalidUTF8 = await socks[2].closed;
	R.invalidUTF8.delivered = socks[2].queue.length;

	const rt = new RealtimeSocket('/rt', { connectTimeout: 10000 });
	R.rt = await new Promise((resolve) => {
		const timer = setTimeout(() => resolve({ transport: rt.transport, timeout: true }), 20000);
		rt.addEventListener('open', () => rt.send('realtime over h2 ✓'));
		rt.addEventListener('message', (e) => { clearTimeout(timer); resolve({ transport: rt.transport, data: e.data }); });
	});
	socks[3].send('still open ✓');
	R.lastEcho = await socks[3].next();
	socks[3].send('ping');
	R.pong = await socks[3].next();
	rt.close();
	socks[3].close(1000, '');
	R.lastClose = await socks[3].closed;
	return R;
})()`

type h2CloseEvent struct {
	Code      int    `json:"code"`
	Reason    string `json:"reason"`
	WasClean  bool   `json:"wasClean"`
	Delivered int    `json:"delivered"`
}

type h2BrowserResult struct {
	Echo []struct {
		Text, Big, Bytes     bool
		Protocol, Extensions string
	} `json:"echo"`
	PageClose   h2CloseEvent `json:"pageClose"`
	ServerClose h2CloseEvent `json:"serverClose"`
	InvalidUTF8 h2CloseEvent `json:"invalidUTF8"`
	RT          struct {
		Transport string `json:"transport"`
		Data      string `json:"data"`
		Timeout   bool   `json:"timeout"`
	} `json:"rt"`
	LastEcho  string       `json:"lastEcho"`
	Pong      string       `json:"pong"`
	LastClose h2CloseEvent `json:"lastClose"`
}

// h2ServerLine is a line of h2echo's log about a request.
var h2ServerLine = regexp.MustCompile(`(?m)(request|ws \d) conn=(\d+) proto=(\S+) method=(\S+) path=(\S+)`)

// h2ConnLine is h2echo's line about a TCP connection it accepted.
var h2ConnLine = regexp.MustCompile(`(?m) conn \d+$`)

func TestWebSocketHTTP2Browser(t *testing.T) {
	cert, err := testcert.New()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, cert.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, cert.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	bin := mnBuildCmd(t, "h2echo")
	for _, name := range rtBrowserNames {
		t.Run(name, func(t *testing.T) {
			// Chromium starts a browser of its own, which takes most of
			// the time: at once.
			t.Parallel()
			start := time.Now()
			defer func() { t.Logf("%s took %.1fs", t.Name(), time.Since(start).Seconds()) }()
			srv := mnNewProc(t, "h2echo", bin, "-addr", "127.0.0.1:0", "-cert", certFile, "-key", keyFile)
			srv.start()
			addr := srv.firstLine()
			tab := h2OpenTrusting(t, name, "https://"+addr+"/", cert.TLS.Leaf)
			testWebSocketHTTP2Browser(t, tab, srv)
		})
	}
}

// h2OpenTrusting opens a tab on rawURL in a browser name that trusts
// cert. Chromium is one of its own that trusts the certificate's key
// (valid then, not an error the browser was told to overlook; the
// switch needs a user data dir, which rtLaunchChromium gives). Firefox,
// which has no such switch, is the shared one, with a user context that
// accepts any certificate (BiDi acceptInsecureCerts) and its defaults
// otherwise (network.http.http2.websockets is on).
func h2OpenTrusting(t *testing.T, name, rawURL string, cert *x509.Certificate) rtTab {
	t.Helper()
	if name == "chromium" {
		rtNeedBrowser(t, name)
		spki := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
		b, stop, err := rtLaunchChromium(chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])))
		return rtKeepBrowser(t, name, b, stop, err).open(t, rawURL)
	}
	ff := rtSharedBrowser(t, name).(*rtFirefox)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	uc, err := ff.b.NewUserContext(ctx, true)
	if err != nil {
		t.Fatalf("firefox: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := ff.b.RemoveUserContext(ctx, uc); err != nil {
			t.Logf("firefox: %v", err)
		}
	})
	return ff.openIn(t, uc, rawURL)
}

func testWebSocketHTTP2Browser(t *testing.T, tab rtTab, srv *mnProc) {
	js, err := tab.eval(60*time.Second, h2BrowserScript)
	if err != nil {
		t.Fatalf("page script: %v", err)
	}
	t.Logf("page saw: %.1000s", js)
	var r h2BrowserResult
	if err := json.Unmarshal(js, &r); err != nil {
		t.Fatalf("page result %s: %v", js, err)
	}
	if len(r.Echo) != 4 {
		t.Fatalf("%d WebSockets echoed, want 4", len(r.Echo))
	}
	for i, e := range r.Echo {
		if !e.Text || !e.Big || !e.Bytes {
			t.Errorf("WebSocket %d: echo of text %v, of 300,000 bytes %v, of bytes 0-255 %v", i, e.Text, e.Big, e.Bytes)
		}
		if deflated := strings.HasPrefix(e.Extensions, "permessage-deflate"); deflated != (i%2 == 1) {
			t.Errorf("WebSocket %d: extensions %q", i, e.Extensions)
		}
		if want := map[bool]string{true: "h2echo.v1"}[i == 2]; e.Protocol != want {
			t.Errorf("WebSocket %d: subprotocol %q, want %q", i, e.Protocol, want)
		}
	}
	// The reason is the server's, which echoes the code alone.
	if c := r.PageClose; c.Code != 4000 || !c.WasClean {
		t.Errorf("close by the page: the page saw %+v, want a clean 4000", c)
	}
	if c := r.ServerClose; c.Code != 4001 || c.Reason != "server bye ✓" || !c.WasClean {
		t.Errorf("close by the server: the page saw %+v, want a clean 4001 \"server bye ✓\"", c)
	}
	// Failing the connection (RFC 6455 §7.1.7) shows as 1006 in the page.
	if c := r.InvalidUTF8; c.Code != 1006 || c.WasClean || c.Delivered != 0 {
		t.Errorf("a text message that is not UTF-8: the page saw %+v, want an unclean 1006 and no message", c)
	}
	if r.RT.Transport != "websocket" || r.RT.Data != "realtime over h2 ✓" {
		t.Errorf("realtime client: %+v, want an echo over transport websocket", r.RT)
	}
	if r.LastEcho != "still open ✓" || r.Pong != "pong ✓" || r.LastClose.Code != 1000 || !r.LastClose.WasClean {
		t.Errorf("the last WebSocket: echo %q, after the server's ping %q, close %+v", r.LastEcho, r.Pong, r.LastClose)
	}

	// The server's side of it: the closes it read, and the connection
	// every request came on.
	h2WaitLog(t, srv, "ws 0 closed by peer: 4000 page bye ✓")
	h2WaitLog(t, srv, "ws 1 closed: <nil>$")
	// The browser fails the connection: it may send a close frame with
	// 1007 and then ends the stream, at once (RFC 6455 §7.1.7), so the
	// server reads one or the other.
	if l := h2WaitLog(t, srv, "ws 2 (closed|read)"); !strings.Contains(l, "closed by peer: 1007 ") && !strings.Contains(l, "stream error") {
		t.Errorf("server: %q, want a close with 1007 or a reset stream after the text that is not UTF-8", l)
	} else {
		t.Logf("server: %s", l)
	}
	h2WaitLog(t, srv, "ws 3 pong: <nil>$")
	h2WaitLog(t, srv, "ws 3 closed by peer: 1000 ")
	out := srv.out.String()
	var page string
	var ws, rt []string
	// A browser may open a spare connection ahead of need (Chromium
	// does at times), but every request must come on the page's.
	used := map[string]bool{}
	for _, m := range h2ServerLine.FindAllStringSubmatch(out, -1) {
		kind, conn, proto, method, path := m[1], m[2], m[3], m[4], m[5]
		used[conn] = true
		switch {
		case kind == "request" && path == "/" && page == "":
			page = conn
			if proto != "HTTP/2.0" {
				t.Errorf("the page came over %s, want HTTP/2.0", proto)
			}
		case kind != "request":
			ws = append(ws, m[0])
		case path == "/rt" && method == "CONNECT":
			rt = append(rt, m[0])
		}
		if (kind != "request" || path == "/rt") && (proto != "HTTP/2.0" || method != "CONNECT" || conn != page) {
			t.Errorf("%s: want HTTP/2.0 CONNECT on connection %s, the page's", m[0], page)
		}
	}
	if len(ws) != 4 || len(rt) == 0 {
		t.Errorf("the server accepted %d WebSockets on /ws and saw %d on /rt, want 4 and 1 or more", len(ws), len(rt))
	}
	if len(used) != 1 {
		t.Errorf("requests came on %d TCP connections, want 1", len(used))
	}
	t.Logf("the server accepted %d TCP connections", len(h2ConnLine.FindAllString(out, -1)))

	// A page that goes away with WebSockets open resets their streams:
	// the server's reads end and so do its handlers.
	if _, err := tab.eval(30*time.Second, h2LeaveScript); err != nil {
		t.Fatalf("page: %v", err)
	}
	for id := range 7 {
		h2WaitLog(t, srv, fmt.Sprintf("ws %d handler returned", id))
	}
}

// h2LeaveScript opens three more WebSockets, 4 to 6, and once they are
// open leaves the page.
const h2LeaveScript = `(async () => {
	const u = 'wss://' + location.host + '/ws?id=';
	window.__keep = await Promise.all([4, 5, 6].map((i) => new Promise((resolve, reject) => {
		const ws = new WebSocket(u + i);
		ws.onopen = () => resolve(ws);
		ws.onerror = () => reject(new Error('WebSocket ' + i + ': error before open'));
	})));
	setTimeout(() => { location.href = 'about:blank'; }, 0);
})()`

// h2WaitLog waits until h2echo has logged a line matching the regular
// expression re and returns the line.
func h2WaitLog(t *testing.T, srv *mnProc, re string) string {
	t.Helper()
	line := regexp.MustCompile(`(?m)^.*` + re + `.*$`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := srv.out.String()
		if l := line.FindString(out); l != "" {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("h2echo did not log %q; its log:\n%s", re, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
