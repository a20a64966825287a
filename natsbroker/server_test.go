package natsbroker

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/realtime-go/realtime"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// server is a nats-server process with JetStream, on loopback, that a
// test starts, kills and restarts on the same port and store.
type server struct {
	t     testing.TB
	dir   string // store under dir/store, ports files under dir/ports
	port  int
	mu    sync.Mutex
	cmd   *exec.Cmd
	waitc chan struct{}
}

// natsServer returns the path of nats-server: a missing binary skips
// the test, or fails it under CI=true.
func natsServer(t testing.TB) string {
	path, err := exec.LookPath("nats-server")
	if err != nil {
		path, err = exec.LookPath("/usr/sbin/nats-server")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("nats-server not installed: %v", err)
		}
		t.Skipf("nats-server not installed: %v", err)
	}
	return path
}

// startServer starts a nats-server for t, stopped by t.Cleanup.
func startServer(t testing.TB) *server {
	t.Helper()
	s := &server{t: t, dir: t.TempDir()}
	s.Start()
	t.Cleanup(s.stop)
	return s
}

// URL is where the server listens.
func (s *server) URL() string {
	return "nats://127.0.0.1:" + strconv.Itoa(s.port)
}

// Start starts the server on its store (and its port, once it has
// one) and waits until JetStream answers.
func (s *server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatal("nats-server already running")
	}
	ports := filepath.Join(s.dir, "ports")
	os.RemoveAll(ports)
	if err := os.MkdirAll(ports, 0o755); err != nil {
		s.t.Fatal(err)
	}
	port := "-1"
	if s.port != 0 {
		port = strconv.Itoa(s.port)
	}
	cmd := exec.Command(natsServer(s.t), "-js", "-a", "127.0.0.1", "-p", port,
		"-sd", filepath.Join(s.dir, "store"), "--ports_file_dir", ports)
	cmd.Stdout = nil
	cmd.Stderr = nil
	var err error
	for range 50 {
		if err = cmd.Start(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("start nats-server: %v", err)
	}
	s.cmd = cmd
	s.waitc = make(chan struct{})
	go func(c chan struct{}) { _ = cmd.Wait(); close(c) }(s.waitc)
	deadline := time.Now().Add(20 * time.Second)
	for s.port == 0 {
		if time.Now().After(deadline) {
			s.t.Fatal("nats-server wrote no ports file")
		}
		s.port = readPort(ports)
		if s.port == 0 {
			select {
			case <-s.waitc:
				s.t.Fatal("nats-server exited")
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	for {
		if err := jetStreamReady(s.URL()); err == nil {
			return
		} else if time.Now().After(deadline) {
			s.t.Fatalf("nats-server JetStream not ready: %v", err)
		}
		select {
		case <-s.waitc:
			s.t.Fatal("nats-server exited")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// readPort reads the client port from the ports file in dir, or 0.
func readPort(dir string) int {
	files, _ := filepath.Glob(filepath.Join(dir, "*.ports"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var p struct{ Nats []string }
		if json.Unmarshal(data, &p) != nil || len(p.Nats) == 0 {
			continue
		}
		i := strings.LastIndexByte(p.Nats[0], ':')
		if n, err := strconv.Atoi(p.Nats[0][i+1:]); err == nil {
			return n
		}
	}
	return 0
}

// jetStreamReady asks the server for JetStream's account info.
func jetStreamReady(url string) error {
	nc, err := nats.Connect(url, nats.Timeout(time.Second), nats.NoReconnect())
	if err != nil {
		return err
	}
	defer nc.Close()
	m, err := nc.Request("$JS.API.INFO", nil, time.Second)
	if err != nil {
		return err
	}
	if strings.Contains(string(m.Data), `"error"`) {
		return errors.New(string(m.Data))
	}
	return nil
}

// Kill kills the server with SIGKILL and waits until it is gone.
func (s *server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.waitc
	s.cmd = nil
}

// Wipe kills the server and starts it again with an empty store.
func (s *server) Wipe() {
	s.Kill()
	if err := os.RemoveAll(filepath.Join(s.dir, "store")); err != nil {
		s.t.Fatal(err)
	}
	s.Start()
}

func (s *server) stop() { s.Kill() }

// dialBrokers dials s n times, as n nodes would.
func dialBrokers(t testing.TB, s *server, n int) []*Broker {
	bs := make([]*Broker, n)
	for i := range bs {
		bs[i] = dialBroker(t, s, nil)
	}
	return bs
}

// untilAvailable calls f until it fails with something else than
// realtime.ErrBrokerUnavailable (the server is restarting), or for 30
// seconds, and returns its last error.
func untilAvailable(f func() error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if !errors.Is(err, realtime.ErrBrokerUnavailable) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dialBroker dials s with opts; t.Cleanup closes it.
func dialBroker(t testing.TB, s *server, opts *Options) *Broker {
	t.Helper()
	b, err := Dial(s.URL(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}
