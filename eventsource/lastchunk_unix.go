//go:build unix

package eventsource

import (
	"net"
	"syscall"
)

// tryWrite writes b to c if the socket takes it at once, and never
// waits: closing a stream whose client stopped reading must not block
// (Hub.Close and Broker.Close close many in a row). It reports false
// when it could not try, c not being a socket.
func tryWrite(c net.Conn, b []byte) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	rc.Write(func(fd uintptr) bool {
		syscall.Write(int(fd), b)
		return true // one attempt
	})
	return true
}
