// deflate-peer.mjs: the npm "ws" package with permessage-deflate, as client
// and as server at once, driven by interop/deflate_node_test.go through
// JSON lines on stdin (one command per line, answered by exactly one line
// on stdout, in order). One process serves every deflate mode the test
// tries, so node starts once.
//
// Every command has "id" and "op"; answers repeat them with "ok": true and
// the results, or "ok": false and "error". Commands:
//
//   listen  {deflate}         starts a WebSocketServer on 127.0.0.1:0 whose
//                             perMessageDeflate option is deflate; answers
//                             port
//   accept  {port}            waits for the next connection to the server on
//                             port and makes it current; answers
//                             offeredExtensions (the client's header) and
//                             params (what ws accepted)
//   connect {url, deflate}    connects with perMessageDeflate = deflate and
//                             makes the connection current; answers
//                             extensions (the server's header) and params
//   echo    {}                echoes every message of the current connection,
//                             with its type, until it closes; answers echoed
//                             and the close code
//   exit    {}
//
// "deflate" is passed to ws as is, so it may hold serverNoContextTakeover,
// clientNoContextTakeover, serverMaxWindowBits, clientMaxWindowBits and
// threshold.

import { WebSocket, WebSocketServer } from 'ws';
import { createInterface } from 'node:readline';

const servers = new Map(); // port -> {wss, waiting: [], ready: []}
let current = null;

// negotiated describes what ws settled on for a connection.
function negotiated(ws) {
	const pmd = ws._extensions && ws._extensions['permessage-deflate'];
	return { names: ws.extensions, params: pmd ? pmd.params : null };
}

// track queues a connection's messages and close from its first moment.
function track(ws) {
	const t = { ws, messages: [], wake: null, closed: null };
	ws.on('message', (data, isBinary) => {
		t.messages.push({ data, isBinary });
		if (t.wake) t.wake();
	});
	ws.on('close', (code) => {
		t.closed = { code };
		if (t.wake) t.wake();
	});
	ws.on('error', (err) => process.stderr.write(`deflate-peer: ${err.message}\n`));
	return t;
}

function withTimeout(p, ms, what) {
	let timer;
	return Promise.race([
		p,
		new Promise((_, reject) => {
			timer = setTimeout(() => reject(new Error(`timeout after ${ms}ms: ${what}`)), ms);
		}),
	]).finally(() => clearTimeout(timer));
}

const ops = {
	async listen(c) {
		const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 64 << 20, perMessageDeflate: c.deflate });
		const s = { wss, waiting: [], ready: [] };
		wss.on('connection', (ws, req) => {
			const t = track(ws);
			t.req = req;
			const w = s.waiting.shift();
			if (w) w(t);
			else s.ready.push(t);
		});
		await new Promise((resolve, reject) => {
			wss.once('listening', resolve);
			wss.once('error', reject);
		});
		const port = wss.address().port;
		servers.set(port, s);
		return { port };
	},
	async accept(c, ms) {
		const s = servers.get(c.port);
		if (!s) throw new Error(`no server on port ${c.port}`);
		const t = s.ready.length > 0 ? s.ready.shift() : await withTimeout(new Promise((r) => s.waiting.push(r)), ms, 'a connection');
		current = t;
		return { offeredExtensions: t.req.headers['sec-websocket-extensions'] || '', ...negotiated(t.ws) };
	},
	async connect(c, ms) {
		const ws = new WebSocket(c.url, { perMessageDeflate: c.deflate, maxPayload: 64 << 20, handshakeTimeout: ms });
		const t = track(ws);
		let header = '';
		ws.once('upgrade', (res) => {
			header = res.headers['sec-websocket-extensions'] || '';
		});
		await withTimeout(new Promise((resolve, reject) => {
			ws.once('open', resolve);
			ws.once('error', reject);
			ws.once('unexpected-response', (req, res) => reject(new Error(`unexpected response ${res.statusCode}`)));
		}), ms, 'open');
		current = t;
		return { extensions: header, ...negotiated(ws) };
	},
	async echo(c, ms) {
		const t = current;
		if (!t) throw new Error('no connection');
		let echoed = 0;
		for (;;) {
			if (t.messages.length > 0) {
				const m = t.messages.shift();
				await new Promise((resolve, reject) => t.ws.send(m.data, { binary: m.isBinary }, (err) => (err ? reject(err) : resolve())));
				echoed++;
				continue;
			}
			if (t.closed) return { echoed, code: t.closed.code };
			await withTimeout(new Promise((r) => { t.wake = r; }), ms, 'a message or the close');
			t.wake = null;
		}
	},
	async exit() {
		setImmediate(() => process.exit(0));
		return {};
	},
};

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
	if (line.trim() === '') continue;
	let c;
	try {
		c = JSON.parse(line);
	} catch (e) {
		process.stdout.write(JSON.stringify({ ok: false, error: 'bad json: ' + e.message }) + '\n');
		continue;
	}
	let answer;
	try {
		const fn = ops[c.op];
		if (!fn) throw new Error('unknown op ' + c.op);
		answer = { id: c.id, op: c.op, ok: true, ...(await fn(c, c.timeoutMs || 10000)) };
	} catch (e) {
		answer = { id: c.id, op: c.op, ok: false, error: String(e && e.message ? e.message : e) };
	}
	process.stdout.write(JSON.stringify(answer) + '\n');
}
for (const s of servers.values()) s.wss.close();
process.exit(0);
