package benchproc

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The readers return 0 rather than an error when /proc cannot be read, so
// a broken parser would go unnoticed in the reports: check that they read
// something for this process.
func TestReaders(t *testing.T) {
	pid := os.Getpid()
	kib, err := RSSKiB(pid)
	if err != nil || kib <= 0 {
		t.Fatalf("RSSKiB = %d, %v", kib, err)
	}
	if _, err := RSSKiB(-1); err == nil {
		t.Error("RSSKiB(-1): no error")
	}
	if MachineBusy() <= 0 {
		t.Error("MachineBusy = 0")
	}
	u0 := ReadUsage(pid)
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
		os.Getpid() // a system call (not a read or write one), and CPU
	}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	f.Read(make([]byte, 64))
	f.Close()
	w := ReadUsage(pid).Since(u0)
	if w.Seconds < 0.05 {
		t.Errorf("window of %v s, want at least 0.05", w.Seconds)
	}
	if w.ClientCPU <= 0 {
		t.Errorf("ClientCPU = %v after a busy loop", w.ClientCPU)
	}
	if w.Reads < 1 {
		t.Errorf("Reads = %d after a read", w.Reads)
	}
	if w.OtherCPU < 0 {
		t.Errorf("OtherCPU = %v", w.OtherCPU)
	}
}

func TestParsePerfStat(t *testing.T) {
	out := "1000,,syscalls:sys_enter_read,1000,100.00,,\n" +
		"0,,syscalls:sys_enter_readv,1000,100.00,,\n" +
		"250,,syscalls:sys_enter_recvfrom,1000,100.00,,\n" +
		"0,,syscalls:sys_enter_recvmsg,1000,100.00,,\n" +
		"0,,syscalls:sys_enter_recvmmsg,1000,100.00,,\n" +
		"7,,syscalls:sys_enter_write,1000,100.00,,\n" +
		"3,,syscalls:sys_enter_writev,1000,100.00,,\n" +
		"90,,syscalls:sys_enter_sendto,1000,100.00,,\n" +
		"0,,syscalls:sys_enter_sendmsg,1000,100.00,,\n" +
		"0,,syscalls:sys_enter_sendmmsg,1000,100.00,,\n"
	r, w, err := parsePerfStat(out)
	if err != nil || r != 1250 || w != 100 {
		t.Fatalf("parsePerfStat = %d, %d, %v; want 1250, 100, nil", r, w, err)
	}
	if _, _, err := parsePerfStat(strings.Replace(out, "250,", "<not supported>,", 1)); err == nil {
		t.Error("an event perf could not count was taken as counted")
	}
	if _, _, err := parsePerfStat("1000,,syscalls:sys_enter_read,1000,100.00,,\n"); err == nil {
		t.Error("output missing events was accepted")
	}
}

// TestSyscallCounter counts this process's own writes to /dev/null.
func TestSyscallCounter(t *testing.T) {
	if _, err := exec.LookPath("perf"); err != nil {
		t.Skip("no perf")
	}
	s, err := StartSyscallCounter(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write([]byte("x")) // before Enable: not counted
	if err := s.Enable(); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		f.Write([]byte("x"))
	}
	if err := s.Disable(); err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("x")) // after Disable: not counted
	_, writes, err := s.Finish()
	if err != nil {
		t.Skipf("perf may not trace here: %v", err)
	}
	if writes < 100 || writes > 110 {
		t.Fatalf("counted %d writes, want 100 (and a few of the runtime's)", writes)
	}
}
