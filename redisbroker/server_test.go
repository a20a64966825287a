package redisbroker

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// server is a redis-server of a test, on a Unix socket in a directory
// of its own.
type server struct {
	dir, sock string
	persist   bool // appendonly yes, appendfsync always
	cmd       *exec.Cmd
}

// startRedis starts a redis-server for t, killed at cleanup. Without
// the binary the test is skipped, or fails under CI=true.
func startRedis(t testing.TB, persist bool) *server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server: %v", err)
		}
		t.Skipf("redis-server: %v", err)
	}
	// Not t.TempDir: a Unix socket path must stay under 108 bytes, and
	// the names of subtests are long.
	dir, err := os.MkdirTemp("", "rb")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{dir: dir, sock: filepath.Join(dir, "r.sock"), persist: persist}
	t.Cleanup(func() {
		s.stop()
		os.RemoveAll(dir)
	})
	s.Start(t)
	return s
}

func (s *server) url() string { return "unix://" + s.sock }

// Start starts the server with the data in its directory and waits
// until it answers PING (after loading its append-only file).
func (s *server) Start(t testing.TB) {
	t.Helper()
	aof := "no"
	if s.persist {
		aof = "yes"
	}
	s.cmd = exec.Command("redis-server", "--port", "0", "--unixsocket", s.sock,
		"--save", "", "--appendonly", aof, "--appendfsync", "always", "--dir", s.dir,
		"--logfile", filepath.Join(s.dir, "redis.log"))
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if s.ping() {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			t.Fatalf("redis-server does not answer on %s; log:\n%s", s.sock, log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *server) ping() bool {
	c, err := net.DialTimeout("unix", s.sock, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// stop kills the server, if it runs, by its PID.
func (s *server) stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()
	s.cmd = nil
	os.Remove(s.sock)
}

// Kill kills the server with SIGKILL.
func (s *server) Kill(t testing.TB) { s.stop() }

// Wipe restarts the server without its data.
func (s *server) Wipe(t testing.TB) {
	t.Helper()
	s.stop()
	entries, _ := os.ReadDir(s.dir)
	for _, e := range entries {
		if e.Name() != "redis.log" {
			os.RemoveAll(filepath.Join(s.dir, e.Name()))
		}
	}
	s.Start(t)
}

// newTestBroker returns a Broker on s, closed at cleanup.
func newTestBroker(t testing.TB, s *server, o *Options) *Broker {
	t.Helper()
	b, err := Open(s.url(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// infoInt returns the number in field of INFO section, or of its
// calls= for a commandstats field (0 when the field is missing).
func (s *server) infoInt(t testing.TB, section, field string) int64 {
	t.Helper()
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: s.sock})
	defer c.Close()
	info, err := c.Info(context.Background(), section).Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(info) {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":")
		if !ok {
			continue
		}
		v = strings.TrimPrefix(v, "calls=")
		v, _, _ = strings.Cut(v, ",")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("INFO %s: %q", section, line)
		}
		return n
	}
	return 0
}
