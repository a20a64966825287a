package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// raiseNOFILE lifts the soft open-file limit to the hard one.
func raiseNOFILE() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return 0, err
		}
	}
	return rl.Cur, nil
}

// runServe is the child: listen, print the port, serve /events. Commands
// arrive on stdin, one a line, each answered with one line; end of stdin
// ends the process.
//
//	pub RATE  start the publisher: RATE events per second, 0 = as fast as
//	          publish returns; answers "ok"
//	stop      stop the publisher; answers "published N"
//	count     answers "published N" (events published so far)
//	stats     answers "stats HEAPINUSE STACKINUSE GOROUTINES ACTIVE EXTRA"
//	          (bytes; ACTIVE is the number of /events handlers running;
//	          EXTRA is the server's own counters or "-")
//	gc        runtime.GC + debug.FreeOSMemory, then as stats
func runServe(name, addr string, cfg serverConfig, memprofile, cpuprofile string) error {
	s, ok := servers[name]
	if !ok {
		return fmt.Errorf("unknown server %q", name)
	}
	if _, err := raiseNOFILE(); err != nil {
		return fmt.Errorf("raise RLIMIT_NOFILE: %w", err)
	}
	h, publish, extra := s.start(cfg)
	var active atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		active.Add(1)
		defer active.Add(-1)
		h.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "%d\n", ln.Addr().(*net.TCPAddr).Port)
	out.Flush()

	var stop atomic.Bool
	var published atomic.Uint64
	pubDone := make(chan struct{})
	close(pubDone)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 0 {
				continue
			}
			switch f[0] {
			case "pub":
				rate, _ := strconv.ParseFloat(f[1], 64)
				stop.Store(false)
				pubDone = make(chan struct{})
				go runPublisher(publish, rate, &stop, &published, pubDone)
				fmt.Fprintln(out, "ok")
			case "stop":
				// A publisher blocked by a stalled subscriber may never
				// return: answer with what it published so far.
				stop.Store(true)
				select {
				case <-pubDone:
				case <-time.After(time.Second):
				}
				fmt.Fprintf(out, "published %d\n", published.Load())
			case "count":
				fmt.Fprintf(out, "published %d\n", published.Load())
			case "gc":
				runtime.GC()
				debug.FreeOSMemory()
				if memprofile != "" {
					if f, err := os.Create(memprofile); err == nil {
						pprof.Lookup("heap").WriteTo(f, 0)
						f.Close()
					}
				}
				fallthrough
			case "stats":
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				x := "-"
				if extra != nil {
					x = extra()
				}
				fmt.Fprintf(out, "stats %d %d %d %d %s\n", ms.HeapInuse, ms.StackInuse, runtime.NumGoroutine(), active.Load(), x)
			default:
				fmt.Fprintf(out, "error unknown command %q\n", f[0])
			}
			out.Flush()
		}
		if cpuprofile != "" {
			pprof.StopCPUProfile()
		}
		os.Exit(0)
	}()
	return serveHTTP(ln, mux)
}

// runPublisher publishes until stop: at rate events per second (a ticker;
// ticks missed while publish blocks are skipped), or back to back.
func runPublisher(publish func(uint64, []byte), rate float64, stop *atomic.Bool, published *atomic.Uint64, done chan struct{}) {
	defer close(done)
	seq := published.Load()
	var tick *time.Ticker
	if rate > 0 {
		tick = time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tick.Stop()
	}
	for !stop.Load() {
		if tick != nil {
			<-tick.C
		}
		seq++
		publish(seq, makePayload(seq, time.Now().UnixNano()))
		published.Store(seq)
	}
}

// child is a server process started by the parent.
type child struct {
	name  string
	cmd   *exec.Cmd
	pid   int
	addr  string
	stdin io.WriteCloser
	lines chan string
}

func startChild(name, key string, cfg serverConfig) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	args := []string{"-serve", name, "-addr", "127.0.0.1:0"}
	if cfg.memprofile != "" {
		args = append(args, "-memprofile", filepath.Join(cfg.memprofile, name+".heap"))
	}
	if cfg.cpuprofile != "" {
		args = append(args, "-cpuprofile", filepath.Join(cfg.cpuprofile, name+"-"+key+".pprof"))
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{name: name, cmd: cmd, pid: cmd.Process.Pid, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	l, err := c.line(10 * time.Second)
	if err != nil {
		c.stop()
		return nil, err
	}
	port, err := strconv.Atoi(strings.TrimSpace(l))
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("server %s: bad port line %q", name, l)
	}
	c.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	return c, nil
}

func (c *child) line(wait time.Duration) (string, error) {
	select {
	case l, ok := <-c.lines:
		if !ok {
			return "", fmt.Errorf("server %s exited", c.name)
		}
		return l, nil
	case <-time.After(wait):
		return "", fmt.Errorf("server %s: no answer within %v", c.name, wait)
	}
}

// do sends a command and returns the answer.
func (c *child) do(cmd string) (string, error) {
	if _, err := io.WriteString(c.stdin, cmd+"\n"); err != nil {
		return "", err
	}
	return c.line(30 * time.Second)
}

type memStats struct {
	heapInuse, stackInuse uint64
	goroutines            int
	active                int
	extra                 string
}

func (c *child) stats(cmd string) (memStats, error) {
	var ms memStats
	l, err := c.do(cmd)
	if err != nil {
		return ms, err
	}
	if _, err := fmt.Sscanf(l, "stats %d %d %d %d %s", &ms.heapInuse, &ms.stackInuse, &ms.goroutines, &ms.active, &ms.extra); err != nil {
		return ms, fmt.Errorf("server %s: bad stats line %q", c.name, l)
	}
	return ms, nil
}

func (c *child) stop() {
	c.stdin.Close()
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

// rssKiB reads VmRSS of a process.
func rssKiB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if f := strings.Fields(string(line)); len(f) >= 2 && f[0] == "VmRSS:" {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

const clkTck = 100 // USER_HZ on Linux

// cpuTime is the user+system time a process has used.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clkTck
}

// writeCalls is the write-type system calls a process has made (syscw).
func writeCalls(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if name, val, ok := strings.Cut(line, ":"); ok && name == "syscw" {
			n, _ := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
			return n
		}
	}
	return 0
}

// machineBusy is the CPU time all processes have used (/proc/stat).
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest time is already in user
			break
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * time.Second / clkTck
}

func selfCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
