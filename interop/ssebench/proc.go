package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/realtime-go/realtime/interop/internal/benchproc"
)

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
	if _, err := benchproc.RaiseNOFILE(); err != nil {
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
	var stop atomic.Bool
	var published atomic.Uint64
	pubDone := make(chan struct{})
	close(pubDone)
	return benchproc.Serve(addr, cpuprofile, func(cmd string, out io.Writer) {
		f := strings.Fields(cmd)
		if len(f) == 0 {
			return
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
	}, func(ln net.Listener) error { return serveHTTP(ln, mux) })
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

// child is a server process started by the parent; this program's
// commands to it are in runServe.
type child = benchproc.Child

func startChild(name, key string, cfg serverConfig) (*child, error) {
	var args []string
	if cfg.memprofile != "" {
		args = append(args, "-memprofile", filepath.Join(cfg.memprofile, name+".heap"))
	}
	if cfg.cpuprofile != "" {
		args = append(args, "-cpuprofile", filepath.Join(cfg.cpuprofile, name+"-"+key+".pprof"))
	}
	return benchproc.Start(name, args...)
}

type memStats struct {
	heapInuse, stackInuse uint64
	goroutines            int
	active                int
	extra                 string
}

func stats(c *child, cmd string) (memStats, error) {
	var ms memStats
	l, err := c.Do(cmd)
	if err != nil {
		return ms, err
	}
	if _, err := fmt.Sscanf(l, "stats %d %d %d %d %s", &ms.heapInuse, &ms.stackInuse, &ms.goroutines, &ms.active, &ms.extra); err != nil {
		return ms, fmt.Errorf("server %s: bad stats line %q", c.Name, l)
	}
	return ms, nil
}
