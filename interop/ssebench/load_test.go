package main

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
)

// chunk frames body as HTTP/1.1 chunked transfer coding, in pieces of n.
func chunk(body string, n int) string {
	var b strings.Builder
	for len(body) > 0 {
		k := min(n, len(body))
		fmt.Fprintf(&b, "%x\r\n%s\r\n", k, body[:k])
		body = body[k:]
	}
	return b.String()
}

func sseEvent(seq uint64) string {
	return fmt.Sprintf("id: %d\ndata: %s\n\n", seq, makePayload(seq, 1_700_000_000_000_000_000+int64(seq)))
}

// TestSSEParser feeds the load client's de-chunker and parser a stream cut
// at every offset, with comments, a retry line, an event of another type
// and a gap, and checks what it counts.
func TestSSEParser(t *testing.T) {
	var body strings.Builder
	body.WriteString("retry: 1000\n\n:\n\n")
	// realtime.Handler's hello: another type, another size of data.
	body.WriteString("event: realtime.hello\nid: e-0\ndata: token\n\n")
	for seq := uint64(5); seq <= 9; seq++ {
		body.WriteString(sseEvent(seq))
	}
	body.WriteString(sseEvent(12)) // 10 and 11 missing
	body.WriteString(sseEvent(11)) // out of order
	body.WriteString(": keep-alive\n\n")
	stream := chunk(body.String(), 37) + "0\r\n\r\n"
	for _, chunked := range []bool{true, false} {
		in := stream
		if !chunked {
			in = body.String()
		}
		for cut := 1; cut < len(in); cut += 7 {
			var rec atomic.Bool
			s := &sub{record: &rec, chunkLeft: -1, chunked: chunked}
			var err error
			for i := 0; i < len(in) && err == nil; i += cut {
				err = s.feed([]byte(in[i:min(i+cut, len(in))]))
			}
			if chunked && err != errBodyEnded {
				t.Fatalf("chunked, cut %d: %v, want the end of the body", cut, err)
			}
			if !chunked && err != nil {
				t.Fatalf("cut %d: %v", cut, err)
			}
			if s.events.Load() != 7 || s.gaps.Load() != 2 || s.disorder.Load() != 1 {
				t.Fatalf("chunked %v, cut %d: %d events, %d missing, %d out of order; want 7, 2, 1",
					chunked, cut, s.events.Load(), s.gaps.Load(), s.disorder.Load())
			}
		}
	}
}

func TestSSEPayload(t *testing.T) {
	p := makePayload(123456789, 1_700_000_000_123_456_789)
	if len(p) != payloadSize || !strings.HasPrefix(string(p), "123456789 1700000000123456789 x") {
		t.Fatalf("payload %q", p)
	}
}
