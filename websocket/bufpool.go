package websocket

import "sync"

// bufPool recycles I/O buffers of the default size, so idle connections
// hold none and busy ones do not allocate. It holds pointers so that Put
// does not allocate.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, defaultBufferSize)
	return &b
}}

func getBuf(size int) *[]byte {
	if size != defaultBufferSize {
		b := make([]byte, size)
		return &b
	}
	return bufPool.Get().(*[]byte)
}

func putBuf(p *[]byte) {
	if cap(*p) == defaultBufferSize {
		*p = (*p)[:defaultBufferSize]
		bufPool.Put(p)
	}
}
