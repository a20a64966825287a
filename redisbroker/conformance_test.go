package redisbroker

import (
	"testing"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/brokertest"
)

// TestConformance runs the conformance suite against a redis-server
// with appendonly yes and appendfsync always, so that a restart after
// SIGKILL keeps every acknowledged publish.
func TestConformance(t *testing.T) {
	s := startRedis(t, true)
	const maxHistory = 100
	brokertest.Run(t, brokertest.Harness{
		New: func(t *testing.T) realtime.Broker {
			b, err := Open(s.url(), &Options{MaxHistory: maxHistory})
			if err != nil {
				t.Error(err)
				return nil
			}
			return b
		},
		MaxHistory: maxHistory,
		Kill:       func(t *testing.T) { s.Kill(t) },
		Start:      func(t *testing.T) { s.Start(t) },
		Wipe:       func(t *testing.T) { s.Wipe(t) },
	})
}
