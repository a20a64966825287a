//go:build !purego

package websocket

import "testing"

// TestMaskSSE2 covers the SSE2 path, which the other tests skip on
// machines with AVX2.
func TestMaskSSE2(t *testing.T) {
	t.Logf("AVX2: %v", useAVX2)
	defer func(v bool) { useAVX2 = v }(useAVX2)
	useAVX2 = false
	testMaskLengths(t)
	testMaskLarge(t)
}
