//go:build unix

package websocket

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// exhaustionEnv makes the test binary run as the server of
// TestServeDescriptorExhaustion.
const exhaustionEnv = "WEBSOCKET_TEST_EXHAUSTION_SERVER"

// TestServeDescriptorExhaustion: an attacker opens idle connections until
// the server's process has no descriptor left and accept fails with
// EMFILE; once the attack ends, new clients are served. The server runs
// in a child process with a low RLIMIT_NOFILE, so the attack takes a few
// dozen connections and nothing else in the test is starved.
func TestServeDescriptorExhaustion(t *testing.T) {
	if os.Getenv(exhaustionEnv) != "" {
		exhaustionServer(t)
		return
	}
	if testing.Short() {
		t.Skip("starts a process")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeDescriptorExhaustion$", "-test.v")
	cmd.Env = append(os.Environ(), exhaustionEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	var output strings.Builder
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	defer func() {
		stdin.Close() // tells the child to stop
		for line := range lines {
			output.WriteString(line + "\n")
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("server process: %v\n%s%s", err, output.String(), stderr.String())
		}
	}()
	next := func(prefix string) string {
		t.Helper()
		timeout := time.After(2 * waitLong)
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("server process ended before %q:\n%s%s", prefix, output.String(), stderr.String())
				}
				output.WriteString(line + "\n")
				if rest, ok := strings.CutPrefix(line, prefix); ok {
					return rest
				}
			case <-timeout:
				t.Fatalf("server process did not say %q:\n%s", prefix, output.String())
			}
		}
	}
	addr := next("listening on ")

	// The attack: idle connections, more than the child has descriptors,
	// until its accept fails.
	var attack []net.Conn
	defer func() {
		for _, nc := range attack {
			nc.Close()
		}
	}()
	for range 2 * exhaustionLimit {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		attack = append(attack, nc)
	}
	next("accept failed: EMFILE")
	for _, nc := range attack {
		nc.Close()
	}
	attack = nil

	// The attack is over: clients are served again.
	for i := range 3 {
		c, _, err := dialServer(t, addr, nil)
		if err != nil {
			t.Fatalf("client %d after the attack: %v", i, err)
		}
		expectEcho(t, c, fmt.Sprint("after the attack ", i))
		c.Close(StatusNormalClosure, "")
	}
}

// exhaustionLimit is the child's RLIMIT_NOFILE.
const exhaustionLimit = 32

func exhaustionServer(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = exhaustionLimit
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	s := &Server{
		Handler: echoHandler,
		OnError: func(remote net.Addr, err error) {
			if errors.Is(err, syscall.EMFILE) {
				once.Do(func() { fmt.Println("accept failed: EMFILE") })
			}
		},
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	fmt.Println("listening on", ln.Addr())
	os.Stdin.Read(make([]byte, 1)) // until the parent closes stdin
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Error(err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve = %v, want ErrServerClosed", err)
	}
}
