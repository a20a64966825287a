package realtime

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"time"
)

// clientJS is the browser client, js/realtime.js, the classic script of
// the npm package in js/.
//
//go:embed js/realtime.js
var clientJS []byte

// clientETag identifies this build's script, so browsers revalidate
// cheaply and never keep a stale one.
var clientETag = func() string {
	sum := sha256.Sum256(clientJS)
	return `"` + hex.EncodeToString(sum[:8]) + `"`
}()

// ClientJS returns a handler that serves the browser client, a small
// dependency-free script that defines RealtimeSocket. Mount it next to
// the Handler and load it with a script tag:
//
//	http.Handle("/realtime.js", realtime.ClientJS())
//	http.Handle("/socket", realtime.Handler(opts, serve))
//
//	<script src="/realtime.js"></script>
//	<script>
//	  const sock = new RealtimeSocket("/socket");
//	  sock.onmessage = (e) => console.log(e.data, "via", sock.transport);
//	</script>
//
// RealtimeSocket has the shape of the browser's WebSocket (onopen,
// onmessage, onclose, onerror, send, close, readyState) plus transport,
// "websocket" or "eventsource". It tries a WebSocket, falls back to
// EventSource and POSTs when the upgrade fails or does not open within
// connectTimeout (5 s), reconnects with backoff, and resumes from the
// last event id. Its options are transport ("auto", "websocket",
// "eventsource"), connectTimeout, minDelay and maxDelay (ms), and
// lastEventId. It speaks the wire protocol realtime.v2 when the server
// does: sock.subscribe("room") returns the channel's Subscription, an
// EventTarget with the events message, subscribed, unsubscribed, lost,
// join and leave, and the methods publish, presence and unsubscribe; the
// socket re-subscribes after every reconnection. The script's header
// comment documents it all. The script is served with an ETag and
// revalidated on every load.
//
// The Handler serves the same script at its own URL with the query
// "?client.js", so one mount is enough:
//
//	<script src="/socket?client.js"></script>
func ClientJS() http.Handler { return http.HandlerFunc(serveClientJS) }

func serveClientJS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", clientETag)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "realtime.js", time.Time{}, bytes.NewReader(clientJS))
}
