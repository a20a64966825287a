package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// raiseNOFILE lifts the soft open-file limit to the hard one, so one
// process can hold the idle scenario's connections.
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

// runServe is the child side: listen, print the port, serve. Commands
// arrive on stdin, one a line; end of stdin ends the process.
//
//	stats  print "stats HEAPINUSE STACKINUSE GOROUTINES" (bytes)
//	gc     runtime.GC + debug.FreeOSMemory, then the same line
//
// With cpuprofile set, the process writes a CPU profile of its whole
// life there.
//
// Both are done by this harness for every server alike.
func runServe(name, addr, cpuprofile string) error {
	s, ok := servers[name]
	if !ok {
		return fmt.Errorf("unknown server %q", name)
	}
	if _, err := raiseNOFILE(); err != nil {
		return fmt.Errorf("raise RLIMIT_NOFILE: %w", err)
	}
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
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			switch sc.Text() {
			case "gc":
				runtime.GC()
				debug.FreeOSMemory()
				fallthrough
			case "stats":
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				fmt.Fprintf(out, "stats %d %d %d\n", ms.HeapInuse, ms.StackInuse, runtime.NumGoroutine())
				out.Flush()
			}
		}
		if cpuprofile != "" {
			pprof.StopCPUProfile()
		}
		os.Exit(0)
	}()
	return s.serve(ln)
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

func startChild(name, cpuprofile string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	args := []string{"-serve", name, "-addr", "127.0.0.1:0"}
	if cpuprofile != "" {
		args = append(args, "-cpuprofile", cpuprofile)
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
	select {
	case l, ok := <-c.lines:
		if !ok {
			c.stop()
			return nil, fmt.Errorf("server %s exited before listening", name)
		}
		port, err := strconv.Atoi(strings.TrimSpace(l))
		if err != nil {
			c.stop()
			return nil, fmt.Errorf("server %s: bad port line %q", name, l)
		}
		c.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	case <-time.After(10 * time.Second):
		c.stop()
		return nil, fmt.Errorf("server %s did not start", name)
	}
	return c, nil
}

type memStats struct {
	heapInuse, stackInuse uint64
	goroutines            int
}

// command sends "gc" or "stats" and waits for the answer.
func (c *child) command(cmd string) (memStats, error) {
	var ms memStats
	if _, err := io.WriteString(c.stdin, cmd+"\n"); err != nil {
		return ms, err
	}
	select {
	case l, ok := <-c.lines:
		if !ok {
			return ms, fmt.Errorf("server %s exited", c.name)
		}
		if _, err := fmt.Sscanf(l, "stats %d %d %d", &ms.heapInuse, &ms.stackInuse, &ms.goroutines); err != nil {
			return ms, fmt.Errorf("server %s: bad stats line %q", c.name, l)
		}
		return ms, nil
	case <-time.After(30 * time.Second):
		return ms, fmt.Errorf("server %s: no answer to %s", c.name, cmd)
	}
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
	// After the command name: state is field 3, utime 14, stime 15.
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clkTck
}

// ioCalls is the read- and write-type system calls a process has made
// (syscr and syscw in /proc/PID/io).
func ioCalls(pid int) (reads, writes int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		switch name {
		case "syscr":
			reads = n
		case "syscw":
			writes = n
		}
	}
	return reads, writes
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
	const clkTck = 100
	return time.Duration(busy) * time.Second / clkTck
}

func selfCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
