package websocket

import (
	"syscall"
	"unsafe"
)

// haveRawIO reports whether reads and writes may go straight to the
// socket through syscall.RawConn.
const haveRawIO = true

// sysRead and sysWrite are read(2) and write(2) on a non-blocking socket.
// They skip the scheduler's bookkeeping around a system call
// (entersyscall and exitsyscall, measured at a tenth of the server's user
// time per 1 KiB echo): on a non-blocking socket the call never sleeps,
// and it copies at most one buffer of ReadBufferSize or WriteBufferSize
// bytes, so it holds its thread no longer than a function that copies
// as much would.
func sysRead(fd uintptr, b []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	return int(n), errno
}

func sysWrite(fd uintptr, b []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	return int(n), errno
}
