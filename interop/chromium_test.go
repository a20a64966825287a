package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/realtime-go/realtime/websocket"
)

// startChromium returns the Chromium the test binary shares (see
// browsers_test.go). The context has a running browser and no deadline;
// a tab is chromedp.NewContext of it.
func startChromium(t *testing.T) context.Context {
	t.Helper()
	return rtSharedBrowser(t, "chromium").(*rtChromium).ctx
}

// chromiumPage is the page's script. It sends pageSends to the server,
// expects serverSends back (same generator as genPayload), waits for a final
// "please close" and closes with 1000. window.__result collects what it saw.
const chromiumPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>interop</title></head><body>
<script>
const R = window.__result = { done: false, errors: [], received: [], opened: false };
const RUNES = ['a', 'b', 'c', ' ', 'ü', '€', '😀', '\n', 'Z', 'é', '0'].map((r) => new TextEncoder().encode(r));
function gen(size, seed, text) {
	const b = new Uint8Array(size);
	if (!text) {
		for (let i = 0; i < size; i++) b[i] = (Math.imul(i, 131) + seed * 17 + (i >>> 11)) & 0xff;
		return b;
	}
	let n = 0;
	for (let i = 0; ; i++) {
		const r = RUNES[(i * 7 + seed) % RUNES.length];
		if (n + r.length > size) break;
		b.set(r, n);
		n += r.length;
	}
	b.fill(0x61, n);
	return b;
}
function mk(spec) {
	if (spec.text !== undefined) return { text: true, bytes: new TextEncoder().encode(spec.text) };
	if (spec.bytes !== undefined) return { text: false, bytes: new Uint8Array(spec.bytes) };
	return { text: spec.gen.text, bytes: gen(spec.gen.size, spec.gen.seed, spec.gen.text) };
}
function eq(a, b) {
	if (a.length !== b.length) return false;
	for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
	return true;
}
const pageSends = PAGE_SENDS;
const serverSends = SERVER_SENDS;
const ws = new WebSocket(WS_URL);
ws.binaryType = 'arraybuffer';
let got = 0;
ws.onopen = () => {
	R.opened = true;
	R.protocol = ws.protocol;
	R.extensions = ws.extensions;
	for (const s of pageSends) {
		const m = mk(s);
		ws.send(m.text ? new TextDecoder().decode(m.bytes) : m.bytes);
	}
};
ws.onmessage = (e) => {
	const text = typeof e.data === 'string';
	const bytes = text ? new TextEncoder().encode(e.data) : new Uint8Array(e.data);
	if (got < serverSends.length) {
		const want = mk(serverSends[got]);
		R.received.push({ i: got, text, len: bytes.length, ok: text === want.text && eq(bytes, want.bytes) });
		got++;
		return;
	}
	if (text && e.data === 'please close') {
		ws.close(1000, CLOSE_REASON);
		return;
	}
	R.errors.push('unexpected message: ' + (text ? JSON.stringify(e.data.slice(0, 100)) : bytes.length + ' bytes'));
};
ws.onerror = () => R.errors.push('error event');
ws.onclose = (e) => {
	R.close = { code: e.code, reason: e.reason, wasClean: e.wasClean };
	R.done = true;
};
</script></body></html>
`

type chromiumResult struct {
	Done       bool     `json:"done"`
	Opened     bool     `json:"opened"`
	Errors     []string `json:"errors"`
	Protocol   string   `json:"protocol"`
	Extensions string   `json:"extensions"`
	Received   []struct {
		I    int  `json:"i"`
		Text bool `json:"text"`
		Len  int  `json:"len"`
		OK   bool `json:"ok"`
	} `json:"received"`
	Close *struct {
		Code     int    `json:"code"`
		Reason   string `json:"reason"`
		WasClean bool   `json:"wasClean"`
	} `json:"close"`
}

// pageSpec is how a message is named in the page script.
func pageSpec(m msg) map[string]any {
	if g, ok := m.spec["gen"]; ok {
		return map[string]any{"gen": g}
	}
	if m.typ == websocket.MessageText {
		return map[string]any{"text": string(m.data)}
	}
	ints := make([]int, len(m.data))
	for i, b := range m.data {
		ints[i] = int(b)
	}
	return map[string]any{"bytes": ints}
}

func TestChromium(t *testing.T) {
	browser := startChromium(t)

	pageSends := []msg{
		textMsg("text", "hello from chromium"),
		textMsg("non-ascii", "grüße ✓ 😀 日本語"),
		binMsg("bytes-0-255", allBytes()),
		genMsg("binary-1MiB", 1<<20, 21, false),
		genMsg("text-1MiB", 1<<20, 22, true),
		textMsg("empty", ""),
	}
	serverSends := []msg{
		textMsg("text", "hello from go"),
		textMsg("non-ascii", "¡olé! — ✓ 😀 中文"),
		binMsg("bytes-0-255", allBytes()),
		genMsg("binary-1MiB", 1<<20, 23, false),
		genMsg("text-1MiB", 1<<20, 24, true),
		binMsg("empty", []byte{}),
	}
	const closeReasonText = "browser bye ✓"

	pongs := newPayloadLog()
	srv := startPageServer(t, &websocket.AcceptOptions{ConnOptions: websocket.ConnOptions{OnPong: pongs.add}}, pageSends, serverSends, closeReasonText)

	tctx, cancel := context.WithTimeout(browser, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.Navigate("http://"+srv.Addr+"/page")); err != nil {
		t.Fatalf("navigate: %v", err)
	}

	c, r := srv.next(t)
	if got, want := r.Header.Get("Origin"), "http://"+srv.Addr; got != want {
		t.Fatalf("server saw Origin %q, want %q", got, want)
	}
	if c.Version() != 13 {
		t.Fatalf("server: Version() = %d, want 13", c.Version())
	}
	ctx := testCtx(t)
	exchangeWithPage(t, ctx, c, pageSends, serverSends)
	// Ping the browser while a read is pending; Chromium answers by itself.
	rd := readAsync(ctx, c)
	rtt, err := c.Ping(ctx, []byte("chromium ping ✓"))
	if err != nil {
		t.Fatalf("server: Ping chromium: %v", err)
	}
	if rtt <= 0 {
		t.Fatalf("server: Ping RTT %v", rtt)
	}
	pongs.expect(t, "server OnPong", []byte("chromium ping ✓"))
	if err := c.Write(ctx, websocket.MessageText, []byte("please close")); err != nil {
		t.Fatal(err)
	}
	res := waitRead(t, "server", rd)
	checkCloseErr(t, "server (chromium closed)", res.err, websocket.StatusNormalClosure, closeReasonText)

	if _, err := chromedp.Run(tctx, chromedp.Poll[bool]("window.__result && window.__result.done",
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		s, _ := chromedp.Run(tctx, chromedp.Evaluate[string]("JSON.stringify(window.__result)"))
		t.Fatalf("page did not finish: %v; result so far: %.2000s", err, s)
	}
	js, err := chromedp.Run(tctx, chromedp.Evaluate[string]("JSON.stringify(window.__result)"))
	if err != nil {
		t.Fatalf("reading the page result: %v", err)
	}
	var pr chromiumResult
	if err := json.Unmarshal([]byte(js), &pr); err != nil {
		t.Fatalf("page result %q: %v", js, err)
	}
	t.Logf("chromium saw: %.1000s", js)
	if !pr.Opened || len(pr.Errors) != 0 {
		t.Fatalf("page: opened=%v errors=%q", pr.Opened, pr.Errors)
	}
	if pr.Extensions != c.Extensions() || pr.Protocol != c.Subprotocol() {
		t.Fatalf("extensions/subprotocol disagree: page %q/%q, server %q/%q", pr.Extensions, pr.Protocol, c.Extensions(), c.Subprotocol())
	}
	if len(pr.Received) != len(serverSends) {
		t.Fatalf("page received %d messages, want %d", len(pr.Received), len(serverSends))
	}
	for i, got := range pr.Received {
		m := serverSends[i]
		if !got.OK || got.Text != (m.typ == websocket.MessageText) || got.Len != len(m.data) {
			t.Fatalf("page: message %s arrived as text=%v len=%d ok=%v, want text=%v len=%d", m.name, got.Text, got.Len, got.OK, m.typ == websocket.MessageText, len(m.data))
		}
	}
	if pr.Close == nil || pr.Close.Code != 1000 || !pr.Close.WasClean {
		t.Fatalf("page close event %+v, want a clean 1000", pr.Close)
	}
}

// startPageServer serves our WebSocket endpoint with opts and, at /page,
// chromiumPage set up to send pageSends, to expect serverSends and to
// close with closeReason.
func startPageServer(t *testing.T, opts *websocket.AcceptOptions, pageSends, serverSends []msg, closeReason string) *ourServer {
	specs := func(ms []msg) string {
		s := make([]map[string]any, len(ms))
		for i, m := range ms {
			s[i] = pageSpec(m)
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	var srv *ourServer
	srv = startOurServer(t, opts, map[string]http.HandlerFunc{
		"/page": func(w http.ResponseWriter, r *http.Request) {
			js, _ := json.Marshal(srv.WSURL)
			reason, _ := json.Marshal(closeReason)
			page := strings.NewReplacer(
				"PAGE_SENDS", specs(pageSends),
				"SERVER_SENDS", specs(serverSends),
				"WS_URL", string(js),
				"CLOSE_REASON", string(reason),
			).Replace(chromiumPage)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			fmt.Fprint(w, page)
		},
	})
	return srv
}

// exchangeWithPage reads pageSends from the page, checking each, then
// writes serverSends to it.
func exchangeWithPage(t *testing.T, ctx context.Context, c *websocket.Conn, pageSends, serverSends []msg) {
	t.Helper()
	for _, m := range pageSends {
		typ, p, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("server: read %s from chromium: %v", m.name, err)
		}
		checkMsg(t, "server", m, typ, p)
	}
	for _, m := range serverSends {
		if err := c.Write(ctx, m.typ, m.data); err != nil {
			t.Fatalf("server: write %s: %v", m.name, err)
		}
	}
}
