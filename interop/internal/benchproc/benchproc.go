// Package benchproc runs the server under test of a benchmark as a child
// process and measures it, the benchmark's own process and the machine
// from /proc (Linux only).
//
// The bench and ssebench commands work the same way: each server runs in
// a fresh child (the benchmark's own binary with -serve NAME), so that its
// memory and CPU are its own and not the load client's. The child prints
// its port as the first line on stdout, then answers commands it reads on
// stdin, one line each; end of stdin ends it. The commands themselves are
// each program's. (rtbench, which controls its server over HTTP instead,
// uses only RSSKiB.)
package benchproc

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// RaiseNOFILE lifts the soft open-file limit to the hard one and returns
// it, so that one process can hold the thousands of connections of the
// idle and many-subscriber scenarios.
func RaiseNOFILE() (uint64, error) {
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

// Serve is the child side. It listens on addr, starts a CPU profile of
// the whole process into the file cpuprofile if that is not empty, and
// prints the port as the first line on stdout. Then it calls handle for
// each line the parent writes on stdin, on a goroutine, and flushes what
// handle wrote to out as the answer, while serve serves the listener. At
// the end of stdin (the parent's Child.Stop, or the parent's death) it
// stops the profile, so the file is complete, and exits the process.
func Serve(addr, cpuprofile string, handle func(cmd string, out io.Writer), serve func(net.Listener) error) error {
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
			handle(sc.Text(), out)
			out.Flush()
		}
		if cpuprofile != "" {
			pprof.StopCPUProfile()
		}
		os.Exit(0)
	}()
	return serve(ln)
}

// AcceptEach accepts connections on ln and handles each on its own
// goroutine, which closes it after handle returns, until Accept fails.
func AcceptEach(ln net.Listener, handle func(nc net.Conn)) error {
	for {
		nc, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer nc.Close()
			handle(nc)
		}()
	}
}

// Child is a server process started by Start.
type Child struct {
	Name string // the server's name, for errors
	PID  int
	Addr string // host:port on 127.0.0.1 it listens on

	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // the child's stdout, a line each
}

// Start starts this binary as "-serve name -addr 127.0.0.1:0" followed by
// args, and waits up to 10 s for the port the child listens on.
func Start(name string, args ...string) (*Child, error) {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	args = append([]string{"-serve", name, "-addr", "127.0.0.1:0"}, args...)
	return StartCommand(name, exec.Command(exe, args...))
}

// StartCommand starts cmd, a child that speaks Serve's protocol (another
// program, or this one under taskset), and waits up to 10 s for the port
// it listens on.
func StartCommand(name string, cmd *exec.Cmd) (*Child, error) {
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
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
	c := &Child{Name: name, cmd: cmd, PID: cmd.Process.Pid, stdin: stdin, lines: make(chan string, 16)}
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
			c.Stop()
			return nil, fmt.Errorf("server %s exited before listening", name)
		}
		port, err := strconv.Atoi(strings.TrimSpace(l))
		if err != nil {
			c.Stop()
			return nil, fmt.Errorf("server %s: bad port line %q", name, l)
		}
		c.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	case <-time.After(10 * time.Second):
		c.Stop()
		return nil, fmt.Errorf("server %s did not start", name)
	}
	return c, nil
}

// Do sends the command cmd and returns the child's answer, a line. It
// waits up to 30 s: a command that makes the child collect garbage with
// 10,000 connections open can take seconds.
func (c *Child) Do(cmd string) (string, error) { return c.DoTimeout(cmd, 30*time.Second) }

// DoTimeout is Do for a command that takes up to d, such as one that
// publishes at a fixed rate for a minute.
func (c *Child) DoTimeout(cmd string, d time.Duration) (string, error) {
	if _, err := io.WriteString(c.stdin, cmd+"\n"); err != nil {
		return "", err
	}
	select {
	case l, ok := <-c.lines:
		if !ok {
			return "", fmt.Errorf("server %s exited", c.Name)
		}
		return l, nil
	case <-time.After(d):
		return "", fmt.Errorf("server %s: no answer to %s", c.Name, cmd)
	}
}

// Stop closes the child's stdin, which ends it (see Serve), and waits for
// it; a child that has not exited within 2 s is killed.
func (c *Child) Stop() {
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

// RSSKiB reads the resident set size of a process in KiB (VmRSS in
// /proc/PID/status).
func RSSKiB(pid int) (int64, error) {
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

// clkTck is USER_HZ, the unit of the times in /proc: 100 on Linux.
const clkTck = 100

// Usage is one reading of the counters that a measured window is the
// difference of two of (see Usage.Since).
type Usage struct {
	at      time.Time
	server  time.Duration // CPU time of the server process
	client  time.Duration // CPU time of this process
	reads   int64         // read-type system calls of the server
	writes  int64         // write-type system calls of the server
	machine time.Duration // CPU time of all processes
}

// ReadUsage reads the counters for the server process pid, one after the
// other in a fixed order (wall clock first, the machine's CPU time last),
// so that the two readings of a window are taken alike.
func ReadUsage(pid int) Usage {
	u := Usage{at: time.Now(), server: CPUTime(pid), client: selfCPUTime()}
	u.reads, u.writes = ioCalls(pid)
	u.machine = MachineBusy()
	return u
}

// Window is what was used between two readings.
type Window struct {
	Seconds   float64 // wall time
	ServerCPU float64 // cores used by the server process
	ClientCPU float64 // cores used by this process, the load client
	// OtherCPU is the cores used by everything else on the machine: a
	// measurement with more than a little is not to be trusted, as the
	// server and the client had fewer cores than they seemed to.
	OtherCPU      float64
	Reads, Writes int64 // system calls the server made
}

// Since returns the window from the earlier reading u0 to u.
func (u Usage) Since(u0 Usage) Window {
	w := Window{Seconds: u.at.Sub(u0.at).Seconds(), Reads: u.reads - u0.reads, Writes: u.writes - u0.writes}
	w.ServerCPU = (u.server - u0.server).Seconds() / w.Seconds
	w.ClientCPU = (u.client - u0.client).Seconds() / w.Seconds
	w.OtherCPU = max(0, (u.machine-u0.machine).Seconds()/w.Seconds-w.ServerCPU-w.ClientCPU)
	return w
}

// CPUTime is the user+system time a process has used (/proc/PID/stat),
// 0 if it cannot be read.
func CPUTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: count the
	// fields after it.
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
	return time.Duration(ut+st) * time.Second / clkTck
}

// ioCalls is the read- and write-type system calls a process has made
// (syscr and syscw in /proc/PID/io), 0 if they cannot be read.
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

// MachineBusy is the CPU time all processes have used since boot (the
// cpu line of /proc/stat, less idle and iowait), 0 if it cannot be read.
func MachineBusy() time.Duration {
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

// selfCPUTime is the user+system time this process has used. It comes
// from getrusage, finer than /proc's 10 ms ticks.
func selfCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// CommandLine is the benchmark's command as typed, for the report: "cd
// interop && go run ./PROG ARGS" for a binary in go run's build cache,
// else the binary's path and its arguments.
func CommandLine(prog string) string {
	args := strings.Join(os.Args[1:], " ")
	if strings.Contains(os.Args[0], "go-build") {
		return strings.TrimSpace("cd interop && go run ./" + prog + " " + args)
	}
	return strings.TrimSpace(os.Args[0] + " " + args)
}
