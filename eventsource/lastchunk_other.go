//go:build !unix

package eventsource

import "net"

// tryWrite reports false: there is no write that never waits here.
func tryWrite(net.Conn, []byte) bool { return false }
