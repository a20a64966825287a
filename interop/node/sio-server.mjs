// socket.io server for the capacity benchmark (interop/internal/capacity):
// the Node reference for memory per connection and broadcast rate.
// WebSocket transport only, the default namespace, no rooms.
//
// It speaks the protocol of interop/internal/benchproc: the first line on
// stdout is the port it listens on (127.0.0.1, a free port); then it
// answers each line it reads on stdin with a line:
//
//   stats                 -> "sockets=N goroutines=0" (after global.gc() when
//                            node runs with --expose-gc)
//   publish N SIZE RATE   -> emits N messages "m" to every socket, RATE a
//                            second (0: at once), each a string of SIZE
//                            bytes beginning "@@SEQ:UNIXNANO;", and answers
//                            "first=F last=L start=NS end=NS"
//
// End of stdin ends it.
import http from 'node:http';
import readline from 'node:readline';
import { Server } from 'socket.io';

const srv = http.createServer();
const io = new Server(srv, { transports: ['websocket'], serveClient: false });
let seq = 0;

// Wall-clock nanoseconds, as the Go load client reads them, from the
// monotonic clock anchored once to Date.now().
const epoch = BigInt(Date.now()) * 1000000n - process.hrtime.bigint();
const nowNs = () => epoch + process.hrtime.bigint();

function payload(s, size) {
  const head = `@@${s}:${nowNs()};`;
  return head.length >= size ? head : head + 'x'.repeat(size - head.length);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function publish(n, size, rate) {
  const first = seq + 1;
  const start = nowNs();
  for (let i = 0; i < n; i++) {
    if (rate > 0) {
      const due = Number(start / 1000000n) + (i * 1000) / rate;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
    } else if (i % 100 === 99) {
      await sleep(0); // let the sockets write
    }
    seq++;
    io.emit('m', payload(seq, size));
  }
  return `first=${first} last=${seq} start=${start} end=${nowNs()}`;
}

srv.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${srv.address().port}\n`);
  const rl = readline.createInterface({ input: process.stdin });
  let chain = Promise.resolve();
  rl.on('line', (line) => {
    chain = chain.then(async () => {
      const f = line.trim().split(/\s+/);
      let out;
      if (f[0] === 'stats') {
        if (global.gc) global.gc();
        out = `sockets=${io.engine.clientsCount} goroutines=0`;
      } else if (f[0] === 'publish') {
        out = await publish(Number(f[1]), Number(f[2]), Number(f[3] || 0));
      } else {
        out = `error=unknown-command`;
      }
      process.stdout.write(out + '\n');
    });
  });
  rl.on('close', () => process.exit(0));
});
