package otelobserver_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/internal/obstest"
	"github.com/realtime-go/realtime/otelobserver"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// sum returns the value of instrument name over its data points whose
// attributes include labels (key, value pairs); a histogram's count.
func sum(rm metricdata.ResourceMetrics, name string, labels ...string) float64 {
	match := func(set attribute.Set) bool {
		for i := 0; i+1 < len(labels); i += 2 {
			if v, ok := set.Value(attribute.Key(labels[i])); !ok || v.AsString() != labels[i+1] {
				return false
			}
		}
		return true
	}
	var total float64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					if match(p.Attributes) {
						total += float64(p.Value)
					}
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					if match(p.Attributes) {
						total += float64(p.Count)
					}
				}
			}
		}
	}
	return total
}

// The instruments match what the scripted session did, read through an
// in-memory reader; each publish is a span.
func TestSession(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.Background())
	r, err := otelobserver.New(&otelobserver.Options{MeterProvider: mp, TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	collect := func() metricdata.ResourceMetrics {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		return rm
	}

	ws, es := realtime.TransportWebSocket.String(), realtime.TransportEventSource.String()
	obstest.Session(t, r.Observer(), func(w obstest.Want) {
		obstest.Eventually(t, func() error {
			rm := collect()
			for _, c := range []struct {
				name   string
				labels []string
				want   float64
			}{
				{"realtime.connections", []string{"transport", ws}, float64(w.Connections[realtime.TransportWebSocket])},
				{"realtime.connections", []string{"transport", es}, float64(w.Connections[realtime.TransportEventSource])},
				{"realtime.sockets", []string{"transport", ws}, float64(w.Open[realtime.TransportWebSocket])},
				{"realtime.sockets", []string{"transport", es}, float64(w.Open[realtime.TransportEventSource])},
				{"realtime.reconnections", nil, float64(w.Reconnects)},
				{"realtime.refusals", []string{"transport", ws, "reason", "handshake"}, float64(w.Refusals)},
				{"realtime.fallbacks", nil, float64(w.Fallbacks)},
				{"realtime.resumes", []string{"result", "failed"}, float64(w.Failed)},
				{"realtime.resumes", []string{"result", "resumed"}, 0},
				{"realtime.messages", []string{"direction", "in"}, float64(w.MessagesIn)},
				{"realtime.message.size", []string{"direction", "in"}, float64(w.BytesIn)},
				{"realtime.messages", []string{"direction", "out"}, float64(w.MessagesOut)},
				{"realtime.message.size", []string{"direction", "out"}, float64(w.BytesOut)},
				{"realtime.drops", []string{"reason", "close"}, float64(w.Drops)},
				{"realtime.disconnections", []string{"transport", ws, "code", "1013"}, float64(w.Closed1013)},
				{"realtime.socket.duration", nil, float64(w.Closed1013)},
				{"realtime.broker.publish.duration", nil, float64(w.Publishes)},
				{"realtime.follow.lag", nil, float64(w.Publishes)},
			} {
				if got := sum(rm, c.name, c.labels...); got != c.want {
					return fmt.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
				}
			}
			return nil
		})
		ended := spans.Ended()
		if len(ended) != w.Publishes {
			t.Fatalf("%d spans, want one per publish (%d)", len(ended), w.Publishes)
		}
		for _, s := range ended {
			if s.Name() != "realtime.publish" || !s.EndTime().After(s.StartTime()) {
				t.Errorf("span %s from %v to %v", s.Name(), s.StartTime(), s.EndTime())
			}
			found := false
			for _, a := range s.Attributes() {
				found = found || a.Key == "realtime.channel" && a.Value.AsString() == "chat"
			}
			if !found {
				t.Errorf("span %s lacks the channel: %v", s.Name(), s.Attributes())
			}
		}
	})
	obstest.Eventually(t, func() error {
		if n := sum(collect(), "realtime.sockets"); n != 0 {
			return fmt.Errorf("realtime.sockets = %v after the session", n)
		}
		return nil
	})
}

// A publish's span is a child of the publisher's.
func TestPublishSpanParent(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.Background())
	r, err := otelobserver.New(&otelobserver.Options{TracerProvider: tp, MeterProvider: sdkmetric.NewMeterProvider()})
	if err != nil {
		t.Fatal(err)
	}
	hub := realtime.NewHub(&realtime.HubOptions{Observer: r.Observer()})
	defer hub.Close()
	ctx, parent := tp.Tracer("test").Start(context.Background(), "request")
	if _, err := hub.Publish(ctx, "chat", "hi"); err != nil {
		t.Fatal(err)
	}
	parent.End()
	var pub sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		if s.Name() == "realtime.publish" {
			pub = s
		}
	}
	if pub == nil || pub.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("publish span %v, want a child of the request's", pub)
	}
}
