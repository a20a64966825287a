package natsbroker

import (
	"testing"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/brokertest"
)

func TestConformance(t *testing.T) {
	s := startServer(t)
	const history = 100
	brokertest.Run(t, brokertest.Harness{
		New: func(t *testing.T) realtime.Broker {
			b, err := Dial(s.URL(), &Options{MaxHistory: history, MaxHistoryBytes: -1})
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		MaxHistory: history,
		Kill:       func(*testing.T) { s.Kill() },
		Start:      func(*testing.T) { s.Start() },
		Wipe:       func(*testing.T) { s.Wipe() },
	})
}
