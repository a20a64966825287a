package interop

// Helpers for the multi-node tests: real redis-server and nats-server
// processes the test can kill -9 and start again, rtnode processes
// (interop/cmd/rtnode, one process = one node), and nginx balancing
// them round-robin with no stickiness. Names start with mn.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// mnProc is a peer process the test may kill -9 and start again with
// the same arguments. It is killed at cleanup.
type mnProc struct {
	t    *testing.T
	who  string
	args []string
	out  *syncBuffer // every run's output, for the failure log

	mu     sync.Mutex
	cmd    *exec.Cmd
	waited chan struct{}
	stdout chan string // the first line the current run wrote to stdout
}

// mnNewProc describes a process; start runs it.
func mnNewProc(t *testing.T, who string, args ...string) *mnProc {
	p := &mnProc{t: t, who: who, args: args, out: &syncBuffer{}}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s output:\n%s", who, p.out.String())
		}
	})
	return p
}

// start runs the process (in a process group of its own, so that a kill
// takes its children too).
func (p *mnProc) start() {
	p.t.Helper()
	if err := p.tryStart(); err != nil {
		p.t.Fatal(err)
	}
}

// tryStart is start for a goroutine other than the test's.
func (p *mnProc) tryStart() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%s is already running", p.who)
	}
	cmd := exec.Command(p.args[0], p.args[1:]...)
	pr, pw, err := os.Pipe()
	if err != nil {
		p.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	fmt.Fprintf(p.out, "--- start %s\n", strings.Join(p.args, " "))
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return fmt.Errorf("start %s: %v", p.who, err)
	}
	pw.Close()
	first := make(chan string, 1)
	read := make(chan struct{})
	go func() {
		defer close(read)
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			select {
			case first <- sc.Text():
			default:
			}
			fmt.Fprintln(p.out, sc.Text())
		}
	}()
	waited := make(chan struct{})
	go func() {
		cmd.Wait()
		<-read
		close(waited)
	}()
	p.cmd, p.waited, p.stdout = cmd, waited, first
	return nil
}

// firstLine returns the first line the process wrote to stdout.
func (p *mnProc) firstLine() string {
	p.t.Helper()
	p.mu.Lock()
	first, waited := p.stdout, p.waited
	p.mu.Unlock()
	select {
	case l := <-first:
		return l
	case <-waited:
		p.t.Fatalf("%s exited before writing its first line; output:\n%s", p.who, p.out.String())
	case <-time.After(60 * time.Second):
		p.t.Fatalf("%s wrote nothing in 60 s; output:\n%s", p.who, p.out.String())
	}
	return ""
}

// kill sends SIGKILL to the process group and waits for the process to
// exit. Nothing happens if it is not running.
func (p *mnProc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.waited:
	case <-time.After(10 * time.Second):
		p.t.Errorf("%s (pid %d) did not exit after SIGKILL", p.who, p.cmd.Process.Pid)
	}
	fmt.Fprintf(p.out, "--- killed (SIGKILL)\n")
	p.cmd = nil
}

// running reports whether the process was started and has not exited.
func (p *mnProc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.waited:
		return false
	default:
		return true
	}
}

// mnRedis is a redis-server on a Unix socket (no TCP port, so no race
// for one), with the durability the kill -9 tests need: every write is
// in the append-only file before Redis answers it.
type mnRedis struct {
	*mnProc
	dir  string // its data
	sock string
}

func mnStartRedis(t *testing.T) *mnRedis {
	t.Helper()
	exe := needExec(t, "redis-server")
	// A short path: Unix socket paths are limited to 107 bytes.
	base, err := os.MkdirTemp("", "rt-redis-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	r := &mnRedis{dir: filepath.Join(base, "data"), sock: filepath.Join(base, "redis.sock")}
	if err := os.Mkdir(r.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	r.mnProc = mnNewProc(t, "redis-server", exe,
		"--port", "0", "--unixsocket", r.sock, "--unixsocketperm", "700",
		"--dir", r.dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning")
	r.Start()
	return r
}

// URL is what rtnode's -redis flag takes.
func (r *mnRedis) URL() string { return "unix://" + r.sock }

// Start runs redis-server with the data it has and waits until it
// answers PING (after loading its append-only file).
func (r *mnRedis) Start() {
	r.t.Helper()
	if err := r.tryStart(); err != nil {
		r.t.Fatal(err)
	}
}

// tryStart is Start for a goroutine other than the test's.
func (r *mnRedis) tryStart() error {
	os.Remove(r.sock) // a kill -9 leaves it behind
	if err := r.mnProc.tryStart(); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := r.ping()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || !r.running() {
			return fmt.Errorf("redis-server does not answer on %s: %v; output:\n%s", r.sock, err, r.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restartAfter starts redis-server again, with its data, d from now, on
// a goroutine of its own, while the test goes on (publishing, which
// waits for Redis). wait returns how that went.
func (r *mnRedis) restartAfter(d time.Duration) (wait func() error) {
	done := make(chan error, 1)
	go func() {
		time.Sleep(d)
		done <- r.tryStart()
	}()
	return func() error { return <-done }
}

// Wipe kills redis-server and starts it again with no data: what a
// Redis that lost its disk looks like to the nodes.
func (r *mnRedis) Wipe() {
	r.t.Helper()
	r.kill()
	if err := os.RemoveAll(r.dir); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Mkdir(r.dir, 0o700); err != nil {
		r.t.Fatal(err)
	}
	r.Start()
}

// Kill is kill -9 of redis-server.
func (r *mnRedis) Kill() { r.kill() }

// ping sends PING in RESP and expects +PONG (Redis answers -LOADING
// while it replays its append-only file).
func (r *mnRedis) ping() error {
	c, err := net.DialTimeout("unix", r.sock, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// mnNATS is nats-server with JetStream on a file store, on a port it
// chose itself (-p -1) and wrote to its ports file.
type mnNATS struct {
	*mnProc
	dir string
	url string
}

func mnStartNATS(t *testing.T) *mnNATS {
	t.Helper()
	exe := needExec(t, "nats-server")
	dir := t.TempDir()
	n := &mnNATS{dir: dir}
	n.mnProc = mnNewProc(t, "nats-server", exe, "-js", "-sd", filepath.Join(dir, "js"),
		"-a", "127.0.0.1", "-p", "-1", "--ports_file_dir", dir)
	n.start()
	pid := n.cmd.Process.Pid
	path := filepath.Join(dir, fmt.Sprintf("nats-server_%d.ports", pid))
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(path)
		var ports struct {
			NATS []string `json:"nats"`
		}
		if err == nil && json.Unmarshal(b, &ports) == nil && len(ports.NATS) > 0 {
			n.url = ports.NATS[0]
			host := strings.TrimPrefix(n.url, "nats://")
			rtWaitListening(t, "nats-server", host, n.out)
			return n
		}
		if time.Now().After(deadline) || !n.running() {
			t.Fatalf("nats-server wrote no ports file %s: %v; output:\n%s", path, err, n.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// URL is what rtnode's -nats flag takes.
func (n *mnNATS) URL() string { return n.url }

// mnNode is one rtnode process: one node of the cluster.
type mnNode struct {
	*mnProc
	name string
	addr string // host:port it listens on
}

// mnRtnode builds interop/cmd/rtnode (without -race: three nodes under
// the race detector would crowd out the clients on a small machine; the
// library's own tests run with it).
func mnRtnode(t *testing.T) string {
	t.Helper()
	return mnBuildCmd(t, "rtnode")
}

// mnBuildCmd builds the command ./cmd/name of this module and returns
// the binary's path.
func mnBuildCmd(t *testing.T, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/"+name).CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/%s: %v\n%s", name, err, out)
	}
	return bin
}

// mnStartNodes runs n rtnode processes named n1, n2, ... with the
// broker flags given (none: each has its own memory broker).
func mnStartNodes(t *testing.T, n int, flags ...string) []*mnNode {
	t.Helper()
	bin := mnRtnode(t)
	nodes := make([]*mnNode, n)
	for i := range nodes {
		name := fmt.Sprintf("n%d", i+1)
		args := append([]string{bin, "-addr", "127.0.0.1:0", "-node", name}, flags...)
		nodes[i] = &mnNode{mnProc: mnNewProc(t, "rtnode "+name, args...), name: name}
		nodes[i].start()
	}
	for _, nd := range nodes {
		nd.addr = nd.firstLine()
		// Later runs (a restart) listen on the same address.
		nd.args = append(nd.args[:1:1], append([]string{"-addr", nd.addr}, nd.args[3:]...)...)
	}
	return nodes
}

// mnStartBalancer runs nginx in front of the nodes: round-robin, no
// stickiness; WebSocket upgrades pass (HTTP/1.1 with Upgrade and
// Connection forwarded, and the Host the browser used, which the
// handshake's Origin check compares with), event streams are not
// buffered, and a request to a dead node goes to the next one. It
// returns nginx's address.
func mnStartBalancer(t *testing.T, nodes []*mnNode) string {
	t.Helper()
	var servers strings.Builder
	for _, nd := range nodes {
		// max_fails=0: a node that was down is tried again at once when
		// it is back, and a dead one costs one refused connect.
		fmt.Fprintf(&servers, "    server %s max_fails=0;\n", nd.addr)
	}
	return rtRunNginx(t, `
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  upstream nodes {
`+servers.String()+`  }
  server {
    listen ADDR;
    location / {
      proxy_pass http://nodes;
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
      proxy_next_upstream error timeout;
      proxy_connect_timeout 2s;
    }
  }
`)
}
