package realtime_test

import (
	"testing"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/brokertest"
)

// TestMemoryBrokerConformance runs the broker suite against a
// MemoryBroker shared by the suite's nodes, each with a View of it.
func TestMemoryBrokerConformance(t *testing.T) {
	const maxHistory = 200
	b := realtime.NewMemoryBroker(&realtime.MemoryBrokerOptions{MaxHistory: maxHistory})
	defer b.Close()
	brokertest.Run(t, brokertest.Harness{
		New:        func(t *testing.T) realtime.Broker { return brokertest.View(b) },
		MaxHistory: maxHistory,
	})
}
