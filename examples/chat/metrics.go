package main

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/realtime-go/realtime/promobserver"
)

// metrics are the chat's: the realtime metrics (module promobserver),
// which GET /metrics exposes to Prometheus and GET /stats summarizes for
// the dashboard (GET /dashboard), so that both show the same numbers.
// Each process has its own registry: the numbers are this process's.
type metrics struct {
	m   *promobserver.Metrics
	reg *prometheus.Registry
}

func newMetrics() *metrics {
	m := promobserver.New(&promobserver.Options{})
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	return &metrics{m: m, reg: reg}
}

// stats is what GET /stats answers: totals since the process started,
// and the sockets open now. The dashboard makes rates of the totals.
type stats struct {
	At            int64            `json:"at"` // ms since 1970
	Sockets       map[string]int64 `json:"sockets"`
	Connections   int64            `json:"connections"`
	Reconnections int64            `json:"reconnections"`
	Fallbacks     int64            `json:"fallbacks"`
	Resumes       map[string]int64 `json:"resumes"`
	Messages      map[string]int64 `json:"messages"`
	Bytes         map[string]int64 `json:"bytes"`
	Drops         int64            `json:"drops"`
	Refusals      int64            `json:"refusals"`
	Missed        int64            `json:"heartbeatMissed"`
}

// handle adds /metrics, /stats and the dashboard to mux.
func (m *metrics) handle(mux *http.ServeMux) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /stats", m.serveStats)
}

func (m *metrics) serveStats(w http.ResponseWriter, r *http.Request) {
	st, err := m.stats()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(st)
}

// stats reads the registry, as a scrape would.
func (m *metrics) stats() (stats, error) {
	fams, err := m.reg.Gather()
	if err != nil {
		return stats{}, err
	}
	st := stats{
		At:       time.Now().UnixMilli(),
		Sockets:  map[string]int64{"websocket": 0, "eventsource": 0},
		Resumes:  map[string]int64{"resumed": 0, "failed": 0},
		Messages: map[string]int64{"in": 0, "out": 0},
		Bytes:    map[string]int64{"in": 0, "out": 0},
	}
	// Where each metric goes: a total, or a total per value of a label.
	totals := map[string]*int64{
		"realtime_connections_total":      &st.Connections,
		"realtime_reconnections_total":    &st.Reconnections,
		"realtime_fallbacks_total":        &st.Fallbacks,
		"realtime_drops_total":            &st.Drops,
		"realtime_refusals_total":         &st.Refusals,
		"realtime_heartbeat_missed_total": &st.Missed,
	}
	byLabel := map[string]struct {
		label string
		into  map[string]int64
	}{
		"realtime_sockets":             {"transport", st.Sockets},
		"realtime_resumes_total":       {"result", st.Resumes},
		"realtime_messages_total":      {"direction", st.Messages},
		"realtime_message_bytes_total": {"direction", st.Bytes},
	}
	for _, f := range fams {
		for _, s := range f.GetMetric() {
			v := int64(s.GetCounter().GetValue() + s.GetGauge().GetValue())
			if p := totals[f.GetName()]; p != nil {
				*p += v
			} else if l, ok := byLabel[f.GetName()]; ok {
				l.into[label(s, l.label)] += v
			}
		}
	}
	return st, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
