// es-peer.mjs: an EventSource client built on the npm "eventsource" package
// (4.x, ESM only), run by the Go interop tests (eventsource_peers_test.go).
//
//   node es-peer.mjs URL TYPES TIMEOUT_MS
//
// It opens URL and records every event it is given: "message" events and
// those of the comma-separated TYPES (registered with addEventListener),
// each as {type, data, id}, plus one entry per open and error. It stops when
// the EventSource is closed for good (the server answered something other
// than 200, such as 204) or after TIMEOUT_MS, and prints one JSON line on
// stdout:
//
//   {"events": [...], "opens": N, "errors": [readyState, ...],
//    "closed": bool, "timedOut": bool, "lastError": "..."}
//
// Diagnostics go to stderr.
import { EventSource } from 'eventsource';

const [url, types = '', timeoutArg = '30000'] = process.argv.slice(2);
if (!url) {
	console.error('usage: node es-peer.mjs URL TYPES TIMEOUT_MS');
	process.exit(2);
}

const result = { events: [], opens: 0, errors: [], closed: false, timedOut: false, lastError: '' };
const es = new EventSource(url);

function finish() {
	clearTimeout(timer);
	es.close();
	process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0));
}

const record = (e) => result.events.push({ type: e.type, data: e.data, id: e.lastEventId });
es.onmessage = record;
for (const t of types.split(',').filter(Boolean)) es.addEventListener(t, record);
es.onopen = () => {
	result.opens++;
};
es.onerror = (e) => {
	result.errors.push(es.readyState);
	result.lastError = String((e && (e.message || e.code)) || '');
	if (es.readyState === es.CLOSED) {
		result.closed = true;
		finish();
	}
};
const timer = setTimeout(() => {
	result.timedOut = true;
	finish();
}, Number(timeoutArg));
