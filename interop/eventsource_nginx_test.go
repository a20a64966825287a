package interop

// nginx as a reverse proxy in its default configuration (proxy_buffering
// on): our streams send X-Accel-Buffering: no, so each event must reach the
// client at once. A handler that streams without that header is the
// negative control: nginx holds its events, so the same measurement fails.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/realtime-go/realtime/eventsource"
)

// esNginxConf proxies everything to the upstream with nginx's defaults:
// HTTP/1.0 to the upstream, proxy_buffering on, no buffering directive.
const esNginxConf = `daemon off;
master_process off;
pid DIR/nginx.pid;
error_log stderr warn;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path DIR/body;
	proxy_temp_path DIR/proxy;
	fastcgi_temp_path DIR/fastcgi;
	uwsgi_temp_path DIR/uwsgi;
	scgi_temp_path DIR/scgi;
	server {
		listen 127.0.0.1:PORT;
		location / {
			proxy_pass http://UPSTREAM;
		}
	}
}
`

// startESNginx runs nginx in the foreground in front of upstream (host:port)
// and returns its address. It is stopped at cleanup.
func startESNginx(t *testing.T, upstream string) string {
	t.Helper()
	exe, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			missingPeer(t, "nginx: %v", err)
		}
		exe = "/usr/sbin/nginx"
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	conf := strings.NewReplacer("DIR", dir, "PORT", strconv.Itoa(port), "UPSTREAM", upstream).Replace(esNginxConf)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	cmd := exec.Command(exe, "-e", "stderr", "-p", dir, "-c", confPath)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("nginx output (exit %v):\n%s", waitErr, out.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		select {
		case <-exited:
			t.Fatalf("nginx exited before listening (%v):\n%s", waitErr, out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx not listening on %s after 20 s:\n%s", addr, out.String())
		}
	}
}

// esTimedSender streams events spaced apart and remembers when each was
// written, so the client can tell how long each took to arrive.
type esTimedSender struct {
	mu   sync.Mutex
	sent map[string]time.Time
}

func (ts *esTimedSender) mark(id string) {
	ts.mu.Lock()
	ts.sent[id] = time.Now()
	ts.mu.Unlock()
}

func (ts *esTimedSender) when(id string) (time.Time, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	at, ok := ts.sent[id]
	return at, ok
}

const (
	esProxyEvents  = 5
	esProxySpacing = 250 * time.Millisecond
	esProxyBudget  = 100 * time.Millisecond // the requirement per event
)

// ours streams with eventsource.Accept.
func (ts *esTimedSender) ours(w http.ResponseWriter, r *http.Request) {
	s, err := eventsource.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer s.Close()
	for i := 1; i <= esProxyEvents; i++ {
		select {
		case <-time.After(esProxySpacing):
		case <-s.Done():
			return
		}
		id := strconv.Itoa(i)
		ts.mark(id)
		if s.Send(r.Context(), eventsource.Event{ID: id, Data: "event " + id}) != nil {
			return
		}
	}
	<-s.Done() // the stream stays open: only flushing can deliver the events
}

// plain streams correctly flushed events, but without X-Accel-Buffering.
func (ts *esTimedSender) plain(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	for i := 1; i <= esProxyEvents; i++ {
		select {
		case <-time.After(esProxySpacing):
		case <-r.Context().Done():
			return
		}
		id := strconv.Itoa(i)
		ts.mark(id)
		fmt.Fprintf(w, "id: %s\ndata: event %s\n\n", id, id)
		if rc.Flush() != nil {
			return
		}
	}
	<-r.Context().Done()
}

// esArrivals reads url until all esProxyEvents events arrived or wait
// passed, and returns how long each event took from the server's write to
// the client's read.
func esArrivals(t *testing.T, client *http.Client, url string, ts *esTimedSender, wait time.Duration) ([]time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("no response head within %v: %w", wait, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	dec := eventsource.NewDecoder(resp.Body, nil)
	var delays []time.Duration
	for len(delays) < esProxyEvents {
		ev, err := dec.Next()
		now := time.Now()
		if err != nil {
			return delays, fmt.Errorf("after %d events: %w", len(delays), err)
		}
		sent, ok := ts.when(ev.ID)
		if !ok {
			return delays, fmt.Errorf("event %q was never sent", ev.ID)
		}
		if want := strconv.Itoa(len(delays) + 1); ev.ID != want {
			return delays, fmt.Errorf("event %q, want %s", ev.ID, want)
		}
		delays = append(delays, now.Sub(sent))
	}
	return delays, nil
}

func TestEventSourceNginx(t *testing.T) {
	// One sender per request, so that a stream nginx still holds open
	// cannot mark the events of the next one.
	senders := map[string]*esTimedSender{}
	mux := http.NewServeMux()
	for _, name := range []string{"direct", "ours", "plain", "plain-direct"} {
		ts := &esTimedSender{sent: map[string]time.Time{}}
		senders[name] = ts
		h := ts.ours
		if name == "plain" || name == "plain-direct" {
			h = ts.plain
		}
		mux.HandleFunc("/"+name, h)
	}
	up := httptest.NewServer(mux)
	t.Cleanup(up.Close)
	proxy := startESNginx(t, up.Listener.Addr().String())
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}

	t.Run("direct", func(t *testing.T) {
		delays, err := esArrivals(t, client, up.URL+"/direct", senders["direct"], 30*time.Second)
		if err != nil {
			t.Fatalf("direct: %v", err)
		}
		t.Logf("direct: delays %v", delays)
	})

	t.Run("ours", func(t *testing.T) {
		delays, err := esArrivals(t, client, "http://"+proxy+"/ours", senders["ours"], 30*time.Second)
		if err != nil {
			t.Fatalf("through nginx: %v", err)
		}
		var worst time.Duration
		for _, d := range delays {
			worst = max(worst, d)
		}
		t.Logf("through nginx (proxy_buffering on): write-to-read delays %v; worst %v, budget %v", delays, worst, esProxyBudget)
		if worst > esProxyBudget {
			t.Fatalf("an event took %v through nginx, want at most %v", worst, esProxyBudget)
		}
	})

	t.Run("negative-control", func(t *testing.T) {
		// Without X-Accel-Buffering: no, nginx buffers the response: the
		// client sees neither the head nor any event while the stream is
		// open, so the measurement that passes above must fail here.
		wait := time.Duration(esProxyEvents+1) * esProxySpacing
		delays, err := esArrivals(t, client, "http://"+proxy+"/plain", senders["plain"], wait)
		t.Logf("plain handler through nginx: %d events within %v (%v)", len(delays), wait, err)
		if err == nil && len(delays) == esProxyEvents {
			worst := time.Duration(0)
			for _, d := range delays {
				worst = max(worst, d)
			}
			if worst <= esProxyBudget {
				t.Fatalf("nginx delivered a stream without X-Accel-Buffering: no at once (worst %v): the proxy does not buffer, so the test above proves nothing", worst)
			}
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Logf("(the read ended with %v)", err)
		}
		// Direct, the plain handler streams fine: the stall is nginx's.
		delays, err = esArrivals(t, client, up.URL+"/plain-direct", senders["plain-direct"], 30*time.Second)
		if err != nil {
			t.Fatalf("plain handler, direct: %v", err)
		}
		for _, d := range delays {
			if d > esProxyBudget {
				t.Fatalf("plain handler, direct: an event took %v", d)
			}
		}
	})
}
