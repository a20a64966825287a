// Command chatshot refreshes docs/chat.png, the README's screenshot of
// the chat demo: it builds and starts examples/chat, opens it in two
// headless Chromium tabs, alice over WebSocket and bob forced onto the
// EventSource fallback, has them chat in the lobby by typing into the
// page, and saves alice's tab at 1200x800.
//
//	cd interop && go run ./cmd/chatshot            # writes ../docs/chat.png
//	go run ./cmd/chatshot -out /tmp/chat.png -chromium /usr/bin/chromium
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"time"

	"github.com/chromedp/chromedp"
)

const width, height = 1200, 800

func main() {
	root, err := repoRoot()
	if err != nil {
		log.Fatal("chatshot: ", err)
	}
	out := flag.String("out", filepath.Join(root, "docs", "chat.png"), "where to write the PNG")
	chromium := flag.String("chromium", "chromium", "the Chromium executable (a name looked up in PATH, or a path)")
	flag.Parse()
	if err := run(root, *out, *chromium); err != nil {
		log.Fatal("chatshot: ", err)
	}
	log.Printf("chatshot: wrote %s", *out)
}

// repoRoot is the repository's root: the first directory up from here
// that holds examples/chat.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "examples", "chat", "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("run me inside the repository: no examples/chat above the working directory")
		}
		dir = up
	}
}

func run(root, out, chromium string) error {
	exe, err := exec.LookPath(chromium)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "chatshot-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	addr, stop, err := startChat(root, tmp)
	if err != nil {
		return err
	}
	defer stop()

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(filepath.Join(tmp, "profile")),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(width, height),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if err := chromedp.Do(browser); err != nil {
		return fmt.Errorf("starting chromium: %w", err)
	}
	ctx, cancel := context.WithTimeout(browser, 2*time.Minute)
	defer cancel()

	base := "http://" + addr
	alice, err := tab(ctx, base+"/?name=alice", "websocket")
	if err != nil {
		return fmt.Errorf("alice: %w", err)
	}
	bob, err := tab(ctx, base+"/?name=bob&transport=eventsource", "eventsource")
	if err != nil {
		return fmt.Errorf("bob: %w", err)
	}
	lines := []struct {
		tab  context.Context
		text string
	}{
		{alice, "hi bob! I'm on a WebSocket"},
		{bob, "hello alice, I'm on the EventSource fallback: a stream down and POSTs up, as behind a proxy that blocks WebSockets"},
		{alice, "and if either of us drops, we resume where we were: nothing lost, nothing twice"},
		{bob, "<b>HTML</b> shows as text, by the way"},
		{alice, "try it: go run ./examples/chat"},
	}
	for i, l := range lines {
		err := chromedp.Do(l.tab, chromedp.SendKeys(chromedp.ID("msg"), l.text), chromedp.Click(chromedp.ID("send")))
		if err != nil {
			return err
		}
		if err := wait(alice, fmt.Sprintf(`document.querySelectorAll('#log li.say').length === %d`, i+1)); err != nil {
			return fmt.Errorf("line %d: %w", i+1, err)
		}
	}
	// Both listed, the round-trip time measured, the message box empty.
	if err := wait(alice, `document.querySelectorAll('#who li').length === 2 && document.getElementById('conn').dataset.rtt !== ''`); err != nil {
		return err
	}
	shot, err := chromedp.Run(alice, chromedp.CaptureScreenshot())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, shot, 0o644)
}

// tab opens url in a new tab at width x height and waits until the page
// is connected over transport.
func tab(ctx context.Context, url, transport string) (context.Context, error) {
	t, _ := chromedp.NewContext(ctx) // ends with ctx, and has its deadline
	err := chromedp.Do(t, chromedp.EmulateViewport(width, height), chromedp.Navigate(url))
	if err != nil {
		return nil, err
	}
	return t, wait(t, fmt.Sprintf(`document.getElementById('status').dataset.transport === %q`, transport))
}

// wait polls expr in the tab until it is true.
func wait(tab context.Context, expr string) error {
	_, err := chromedp.Run(tab, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		return fmt.Errorf("waiting for %s: %w", expr, err)
	}
	return nil
}

var servingRE = regexp.MustCompile(`serving http://(\S+)`)

// startChat builds examples/chat into dir and runs it on a free loopback
// port; stop interrupts it and waits for it to end.
func startChat(root, dir string) (addr string, stop func(), err error) {
	bin := filepath.Join(dir, "chat")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join(root, "examples", "chat")
	if b, err := build.CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("go build examples/chat: %w\n%s", err, b)
	}
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := servingRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case addr := <-found:
		return addr, stop, nil
	case <-time.After(30 * time.Second):
		stop()
		return "", nil, errors.New("the chat did not start")
	}
}
