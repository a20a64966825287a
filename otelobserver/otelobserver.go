// Package otelobserver reports the events of realtime sockets and hubs
// to OpenTelemetry: metrics through the meter API, and a span per
// Hub.Publish. It is a [realtime.Observer]:
//
//	o, err := otelobserver.New(nil) // the global MeterProvider and TracerProvider
//	hub := realtime.NewHub(&realtime.HubOptions{Observer: o.Observer()})
//
// The package is a module of its own, so that the realtime module does
// not depend on OpenTelemetry.
//
// # Metrics
//
// The instruments carry the same counts as module promobserver's
// metrics, named in OpenTelemetry's style (an exporter to Prometheus
// turns realtime.connections into realtime_connections_total):
//
//	realtime.sockets               up-down counter {transport}
//	realtime.connections           counter {transport, protocol}
//	realtime.reconnections         counter {transport}
//	realtime.disconnections        counter {transport, code}
//	realtime.socket.duration       histogram, s {transport}
//	realtime.refusals              counter {transport, reason}
//	realtime.fallbacks             counter
//	realtime.resumes               counter {result}
//	realtime.messages              counter {direction}
//	realtime.message.size          counter, By {direction}
//	realtime.drops                 counter {reason}
//	realtime.heartbeat.missed      counter {transport, kind}
//	realtime.broker.publish.duration histogram, s
//	realtime.broker.publish.errors counter
//	realtime.follow.lag            histogram, s
//
// Attributes have bounded values, as in promobserver: the channel name
// and the socket id are never attributes of a metric.
//
// # Traces
//
// Each Hub.Publish is a span, "realtime.publish", a child of the span in
// the context Publish was given, from the call to the broker's append,
// with the channel as attribute "realtime.channel", an error status when
// it failed, and the follow lag as attribute
// "realtime.follow_lag_seconds": a publish shows in the trace of the
// request that caused it. Connections get no span: one lasts minutes or
// days, which tracing backends handle badly and which tells nothing the
// metrics do not. A socket's context (Socket context, OnMessage's ctx)
// keeps the values of its request, so spans the application starts there
// join the trace of the request that opened it.
package otelobserver

import (
	"context"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/internal/obslabel"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the meter and the tracer.
const ScopeName = "github.com/realtime-go/realtime/otelobserver"

// Options configures New. A nil *Options means the zero value.
type Options struct {
	// MeterProvider makes the meter. Nil means otel.GetMeterProvider().
	MeterProvider metric.MeterProvider

	// TracerProvider makes the tracer of the publish spans. Nil means
	// otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
}

// Reporter holds the instruments and the tracer.
type Reporter struct {
	tracer trace.Tracer

	sockets       metric.Int64UpDownCounter
	connections   metric.Int64Counter
	reconnections metric.Int64Counter
	disconnects   metric.Int64Counter
	duration      metric.Float64Histogram
	refusals      metric.Int64Counter
	fallbacks     metric.Int64Counter
	resumes       metric.Int64Counter
	messages      metric.Int64Counter
	bytes         metric.Int64Counter
	drops         metric.Int64Counter
	heartbeats    metric.Int64Counter
	publish       metric.Float64Histogram
	publishErrors metric.Int64Counter
	followLag     metric.Float64Histogram

	// The attribute sets of the hot paths, made once: a message costs
	// no allocation.
	in, out         []metric.AddOption
	resumed, failed []metric.AddOption
	byTransport     [3][]metric.AddOption
	recordTransport [3][]metric.RecordOption
	observer        realtime.Observer
}

// New makes the instruments.
func New(opts *Options) (*Reporter, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	mp, tp := o.MeterProvider, o.TracerProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	m := mp.Meter(ScopeName)
	r := &Reporter{tracer: tp.Tracer(ScopeName)}
	var err error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, e := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		if err == nil {
			err = e
		}
		return c
	}
	histogram := func(name, desc string, bounds ...float64) metric.Float64Histogram {
		h, e := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(bounds...))
		if err == nil {
			err = e
		}
		return h
	}
	latency := []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
	r.sockets, err = m.Int64UpDownCounter("realtime.sockets", metric.WithUnit("{socket}"), metric.WithDescription("Sockets open, by transport."))
	r.connections = counter("realtime.connections", "{socket}", "Sockets opened, by transport and wire protocol.")
	r.reconnections = counter("realtime.reconnections", "{socket}", "Sockets opened by clients that presented a last event id.")
	r.disconnects = counter("realtime.disconnections", "{socket}", "Sockets ended, by transport and close code (3000-4999: app).")
	r.duration = histogram("realtime.socket.duration", "How long sockets stayed open.", 1, 10, 60, 300, 1800, 3600, 4*3600, 24*3600)
	r.refusals = counter("realtime.refusals", "{socket}", "Sockets refused before they opened, by transport and reason.")
	r.fallbacks = counter("realtime.fallbacks", "{socket}", "EventSource sockets of clients that fell back from WebSocket.")
	r.resumes = counter("realtime.resumes", "{join}", "Joins that resumed from the client's position (resumed) or could not (failed).")
	r.messages = counter("realtime.messages", "{message}", "Messages from clients (in) and written to sockets (out).")
	r.bytes = counter("realtime.message.size", "By", "Payload bytes of the messages from clients (in) and to sockets (out).")
	r.drops = counter("realtime.drops", "{message}", "Messages dropped from send queues, by reason (oldest, close).")
	r.heartbeats = counter("realtime.heartbeat.missed", "{socket}", "Sockets ended as their peer did not answer in time (pong, write).")
	r.publish = histogram("realtime.broker.publish.duration", "Hub.Publish's append to the broker.", latency...)
	r.publishErrors = counter("realtime.broker.publish.errors", "{publish}", "Hub.Publish calls that failed.")
	r.followLag = histogram("realtime.follow.lag", "From a publish's append to this node's delivery to its sockets.", latency...)
	if err != nil {
		return nil, err
	}
	add := func(kv ...attribute.KeyValue) []metric.AddOption {
		return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
	}
	r.in, r.out = add(attribute.String("direction", "in")), add(attribute.String("direction", "out"))
	r.resumed, r.failed = add(attribute.String("result", "resumed")), add(attribute.String("result", "failed"))
	for _, t := range []realtime.Transport{realtime.TransportWebSocket, realtime.TransportEventSource} {
		set := attribute.NewSet(attribute.String("transport", t.String()))
		r.byTransport[t] = []metric.AddOption{metric.WithAttributeSet(set)}
		r.recordTransport[t] = []metric.RecordOption{metric.WithAttributeSet(set)}
	}
	r.observer = realtime.Observer{
		OnConnect:         r.onConnect,
		OnDisconnect:      r.onDisconnect,
		OnRefuse:          r.onRefuse,
		OnFallback:        func(realtime.ConnectEvent) { r.fallbacks.Add(context.Background(), 1) },
		OnResume:          r.onResume,
		OnMessageIn:       func(e realtime.MessageEvent) { r.onMessage(e, r.in) },
		OnMessageOut:      func(e realtime.MessageEvent) { r.onMessage(e, r.out) },
		OnDrop:            r.onDrop,
		OnHeartbeatMissed: r.onHeartbeat,
		OnPublish:         r.onPublish,
	}
	return r, nil
}

// Observer returns the hooks that report to OpenTelemetry, for
// realtime.HubOptions.Observer or realtime.Options.Observer.
func (r *Reporter) Observer() *realtime.Observer {
	o := r.observer
	return &o
}

func transportAttr(t realtime.Transport) attribute.KeyValue {
	return attribute.String("transport", t.String())
}

func (r *Reporter) transport(t realtime.Transport) []metric.AddOption {
	if int(t) < len(r.byTransport) && r.byTransport[t] != nil {
		return r.byTransport[t]
	}
	return []metric.AddOption{metric.WithAttributes(transportAttr(t))}
}

func (r *Reporter) onConnect(e realtime.ConnectEvent) {
	ctx := context.Background()
	r.sockets.Add(ctx, 1, r.transport(e.Transport)...)
	r.connections.Add(ctx, 1, metric.WithAttributes(transportAttr(e.Transport), attribute.String("protocol", obslabel.Protocol(e.Protocol))))
	if e.Reconnect {
		r.reconnections.Add(ctx, 1, r.transport(e.Transport)...)
	}
}

func (r *Reporter) onDisconnect(e realtime.DisconnectEvent) {
	ctx := context.Background()
	r.sockets.Add(ctx, -1, r.transport(e.Transport)...)
	r.disconnects.Add(ctx, 1, metric.WithAttributes(transportAttr(e.Transport), attribute.String("code", obslabel.CloseCode(e.Code))))
	var rec []metric.RecordOption
	if int(e.Transport) < len(r.recordTransport) {
		rec = r.recordTransport[e.Transport]
	}
	r.duration.Record(ctx, e.Duration.Seconds(), rec...)
}

func (r *Reporter) onRefuse(e realtime.RefuseEvent) {
	r.refusals.Add(context.Background(), 1, metric.WithAttributes(transportAttr(e.Transport), attribute.String("reason", e.Reason.String())))
}

func (r *Reporter) onResume(e realtime.ResumeEvent) {
	if e.Resumed {
		r.resumes.Add(context.Background(), 1, r.resumed...)
	} else {
		r.resumes.Add(context.Background(), 1, r.failed...)
	}
}

func (r *Reporter) onMessage(e realtime.MessageEvent, dir []metric.AddOption) {
	ctx := context.Background()
	r.messages.Add(ctx, int64(e.Messages), dir...)
	r.bytes.Add(ctx, e.Bytes, dir...)
}

func (r *Reporter) onDrop(e realtime.DropEvent) {
	r.drops.Add(context.Background(), int64(e.Messages), metric.WithAttributes(attribute.String("reason", e.Reason.String())))
}

func (r *Reporter) onHeartbeat(e realtime.HeartbeatEvent) {
	r.heartbeats.Add(context.Background(), 1, metric.WithAttributes(transportAttr(e.Transport), attribute.String("kind", obslabel.Heartbeat(e.Pong))))
}

func (r *Reporter) onPublish(e realtime.PublishEvent) {
	ctx := e.Context
	if ctx == nil {
		ctx = context.Background()
	}
	_, span := r.tracer.Start(ctx, "realtime.publish", trace.WithTimestamp(e.Start), trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("realtime.channel", e.Channel)))
	if e.Err != nil {
		r.publishErrors.Add(ctx, 1)
		span.RecordError(e.Err)
		span.SetStatus(codes.Error, e.Err.Error())
	} else {
		r.publish.Record(ctx, e.Duration.Seconds())
		if e.Delivered > 0 {
			r.followLag.Record(ctx, e.Delivered.Seconds())
			span.SetAttributes(attribute.Float64("realtime.follow_lag_seconds", e.Delivered.Seconds()))
		}
	}
	span.End(trace.WithTimestamp(e.Start.Add(e.Duration)))
}
