package realtime

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// testChannel returns a channel of hub that is not followed: tests
// deliver to it themselves.
func testChannel(hub *Hub) *channel {
	return &channel{hub: hub, name: chat, hash: channelHash(chat), last: Position{Epoch: 1},
		members: make(map[*Socket]*member)}
}

// deliverAll delivers text as the channel's next message and builds the
// wire forms the writers of a realtime.v1 WebSocket, a realtime.v2
// WebSocket, a plain WebSocket and both EventSource versions would send,
// as a hub with one client of each does.
func deliverAll(c *channel, text string) *message {
	c.deliver(Entry{Position: Position{Epoch: 1, Offset: c.last.Offset + 1}, Text: text})
	c.mu.Lock()
	m := c.cache[len(c.cache)-1]
	c.mu.Unlock()
	m.event()
	m.eventV2()
	m.framedV1()
	m.framedV2()
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
	defer hub.Close()
	c := testChannel(hub)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range texts {
		deliverAll(c, texts[i])
		texts[i] = "" // the channel's reference is the only one left
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(c)
	return float64(after.HeapAlloc-before.HeapAlloc) / n
}

// A message kept in a channel's cache holds its payload once per wire
// form in use (beside the broker's text): five copies for a channel whose
// clients use all five forms, not ten as when each WebSocket form kept
// the payload and its frame apart.
func TestMessageRetainedBytes(t *testing.T) {
	const size = 64 << 10
	if got := retainedPerMessage(t, size); got > 6*size {
		t.Fatalf("a %d-byte broadcast holds %.0f bytes (%.1f copies)", size, got, got/size)
	}
}

// BenchmarkDeliver measures the delivery of a channel message and its
// five wire forms, and reports the bytes the cache retains per message.
func BenchmarkDeliver(b *testing.B) {
	for _, size := range []int{64, 64 << 10} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			text := strings.Repeat("x", size)
			hub := NewHub(&HubOptions{MaxHistory: 64, MaxHistoryBytes: -1})
			defer hub.Close()
			c := testChannel(hub)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				deliverAll(c, text)
			}
			b.ReportMetric(retainedPerMessage(b, size), "retained-B/msg")
		})
	}
}
