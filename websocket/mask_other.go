//go:build !amd64 || purego

package websocket

const (
	haveMaskAsm = false
	maskAsmMin  = 0
)

func maskAsm(dst, src []byte, key uint32) { panic("unreachable") }
