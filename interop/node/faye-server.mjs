// faye-server.mjs: a faye-websocket server for the Go client's interop
// tests. It listens on 127.0.0.1:0, prints {"port":N} on stdout, and exits
// when stdin closes.
//
//   /echo   WebSocket (faye's driver, hybi-13 only): echoes every message;
//           offers the subprotocol "chat.v1" when asked
//   /sse    EventSource: three events with ids following the request's
//           Last-Event-ID (a number, "" meaning 0), retry 50 ms, then the
//           stream ends so that the client must reconnect
//
// Diagnostics go to stderr.

import http from 'node:http';
import WebSocket from 'faye-websocket';

const server = http.createServer((req, res) => {
	if (!WebSocket.EventSource.isEventSource(req) || !req.url.startsWith('/sse')) {
		res.writeHead(404, { 'Content-Type': 'text/plain' });
		res.end('not found\n');
		return;
	}
	const es = new WebSocket.EventSource(req, res, { retry: 0.05, ping: 60 });
	const start = parseInt(es.lastEventId || '0', 10) || 0;
	for (let i = start + 1; i <= start + 3; i++) {
		es.send(`faye event ${i}\nsecond line`, { event: 'tick', id: String(i) });
	}
	setTimeout(() => es.close(), 20);
});

server.on('upgrade', (req, socket, body) => {
	if (!WebSocket.isWebSocket(req) || !req.url.startsWith('/echo')) {
		socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
		return;
	}
	const ws = new WebSocket(req, socket, body, ['chat.v1']);
	ws.on('message', (event) => ws.send(event.data));
	ws.on('error', (event) => process.stderr.write(`faye ws error: ${event.message}\n`));
});

server.listen(0, '127.0.0.1', () => {
	process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
