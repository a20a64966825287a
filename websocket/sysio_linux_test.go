//go:build !norawio

package websocket

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"
)

// A socket someone switched to blocking mode (os.File.Fd on a duplicate
// does that) must not make the raw system calls sleep: a Read or a
// buffered Write still ends with its context. (Payloads too big for the
// buffer go through net.Conn, which does sleep on such a socket.)
func TestBlockingSocketHonoursContext(t *testing.T) {
	for _, op := range []string{"Read", "Write"} {
		t.Run(op, func(t *testing.T) {
			c, nc := benchConn(t, overTCP, false, ConnOptions{}) // nobody reads nc
			// Closing nc first would let a call stuck in the kernel return,
			// so a failure does not hang the test.
			defer c.CloseNow()
			defer nc.Close()
			rc, err := c.nc.(syscall.Conn).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var serr error
			if err := rc.Control(func(fd uintptr) { serr = syscall.SetNonblock(int(fd), false) }); err != nil || serr != nil {
				t.Fatal(err, serr)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			within(t, waitLong, op, func() {
				if op == "Read" {
					_, _, err = c.Read(ctx)
					return
				}
				// Messages small enough for the write buffer, which the
				// raw system calls send, until the socket buffers are full.
				for err == nil {
					err = c.Write(ctx, MessageBinary, make([]byte, 1<<10))
				}
			})
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%s = %v, want context.DeadlineExceeded", op, err)
			}
		})
	}
}
