package benchproc

import (
	"os"
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
