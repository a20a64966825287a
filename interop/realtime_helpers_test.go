package interop

// Helpers for the realtime tests: Chromium with extra flags, tabs, the
// chat demo as a real process, nginx and squid as proxies in front of it.
// Names start with rt so they cannot clash with other files' helpers.

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rtFreeAddr returns a loopback address with a port that was free a
// moment ago, for peers that must be told their port.
func rtFreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// rtWaitListening waits until something accepts connections on addr.
func rtWaitListening(t *testing.T, who, addr string, logs *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not listening on %s: %v; output:\n%s", who, addr, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rtStartProcess starts a peer process, stopped (by its pid) at cleanup.
func rtStartProcess(t *testing.T, who string, cmd *exec.Cmd) *syncBuffer {
	t.Helper()
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", who, err)
	}
	waited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(waited)
	}()
	t.Cleanup(func() {
		// SIGKILL to the process group this test started: squid and
		// nginx need no graceful stop, and their children go too.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-waited:
		case <-time.After(10 * time.Second):
			t.Errorf("%s (pid %d) did not exit", who, cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", who, out.String())
		}
	})
	return out
}

var rtServingRE = regexp.MustCompile(`serving http://(\S+)`)

// rtStartChat builds and runs the chat demo (examples/chat) on a free
// loopback port, with flags, and returns its address.
func rtStartChat(t *testing.T, flags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "chat")
	// examples/chat is a module of its own (it requires the broker
	// modules): build it in its directory.
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join("..", "examples", "chat")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build examples/chat: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0"}, flags...)...)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	logs := &syncBuffer{}
	addrc := make(chan string, 1)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			fmt.Fprintln(logs, sc.Text())
			if m := rtServingRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		pr.Close()
		<-readerDone
		if t.Failed() {
			t.Logf("chat demo log:\n%s", logs.String())
		}
	})
	select {
	case addr := <-addrc:
		return addr
	case <-time.After(30 * time.Second):
		t.Fatalf("the chat demo did not start; log:\n%s", logs.String())
		return ""
	}
}

// rtStartNginx runs nginx as a reverse proxy to upstream with its
// defaults: proxy_http_version 1.0 without Upgrade forwarding (so no
// WebSocket gets through) and proxy_buffering on (which stalls an event
// stream unless the upstream sends X-Accel-Buffering: no). One line is
// not a default: it passes the Host the browser used, as every proxy in
// front of an origin-checking handler must. The handler compares a
// request's Origin with its Host; with nginx's default Host (the
// upstream's address) the page's own POSTs, which always carry Origin,
// would look cross-origin and get 403.
func rtStartNginx(t *testing.T, upstream string) string {
	t.Helper()
	return rtRunNginx(t, `
  server {
    listen ADDR;
    location / {
      proxy_pass http://`+upstream+`;
      proxy_set_header Host $http_host;
    }
  }
`)
}

// rtRunNginx runs nginx in the foreground, in a directory of its own,
// with http (the inside of the http block, where ADDR stands for the
// loopback address it is to listen on), and returns that address. It is
// stopped at cleanup.
func rtRunNginx(t *testing.T, http string) string {
	t.Helper()
	exe := needExec(t, "nginx")
	dir := t.TempDir()
	addr := rtFreeAddr(t)
	conf := strings.NewReplacer("DIR", dir, "ADDR", addr).Replace(`
daemon off;
master_process off;
worker_processes 1;
pid DIR/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path DIR/body;
  proxy_temp_path DIR/proxy;
  fastcgi_temp_path DIR/fastcgi;
  uwsgi_temp_path DIR/uwsgi;
  scgi_temp_path DIR/scgi;
` + http + `}
`)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := rtStartProcess(t, "nginx", exec.Command(exe, "-e", "stderr", "-p", dir, "-c", path))
	rtWaitListening(t, "nginx", addr, logs)
	return addr
}

// rtStartSquid runs squid as a forward proxy that refuses CONNECT.
// Chromium sends ws:// through an HTTP proxy as a CONNECT tunnel, never
// as a forwarded GET, so squid's default of stripping Upgrade from
// forwarded requests never comes into play; refusing CONNECT (403) is
// how a proxy blocks a browser's WebSockets, while plain GETs and POSTs,
// the EventSource fallback, pass.
func rtStartSquid(t *testing.T) (addr, accessLog string) {
	t.Helper()
	return rtStartSquidWith(t, `
acl CONNECT method CONNECT
http_access deny CONNECT
`)
}

// rtStartSquidWith runs squid as a forward proxy for localhost with the
// access rules and header rules in rules.
func rtStartSquidWith(t *testing.T, rules string) (addr, accessLog string) {
	t.Helper()
	exe := needExec(t, "squid")
	// squid drops privileges to the proxy user, which must be able to
	// write here; t.TempDir's parents are private.
	dir, err := os.MkdirTemp("", "rt-squid-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	addr = rtFreeAddr(t)
	conf := strings.NewReplacer("DIR", dir, "ADDR", addr).Replace(`
http_port ADDR
visible_hostname rt-squid
pid_filename none
cache_log DIR/cache.log
access_log stdio:DIR/access.log
cache deny all
shutdown_lifetime 0 seconds
coredump_dir DIR
` + rules + `
http_access allow localhost
http_access deny all
`)
	path := filepath.Join(dir, "squid.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := rtStartProcess(t, "squid", exec.Command(exe, "-N", "-f", path))
	rtWaitListening(t, "squid", addr, logs)
	accessLog = filepath.Join(dir, "access.log")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(accessLog)
			t.Logf("squid access log:\n%s", b)
		}
	})
	return addr, accessLog
}

// rtChatType says text in the chat page tab as a person would: typing,
// then clicking send.
func rtChatType(t *testing.T, tab rtTab, name, text string) {
	t.Helper()
	if err := tab.typeText(30*time.Second, "#msg", text); err != nil {
		t.Fatalf("%s typing: %v", name, err)
	}
	rtClick(t, tab, name+" sending", "#send")
}

// rtChatLineJS is a JavaScript condition: the chat page shows the line
// text from the participant from, who uses transport.
func rtChatLineJS(from, transport, text string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('#log li.say')].some((li) =>
		li.dataset.from === %q && li.dataset.transport === %q && li.dataset.text === %q)`, from, transport, text)
}
