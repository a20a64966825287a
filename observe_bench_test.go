package realtime_test

import (
	"testing"

	"github.com/realtime-go/realtime/internal/obstest"
)

// The cost of observing is measured against these: the 1 KiB echo and
// the 10,000-socket broadcast without an Observer. Modules promobserver
// and otelobserver run the same with their adapters on.

func BenchmarkEcho1KiB(b *testing.B) { obstest.Echo(b, nil) }

func BenchmarkBroadcast10k(b *testing.B) { obstest.Broadcast(b, nil, obstest.BroadcastSockets) }

// BenchmarkPublishFanout measures a message published to a channel of
// 1,000 WebSocket sockets, until every client has read it.
func BenchmarkPublishFanout(b *testing.B) { obstest.Broadcast(b, nil, 1000) }
