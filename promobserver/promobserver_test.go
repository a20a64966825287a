package promobserver_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/internal/obstest"
	"github.com/realtime-go/realtime/promobserver"
	"github.com/realtime-go/realtime/websocket"
)

// scrape reads the metrics as Prometheus does: over HTTP, in the text
// exposition format.
func scrape(t *testing.T, u string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value returns the value of the series of name whose labels include
// labels (name=value pairs), summed over the others; a histogram's count.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	var sum float64
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// The counters match what the scripted session did, read through the
// exposition format of a promhttp handler.
func TestSession(t *testing.T) {
	m := promobserver.New(&promobserver.Options{Channels: []string{"chat"}})
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	metrics := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer metrics.Close()

	ws, es := realtime.TransportWebSocket.String(), realtime.TransportEventSource.String()
	obstest.Session(t, m.Observer(), func(w obstest.Want) {
		obstest.Eventually(t, func() error {
			fams := scrape(t, metrics.URL)
			for _, c := range []struct {
				name   string
				labels []string
				want   float64
			}{
				{"realtime_connections_total", []string{"transport", ws}, float64(w.Connections[realtime.TransportWebSocket])},
				{"realtime_connections_total", []string{"transport", es}, float64(w.Connections[realtime.TransportEventSource])},
				{"realtime_sockets", []string{"transport", ws}, float64(w.Open[realtime.TransportWebSocket])},
				{"realtime_sockets", []string{"transport", es}, float64(w.Open[realtime.TransportEventSource])},
				{"realtime_reconnections_total", nil, float64(w.Reconnects)},
				{"realtime_refusals_total", []string{"transport", ws, "reason", "handshake"}, float64(w.Refusals)},
				{"realtime_refusals_total", nil, float64(w.Refusals)},
				{"realtime_fallbacks_total", nil, float64(w.Fallbacks)},
				{"realtime_resumes_total", []string{"result", "failed"}, float64(w.Failed)},
				{"realtime_resumes_total", []string{"result", "resumed"}, 0},
				{"realtime_messages_total", []string{"direction", "in"}, float64(w.MessagesIn)},
				{"realtime_message_bytes_total", []string{"direction", "in"}, float64(w.BytesIn)},
				{"realtime_messages_total", []string{"direction", "out"}, float64(w.MessagesOut)},
				{"realtime_message_bytes_total", []string{"direction", "out"}, float64(w.BytesOut)},
				{"realtime_channel_messages_total", []string{"channel", "chat", "direction", "out"}, float64(w.MessagesOut)},
				{"realtime_drops_total", []string{"reason", "close"}, float64(w.Drops)},
				{"realtime_drops_total", []string{"reason", "oldest"}, 0},
				{"realtime_disconnections_total", []string{"transport", ws, "code", "1013"}, float64(w.Closed1013)},
				{"realtime_disconnections_total", nil, float64(w.Closed1013)},
				{"realtime_socket_duration_seconds", nil, float64(w.Closed1013)},
				{"realtime_broker_publish_seconds", nil, float64(w.Publishes)},
				{"realtime_follow_lag_seconds", nil, float64(w.Publishes)},
				{"realtime_heartbeat_missed_total", nil, 0},
			} {
				if got := value(fams, c.name, c.labels...); got != c.want {
					return fmt.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
				}
			}
			return nil
		})
	})
	// Once the session is over, no socket is left open.
	obstest.Eventually(t, func() error {
		if n := value(scrape(t, metrics.URL), "realtime_sockets"); n != 0 {
			return fmt.Errorf("realtime_sockets = %v after the session", n)
		}
		return nil
	})
}

// The metric names and the label sets are bounded: no channel name but
// those listed, no socket id.
func TestLabelsBounded(t *testing.T) {
	m := promobserver.New(nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	o := m.Observer()
	for i := range 100 {
		o.OnMessageOut(realtime.MessageEvent{Channel: fmt.Sprint("room", i), Messages: 1, Bytes: 3})
		o.OnDisconnect(realtime.DisconnectEvent{Transport: realtime.TransportWebSocket, Code: websocket.StatusCode(3000 + i)})
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if n := len(f.GetMetric()); n > 4 {
			t.Errorf("%s has %d series", f.GetName(), n)
		}
	}
}
