//go:build unix && !linux && !norawio

package websocket

import "syscall"

// haveRawIO reports whether reads and writes may go straight to the
// socket through syscall.RawConn.
const haveRawIO = true

// sysRead and sysWrite are read(2) and write(2) on a non-blocking socket.
func sysRead(fd uintptr, b []byte) (int, syscall.Errno) {
	n, err := syscall.Read(int(fd), b)
	return n, errnoOf(err)
}

func sysWrite(fd uintptr, b []byte) (int, syscall.Errno) {
	n, err := syscall.Write(int(fd), b)
	return n, errnoOf(err)
}

func errnoOf(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	return err.(syscall.Errno)
}
