package benchproc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The system calls counted as reads and as writes. /proc/PID/io counts
// only the read(2)/write(2) family, not recv(2)/send(2), which servers
// that skip the VFS use; the syscall tracepoints count both.
var (
	readCalls  = []string{"read", "readv", "recvfrom", "recvmsg", "recvmmsg"}
	writeCalls = []string{"write", "writev", "sendto", "sendmsg", "sendmmsg"}
)

// SyscallsCounted says how a SyscallCounter counts, for a report.
const SyscallsCounted = "read, readv, recvfrom, recvmsg, recvmmsg / write, writev, sendto, sendmsg, sendmmsg, counted with perf stat on the syscall tracepoints"

// SyscallCounter counts the read- and write-type system calls of a
// process with perf stat on the syscall tracepoints, between Enable and
// Disable. Tracing slows every system call a little, so a caller measures
// throughput in another window.
type SyscallCounter struct {
	cmd  *exec.Cmd
	ctl  *os.File      // perf's --control commands
	ack  *bufio.Reader // and its answers
	ackF *os.File
	out  bytes.Buffer // perf stat reports on stderr
}

// StartSyscallCounter attaches perf stat to process pid, counting
// nothing yet. It fails when perf is missing.
func StartSyscallCounter(pid int) (*SyscallCounter, error) {
	var events []string
	for _, c := range append(append([]string{}, readCalls...), writeCalls...) {
		events = append(events, "syscalls:sys_enter_"+c)
	}
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	ackR, ackW, err := os.Pipe()
	if err != nil {
		ctlR.Close()
		ctlW.Close()
		return nil, err
	}
	s := &SyscallCounter{ctl: ctlW, ack: bufio.NewReader(ackR), ackF: ackR}
	// In perf, fd 3 is ctlR and fd 4 is ackW.
	s.cmd = exec.Command("perf", "stat", "-x,", "-D", "-1", "--control", "fd:3,4",
		"-e", strings.Join(events, ","), "-p", strconv.Itoa(pid))
	s.cmd.ExtraFiles = []*os.File{ctlR, ackW}
	s.cmd.Stderr = &s.out
	err = s.cmd.Start()
	ctlR.Close()
	ackW.Close()
	if err != nil {
		ctlW.Close()
		ackR.Close()
		return nil, fmt.Errorf("perf stat: %w", err)
	}
	return s, nil
}

// Enable starts counting.
func (s *SyscallCounter) Enable() error { return s.command("enable") }

// Disable stops counting.
func (s *SyscallCounter) Disable() error { return s.command("disable") }

// command sends perf a control command and waits for its ack.
func (s *SyscallCounter) command(c string) error {
	if _, err := io.WriteString(s.ctl, c+"\n"); err != nil {
		return fmt.Errorf("perf stat %s: %w", c, err)
	}
	s.ackF.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := s.ack.ReadString('\n')
	if err != nil || strings.Trim(line, "\x00\n ") != "ack" { // perf ends an ack with a NUL
		return fmt.Errorf("perf stat %s: no ack (%q, %v): %s", c, line, err, bytes.TrimSpace(s.out.Bytes()))
	}
	return nil
}

// Finish ends perf and returns what it counted.
func (s *SyscallCounter) Finish() (reads, writes int64, err error) {
	s.ctl.Close()
	s.ackF.Close()
	s.cmd.Process.Signal(os.Interrupt) // perf stat -p prints its counts on SIGINT
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
		return 0, 0, errors.New("perf stat did not end")
	}
	return parsePerfStat(s.out.String())
}

// parsePerfStat sums the counts of perf stat -x, output: lines of
// count,unit,event,... per event.
func parsePerfStat(s string) (reads, writes int64, err error) {
	seen := 0
	for _, line := range strings.Split(s, "\n") {
		f := strings.Split(line, ",")
		if len(f) < 3 || !strings.HasPrefix(f[2], "syscalls:sys_enter_") {
			continue
		}
		n, perr := strconv.ParseInt(f[0], 10, 64)
		if perr != nil {
			return 0, 0, fmt.Errorf("perf stat: %s not counted (%q)", f[2], f[0])
		}
		call := strings.TrimPrefix(f[2], "syscalls:sys_enter_")
		switch {
		case slices.Contains(readCalls, call):
			reads += n
		case slices.Contains(writeCalls, call):
			writes += n
		}
		seen++
	}
	if seen != len(readCalls)+len(writeCalls) {
		return 0, 0, fmt.Errorf("perf stat: %d of %d events in its output", seen, len(readCalls)+len(writeCalls))
	}
	return reads, writes, nil
}
