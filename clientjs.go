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
// The script is js/realtime.js of this repository, the classic script of
// the npm package @realtime-go/client in js/ (not published: install it
// with npm install from the directory or from its npm pack tarball), which
// also exports RealtimeSocket as an ES module and has TypeScript
// declarations.
//
// RealtimeSocket has the shape of the browser's WebSocket (onopen,
// onmessage, onclose, onerror, send, close, readyState with CONNECTING,
// OPEN, CLOSING and CLOSED, bufferedAmount) plus transport, "websocket"
// or "eventsource". It tries a WebSocket, falls back to EventSource and
// POSTs when the upgrade fails or does not open within connectTimeout
// (5 s), and resumes from the last event id. When a connection is lost
// it fires reconnecting (detail {code, reason, delay}) and reconnects
// after a wait drawn from [0, cap), cap = min(maxDelay, minDelay *
// 2^failures), failures counting the attempts since the last connection
// that stayed open 10 s, plus 3 after a close with 1012 or 1013. It drops
// a connection on which nothing arrived for twice the heartbeat its
// server announced plus 1 s. While it connects, send queues up to
// maxQueue messages (1000) and maxQueueBytes bytes (1 MiB), sent in order
// once open; over EventSource each POST carries the header Realtime-Seq,
// so that a POST that got no answer is retried with the same token and
// seq and delivered once. close accepts the codes 1000 and 3000-4999 and fires
// close asynchronously, as WebSocket does. Its options are transport
// ("auto", "websocket", "eventsource"), connectTimeout, minDelay and
// maxDelay (ms), lastEventId, maxQueue and maxQueueBytes. It speaks the
// wire protocol realtime.v2 when the server does: sock.subscribe("room")
// returns the channel's Subscription, an EventTarget with the events
// message, subscribed, unsubscribed, lost, join and leave, and the
// methods publish, presence and unsubscribe; the socket re-subscribes
// after every reconnection. The script's header comment documents it
// all. The script is served with an ETag and revalidated on every load.
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
