//go:build !purego

package websocket

const (
	haveMaskAsm = true
	// maskAsmMin: from 128 bytes the assembly wins at any alignment (by
	// 6% aligned and 30% unaligned at 128, 3x at 1 KiB); below, its fixed
	// cost of about 3-4 ns can lose to the Go loop. It also keeps control
	// frames (at most 125 bytes) off the call.
	maskAsmMin = 128
)

// maskAsm assumes at least 32 bytes; this fails to compile otherwise.
const _ = uint(maskAsmMin - 32)

// useAVX2 is read by maskAsm. A variable rather than a constant so the
// tests can cover the SSE2 path on machines that have AVX2.
var useAVX2 = hasAVX2()

// maskAsm sets dst[i] to src[i] XOR the key, whose low byte is for
// src[0]; dst may be src. It requires len(src) >= 32, since the alignment
// prologue does not check the length, and len(dst) >= len(src).
//
//go:noescape
func maskAsm(dst, src []byte, key uint32)

func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

func xgetbv() (eax, edx uint32)

// hasAVX2 follows the Intel SDM: the CPU must have AVX2, and the OS must
// save the YMM registers on context switch (OSXSAVE, then XCR0 bits 1-2),
// or their upper halves could be lost.
func hasAVX2() bool {
	maxID, _, _, _ := cpuid(0, 0)
	if maxID < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const osxsave, avx = 1 << 27, 1 << 28
	if ecx1&(osxsave|avx) != osxsave|avx {
		return false
	}
	if xcr0, _ := xgetbv(); xcr0&6 != 6 {
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	return ebx7&(1<<5) != 0
}
