// Package origin decides whether a browser request's Origin is allowed:
// the one rule shared by the WebSocket handshake of package websocket
// and the EventSource, POST and preflight requests of package realtime.
package origin

import (
	"net/url"
	"path"
	"strings"
)

// Check allows an empty origin (a request not from a browser), one whose
// host is host (the request's own), and one matching a pattern. A
// pattern is matched with path.Match against the origin's host, or
// against scheme://host when it contains "://"; case is ignored.
// malformed reports an origin that is not a URL with a host.
func Check(host, origin string, patterns []string) (ok, malformed bool) {
	if origin == "" {
		return true, false
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false, true
	}
	if strings.EqualFold(u.Host, host) {
		return true, false
	}
	h := strings.ToLower(u.Host)
	full := strings.ToLower(u.Scheme) + "://" + h
	for _, p := range patterns {
		p = strings.ToLower(p)
		target := h
		if strings.Contains(p, "://") {
			target = full
		}
		if ok, _ := path.Match(p, target); ok {
			return true, false
		}
	}
	return false, false
}
