// Package promobserver exposes the events of realtime sockets and hubs
// as Prometheus metrics: a [realtime.Observer] whose hooks update
// counters, gauges and histograms of github.com/prometheus/client_golang.
//
//	m := promobserver.New(nil)
//	prometheus.MustRegister(m)
//	hub := realtime.NewHub(&realtime.HubOptions{Observer: m.Observer()})
//	http.Handle("/metrics", promhttp.Handler())
//
// The package is a module of its own, so that the realtime module does
// not depend on the Prometheus client. Its name is not "prometheus", so
// that it can be imported beside the client's package without a rename.
//
// # Metrics
//
// The names follow Prometheus's conventions: a realtime_ prefix, base
// units (seconds, bytes), _total for counters.
//
//	realtime_sockets{transport}                      gauge: sockets open
//	realtime_connections_total{transport,protocol}   sockets opened
//	realtime_reconnections_total{transport}          of those, clients that presented a last event id
//	realtime_disconnections_total{transport,code}    sockets ended, by close code
//	realtime_socket_duration_seconds{transport}      histogram: how long sockets stayed open
//	realtime_refusals_total{transport,reason}        sockets refused: origin, shutdown, channel, forbidden, handshake
//	realtime_fallbacks_total                         EventSource sockets of clients that fell back from WebSocket
//	realtime_resumes_total{result}                   joins that resumed (result="resumed") or could not ("failed")
//	realtime_messages_total{direction}               messages from clients (direction="in") and to them ("out", per socket)
//	realtime_message_bytes_total{direction}          their payload bytes
//	realtime_drops_total{reason}                     messages dropped from queues: reason="oldest" or "close" (overflow)
//	realtime_heartbeat_missed_total{transport,kind}  sockets ended as their peer did not answer: kind="pong" or "write"
//	realtime_broker_publish_seconds                  histogram: Hub.Publish's append to the broker
//	realtime_broker_publish_errors_total             publishes that failed
//	realtime_follow_lag_seconds                      histogram: from the append to this node's delivery to its sockets
//	realtime_channel_messages_total{channel,direction} only for Options.Channels
//
// Every label has a bounded set of values: transports, protocols,
// reasons, and close codes, where the codes an application chooses
// (3000-4999) count as code="app", and codes outside the standard
// ones as "other". The channel name is never a label,
// except in realtime_channel_messages_total for the channels an
// application lists in Options.Channels: a label per channel would make
// a series per channel, without bound.
package promobserver

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/internal/obslabel"
)

// Options configures New. A nil *Options means the zero value.
type Options struct {
	// Buckets are the bounds, in seconds, of the latency histograms
	// (publish, follow lag). Nil means DefaultLatencyBuckets.
	Buckets []float64

	// Channels are counted under their name in
	// realtime_channel_messages_total; the others are not. Nil: none.
	Channels []string

	// ConstLabels are added to every metric (node="a", ...).
	ConstLabels prometheus.Labels
}

// DefaultLatencyBuckets are the publish and follow-lag buckets: 100 µs
// to 2.5 s.
var DefaultLatencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

// durationBuckets are those of realtime_socket_duration_seconds: 1 s to
// a day.
var durationBuckets = []float64{1, 10, 60, 300, 1800, 3600, 4 * 3600, 24 * 3600}

// Metrics holds the metrics, and is a prometheus.Collector: register it
// once, then pass Observer to the hub (or the handlers).
type Metrics struct {
	sockets       *prometheus.GaugeVec
	connections   *prometheus.CounterVec
	reconnections *prometheus.CounterVec
	disconnects   *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	refusals      *prometheus.CounterVec
	fallbacks     prometheus.Counter
	resumes       *prometheus.CounterVec
	messages      *prometheus.CounterVec
	bytes         *prometheus.CounterVec
	drops         *prometheus.CounterVec
	heartbeats    *prometheus.CounterVec
	publish       prometheus.Histogram
	publishErrors prometheus.Counter
	followLag     prometheus.Histogram
	channelMsgs   *prometheus.CounterVec

	// The children of the hot paths, resolved once: a message costs
	// two atomic additions, no label lookup.
	in, out         [2]prometheus.Counter // messages, bytes
	open            [3]prometheus.Gauge   // by Transport
	resumed, failed prometheus.Counter
	chanIn, chanOut map[string]prometheus.Counter
	collectors      []prometheus.Collector
	observer        realtime.Observer
}

// New returns the metrics, all at zero.
func New(opts *Options) *Metrics {
	var o Options
	if opts != nil {
		o = *opts
	}
	buckets := o.Buckets
	if buckets == nil {
		buckets = DefaultLatencyBuckets
	}
	cl := o.ConstLabels
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: cl}, labels)
	}
	m := &Metrics{
		sockets:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "realtime_sockets", Help: "Sockets open, by transport.", ConstLabels: cl}, []string{"transport"}),
		connections:   counter("realtime_connections_total", "Sockets opened, by transport and wire protocol.", "transport", "protocol"),
		reconnections: counter("realtime_reconnections_total", "Sockets opened by clients that presented a last event id.", "transport"),
		disconnects:   counter("realtime_disconnections_total", "Sockets ended, by transport and close code (3000-4999: app).", "transport", "code"),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "realtime_socket_duration_seconds",
			Help: "How long sockets stayed open.", Buckets: durationBuckets, ConstLabels: cl}, []string{"transport"}),
		refusals:      counter("realtime_refusals_total", "Sockets refused before they opened, by transport and reason.", "transport", "reason"),
		fallbacks:     prometheus.NewCounter(prometheus.CounterOpts{Name: "realtime_fallbacks_total", Help: "EventSource sockets of clients that fell back from WebSocket.", ConstLabels: cl}),
		resumes:       counter("realtime_resumes_total", "Joins that resumed from the client's position (resumed) or could not (failed).", "result"),
		messages:      counter("realtime_messages_total", "Messages from clients (in) and written to sockets (out).", "direction"),
		bytes:         counter("realtime_message_bytes_total", "Payload bytes of the messages from clients (in) and to sockets (out).", "direction"),
		drops:         counter("realtime_drops_total", "Messages dropped from send queues, by reason (oldest, close).", "reason"),
		heartbeats:    counter("realtime_heartbeat_missed_total", "Sockets ended as their peer did not answer in time (pong, write).", "transport", "kind"),
		publish:       prometheus.NewHistogram(prometheus.HistogramOpts{Name: "realtime_broker_publish_seconds", Help: "Hub.Publish's append to the broker.", Buckets: buckets, ConstLabels: cl}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "realtime_broker_publish_errors_total", Help: "Hub.Publish calls that failed.", ConstLabels: cl}),
		followLag:     prometheus.NewHistogram(prometheus.HistogramOpts{Name: "realtime_follow_lag_seconds", Help: "From a publish's append to this node's delivery to its sockets.", Buckets: buckets, ConstLabels: cl}),
		channelMsgs:   counter("realtime_channel_messages_total", "Messages of the listed channels, in and out.", "channel", "direction"),
	}
	m.collectors = []prometheus.Collector{m.sockets, m.connections, m.reconnections, m.disconnects, m.duration,
		m.refusals, m.fallbacks, m.resumes, m.messages, m.bytes, m.drops, m.heartbeats, m.publish,
		m.publishErrors, m.followLag, m.channelMsgs}
	m.in = [2]prometheus.Counter{m.messages.WithLabelValues("in"), m.bytes.WithLabelValues("in")}
	m.out = [2]prometheus.Counter{m.messages.WithLabelValues("out"), m.bytes.WithLabelValues("out")}
	for _, t := range []realtime.Transport{realtime.TransportWebSocket, realtime.TransportEventSource} {
		m.open[t] = m.sockets.WithLabelValues(t.String())
	}
	m.resumed, m.failed = m.resumes.WithLabelValues("resumed"), m.resumes.WithLabelValues("failed")
	// Drops and channel series exist from the start, so that a rate
	// over them is defined before the first event.
	m.drops.WithLabelValues("oldest")
	m.drops.WithLabelValues("close")
	if len(o.Channels) > 0 {
		m.chanIn, m.chanOut = make(map[string]prometheus.Counter), make(map[string]prometheus.Counter)
		for _, c := range o.Channels {
			m.chanIn[c], m.chanOut[c] = m.channelMsgs.WithLabelValues(c, "in"), m.channelMsgs.WithLabelValues(c, "out")
		}
	}
	m.observer = realtime.Observer{
		OnConnect:         m.onConnect,
		OnDisconnect:      m.onDisconnect,
		OnRefuse:          m.onRefuse,
		OnFallback:        func(realtime.ConnectEvent) { m.fallbacks.Inc() },
		OnResume:          m.onResume,
		OnMessageIn:       m.onIn,
		OnMessageOut:      m.onOut,
		OnDrop:            func(e realtime.DropEvent) { m.drops.WithLabelValues(e.Reason.String()).Add(float64(e.Messages)) },
		OnHeartbeatMissed: m.onHeartbeat,
		OnPublish:         m.onPublish,
	}
	return m
}

// Observer returns the hooks that update the metrics, for
// realtime.HubOptions.Observer or realtime.Options.Observer.
func (m *Metrics) Observer() *realtime.Observer {
	o := m.observer
	return &o
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors {
		c.Collect(ch)
	}
}

func (m *Metrics) onConnect(e realtime.ConnectEvent) {
	t := e.Transport.String()
	m.gauge(e.Transport).Inc()
	m.connections.WithLabelValues(t, obslabel.Protocol(e.Protocol)).Inc()
	if e.Reconnect {
		m.reconnections.WithLabelValues(t).Inc()
	}
}

func (m *Metrics) onDisconnect(e realtime.DisconnectEvent) {
	t := e.Transport.String()
	m.gauge(e.Transport).Dec()
	m.disconnects.WithLabelValues(t, obslabel.CloseCode(e.Code)).Inc()
	m.duration.WithLabelValues(t).Observe(e.Duration.Seconds())
}

func (m *Metrics) gauge(t realtime.Transport) prometheus.Gauge {
	if int(t) < len(m.open) && m.open[t] != nil {
		return m.open[t]
	}
	return m.sockets.WithLabelValues(t.String())
}

func (m *Metrics) onRefuse(e realtime.RefuseEvent) {
	m.refusals.WithLabelValues(e.Transport.String(), e.Reason.String()).Inc()
}

func (m *Metrics) onResume(e realtime.ResumeEvent) {
	if e.Resumed {
		m.resumed.Inc()
	} else {
		m.failed.Inc()
	}
}

func (m *Metrics) onIn(e realtime.MessageEvent) {
	m.in[0].Add(float64(e.Messages))
	m.in[1].Add(float64(e.Bytes))
	if c, ok := m.chanIn[e.Channel]; ok {
		c.Add(float64(e.Messages))
	}
}

func (m *Metrics) onOut(e realtime.MessageEvent) {
	m.out[0].Add(float64(e.Messages))
	m.out[1].Add(float64(e.Bytes))
	if c, ok := m.chanOut[e.Channel]; ok {
		c.Add(float64(e.Messages))
	}
}

func (m *Metrics) onHeartbeat(e realtime.HeartbeatEvent) {
	m.heartbeats.WithLabelValues(e.Transport.String(), obslabel.Heartbeat(e.Pong)).Inc()
}

func (m *Metrics) onPublish(e realtime.PublishEvent) {
	if e.Err != nil {
		m.publishErrors.Inc()
		return
	}
	m.publish.Observe(e.Duration.Seconds())
	if e.Delivered > 0 {
		m.followLag.Observe(e.Delivered.Seconds())
	}
}
