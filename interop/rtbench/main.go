// Command rtbench measures broadcast through package realtime: one
// server process with a Hub, and sockets connected from this process,
// half WebSocket (subprotocol realtime.v1) and half EventSource (or one
// kind only, with -only). It
// reports deliveries per second (messages x sockets, from the first
// broadcast until every socket has every message) and the server's
// resident memory per idle socket, as a Markdown table row.
//
//	cd interop && go run ./rtbench [-sockets 10000] [-messages 100] [-size 64] [-only websocket|eventsource]
//
// The server runs in a child process (this binary with -serve), so its
// memory is measured apart from the load client's. RTBENCH_PROFILE=FILE
// saves the server's heap profile with the sockets idle, and
// RTBENCH_CPUPROFILE=FILE a 3 s CPU profile from the first broadcast. Both share the
// machine's cores: the deliveries per second include the clients' cost
// of reading.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/interop/internal/benchproc"
	"github.com/realtime-go/realtime/websocket"
)

func main() {
	serve := flag.Bool("serve", false, "internal: run the server")
	sockets := flag.Int("sockets", 10000, "sockets, half WebSocket and half EventSource")
	messages := flag.Int("messages", 100, "broadcasts")
	size := flag.Int("size", 64, "message size in bytes")
	only := flag.String("only", "", `"websocket" or "eventsource" to connect sockets of one kind only`)
	flag.Parse()
	if *serve {
		runServer()
		return
	}
	if err := run(*sockets, *messages, *size, *only); err != nil {
		log.Fatal(err)
	}
}

// ---------------------------------------------------------------------------
// The server: the Handler at /rt, and control endpoints for the client.
// ---------------------------------------------------------------------------

func runServer() {
	hub := realtime.NewHub(nil)
	mux := http.DefaultServeMux
	mux.Handle("/rt", realtime.Handler(&realtime.Options{Hub: hub, Channels: []string{"bench"}}, nil))
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("gc") != "" {
			runtime.GC()
			debug.FreeOSMemory()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		json.NewEncoder(w).Encode(map[string]int{"sockets": hub.Len(), "goroutines": runtime.NumGoroutine(),
			"stack": int(ms.StackInuse), "heap": int(ms.HeapInuse)})
	})
	mux.HandleFunc("/broadcast", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		size, _ := strconv.Atoi(r.URL.Query().Get("size"))
		payload := strings.Repeat("x", size)
		for i := range n {
			hub.Publish(r.Context(), "bench", strconv.Itoa(i)+payload[min(len(payload), len(strconv.Itoa(i))):])
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}

// ---------------------------------------------------------------------------
// The load client.
// ---------------------------------------------------------------------------

func run(sockets, messages, size int, only string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, "-serve")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return fmt.Errorf("server did not start: %w", err)
	}
	addr := strings.TrimSpace(line)
	pid := cmd.Process.Pid

	time.Sleep(500 * time.Millisecond)
	stats(addr, true)
	base := rss(pid)

	var delivered atomic.Int64
	var wg sync.WaitGroup
	var conns []io.Closer
	var mu sync.Mutex
	sem := make(chan struct{}, 64)
	var dialErr atomic.Value
	t0 := time.Now()
	for i := range sockets {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem }()
			var c io.Closer
			var err error
			if only == "websocket" || only == "" && i%2 == 0 {
				c, err = dialWS(addr, &delivered, &wg)
			} else {
				c, err = dialES(addr, &delivered, &wg)
			}
			if err != nil {
				dialErr.Store(err)
				wg.Done()
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}()
	}
	for range cap(sem) {
		sem <- struct{}{}
	}
	if err, _ := dialErr.Load().(error); err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	for deadline := time.Now().Add(60 * time.Second); stats(addr, false)["sockets"] < sockets; {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d sockets joined", stats(addr, false)["sockets"], sockets)
		}
		time.Sleep(100 * time.Millisecond)
	}
	connectTime := time.Since(t0)
	time.Sleep(2 * time.Second) // let the handshakes' garbage go
	st := stats(addr, true)
	if p := os.Getenv("RTBENCH_PROFILE"); p != "" {
		if r, err := http.Get("http://" + addr + "/debug/pprof/heap"); err == nil {
			f, _ := os.Create(p)
			io.Copy(f, r.Body)
			f.Close()
			r.Body.Close()
		}
	}
	idle := rss(pid)

	want := int64(messages) * int64(sockets)
	profiled := make(chan struct{})
	if p := os.Getenv("RTBENCH_CPUPROFILE"); p != "" {
		go func() {
			defer close(profiled)
			if r, err := http.Get("http://" + addr + "/debug/pprof/profile?seconds=3"); err == nil {
				f, _ := os.Create(p)
				io.Copy(f, r.Body)
				f.Close()
				r.Body.Close()
			}
		}()
		time.Sleep(100 * time.Millisecond)
	} else {
		close(profiled)
	}
	t1 := time.Now()
	resp, err := http.Get(fmt.Sprintf("http://%s/broadcast?n=%d&size=%d", addr, messages, size))
	if err != nil {
		return err
	}
	resp.Body.Close()
	broadcastTime := time.Since(t1)
	for deadline := time.Now().Add(5 * time.Minute); delivered.Load() < want; {
		if time.Now().After(deadline) {
			return fmt.Errorf("delivered %d of %d", delivered.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(t1)
	peak := rss(pid)
	<-profiled
	for _, c := range conns {
		c.Close()
	}
	wg.Wait() // the readers end with their connections

	perSocket := float64(idle-base) / float64(sockets)
	nWS, nES := (sockets+1)/2, sockets/2
	switch only {
	case "websocket":
		nWS, nES = sockets, 0
	case "eventsource":
		nWS, nES = 0, sockets
	}
	fmt.Printf("sockets %d (connected in %v), server goroutines %d, idle stacks %.1f MiB, idle heap %.1f MiB, broadcast calls took %v\n",
		sockets, connectTime.Round(time.Millisecond), st["goroutines"], float64(st["stack"])/(1<<20), float64(st["heap"])/(1<<20),
		broadcastTime.Round(time.Millisecond))
	fmt.Println()
	fmt.Println("| sockets (WS + ES) | messages x size | deliveries/s | all delivered in | server RSS per idle socket | server RSS idle / after |")
	fmt.Println("|---|---|---|---|---|---|")
	fmt.Printf("| %d + %d | %d x %d B | %.0f | %v | %.1f KiB | %.1f / %.1f MiB |\n",
		nWS, nES, messages, size, float64(want)/elapsed.Seconds(), elapsed.Round(time.Millisecond),
		perSocket/1024, float64(idle)/(1<<20), float64(peak)/(1<<20))
	return nil
}

func stats(addr string, gc bool) map[string]int {
	u := "http://" + addr + "/stats"
	if gc {
		u += "?gc=1"
	}
	resp, err := http.Get(u)
	if err != nil {
		return map[string]int{}
	}
	defer resp.Body.Close()
	var m map[string]int
	json.NewDecoder(resp.Body).Decode(&m)
	return m
}

// rss returns a process's resident set size in bytes, 0 if it cannot be
// read.
func rss(pid int) int64 {
	kib, _ := benchproc.RSSKiB(pid)
	return kib << 10
}

// dialWS connects a realtime.v1 WebSocket and counts the messages it
// gets on a goroutine; wg.Done is called when it ends.
func dialWS(addr string, delivered *atomic.Int64, wg *sync.WaitGroup) (io.Closer, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u := &url.URL{Scheme: "ws", Host: addr, Path: "/rt"}
	c, _, err := websocket.NewClient(ctx, nc, u, &websocket.ClientOptions{Subprotocols: []string{realtime.Subprotocol}})
	if err != nil {
		nc.Close()
		return nil, err
	}
	go func() {
		defer wg.Done()
		var buf []byte
		for {
			_, p, err := c.ReadAppend(context.Background(), buf[:0])
			if err != nil {
				return
			}
			if bytes.IndexByte(p, '\n') >= 0 { // not the position
				delivered.Add(1)
			}
			buf = p
		}
	}()
	return closerFunc(func() error { return c.CloseNow() }), nil
}

// dialES opens an event stream and counts the events with an id, less
// the hello.
func dialES(addr string, delivered *atomic.Int64, wg *sync.WaitGroup) (io.Closer, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(nc, "GET /rt HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", addr)
	br := bufio.NewReaderSize(nc, 4096)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 200 ") {
		nc.Close()
		return nil, fmt.Errorf("event stream: %q %v", status, err)
	}
	go func() {
		defer wg.Done()
		hello := true
		for {
			line, err := br.ReadSlice('\n')
			if err != nil && err != bufio.ErrBufferFull {
				return
			}
			if bytes.HasPrefix(line, []byte("id: ")) {
				if hello {
					hello = false
				} else {
					delivered.Add(1)
				}
			}
		}
	}()
	return nc, nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }
