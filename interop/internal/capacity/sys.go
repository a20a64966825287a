package capacity

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/realtime-go/realtime/interop/internal/benchproc"
)

// RaiseNOFILE raises this process's descriptor limit to at least need
// (the hard limit too, which takes CAP_SYS_RESOURCE) and returns it. The
// server processes inherit it: a program that set its limit passes it on
// to its children.
func RaiseNOFILE(need uint64) (uint64, error) {
	limit, err := benchproc.RaiseNOFILE()
	if err != nil || limit >= need {
		return limit, err
	}
	want := unix.Rlimit{Cur: need, Max: need}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &want); err != nil {
		return limit, fmt.Errorf("RLIMIT_NOFILE: the hard limit is %d, %d needed, and raising it failed (needs CAP_SYS_RESOURCE and fs.nr_open >= %d): %w", limit, need, need, err)
	}
	return need, nil
}

// cpuSet parses a taskset CPU list such as "0", "0,2" or "0-1".
func cpuSet(list string) (set unix.CPUSet, n int, err error) {
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return set, 0, fmt.Errorf("CPU list %q: %w", list, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return set, 0, fmt.Errorf("CPU list %q: %w", list, err)
			}
		}
		for i := a; i <= b; i++ {
			set.Set(i)
			n++
		}
	}
	return set, n, nil
}

// PinSelf binds every thread of this process to the CPUs of list (the
// threads made later inherit it) and sets GOMAXPROCS to gomaxprocs, or
// to the number of those CPUs when gomaxprocs is 0.
func PinSelf(list string, gomaxprocs int) error {
	set, n, err := cpuSet(list)
	if err != nil {
		return err
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, _ := strconv.Atoi(t.Name())
		if err := unix.SchedSetaffinity(tid, &set); err != nil {
			return fmt.Errorf("sched_setaffinity: %w", err)
		}
	}
	if gomaxprocs == 0 {
		gomaxprocs = n
	}
	runtime.GOMAXPROCS(gomaxprocs)
	return nil
}

// Sysctls raises the kernel limits that 100,000 loopback connections
// meet where they are lower (root; for the benchmark, never the tests):
// the listen backlog and fs.nr_open, the ceiling of RLIMIT_NOFILE. The
// ephemeral port range stays: the client spreads its connections over
// many source addresses instead. It returns what it changed and restore,
// which puts the old values back, for the machine is shared.
func Sysctls() (changed []string, restore func(), err error) {
	set := []struct {
		name string
		min  int
	}{
		{"net/core/somaxconn", 65535},
		{"net/ipv4/tcp_max_syn_backlog", 65535},
		{"fs/nr_open", 1 << 20},
	}
	var undo []func()
	restore = func() {
		for _, u := range undo {
			u()
		}
	}
	for _, s := range set {
		p := "/proc/sys/" + s.name
		old, err := os.ReadFile(p)
		if err != nil {
			return changed, restore, err
		}
		cur, _ := strconv.Atoi(strings.TrimSpace(string(old)))
		if cur >= s.min {
			continue
		}
		if err := os.WriteFile(p, []byte(strconv.Itoa(s.min)), 0); err != nil {
			return changed, restore, fmt.Errorf("%s: %w", s.name, err)
		}
		undo = append(undo, func() { os.WriteFile(p, old, 0) })
		changed = append(changed, fmt.Sprintf("%s: %d -> %d", strings.ReplaceAll(s.name, "/", "."), cur, s.min))
	}
	return changed, restore, nil
}
