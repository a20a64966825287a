// peer.mjs: a WebSocket peer built on the npm "ws" package, driven by the Go
// interop tests through JSON lines.
//
//   node peer.mjs client   drives outgoing connections
//   node peer.mjs server   listens on 127.0.0.1:0 and first prints {"port":N};
//                          it does not negotiate permessage-deflate
//
// Every line on stdin is one command, a JSON object with "id" and "op". The
// peer runs commands strictly one after another and answers each with exactly
// one JSON line on stdout: {"id":..,"op":..,"ok":true,...} or
// {"id":..,"op":..,"ok":false,"error":"..."}. Nothing else is printed on stdout
// (the server's first {"port":N} line excepted); diagnostics go to stderr.
// The peer exits when stdin closes.
//
// Payloads ("data" in commands) are one of
//   {"text": "..."}                       a text message
//   {"b64": "..."}                        a binary message
//   {"gen": {"size": N, "seed": S, "text": true|false}}
//                                         a generated message, see gen() below;
//                                         the Go side has the same generator
// Received messages are reported as
//   {"binary": bool, "len": N, "sha256": hex, "text"?: str, "b64"?: str}
// where text / b64 are included only for messages of at most 4096 bytes.
//
// Commands (all take an optional "timeoutMs", default 10000):
//   connect   {url, version?: 13|8, origin?, protocols?: [..], headers?: {..},
//              deflate?: bool}           client only; answers protocol,
//                                         extensions (the server's
//                                         Sec-WebSocket-Extensions header) and
//                                         extensionNames (what ws accepted)
//   accept    {}                          server only; waits for the next
//                                         connection, answers version, path,
//                                         origin, secOrigin, protocol, offeredExtensions
//   send      {data, fin?: bool}          one frame; fin:false starts or continues
//                                         a fragmented message
//   sendFragments {data, splits: [..]}    one message cut at the given byte
//                                         offsets, one frame per piece
//   recv      {}                          next message
//   ping      {b64}                       sends a ping, answers the pong's b64
//   recvPing  {}                          next ping received from the other side
//   recvPong  {}                          next pong received that no ping of
//                                         this peer is waiting for (unsolicited)
//   close     {code?, reason?}            starts the closing handshake, answers
//                                         the code and reason of the close event
//   awaitClose {}                         waits for the close event, answers
//                                         code and reason
//   echo      {}                          echoes every message (same type) until
//                                         the connection closes, then answers
//                                         echoed, code, reason
//   exit      {}                          answers, then exits

import { WebSocket, WebSocketServer } from 'ws';
import { createInterface } from 'node:readline';
import { createHash } from 'node:crypto';

const mode = process.argv[2];
if (mode !== 'client' && mode !== 'server') {
	process.stderr.write('usage: node peer.mjs client|server\n');
	process.exit(2);
}

// A FIFO with async, time-limited shift. fail() makes every later shift on an
// empty queue reject with the given error.
class Queue {
	constructor() {
		this.items = [];
		this.waiters = [];
		this.err = null;
	}
	push(v) {
		const w = this.waiters.shift();
		if (w) w.resolve(v);
		else this.items.push(v);
	}
	fail(err) {
		this.err = err;
		for (const w of this.waiters.splice(0)) w.reject(err);
	}
	shift(timeoutMs, what) {
		if (this.items.length > 0) return Promise.resolve(this.items.shift());
		if (this.err) return Promise.reject(this.err);
		return new Promise((resolve, reject) => {
			const w = {};
			const timer = setTimeout(() => {
				const i = this.waiters.indexOf(w);
				if (i >= 0) this.waiters.splice(i, 1);
				reject(new Error(`timeout after ${timeoutMs}ms waiting for ${what}`));
			}, timeoutMs);
			w.resolve = (v) => { clearTimeout(timer); resolve(v); };
			w.reject = (e) => { clearTimeout(timer); reject(e); };
			this.waiters.push(w);
		});
	}
}

// Generated payloads. Must stay identical to genPayload in helpers_test.go.
const GEN_RUNES = ['a', 'b', 'c', ' ', 'ü', '€', '😀', '\n', 'Z', 'é', '0'];
function gen(size, seed, text) {
	const buf = Buffer.alloc(size);
	if (!text) {
		for (let i = 0; i < size; i++) {
			buf[i] = (Math.imul(i, 131) + seed * 17 + (i >>> 11)) & 0xff;
		}
		return buf;
	}
	const runes = GEN_RUNES.map((r) => Buffer.from(r, 'utf8'));
	let n = 0;
	for (let i = 0; ; i++) {
		const r = runes[(i * 7 + seed) % runes.length];
		if (n + r.length > size) break;
		r.copy(buf, n);
		n += r.length;
	}
	buf.fill(0x61, n); // pad with 'a'
	return buf;
}

function payload(d) {
	if (!d || typeof d !== 'object') throw new Error('missing data');
	if (typeof d.text === 'string') return { buf: Buffer.from(d.text, 'utf8'), binary: false };
	if (typeof d.b64 === 'string') return { buf: Buffer.from(d.b64, 'base64'), binary: true };
	if (d.gen) {
		const text = !!d.gen.text;
		return { buf: gen(d.gen.size, d.gen.seed | 0, text), binary: !text };
	}
	throw new Error('bad data: ' + JSON.stringify(d));
}

function report(buf, binary) {
	const r = { binary, len: buf.length, sha256: createHash('sha256').update(buf).digest('hex') };
	if (buf.length <= 4096) {
		if (binary) r.b64 = buf.toString('base64');
		else r.text = buf.toString('utf8');
	}
	return r;
}

// Peer wraps one ws connection and queues everything it sees from the start,
// so nothing is lost between commands.
class Peer {
	constructor(ws, req) {
		this.ws = ws;
		this.req = req;
		this.messages = new Queue();
		this.pings = new Queue();
		this.pongs = new Queue();
		this.closeInfo = null;
		this.closed = new Promise((resolve) => { this.onClosed = resolve; });
		ws.on('message', (data, isBinary) => {
			const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
			this.messages.push({ buf, binary: isBinary });
		});
		ws.on('ping', (data) => this.pings.push(Buffer.from(data)));
		ws.on('pong', (data) => this.pongs.push(Buffer.from(data)));
		ws.on('error', (err) => {
			this.lastError = String(err && err.message ? err.message : err);
			process.stderr.write(`peer: ws error: ${this.lastError}\n`);
		});
		ws.on('close', (code, reason) => {
			this.closeInfo = { code, reason: reason.toString('utf8') };
			if (this.lastError) this.closeInfo.error = this.lastError;
			const err = new Error(`connection closed (code ${code})`);
			this.messages.fail(err);
			this.pings.fail(err);
			this.pongs.fail(err);
			this.onClosed(this.closeInfo);
		});
	}
	send(buf, opts) {
		return new Promise((resolve, reject) => {
			this.ws.send(buf, opts, (err) => (err ? reject(err) : resolve()));
		});
	}
	async awaitClose(timeoutMs) {
		let timer;
		const t = new Promise((_, reject) => {
			timer = setTimeout(() => reject(new Error(`timeout after ${timeoutMs}ms waiting for close`)), timeoutMs);
		});
		try {
			return await Promise.race([this.closed, t]);
		} finally {
			clearTimeout(timer);
		}
	}
}

let current = null; // the Peer that commands act on
const pending = new Queue(); // server: accepted connections not yet taken
let wss = null;

function need() {
	if (!current) throw new Error('no connection');
	return current;
}

const ops = {
	async connect(c, timeoutMs) {
		if (mode !== 'client') throw new Error('connect is client only');
		const opts = {
			protocolVersion: c.version || 13,
			perMessageDeflate: c.deflate !== false,
			handshakeTimeout: timeoutMs,
			maxPayload: 64 << 20,
		};
		if (c.origin) opts.origin = c.origin;
		if (c.headers) opts.headers = c.headers;
		const ws = new WebSocket(c.url, c.protocols || [], opts);
		const p = new Peer(ws, null);
		let respExtensions = '';
		ws.once('upgrade', (res) => {
			respExtensions = res.headers['sec-websocket-extensions'] || '';
		});
		await new Promise((resolve, reject) => {
			ws.once('open', resolve);
			ws.once('unexpected-response', (req, res) => {
				const err = new Error(`unexpected response ${res.statusCode}`);
				err.status = res.statusCode;
				err.headers = res.headers;
				res.resume();
				req.destroy();
				reject(err);
			});
			ws.once('error', reject);
		});
		current = p;
		return { protocol: ws.protocol, extensions: respExtensions, extensionNames: Object.keys(ws.extensions || {}).join(', ') };
	},
	async accept(c, timeoutMs) {
		if (mode !== 'server') throw new Error('accept is server only');
		current = await pending.shift(timeoutMs, 'a connection');
		const h = current.req.headers;
		return {
			version: h['sec-websocket-version'] || '',
			path: current.req.url,
			origin: h['origin'] || '',
			secOrigin: h['sec-websocket-origin'] || '',
			protocol: current.ws.protocol,
			offeredExtensions: h['sec-websocket-extensions'] || '',
		};
	},
	async send(c) {
		const p = need();
		const { buf, binary } = payload(c.data);
		await p.send(buf, { binary, fin: c.fin !== false });
		return {};
	},
	async sendFragments(c) {
		const p = need();
		const { buf, binary } = payload(c.data);
		const cuts = [...(c.splits || []), buf.length];
		let from = 0;
		for (let i = 0; i < cuts.length; i++) {
			if (cuts[i] < from || cuts[i] > buf.length) throw new Error('bad splits');
			await p.send(buf.subarray(from, cuts[i]), { binary, fin: i === cuts.length - 1 });
			from = cuts[i];
		}
		return { frames: cuts.length };
	},
	async recv(c, timeoutMs) {
		const m = await need().messages.shift(timeoutMs, 'a message');
		return report(m.buf, m.binary);
	},
	async ping(c, timeoutMs) {
		const p = need();
		const data = Buffer.from(c.b64 || '', 'base64');
		const t0 = process.hrtime.bigint();
		await new Promise((resolve, reject) => p.ws.ping(data, undefined, (err) => (err ? reject(err) : resolve())));
		const pong = await p.pongs.shift(timeoutMs, 'a pong');
		return { b64: pong.toString('base64'), rttMs: Number(process.hrtime.bigint() - t0) / 1e6 };
	},
	async recvPong(c, timeoutMs) {
		const pong = await need().pongs.shift(timeoutMs, 'a pong');
		return { b64: pong.toString('base64') };
	},
	async recvPing(c, timeoutMs) {
		const ping = await need().pings.shift(timeoutMs, 'a ping');
		return { b64: ping.toString('base64') };
	},
	async close(c, timeoutMs) {
		const p = need();
		if (c.code === undefined) p.ws.close();
		else p.ws.close(c.code, c.reason || '');
		return await p.awaitClose(timeoutMs);
	},
	async awaitClose(c, timeoutMs) {
		return await need().awaitClose(timeoutMs);
	},
	async echo(c, timeoutMs) {
		const p = need();
		let echoed = 0;
		for (;;) {
			let m;
			try {
				m = await p.messages.shift(24 * 3600 * 1000, 'a message');
			} catch (e) {
				if (p.closeInfo) break;
				throw e;
			}
			await p.send(m.buf, { binary: m.binary });
			echoed++;
		}
		return { echoed, ...p.closeInfo };
	},
	async exit() {
		setImmediate(() => process.exit(0));
		return {};
	},
};

function out(obj) {
	process.stdout.write(JSON.stringify(obj) + '\n');
}

async function serve() {
	const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
	for await (const line of rl) {
		if (line.trim() === '') continue;
		let c;
		try {
			c = JSON.parse(line);
		} catch (e) {
			out({ ok: false, error: 'bad json: ' + e.message });
			continue;
		}
		const fn = ops[c.op];
		if (!fn) {
			out({ id: c.id, op: c.op, ok: false, error: 'unknown op' });
			continue;
		}
		try {
			const r = await fn(c, c.timeoutMs || 10000);
			out({ id: c.id, op: c.op, ok: true, ...r });
		} catch (e) {
			const r = { id: c.id, op: c.op, ok: false, error: String(e && e.message ? e.message : e) };
			if (e && e.status) r.status = e.status;
			if (e && e.headers) r.headers = e.headers;
			out(r);
		}
	}
	process.exit(0);
}

if (mode === 'server') {
	wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 64 << 20, perMessageDeflate: false });
	wss.on('connection', (ws, req) => pending.push(new Peer(ws, req)));
	wss.on('error', (err) => {
		process.stderr.write(`peer: server error: ${err.message}\n`);
		process.exit(1);
	});
	wss.on('listening', () => {
		out({ port: wss.address().port });
		serve();
	});
} else {
	serve();
}
