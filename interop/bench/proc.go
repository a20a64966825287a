package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/realtime-go/realtime/interop/internal/benchproc"
)

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
	// So that one process can hold the idle scenario's connections.
	if _, err := benchproc.RaiseNOFILE(); err != nil {
		return fmt.Errorf("raise RLIMIT_NOFILE: %w", err)
	}
	return benchproc.Serve(addr, cpuprofile, func(cmd string, out io.Writer) {
		switch cmd {
		case "gc":
			runtime.GC()
			debug.FreeOSMemory()
			fallthrough
		case "stats":
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			fmt.Fprintf(out, "stats %d %d %d\n", ms.HeapInuse, ms.StackInuse, runtime.NumGoroutine())
		}
	}, s.serve)
}

// child is a server process started by the parent; this program's
// commands to it are in runServe.
type child = benchproc.Child

func startChild(name, cpuprofile string) (*child, error) {
	var args []string
	if cpuprofile != "" {
		args = append(args, "-cpuprofile", cpuprofile)
	}
	return benchproc.Start(name, args...)
}

type memStats struct {
	heapInuse, stackInuse uint64
	goroutines            int
}

// command sends "gc" or "stats" and waits for the answer.
func command(c *child, cmd string) (memStats, error) {
	var ms memStats
	l, err := c.Do(cmd)
	if err != nil {
		return ms, err
	}
	if _, err := fmt.Sscanf(l, "stats %d %d %d", &ms.heapInuse, &ms.stackInuse, &ms.goroutines); err != nil {
		return ms, fmt.Errorf("server %s: bad stats line %q", c.Name, l)
	}
	return ms, nil
}
