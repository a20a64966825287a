package interop

// The browsers the realtime tests run their pages in: headless Chromium
// (chromedp) and Firefox (WebDriver BiDi, internal/bidi), behind one
// small interface so that each test runs as a subtest in both. One
// process of each is shared by the whole test binary (started on first
// use, stopped in TestMain); a test that needs browser flags of its own
// (a proxy) starts its own.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/realtime-go/realtime/interop/internal/bidi"
)

// rtBrowser is a running browser.
type rtBrowser interface {
	// name is "chromium" or "firefox".
	name() string
	// open opens a tab on rawURL, waits until the page has loaded, and
	// closes the tab at the test's cleanup.
	open(t *testing.T, rawURL string) rtTab
	// output is the tail of what the browser printed, for failures.
	output() string
}

// rtTab is a tab of an rtBrowser.
type rtTab interface {
	// eval evaluates the JavaScript expression expr (awaiting a promise)
	// and returns its value as JSON (undefined as null).
	eval(timeout time.Duration, expr string) (json.RawMessage, error)
	// click clicks the element matching css with the mouse.
	click(timeout time.Duration, css string) error
	// typeText types text into the element matching css, key by key.
	typeText(timeout time.Duration, css, text string) error
}

// rtBrowserNames are the browsers every realtime page test runs in.
var rtBrowserNames = []string{"chromium", "firefox"}

// rtEachBrowser runs fn as a subtest per browser, each with the shared
// browser of that name.
func rtEachBrowser(t *testing.T, fn func(t *testing.T, b rtBrowser)) {
	t.Helper()
	for _, name := range rtBrowserNames {
		t.Run(name, func(t *testing.T) {
			b := rtSharedBrowser(t, name)
			start := time.Now()
			defer func() {
				t.Logf("%s: %s took %.1fs", name, t.Name(), time.Since(start).Seconds())
				if t.Failed() {
					t.Logf("%s output (tail):\n%s", name, b.output())
				}
			}()
			fn(t, b)
		})
	}
}

var rtShared struct {
	mu       sync.Mutex
	browsers map[string]rtBrowser
	errs     map[string]error
	stops    []func()
}

// rtSharedBrowser returns the browser name shared by the test binary,
// starting it on first use. A missing browser skips the test, or fails
// it under CI=true.
func rtSharedBrowser(t *testing.T, name string) rtBrowser {
	t.Helper()
	rtNeedBrowser(t, name)
	rtShared.mu.Lock()
	defer rtShared.mu.Unlock()
	if b := rtShared.browsers[name]; b != nil {
		return b
	}
	if err := rtShared.errs[name]; err != nil {
		t.Fatalf("%s did not start: %v", name, err)
	}
	if rtShared.browsers == nil {
		rtShared.browsers, rtShared.errs = map[string]rtBrowser{}, map[string]error{}
	}
	var (
		b    rtBrowser
		stop func()
		err  error
	)
	switch name {
	case "chromium":
		b, stop, err = rtLaunchChromium()
	default:
		b, stop, err = rtLaunchFirefox(nil)
	}
	if err != nil {
		rtShared.errs[name] = err
		t.Fatalf("%s did not start: %v", name, err)
	}
	rtShared.browsers[name] = b
	rtShared.stops = append(rtShared.stops, stop)
	return b
}

// rtStopSharedBrowsers stops the shared browsers; TestMain calls it
// after the tests (and before the goroutine leak check).
func rtStopSharedBrowsers() {
	rtShared.mu.Lock()
	defer rtShared.mu.Unlock()
	for _, stop := range rtShared.stops {
		stop()
	}
	rtShared.stops, rtShared.browsers = nil, nil
}

// rtNeedBrowser skips (or under CI fails) the test if the browser is
// not installed.
func rtNeedBrowser(t *testing.T, name string) {
	t.Helper()
	switch name {
	case "chromium":
		needExec(t, "chromium")
	case "firefox":
		needExec(t, "firefox-esr")
	default:
		t.Fatalf("no browser %q", name)
	}
}

// rtStartBrowser starts a browser of its own for this test, with a proxy
// (an HTTP proxy at host:port, used for loopback too) when proxy is set;
// it is stopped at cleanup.
func rtStartBrowser(t *testing.T, name, proxy string) rtBrowser {
	t.Helper()
	rtNeedBrowser(t, name)
	var (
		b    rtBrowser
		stop func()
		err  error
	)
	if name == "chromium" {
		var extra []chromedp.ExecAllocatorOption
		if proxy != "" {
			extra = append(extra, chromedp.ProxyServer("http://"+proxy),
				// Without <-loopback> Chromium bypasses proxies for 127.0.0.1.
				chromedp.Flag("proxy-bypass-list", "<-loopback>"))
		}
		b, stop, err = rtLaunchChromium(extra...)
	} else {
		var prefs map[string]any
		if proxy != "" {
			host, port, _ := strings.Cut(proxy, ":")
			p, err := strconv.Atoi(port)
			if err != nil {
				t.Fatalf("proxy %q: %v", proxy, err)
			}
			prefs = map[string]any{
				"network.proxy.type":          1, // manual
				"network.proxy.http":          host,
				"network.proxy.http_port":     p,
				"network.proxy.ssl":           host,
				"network.proxy.ssl_port":      p,
				"network.proxy.no_proxies_on": "",
				// Without it Firefox never proxies loopback addresses.
				"network.proxy.allow_hijacking_localhost": true,
			}
		}
		b, stop, err = rtLaunchFirefox(prefs)
	}
	return rtKeepBrowser(t, name, b, stop, err)
}

// rtKeepBrowser fails the test if a browser of its own did not start,
// and stops it at cleanup.
func rtKeepBrowser(t *testing.T, name string, b rtBrowser, stop func(), err error) rtBrowser {
	t.Helper()
	if err != nil {
		t.Fatalf("%s did not start: %v", name, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s output (tail):\n%s", name, b.output())
		}
		stop()
	})
	return b
}

// rtTail is the last n bytes of s.
func rtTail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// rtWrapEval makes expr's value a JSON string, which both browsers return
// as a plain string.
func rtWrapEval(expr string) string {
	return `(async () => { const v = await (` + expr + `); return v === undefined ? 'null' : JSON.stringify(v); })()`
}

// rtChromium is a Chromium driven by chromedp.
type rtChromium struct {
	ctx context.Context // the browser's
	out *syncBuffer
}

// rtLaunchChromium starts headless Chromium with extra flags.
func rtLaunchChromium(extra ...chromedp.ExecAllocatorOption) (rtBrowser, func(), error) {
	out := &syncBuffer{}
	dir, err := rtMkdirTemp("rt-chromium-")
	if err != nil {
		return nil, nil, err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath("chromium"),
		chromedp.UserDataDir(dir.path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.CombinedOutput(out),
	)
	opts = append(opts, extra...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	stop := func() {
		cancelCtx()
		cancelAlloc()
		dir.remove()
	}
	if err := chromedp.Do(ctx); err != nil { // starts the browser: no deadline
		stop()
		return nil, nil, err
	}
	return &rtChromium{ctx: ctx, out: out}, stop, nil
}

func (b *rtChromium) name() string   { return "chromium" }
func (b *rtChromium) output() string { return rtTail(b.out.String(), 3000) }

func (b *rtChromium) open(t *testing.T, rawURL string) rtTab {
	t.Helper()
	tab, cancel := chromedp.NewContext(b.ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil { // creates the tab: no deadline
		t.Fatalf("chromium: new tab: %v", err)
	}
	ctx, cancelNav := context.WithTimeout(tab, 60*time.Second)
	defer cancelNav()
	if err := chromedp.Do(ctx, chromedp.Navigate(rawURL)); err != nil {
		t.Fatalf("chromium: navigate %s: %v", rawURL, err)
	}
	return &rtChromiumTab{ctx: tab}
}

type rtChromiumTab struct{ ctx context.Context }

func (p *rtChromiumTab) eval(timeout time.Duration, expr string) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](rtWrapEval(expr), chromedp.EvalAwaitPromise))
	return json.RawMessage(s), err
}

func (p *rtChromiumTab) click(timeout time.Duration, css string) error {
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	return chromedp.Do(ctx, chromedp.Click(chromedp.CSS(css)))
}

func (p *rtChromiumTab) typeText(timeout time.Duration, css, text string) error {
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	return chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(css), text))
}

// rtFirefox is a Firefox driven over WebDriver BiDi.
type rtFirefox struct {
	b   *bidi.Browser
	out *syncBuffer
}

// rtLaunchFirefox starts headless Firefox with a new profile and extra
// prefs.
func rtLaunchFirefox(prefs map[string]any) (rtBrowser, func(), error) {
	out := &syncBuffer{}
	// The shared browser outlives the test that started it, and with it
	// that test's TempDir: the profile lives in a directory of its own.
	prof, err := rtMkdirTemp("rt-firefox-")
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b, err := bidi.Start(ctx, &bidi.Options{Exec: "firefox-esr", ProfileDir: prof.path, Prefs: prefs, Output: out})
	if err != nil {
		prof.remove()
		return nil, nil, err
	}
	stop := func() {
		b.Close()
		prof.remove()
	}
	return &rtFirefox{b: b, out: out}, stop, nil
}

func (b *rtFirefox) name() string   { return "firefox" }
func (b *rtFirefox) output() string { return rtTail(b.out.String(), 3000) }

func (b *rtFirefox) open(t *testing.T, rawURL string) rtTab {
	t.Helper()
	return b.openIn(t, "", rawURL)
}

// openIn is open in the user context userContext ("" for the default
// one).
func (b *rtFirefox) openIn(t *testing.T, userContext, rawURL string) rtTab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	id, err := b.b.NewTabIn(ctx, userContext)
	if err != nil {
		t.Fatalf("firefox: new tab: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.b.CloseTab(ctx, id); err != nil && !errors.Is(err, bidi.ErrClosed) {
			t.Logf("firefox: closing a tab: %v", err)
		}
	})
	if err := b.b.Navigate(ctx, id, rawURL); err != nil {
		t.Fatalf("firefox: navigate %s: %v", rawURL, err)
	}
	return &rtFirefoxTab{b: b.b, id: id}
}

type rtFirefoxTab struct {
	b  *bidi.Browser
	id string
}

func (p *rtFirefoxTab) eval(timeout time.Duration, expr string) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	v, err := p.b.Evaluate(ctx, p.id, rtWrapEval(expr))
	if err != nil {
		return nil, err
	}
	var s string
	if v.Type != "string" || json.Unmarshal(v.Value, &s) != nil {
		return nil, fmt.Errorf("firefox: evaluate gave %s %s, want a string", v.Type, v.Value)
	}
	return json.RawMessage(s), nil
}

func (p *rtFirefoxTab) click(timeout time.Duration, css string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return p.b.Click(ctx, p.id, css)
}

func (p *rtFirefoxTab) typeText(timeout time.Duration, css, text string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return p.b.Type(ctx, p.id, css, text)
}

// rtTempDir is a directory that is not tied to a test.
type rtTempDir struct{ path string }

func rtMkdirTemp(pattern string) (rtTempDir, error) {
	d, err := os.MkdirTemp("", pattern)
	return rtTempDir{d}, err
}

func (d rtTempDir) remove() { os.RemoveAll(d.path) }

// rtOpen opens a tab on rawURL in b.
func rtOpen(t *testing.T, b rtBrowser, rawURL string) rtTab {
	t.Helper()
	return b.open(t, rawURL)
}

// rtWait polls expr in the tab until it is truthy, failing with what
// describe reports.
func rtWait(t *testing.T, tab rtTab, what, expr, describe string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		v, err := tab.eval(10*time.Second, "!!("+expr+")")
		if err == nil && string(v) == "true" {
			return
		}
		lastErr = err
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	state, _ := tab.eval(10*time.Second, describe)
	var s string
	if json.Unmarshal(state, &s) != nil {
		s = string(state)
	}
	t.Fatalf("%s: not within %v (last error: %v); page state: %.3000s", what, timeout, lastErr, s)
}

// rtEval evaluates expr in the tab.
func rtEval[T any](t *testing.T, tab rtTab, expr string) T {
	t.Helper()
	var v T
	js, err := tab.eval(30*time.Second, expr)
	if err != nil {
		t.Fatalf("evaluate %.300q: %v", expr, err)
	}
	if err := json.Unmarshal(js, &v); err != nil {
		t.Fatalf("evaluate %.300q: decoding %s: %v", expr, js, err)
	}
	return v
}

// rtClick clicks the element matching css in the tab.
func rtClick(t *testing.T, tab rtTab, what, css string) {
	t.Helper()
	if err := tab.click(30*time.Second, css); err != nil {
		t.Fatalf("%s: clicking %s: %v", what, css, err)
	}
}
