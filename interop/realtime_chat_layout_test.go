package interop

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// rtChatControlsJS checks, in a chat page, that every control is shown
// inside the viewport and is what a tap at its centre reaches (nothing
// covers it), and that the page does not scroll sideways. It returns the
// problems, as a JSON array of strings.
const rtChatControlsJS = `(() => {
	const controls = [['name', '#name'], ['transport switch', '#es'], ['current room', '#rooms li.current a'],
		['room to join', '#join-room'], ['join button', '#join'], ['message', '#msg'], ['send button', '#send']];
	const W = document.documentElement.clientWidth, H = document.documentElement.clientHeight, bad = [];
	for (const [what, sel] of controls) {
		const el = document.querySelector(sel);
		if (!el) { bad.push(what + ': missing'); continue; }
		const r = el.getBoundingClientRect();
		if (r.width < 1 || r.height < 1) { bad.push(what + ': not shown'); continue; }
		if (r.left < 0 || r.top < 0 || r.right > W + 0.5 || r.bottom > H + 0.5) {
			bad.push(what + ': outside the ' + W + 'x' + H + ' viewport at ' + JSON.stringify(r));
			continue;
		}
		const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
		if (!hit || !(hit === el || el.contains(hit))) {
			bad.push(what + ': covered by ' + (hit ? hit.outerHTML.slice(0, 80) : 'nothing'));
		}
	}
	if (document.documentElement.scrollWidth > W) bad.push('the page scrolls sideways: ' + document.documentElement.scrollWidth + ' > ' + W);
	return JSON.stringify(bad);
})()`

// TestChatLayout loads the chat demo at a phone's width (390x844) and a
// desktop's (1200x800), fills the room with more lines than fit, among
// them a line of HTML and a long unbroken word, and checks that every
// control is inside the viewport and not covered, that the HTML shows as
// text (no element made of it, its onerror never ran), and that the page
// fetched nothing from another origin.
func TestChatLayout(t *testing.T) {
	rtEachBrowser(t, func(t *testing.T, browser rtBrowser) {
		chat := rtStartChat(t)
		for _, size := range [][2]int64{{390, 844}, {1200, 800}} {
			t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
				rtChatLayout(t, browser, chat, size[0], size[1])
			})
		}
	})
}

// rtSetViewport sets the size of the tab's viewport.
func rtSetViewport(t *testing.T, tab rtTab, w, h int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	switch p := tab.(type) {
	case *rtChromiumTab:
		ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
		defer cancel()
		err = chromedp.Do(ctx, chromedp.EmulateViewport(w, h))
	case *rtFirefoxTab:
		err = p.b.Call(ctx, "browsingContext.setViewport", map[string]any{
			"context": p.id, "viewport": map[string]int64{"width": w, "height": h}}, nil)
	}
	if err != nil {
		t.Fatalf("setting the viewport: %v", err)
	}
}

// rtScreenshot is a PNG of the tab's viewport.
func rtScreenshot(t *testing.T, tab rtTab) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var shot []byte
	var err error
	switch p := tab.(type) {
	case *rtChromiumTab:
		ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
		defer cancel()
		shot, err = chromedp.Run(ctx, chromedp.CaptureScreenshot())
	case *rtFirefoxTab:
		var r struct{ Data []byte }
		err = p.b.Call(ctx, "browsingContext.captureScreenshot", map[string]any{"context": p.id}, &r)
		shot = r.Data
	}
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	return shot
}

func rtChatLayout(t *testing.T, browser rtBrowser, chat string, w, h int64) {
	const hostile = `<img src=x onerror="window.pwned=1"><b>bold?</b>`
	name := fmt.Sprintf("w%d", w)
	tab := browser.open(t, "http://"+chat+"/?name="+name)
	rtSetViewport(t, tab, w, h)
	rtWait(t, tab, name+" connects", `document.getElementById('status').dataset.transport === 'websocket'`, rtChatState, rtChatWait)
	rtWait(t, tab, name+" is in the lobby", `document.getElementById('room').textContent === 'lobby'`, rtChatState, rtChatWait)
	// More lines than the log shows, said through the form.
	rtEval[bool](t, tab, `(() => {
		const form = document.getElementById('form'), msg = document.getElementById('msg');
		for (let i = 0; i < 40; i++) { msg.value = 'line ' + i + ' from `+name+`'; form.requestSubmit(); }
		msg.value = 'x'.repeat(300); form.requestSubmit();
		return true;
	})()`)
	rtChatType(t, tab, name, hostile)
	rtWait(t, tab, name+" sees its lines", rtChatLineJS(name, "websocket", hostile)+
		fmt.Sprintf(` && document.querySelectorAll('#log li.say[data-from=%q]').length === 42`, name), rtChatState, rtChatWait)

	shot := rtScreenshot(t, tab)
	if cfg, err := png.DecodeConfig(bytes.NewReader(shot)); err != nil || int64(cfg.Width) != w || int64(cfg.Height) != h {
		t.Fatalf("screenshot %+v, %v; want %dx%d", cfg, err, w, h)
	}
	defer func() {
		if t.Failed() {
			path := filepath.Join(os.TempDir(), fmt.Sprintf("chat-layout-%s-%dx%d.png", browser.name(), w, h))
			if os.WriteFile(path, shot, 0o644) == nil {
				t.Logf("screenshot: %s", path)
			}
		}
	}()

	if bad := rtEval[string](t, tab, rtChatControlsJS); bad != "[]" {
		t.Errorf("at %dx%d: %s", w, h, bad)
	}
	// The HTML is text: in the line's text, with no element made of it,
	// and its onerror never ran.
	got := rtEval[string](t, tab, fmt.Sprintf(`(() => {
		const li = [...document.querySelectorAll('#log li.say')].find((li) => li.dataset.text === %q);
		return JSON.stringify({text: li.querySelector('.text').textContent, img: document.querySelectorAll('#log img, #log b').length, pwned: window.pwned === 1});
	})()`, hostile))
	want := fmt.Sprintf(`{"text":%q,"img":0,"pwned":false}`, hostile)
	if got != want {
		t.Errorf("the hostile line shows as %s, want %s", got, want)
	}
	if foreign := rtEval[string](t, tab, `JSON.stringify(performance.getEntriesByType('resource').map((e) => e.name).filter((u) => new URL(u).origin !== location.origin))`); foreign != "[]" {
		t.Errorf("the page fetched from other origins: %s", foreign)
	}
	if t.Failed() || w != 1200 {
		return
	}

	// The switch reconnects over EventSource, resuming: the room keeps
	// its lines, and the page says it missed nothing.
	rtClick(t, tab, "the EventSource switch", "#es")
	rtWait(t, tab, "the page reconnects over EventSource, resumed",
		`document.getElementById('status').dataset.transport === 'eventsource' && document.getElementById('detail').dataset.kind === 'resumed' && `+
			rtWhoJS(name+"/eventsource")+` && new URLSearchParams(location.search).get('transport') === 'eventsource'`, rtChatState, rtChatWait)
	rtChatType(t, tab, name, "over eventsource")
	rtWait(t, tab, "the line said over EventSource comes back", rtChatLineJS(name, "eventsource", "over eventsource")+
		fmt.Sprintf(` && document.querySelectorAll('#log li.say[data-from=%q]').length === 43`, name), rtChatState, rtChatWait)

	// A new name takes a new connection, and is remembered.
	rtEval[string](t, tab, `document.getElementById('name').value = ''`)
	if err := tab.typeText(rtChatWait, "#name", "zoë"); err != nil {
		t.Fatal(err)
	}
	rtEval[string](t, tab, `document.getElementById('name').blur()`) // leaving the field is the change
	rtWait(t, tab, "the page is back under its new name",
		rtWhoJS("zoë/eventsource")+` && localStorage.getItem('chat.name') === 'zoë'`, rtChatState, rtChatWait)
}

// rtCutter relays TCP connections to a server, and can cut them all and
// refuse new ones for a while, as a network that drops.
type rtCutter struct {
	ln    net.Listener
	to    string
	wg    sync.WaitGroup
	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
}

// rtStartCutter relays a loopback address to the server at to; it is
// stopped at cleanup.
func rtStartCutter(t *testing.T, to string) *rtCutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &rtCutter{ln: ln, to: to, conns: map[net.Conn]bool{}}
	c.wg.Add(1)
	go c.accept()
	t.Cleanup(func() {
		ln.Close()
		c.set(true)
		c.wg.Wait()
	})
	return c
}

func (c *rtCutter) accept() {
	defer c.wg.Done()
	for {
		in, err := c.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", c.to)
		if err != nil {
			in.Close()
			continue
		}
		if !c.track(in, out) {
			in.Close()
			out.Close()
			continue
		}
		c.wg.Add(2)
		go c.pipe(in, out)
		go c.pipe(out, in)
	}
}

// track records a relayed pair of connections, unless the network is
// down.
func (c *rtCutter) track(conns ...net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return false
	}
	for _, conn := range conns {
		c.conns[conn] = true
	}
	return true
}

func (c *rtCutter) pipe(dst, src net.Conn) {
	defer c.wg.Done()
	io.Copy(dst, src)
	dst.Close()
	src.Close()
	c.mu.Lock()
	delete(c.conns, dst)
	delete(c.conns, src)
	c.mu.Unlock()
}

// set takes the network down (cutting every connection) or up.
func (c *rtCutter) set(down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = down
	if down {
		for conn := range c.conns {
			conn.Close()
		}
	}
}

// TestChatStatus: the chat page shows its connection's state. Open, it
// shows the transport and the round-trip time of its ping; when the
// network drops, it shows that it reconnects, and a line said meanwhile
// as queued, with the count; when the network is back, it reconnects,
// says it resumed with nothing missed, and the queued line is said.
func TestChatStatus(t *testing.T) {
	rtEachBrowser(t, func(t *testing.T, browser rtBrowser) {
		rtChatStatus(t, browser)
	})
}

func rtChatStatus(t *testing.T, browser rtBrowser) {
	chat := rtStartChat(t)
	cut := rtStartCutter(t, chat)
	tab := browser.open(t, "http://"+cut.ln.Addr().String()+"/?name=dora")
	const state = `JSON.stringify({conn: {...document.getElementById('conn').dataset}, status: document.getElementById('status').textContent,
		detail: document.getElementById('detail').textContent, log: [...document.querySelectorAll('#log li')].map((li) => li.className + ': ' + li.textContent)})`
	rtWait(t, tab, "dora connects and measures the round-trip time",
		`document.getElementById('conn').dataset.state === 'open' && document.getElementById('conn').dataset.rtt !== '' &&
		/^websocket · \d+ ms$/.test(document.getElementById('status').textContent)`, state, rtChatWait)

	cut.set(true)
	rtWait(t, tab, "dora reconnects", `document.getElementById('conn').dataset.state === 'connecting' &&
		document.getElementById('status').textContent.startsWith('reconnecting')`, state, rtChatWait)
	rtChatType(t, tab, "dora", "said while offline")
	rtWait(t, tab, "dora's line is queued", `document.getElementById('conn').dataset.queued === '1' &&
		/ · 1 queued$/.test(document.getElementById('status').textContent) &&
		document.querySelector('#log li.pending .text').textContent === 'said while offline'`, state, rtChatWait)

	cut.set(false)
	rtWait(t, tab, "dora is back, resumed, and her line said",
		`document.getElementById('conn').dataset.state === 'open' && document.getElementById('conn').dataset.queued === '0' &&
		document.getElementById('detail').dataset.kind === 'resumed' &&
		document.querySelectorAll('#log li.pending').length === 0 &&
		[...document.querySelectorAll('#log li.say')].some((li) => li.dataset.from === 'dora' && li.dataset.text === 'said while offline')`, state, rtChatWait)
}
