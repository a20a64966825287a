// rt-peer.mjs: the browser client (realtime.js, a classic script) run in
// Node.js, with the npm "ws" package as WebSocket and the npm "eventsource"
// package as EventSource (fetch is Node's own), driven by the Go interop
// tests (realtime_storm_test.go, realtime_deadlink_test.go).
//
//   node rt-peer.mjs CLIENT_JS storm URL N OPTIONS_JSON
//   node rt-peer.mjs CLIENT_JS socket URL OPTIONS_JSON
//
// storm opens N RealtimeSockets on URL?c=I (I = 0..N-1, so the server can
// tell them apart) and leaves them reconnecting until stdin ends. It
// prints {"ev":"started"}, then {"ev":"lag","ms":N} whenever its event
// loop stalled for more than 300 ms.
//
// socket opens one RealtimeSocket and reports what happens as JSON lines on
// stdout: {"ev":"open","transport":...}, {"ev":"reconnecting","code":...,
// "delay":...}, {"ev":"message","data":...}, {"ev":"close","code":...},
// {"ev":"error"}, and
// {"ev":"sent","n":N,"buffered":B} after each command. It reads commands
// as JSON lines on stdin: {"send":["a","b"]} sends each text in order.
// It ends when stdin ends.
//
// Diagnostics go to stderr.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import vm from 'node:vm';
import WebSocket from 'ws';
import { EventSource } from 'eventsource';

const [clientJS, mode, url, ...rest] = process.argv.slice(2);
if (!clientJS || !mode || !url) {
	console.error('usage: node rt-peer.mjs CLIENT_JS storm|socket URL ...');
	process.exit(2);
}

// What a page gives the classic script. A browser's WebSocket never
// throws an error event nobody listens to; ws, an EventEmitter, does
// (closing it while it connects emits one), and that would end the
// process: give each one a listener of its own.
globalThis.WebSocket = class extends WebSocket {
	constructor(...args) {
		super(...args);
		this.on('error', () => {});
	}
};
globalThis.EventSource = EventSource;
globalThis.location = new URL(url);
// Node 20 has Event, CustomEvent and DOMException, but no CloseEvent.
if (typeof globalThis.CloseEvent !== 'function') {
	globalThis.CloseEvent = class CloseEvent extends Event {
		constructor(type, init = {}) {
			super(type, init);
			this.code = init.code ?? 0;
			this.reason = init.reason ?? '';
			this.wasClean = init.wasClean ?? false;
		}
	};
}
vm.runInThisContext(readFileSync(clientJS, 'utf8'), { filename: clientJS });
const RealtimeSocket = globalThis.RealtimeSocket;
if (typeof RealtimeSocket !== 'function') {
	console.error(clientJS + ' did not define globalThis.RealtimeSocket');
	process.exit(2);
}

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const sockets = [];

if (mode === 'storm') {
	const n = Number(rest[0]);
	const options = JSON.parse(rest[1] || '{}');
	for (let i = 0; i < n; i++) {
		const u = new URL(url);
		u.searchParams.set('c', String(i));
		const s = new RealtimeSocket(u.href, options);
		// An unhandled error event must not end the process.
		s.addEventListener('error', () => {});
		sockets.push(s);
	}
	out({ ev: 'started', n });
	// A stalled event loop fires the sockets' timers late and together,
	// which the server would take for a storm: report stalls.
	let last = Date.now();
	setInterval(() => {
		const now = Date.now();
		if (now - last > 400) out({ ev: 'lag', ms: now - last - 100 });
		last = now;
	}, 100).unref();
} else if (mode === 'socket') {
	const options = JSON.parse(rest[0] || '{}');
	const s = new RealtimeSocket(url, options);
	sockets.push(s);
	s.addEventListener('open', (e) => out({ ev: 'open', transport: e.transport, resumed: !!e.resumed, missed: !!e.missed }));
	s.addEventListener('reconnecting', (e) => out({ ev: 'reconnecting', code: e.detail && e.detail.code, delay: e.detail && e.detail.delay }));
	s.addEventListener('close', (e) => out({ ev: 'close', code: e.code, reason: e.reason }));
	s.addEventListener('error', () => out({ ev: 'error' }));
	s.addEventListener('message', (e) => out({ ev: 'message', data: String(e.data) }));
	const rl = createInterface({ input: process.stdin });
	rl.on('line', (line) => {
		if (!line.trim()) return;
		const cmd = JSON.parse(line);
		let n = 0;
		let err = '';
		for (const text of cmd.send || []) {
			try {
				s.send(text);
				n++;
			} catch (e) {
				err = String(e && (e.name + ': ' + e.message));
				break;
			}
		}
		out({ ev: 'sent', n, err, buffered: s.bufferedAmount, readyState: s.readyState });
	});
} else {
	console.error('unknown mode ' + mode);
	process.exit(2);
}

process.stdin.on('end', () => {
	for (const s of sockets) {
		try {
			s.close();
		} catch (e) {
			console.error('close: ' + e);
		}
	}
	setTimeout(() => process.exit(0), 200);
});
process.stdin.resume();
