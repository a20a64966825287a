package realtime

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// broadcastAll broadcasts text and builds the wire forms the writers of
// a realtime.v1 WebSocket, a plain WebSocket and an EventSource socket
// would send, as a hub with one client of each does.
func broadcastAll(tb testing.TB, hub *Hub, text string) *message {
	if _, err := hub.Broadcast(text); err != nil {
		tb.Fatal(err)
	}
	hub.mu.Lock()
	m := hub.hist[len(hub.hist)-1]
	hub.mu.Unlock()
	m.event()
	m.framedV1()
	m.framedPlain()
	return m
}

// retainedPerMessage returns the heap bytes a hub's history adds per
// broadcast of size bytes once every wire form is built, beyond the
// caller's string, which is counted before.
func retainedPerMessage(tb testing.TB, size int) float64 {
	const n = 64
	texts := make([]string, n)
	for i := range texts {
		texts[i] = strconv.Itoa(i) + strings.Repeat("x", size-len(strconv.Itoa(i)))
	}
	hub := NewHub(&HubOptions{MaxHistory: n, MaxHistoryBytes: -1})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range texts {
		broadcastAll(tb, hub, texts[i])
		texts[i] = "" // the hub's reference is the only one left
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(hub)
	return float64(after.HeapAlloc-before.HeapAlloc) / n
}

// A broadcast kept in a hub's history holds its payload once per wire
// form in use (beside the caller's text): three copies for a hub whose
// clients use all three forms, not five as when each WebSocket form kept
// the payload and its frame apart.
func TestBroadcastRetainedBytes(t *testing.T) {
	const size = 64 << 10
	if got := retainedPerMessage(t, size); got > 4*size {
		t.Fatalf("a %d-byte broadcast holds %.0f bytes (%.1f copies)", size, got, got/size)
	}
}

// BenchmarkBroadcast measures a broadcast and its three wire forms, and
// reports the bytes the history retains per message.
func BenchmarkBroadcast(b *testing.B) {
	for _, size := range []int{64, 64 << 10} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			text := strings.Repeat("x", size)
			hub := NewHub(&HubOptions{MaxHistory: 64, MaxHistoryBytes: -1})
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				broadcastAll(b, hub, text)
			}
			b.ReportMetric(retainedPerMessage(b, size), "retained-B/msg")
		})
	}
}
