package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a child process: a node or a broker.
type proc struct {
	name string
	cmd  *exec.Cmd
	pid  int
	addr string // host:port it serves clients on
	done chan struct{}
}

// start starts a node binary that prints its address as the first line
// on stdout, and waits up to 20 s for it.
func startNode(name, bin string, env []string, args ...string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	line := make(chan string, 1)
	go func() {
		br := bufio.NewReader(out)
		l, _ := br.ReadString('\n')
		line <- strings.TrimSpace(l)
		io.Copy(io.Discard, br) // the rest of its output, so it never blocks
	}()
	select {
	case l := <-line:
		if _, _, err := net.SplitHostPort(l); err != nil {
			p.stop()
			return nil, fmt.Errorf("%s printed %q, not its address", name, l)
		}
		p.addr = l
	case <-time.After(20 * time.Second):
		p.stop()
		return nil, fmt.Errorf("%s did not print its address within 20 s", name)
	}
	return p, nil
}

// stop ends the process: SIGTERM, then SIGKILL after 3 s.
func (p *proc) stop() {
	if p == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startRedis starts an empty redis-server on loopback, without
// persistence (the same configuration for every row that uses it).
func startRedis(dir string) (*proc, error) {
	var lastErr error
	for range 3 { // the free port may be taken before redis binds it
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		cmd := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
			"--save", "", "--appendonly", "no", "--dir", dir, "--protected-mode", "yes", "--daemonize", "no",
			"--loglevel", "warning")
		cmd.Stdout = io.Discard
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("redis-server: %w", err)
		}
		p := &proc{name: "redis-server", cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{}),
			addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
		go func() { cmd.Wait(); close(p.done) }()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !p.exited(); time.Sleep(20 * time.Millisecond) {
			if _, err := redisCommand(p.addr, "PING"); err == nil {
				return p, nil
			} else {
				lastErr = err
			}
		}
		p.stop()
	}
	return nil, fmt.Errorf("redis-server did not start: %v", lastErr)
}

// startNATS starts nats-server with JetStream, its store in dir, on
// ports it picks, with its monitoring endpoint (for /varz).
func startNATS(dir string) (p *proc, monitor string, err error) {
	cmd := exec.Command("nats-server", "-js", "-sd", filepath.Join(dir, "js"), "-a", "127.0.0.1",
		"-p", "-1", "-m", "-1", "--ports_file_dir", dir)
	cmd.Stdout = io.Discard
	cmd.Stderr = io.Discard // it logs every start line there
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("nats-server: %w", err)
	}
	p = &proc{name: "nats-server", cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	file := filepath.Join(dir, fmt.Sprintf("nats-server_%d.ports", p.pid))
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !p.exited(); time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		var ports struct{ NATS, Monitoring []string }
		if json.Unmarshal(b, &ports) != nil || len(ports.NATS) == 0 || len(ports.Monitoring) == 0 {
			continue
		}
		p.addr = strings.TrimPrefix(ports.NATS[0], "nats://")
		if c, err := net.Dial("tcp", p.addr); err == nil {
			c.Close()
			return p, ports.Monitoring[0], nil
		}
	}
	p.stop()
	return nil, "", errors.New("nats-server did not start within 10 s")
}

// redisCommand sends one inline command and returns its reply: the text
// of a simple or bulk string.
func redisCommand(addr, command string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, command+"\r\n"); err != nil {
		return "", err
	}
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "+"):
		return line[1:], nil
	case strings.HasPrefix(line, "-"):
		return "", errors.New(line[1:])
	case strings.HasPrefix(line, "$"):
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("redis: bad reply %q", line)
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(br, b); err != nil {
			return "", err
		}
		return string(b[:n]), nil
	}
	return "", fmt.Errorf("redis: unexpected reply %q", line)
}

// redisCalls reads INFO commandstats: the calls of each command so far.
func redisCalls(addr string) (map[string]int64, error) {
	s, err := redisCommand(addr, "INFO commandstats")
	if err != nil {
		return nil, err
	}
	return parseCommandstats(s), nil
}

// parseCommandstats parses lines such as
// "cmdstat_xadd:calls=12,usec=40,usec_per_call=3.33,...".
func parseCommandstats(s string) map[string]int64 {
	m := make(map[string]int64)
	for _, line := range strings.Split(s, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err == nil {
					m[strings.TrimPrefix(name, "cmdstat_")] = n
				}
			}
		}
	}
	return m
}

// natsMsgs reads the messages nats-server has received and sent so far
// (in_msgs and out_msgs of /varz).
func natsMsgs(monitor string) (in, out int64, err error) {
	resp, err := http.Get(monitor + "/varz")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var v struct {
		InMsgs  int64 `json:"in_msgs"`
		OutMsgs int64 `json:"out_msgs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return 0, 0, err
	}
	return v.InMsgs, v.OutMsgs, nil
}
