package eventsource

import (
	"net/http"
	"strings"
)

// IsEventSource reports whether r is an EventSource request: a GET whose
// Accept header lists text/event-stream (with a nonzero q, if any).
// Browsers' EventSource always sends that header; a plain page load does
// not, so one URL can serve both.
func IsEventSource(r *http.Request) bool {
	return r.Method == http.MethodGet && acceptsEventStream(r.Header)
}

func acceptsEventStream(h http.Header) bool {
	for _, v := range h.Values("Accept") {
		for v != "" {
			var item string
			item, v, _ = strings.Cut(v, ",")
			mediaType, params, _ := strings.Cut(item, ";")
			if strings.EqualFold(strings.TrimSpace(mediaType), "text/event-stream") && !zeroQuality(params) {
				return true
			}
		}
	}
	return false
}

// zeroQuality reports whether media-range parameters carry q=0, which
// means "not acceptable" (RFC 9110 §12.4.2).
func zeroQuality(params string) bool {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		name, value, _ := strings.Cut(p, "=")
		if !strings.EqualFold(strings.TrimSpace(name), "q") {
			continue
		}
		value = strings.TrimSpace(value)
		return value != "" && strings.Trim(value, "0.") == ""
	}
	return false
}

// lastEventID finds the id a client resumes from: the Last-Event-ID
// header a reconnecting EventSource sends, else the query parameter a
// page can set on its first connection.
func lastEventID(r *http.Request, param string) string {
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		return id
	}
	if r.URL == nil || r.URL.RawQuery == "" {
		return ""
	}
	return r.URL.Query().Get(param)
}
