package promobserver_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/realtime-go/realtime/internal/obstest"
	"github.com/realtime-go/realtime/promobserver"
)

// The root's BenchmarkEcho1KiB and BenchmarkBroadcast10k with the
// adapter on: compare their msgs/s.

func observer() *promobserver.Metrics {
	m := promobserver.New(nil)
	prometheus.NewRegistry().MustRegister(m)
	return m
}

func BenchmarkEcho1KiB(b *testing.B) { obstest.Echo(b, observer().Observer()) }

func BenchmarkBroadcast10k(b *testing.B) {
	obstest.Broadcast(b, observer().Observer(), obstest.BroadcastSockets)
}
