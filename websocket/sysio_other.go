//go:build !unix || norawio

package websocket

import "syscall"

// haveRawIO reports whether reads and writes may go straight to the
// socket through syscall.RawConn. Here (outside Unix, or with the build
// tag norawio) they go through net.Conn.
const haveRawIO = false

func sysRead(fd uintptr, b []byte) (int, syscall.Errno)  { panic("unreachable") }
func sysWrite(fd uintptr, b []byte) (int, syscall.Errno) { panic("unreachable") }
