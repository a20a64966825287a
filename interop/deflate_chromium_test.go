package interop

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/realtime-go/realtime/extensions"
	"github.com/realtime-go/realtime/extensions/deflate"
	"github.com/realtime-go/realtime/websocket"
)

// TestDeflateChromium: headless Chromium negotiates permessage-deflate with
// our server, with context takeover and without it under small windows,
// and messages from 0 B to 1 MiB go both ways (chromiumPage drives the
// page side).
func TestDeflateChromium(t *testing.T) {
	browser := startChromium(t)
	for _, tt := range []struct {
		name   string
		opts   deflate.Options
		header string
	}{
		{"default", deflate.Options{Threshold: -1}, "permessage-deflate"},
		{"no-context-takeover-small-windows",
			deflate.Options{Threshold: -1, NoContextTakeover: true, RequestNoContextTakeover: true, MaxWindowBits: 11, RequestMaxWindowBits: 10},
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11; client_max_window_bits=10"},
		{"window-9", deflate.Options{Threshold: -1, MaxWindowBits: 9, RequestMaxWindowBits: 9},
			"permessage-deflate; server_max_window_bits=9; client_max_window_bits=9"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			testDeflateChromium(t, browser, tt.opts, tt.header)
		})
	}
}

func testDeflateChromium(t *testing.T, browser context.Context, opts deflate.Options, header string) {
	pageSends := []msg{
		textMsg("empty", ""),
		textMsg("short", "hello from chromium ✓"),
		binMsg("bytes-0-255", allBytes()),
		genMsg("text-300", 300, 31, true),
		genMsg("text-300-again", 300, 31, true),
		genMsg("binary-70000", 70000, 32, false),
		genMsg("text-1MiB", 1<<20, 33, true),
		genMsg("binary-1MiB", 1<<20, 34, false),
	}
	serverSends := []msg{
		binMsg("empty", []byte{}),
		textMsg("short", "hello from go ✓"),
		genMsg("text-300", 300, 35, true),
		genMsg("text-300-again", 300, 35, true),
		binMsg("far-repeats", farRepeats()),
		genMsg("text-70000", 70000, 36, true),
		genMsg("binary-1MiB", 1<<20, 37, false),
		genMsg("text-1MiB", 1<<20, 38, true),
	}
	const closeReasonText = "deflate bye"
	srv := startPageServer(t, &websocket.AcceptOptions{Extensions: []extensions.Extension{deflate.New(&opts)}}, pageSends, serverSends, closeReasonText)

	tctx, cancel := context.WithTimeout(browser, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.Navigate("http://"+srv.Addr+"/page")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	c, r := srv.next(t)
	t.Logf("chromium offered %q; we answered %q", r.Header.Get("Sec-WebSocket-Extensions"), c.Extensions())
	if c.Extensions() != header {
		t.Fatalf("negotiated %q, want %q", c.Extensions(), header)
	}
	ctx := testCtx(t)
	exchangeWithPage(t, ctx, c, pageSends, serverSends)
	rd := readAsync(ctx, c)
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
	if !pr.Opened || len(pr.Errors) != 0 {
		t.Fatalf("page: opened=%v errors=%q", pr.Opened, pr.Errors)
	}
	if pr.Extensions != header {
		t.Fatalf("page: ws.extensions = %q, want %q", pr.Extensions, header)
	}
	if len(pr.Received) != len(serverSends) {
		t.Fatalf("page received %d messages, want %d", len(pr.Received), len(serverSends))
	}
	for i, got := range pr.Received {
		m := serverSends[i]
		if !got.OK || got.Text != (m.typ == websocket.MessageText) || got.Len != len(m.data) {
			t.Fatalf("page: message %s arrived as text=%v len=%d ok=%v", m.name, got.Text, got.Len, got.OK)
		}
	}
	if pr.Close == nil || pr.Close.Code != 1000 || !pr.Close.WasClean {
		t.Fatalf("page close event %+v, want a clean 1000", pr.Close)
	}
}
