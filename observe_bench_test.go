package realtime_test

import (
	"testing"

	"github.com/realtime-go/realtime/internal/obsbench"
)

// The cost of observing is measured against these: the 1 KiB echo and
// the 10,000-socket broadcast without an Observer. Module prometheus runs
// the same with its adapter on.

func BenchmarkEcho1KiB(b *testing.B) { obsbench.Echo(b, nil) }

func BenchmarkBroadcast10k(b *testing.B) { obsbench.Broadcast(b, nil) }
