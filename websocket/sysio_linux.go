//go:build !norawio

package websocket

import (
	"syscall"
	"unsafe"
)

// haveRawIO reports whether reads and writes may go straight to the
// socket through syscall.RawConn.
const haveRawIO = true

// sysRead and sysWrite are recv(2) and send(2) with MSG_DONTWAIT. They
// skip the scheduler's bookkeeping around a system call (entersyscall and
// exitsyscall, measured at a tenth of the server's user time per 1 KiB
// echo), which only pays for itself when a call may sleep. MSG_DONTWAIT
// guarantees this one never does, even if someone turned the socket's
// O_NONBLOCK off (os.File.Fd on a duplicate does): a call that slept here
// would hold its P, and a stop-the-world would wait for it. Each call
// copies at most one buffer of ReadBufferSize or WriteBufferSize bytes.
func sysRead(fd uintptr, b []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), syscall.MSG_DONTWAIT, 0, 0)
	return int(n), errno
}

// sysWrite also sets MSG_NOSIGNAL: a peer that has gone away is an EPIPE
// error, not a SIGPIPE.
func sysWrite(fd uintptr, b []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), syscall.MSG_DONTWAIT|syscall.MSG_NOSIGNAL, 0, 0)
	return int(n), errno
}
