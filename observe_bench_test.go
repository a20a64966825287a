package realtime_test

import (
	"testing"

	"github.com/realtime-go/realtime/internal/obstest"
)

// The cost of observing is measured against these: the 1 KiB echo and
// the 10,000-socket broadcast without an Observer. Module prometheus runs
// the same with its adapter on.

func BenchmarkEcho1KiB(b *testing.B) { obstest.Echo(b, nil) }

func BenchmarkBroadcast10k(b *testing.B) { obstest.Broadcast(b, nil) }
