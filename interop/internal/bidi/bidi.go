// Package bidi drives Firefox over WebDriver BiDi, the W3C protocol
// Firefox serves itself (no geckodriver), with this module's own
// websocket package: just enough for the interop tests to open tabs,
// navigate, evaluate JavaScript and click or type as a person would.
//
// Start runs `firefox --headless --remote-debugging-port 0 --profile DIR
// about:blank`, reads the address Firefox prints ("WebDriver BiDi
// listening on ws://127.0.0.1:PORT"), connects to its /session endpoint
// and sends session.new. Commands are JSON objects {id, method, params}
// answered by {type: "success", id, result} or {type: "error", id, error,
// message}; events (no id) are ignored.
package bidi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/realtime-go/realtime/websocket"
)

// Options configures Start. Exec and ProfileDir are required.
type Options struct {
	// Exec is the Firefox binary, e.g. /usr/bin/firefox-esr.
	Exec string

	// ProfileDir is an empty directory Firefox uses as its profile; Start
	// writes user.js there (DefaultPrefs, then Prefs).
	ProfileDir string

	// Prefs are extra preferences (string, bool or integer values), for
	// example a proxy; they override DefaultPrefs.
	Prefs map[string]any

	// Output, if set, receives Firefox's stdout and stderr, line by line;
	// nothing after Close returned.
	Output io.Writer
}

// DefaultPrefs keep a test browser quiet and deterministic: no first-run
// or what's-new pages, no telemetry, updates, safe-browsing or remote
// settings fetches (no network requests a test did not make), and no
// throttling of timers in background tabs (tests keep several tabs open,
// and the client's watchdog and backoff run on timers).
var DefaultPrefs = map[string]any{
	"app.normandy.enabled":                                 false,
	"app.update.auto":                                      false,
	"app.update.disabledForTesting":                        true,
	"browser.aboutwelcome.enabled":                         false,
	"browser.newtabpage.enabled":                           false,
	"browser.safebrowsing.blockedURIs.enabled":             false,
	"browser.safebrowsing.downloads.enabled":               false,
	"browser.safebrowsing.malware.enabled":                 false,
	"browser.safebrowsing.phishing.enabled":                false,
	"browser.shell.checkDefaultBrowser":                    false,
	"browser.startup.homepage_override.mstone":             "ignore",
	"browser.startup.page":                                 0,
	"browser.tabs.warnOnClose":                             false,
	"datareporting.healthreport.uploadEnabled":             false,
	"datareporting.policy.dataSubmissionEnabled":           false,
	"dom.min_background_timeout_value":                     4,
	"dom.timeout.enable_budget_timer_throttling":           false,
	"extensions.getAddons.cache.enabled":                   false,
	"extensions.update.enabled":                            false,
	"messaging-system.rsexperimentloader.enabled":          false,
	"network.captive-portal-service.enabled":               false,
	"network.connectivity-service.enabled":                 false,
	"network.dns.disablePrefetch":                          true,
	"network.prefetch-next":                                false,
	"services.settings.server":                             "data:,",
	"toolkit.telemetry.enabled":                            false,
	"toolkit.telemetry.reportingpolicy.firstRun":           false,
	"toolkit.telemetry.server":                             "data:,",
	"browser.tabs.remote.separatePrivilegedContentProcess": false,
}

// Error is a command the browser answered with an error.
type Error struct {
	Method  string
	Code    string // e.g. "no such frame", "invalid argument"
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("bidi %s: %s: %s", e.Method, e.Code, e.Message)
}

// ScriptError is a script.evaluate whose script threw (or whose promise
// rejected).
type ScriptError struct {
	Text string // the exception's text, e.g. "TypeError: x is undefined"
}

func (e *ScriptError) Error() string { return "bidi: script threw: " + e.Text }

// ErrClosed is returned by commands on a Browser that was closed or whose
// connection ended.
var ErrClosed = errors.New("bidi: browser closed")

// Browser is a running Firefox with a BiDi session. Its methods are safe
// for concurrent use.
type Browser struct {
	cmd    *exec.Cmd
	conn   *websocket.Conn
	waited chan struct{} // closed when the process exited
	copied chan struct{} // closed when its output was all copied to Output
	read   chan struct{} // closed when the read loop ended

	mu      sync.Mutex
	nextID  int
	pending map[int]chan reply
	err     error // why the read loop ended
}

type reply struct {
	Type    string          `json:"type"`
	ID      *int            `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   string          `json:"error"`
	Message string          `json:"message"`
}

var listeningRE = regexp.MustCompile(`WebDriver BiDi listening on (ws://\S+)`)

// Start runs Firefox and opens a session. ctx bounds the start only.
func Start(ctx context.Context, o *Options) (*Browser, error) {
	if o == nil || o.Exec == "" || o.ProfileDir == "" {
		return nil, errors.New("bidi: Options.Exec and Options.ProfileDir are required")
	}
	if err := writePrefs(filepath.Join(o.ProfileDir, "user.js"), o.Prefs); err != nil {
		return nil, err
	}
	cmd := exec.Command(o.Exec, "--headless", "--no-remote", "--remote-debugging-port", "0",
		"--profile", o.ProfileDir, "about:blank")
	// Firefox starts content processes: its own process group lets Close
	// stop them all.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(), "MOZ_CRASHREPORTER_DISABLE=1", "MOZ_DISABLE_AUTO_SAFE_MODE=1")
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bidi: start firefox: %w", err)
	}
	b := &Browser{cmd: cmd, waited: make(chan struct{}), copied: make(chan struct{}), read: make(chan struct{}), pending: map[int]chan reply{}}
	go func() {
		cmd.Wait()
		pw.Close()
		close(b.waited)
	}()
	addr := make(chan string, 1)
	go func() {
		defer close(b.copied)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			if o.Output != nil {
				fmt.Fprintln(o.Output, line)
			}
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, pr) // a line too long for the scanner
	}()
	var wsURL string
	select {
	case wsURL = <-addr:
	case <-b.waited:
		<-b.copied
		return nil, errors.New("bidi: firefox exited before listening")
	case <-ctx.Done():
		b.kill()
		return nil, fmt.Errorf("bidi: firefox did not listen: %w", ctx.Err())
	}
	if err := b.connect(ctx, wsURL+"/session"); err != nil {
		b.kill()
		return nil, err
	}
	go b.readLoop()
	if err := b.Call(ctx, "session.new", map[string]any{"capabilities": map[string]any{}}, nil); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// writePrefs writes DefaultPrefs overridden by extra as user.js lines.
func writePrefs(path string, extra map[string]any) error {
	prefs := map[string]any{}
	for k, v := range DefaultPrefs {
		prefs[k] = v
	}
	for k, v := range extra {
		prefs[k] = v
	}
	keys := make([]string, 0, len(prefs))
	for k := range prefs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		v, err := json.Marshal(prefs[k])
		if err != nil {
			return fmt.Errorf("bidi: pref %s: %w", k, err)
		}
		fmt.Fprintf(&sb, "user_pref(%q, %s);\n", k, v)
	}
	return os.WriteFile(path, []byte(sb.String()), 0o644)
}

func (b *Browser) connect(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("bidi: %w", err)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return fmt.Errorf("bidi: %w", err)
	}
	// Results (a page state, a tree) can be large; 64 MiB is far above
	// anything a test evaluates.
	opts := &websocket.ClientOptions{ConnOptions: websocket.ConnOptions{MaxMessageSize: 64 << 20}}
	c, _, err := websocket.NewClient(ctx, nc, u, opts)
	if err != nil {
		nc.Close()
		return fmt.Errorf("bidi: connect %s: %w", raw, err)
	}
	b.conn = c
	return nil
}

func (b *Browser) readLoop() {
	defer close(b.read)
	var err error
	for {
		var p []byte
		_, p, err = b.conn.Read(context.Background())
		if err != nil {
			break
		}
		var r reply
		if json.Unmarshal(p, &r) != nil || r.ID == nil {
			continue // an event, or something this driver does not use
		}
		b.mu.Lock()
		ch := b.pending[*r.ID]
		delete(b.pending, *r.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- r
		}
	}
	b.mu.Lock()
	b.err = err
	for id, ch := range b.pending {
		close(ch)
		delete(b.pending, id)
	}
	b.mu.Unlock()
}

// Call sends the command method with params and decodes its result into
// result (unless nil). An error answer is an *Error.
func (b *Browser) Call(ctx context.Context, method string, params, result any) error {
	if params == nil {
		params = map[string]any{}
	}
	ch := make(chan reply, 1)
	b.mu.Lock()
	if b.err != nil || b.pending == nil {
		b.mu.Unlock()
		return ErrClosed
	}
	b.nextID++
	id := b.nextID
	b.pending[id] = ch
	b.mu.Unlock()
	forget := func() {
		b.mu.Lock()
		delete(b.pending, id)
		b.mu.Unlock()
	}
	msg, err := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err != nil {
		forget()
		return fmt.Errorf("bidi %s: %w", method, err)
	}
	if err := b.conn.Write(ctx, websocket.MessageText, msg); err != nil {
		forget()
		return fmt.Errorf("bidi %s: %w", method, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return ErrClosed
		}
		if r.Type == "error" {
			return &Error{Method: method, Code: r.Error, Message: r.Message}
		}
		if result == nil {
			return nil
		}
		if err := json.Unmarshal(r.Result, result); err != nil {
			return fmt.Errorf("bidi %s: decoding %s: %w", method, r.Result, err)
		}
		return nil
	case <-ctx.Done():
		forget()
		return fmt.Errorf("bidi %s: %w", method, ctx.Err())
	}
}

// NewTab opens a tab (a top-level browsing context) on about:blank and
// returns its context id.
func (b *Browser) NewTab(ctx context.Context) (string, error) {
	return b.NewTabIn(ctx, "")
}

// NewTabIn is NewTab in the user context userContext ("" for the
// default one).
func (b *Browser) NewTabIn(ctx context.Context, userContext string) (string, error) {
	params := map[string]any{"type": "tab"}
	if userContext != "" {
		params["userContext"] = userContext
	}
	var r struct {
		Context string `json:"context"`
	}
	if err := b.Call(ctx, "browsingContext.create", params, &r); err != nil {
		return "", err
	}
	return r.Context, nil
}

// NewUserContext makes a user context (tabs with cookies, storage and
// settings of their own) and returns its id. With acceptInsecureCerts
// its tabs accept any TLS certificate, such as a test server's
// self-signed one, for every connection, WebSockets included.
func (b *Browser) NewUserContext(ctx context.Context, acceptInsecureCerts bool) (string, error) {
	var r struct {
		UserContext string `json:"userContext"`
	}
	if err := b.Call(ctx, "browser.createUserContext", map[string]any{"acceptInsecureCerts": acceptInsecureCerts}, &r); err != nil {
		return "", err
	}
	return r.UserContext, nil
}

// RemoveUserContext closes the user context and its tabs.
func (b *Browser) RemoveUserContext(ctx context.Context, userContext string) error {
	return b.Call(ctx, "browser.removeUserContext", map[string]any{"userContext": userContext}, nil)
}

// Navigate loads rawURL in the tab and waits until it has loaded.
func (b *Browser) Navigate(ctx context.Context, tab, rawURL string) error {
	return b.Call(ctx, "browsingContext.navigate", map[string]any{"context": tab, "url": rawURL, "wait": "complete"}, nil)
}

// CloseTab closes the tab.
func (b *Browser) CloseTab(ctx context.Context, tab string) error {
	return b.Call(ctx, "browsingContext.close", map[string]any{"context": tab}, nil)
}

// Value is a BiDi remote value: Type is "string", "number", "boolean",
// "undefined", "null", "object", "node", ...; Value holds primitives as
// JSON (numbers such as NaN as strings); SharedID identifies a DOM node.
type Value struct {
	Type     string          `json:"type"`
	Value    json.RawMessage `json:"value"`
	SharedID string          `json:"sharedId"`
}

// Evaluate runs expr in the tab's page, awaiting it if it is a promise.
// A script that throws gives a *ScriptError.
func (b *Browser) Evaluate(ctx context.Context, tab, expr string) (Value, error) {
	var r struct {
		Type      string `json:"type"` // "success" or "exception"
		Result    Value  `json:"result"`
		Exception struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	err := b.Call(ctx, "script.evaluate", map[string]any{
		"expression": expr, "target": map[string]any{"context": tab}, "awaitPromise": true,
	}, &r)
	if err != nil {
		return Value{}, err
	}
	if r.Type == "exception" {
		return Value{}, &ScriptError{Text: r.Exception.Text}
	}
	return r.Result, nil
}

// element finds the first element matching the CSS selector css.
func (b *Browser) element(ctx context.Context, tab, css string) (string, error) {
	q, err := json.Marshal(css)
	if err != nil {
		return "", err
	}
	v, err := b.Evaluate(ctx, tab, "document.querySelector("+string(q)+")")
	if err != nil {
		return "", err
	}
	if v.Type != "node" || v.SharedID == "" {
		return "", fmt.Errorf("bidi: no element matches %s", css)
	}
	return v.SharedID, nil
}

// Click clicks the middle of the first element matching css with the
// mouse, as input.performActions does it: a real pointer event sequence.
func (b *Browser) Click(ctx context.Context, tab, css string) error {
	id, err := b.element(ctx, tab, css)
	if err != nil {
		return err
	}
	return b.Call(ctx, "input.performActions", map[string]any{
		"context": tab,
		"actions": []any{map[string]any{
			"type": "pointer", "id": "mouse", "parameters": map[string]any{"pointerType": "mouse"},
			"actions": []any{
				map[string]any{"type": "pointerMove", "x": 0, "y": 0,
					"origin": map[string]any{"type": "element", "element": map[string]any{"sharedId": id}}},
				map[string]any{"type": "pointerDown", "button": 0},
				map[string]any{"type": "pointerUp", "button": 0},
			},
		}},
	}, nil)
}

// Type clicks the first element matching css (to focus it) and types text
// there, one key press per character.
func (b *Browser) Type(ctx context.Context, tab, css, text string) error {
	if err := b.Click(ctx, tab, css); err != nil {
		return err
	}
	var keys []any
	for _, r := range text {
		keys = append(keys,
			map[string]any{"type": "keyDown", "value": string(r)},
			map[string]any{"type": "keyUp", "value": string(r)})
	}
	return b.Call(ctx, "input.performActions", map[string]any{
		"context": tab,
		"actions": []any{map[string]any{"type": "key", "id": "keyboard", "actions": keys}},
	}, nil)
}

// Close ends the session, stops Firefox and all its processes, and waits
// for them. It returns nil once the browser is gone.
func (b *Browser) Close() error {
	if b.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		b.Call(ctx, "session.end", nil, nil)
		cancel()
		b.conn.CloseNow()
		<-b.read
	}
	return b.kill()
}

func (b *Browser) kill() error {
	// The group Start created, so Firefox's content processes go too.
	syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-b.waited:
		<-b.copied // nothing is written to Output after Close
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("bidi: firefox (pid %d) did not exit", b.cmd.Process.Pid)
	}
}
