package websocket

import (
	"math/bits"
	"sync"
)

// I/O buffers are pooled by size class, so idle connections hold none
// and busy ones do not allocate, whatever ReadBufferSize and
// WriteBufferSize say. The classes are the powers of two and the sizes
// halfway between them (3·2^(k-1)), from minClassSize to maxClassSize:
// a buffer is rounded up by less than half, and the default size is a
// class of its own. A larger buffer is allocated for each use. The pools
// hold pointers so that Put does not allocate.
const (
	minClassBits = 8 // 256 bytes, below the smallest buffer options allow
	maxClassBits = 22
	minClassSize = 1 << minClassBits
	maxClassSize = 1 << maxClassBits
)

var bufPools [2*(maxClassBits-minClassBits) + 1]sync.Pool

// bufClass returns the index of the smallest class of at least size
// bytes and that class's size; ok is false when size exceeds every
// class.
func bufClass(size int) (class, classSize int, ok bool) {
	if size > maxClassSize {
		return 0, size, false
	}
	size = max(size, minClassSize)
	k := bits.Len(uint(size - 1)) // 2^(k-1) < size <= 2^k
	if three := 3 << (k - 2); size <= three {
		return 2*(k-minClassBits) - 1, three, true
	}
	return 2 * (k - minClassBits), 1 << k, true
}

// getBuf returns a buffer of at least size bytes, as long as its class.
func getBuf(size int) *[]byte {
	class, n, ok := bufClass(size)
	if ok {
		if p, _ := bufPools[class].Get().(*[]byte); p != nil {
			return p
		}
	}
	b := make([]byte, n)
	return &b
}

// putBuf gives back a buffer from getBuf.
func putBuf(p *[]byte) {
	n := cap(*p)
	if class, classSize, ok := bufClass(n); ok && classSize == n {
		*p = (*p)[:n]
		bufPools[class].Put(p)
	}
}
