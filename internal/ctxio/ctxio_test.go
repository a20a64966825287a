package ctxio

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// slowDeadlineConn is a net.Conn whose SetDeadline, when given a time in
// the past, tells entered and then waits for release: the moment when an
// interrupting function has started but not yet set its deadline.
type slowDeadlineConn struct {
	net.Conn
	entered chan struct{}
	release chan struct{}

	mu       sync.Mutex
	deadline time.Time
}

func (c *slowDeadlineConn) SetDeadline(t time.Time) error {
	if !t.IsZero() && t.Before(time.Now()) {
		close(c.entered)
		<-c.release
	}
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return nil
}

func (c *slowDeadlineConn) Deadline() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadline
}

// stop, called while the interruption has started but not been made,
// waits for it and then clears the deadline: the conn is left without
// one (issue 11, point 1: a deadline restored first was overwritten).
func TestStopWaitsForStartedInterruption(t *testing.T) {
	c := &slowDeadlineConn{entered: make(chan struct{}), release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	stop := Interrupt(ctx, c)
	cancel()
	<-c.entered
	result := make(chan bool)
	go func() { result <- stop() }()
	select {
	case ok := <-result:
		// A stop that does not wait returns before the interruption is
		// made, which then overwrites the cleared deadline.
		close(c.release)
		if ok {
			t.Fatal("stop reported true after ctx interrupted")
		}
		time.Sleep(10 * time.Millisecond) // let an overwrite land, so the check below sees it
	case <-time.After(50 * time.Millisecond):
		close(c.release)
		if <-result {
			t.Fatal("stop reported true after ctx interrupted")
		}
	}
	if d := c.Deadline(); !d.IsZero() {
		t.Fatalf("deadline %v left after stop", d)
	}
	if stop() {
		t.Fatal("a second stop changed its answer")
	}
}

// Contexts that end at random moments around real I/O: after stop the
// connection works, whatever stop reported.
func TestRandomCancellationLeavesConnUsable(t *testing.T) {
	// TCP rather than net.Pipe: its buffers let a late echo wait while
	// the sentinel is written.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	echoed := make(chan struct{})
	defer func() { a.Close(); <-echoed }()
	go func() {
		defer close(echoed)
		io.Copy(b, b)
	}()
	buf := make([]byte, 1)
	for i := range 2000 {
		ctx, cancel := context.WithCancel(context.Background())
		stop := Interrupt(ctx, a)
		go func() {
			time.Sleep(time.Duration(rand.IntN(20)) * time.Microsecond)
			cancel()
		}()
		_, err := a.Write([]byte{byte(i % 200)})
		if err == nil {
			_, err = a.Read(buf)
		}
		stop()
		cancel()
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("round %d: %v", i, err)
		}
		// The connection must work with no context at all. The echo of
		// an interrupted round may come before the sentinel's.
		const sentinel = 250
		if _, err := a.Write([]byte{sentinel}); err != nil {
			t.Fatalf("round %d: write after stop: %v", i, err)
		}
		for buf[0] = 0; buf[0] != sentinel; {
			if _, err := a.Read(buf); err != nil {
				t.Fatalf("round %d: read after stop: %v", i, err)
			}
		}
	}
}

// afterFuncer is a context with an AfterFunc method of its own.
type afterFuncer struct {
	context.Context
	calls int
}

func (a *afterFuncer) AfterFunc(f func()) func() bool {
	a.calls++
	return func() bool { return true }
}

// TestAfterFunc: a context with an AfterFunc method is asked directly;
// any other is watched as context.AfterFunc does.
func TestAfterFunc(t *testing.T) {
	a := &afterFuncer{Context: context.Background()}
	if stop := AfterFunc(a, func() {}); !stop() || a.calls != 1 {
		t.Fatalf("AfterFunc method called %d times", a.calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	AfterFunc(ctx, func() { close(ran) })
	stop := AfterFunc(ctx, func() { t.Error("a stopped function ran") })
	if !stop() {
		t.Fatal("stop = false before the context ended")
	}
	cancel()
	<-ran
}

// Sleep reports whether its time passed before the context ended.
func TestSleep(t *testing.T) {
	if !Sleep(context.Background(), time.Nanosecond) {
		t.Error("Sleep of a live context = false")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Error("Sleep of an ended context = true")
	}
}
