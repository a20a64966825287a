package otelobserver_test

import (
	"testing"

	"github.com/realtime-go/realtime/internal/obstest"
	"github.com/realtime-go/realtime/otelobserver"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// The root's BenchmarkEcho1KiB and BenchmarkBroadcast10k with the
// adapter on, reporting to an SDK meter provider.

func reporter(b *testing.B) *otelobserver.Reporter {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { mp.Shutdown(b.Context()) })
	r, err := otelobserver.New(&otelobserver.Options{MeterProvider: mp})
	if err != nil {
		b.Fatal(err)
	}
	return r
}

func BenchmarkEcho1KiB(b *testing.B) { obstest.Echo(b, reporter(b).Observer()) }

func BenchmarkBroadcast10k(b *testing.B) {
	obstest.Broadcast(b, reporter(b).Observer(), obstest.BroadcastSockets)
}
