// The state machine of RealtimeSocket, driven through fake WebSocket,
// EventSource and fetch and node:test's mock timers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RealtimeSocket, setup, settle } from './fakes.js';

const { CONNECTING, OPEN, CLOSING, CLOSED } = RealtimeSocket;
const isDOM = (name) => (err) => err instanceof DOMException && err.name === name;

test('readyState: CONNECTING through the fallback, OPEN, CONNECTING while reconnecting, CLOSING, CLOSED', (t) => {
  const s = setup(t);
  assert.equal(s.sock.readyState, CONNECTING);
  assert.equal(s.sock.CONNECTING, CONNECTING);
  s.ws().end(1006); // the upgrade failed: EventSource next, in the same round
  assert.equal(s.ess.length, 1);
  assert.match(s.es().url, /[?&]fallback=1(&|$)/, 'the fallback is not announced');
  assert.equal(s.sock.readyState, CONNECTING);
  assert.equal(s.of('reconnecting').length, 0);
  s.es().hello('tok1', 'p1');
  assert.equal(s.sock.readyState, OPEN);
  assert.equal(s.sock.transport, 'eventsource');
  assert.equal(s.sock.lastEventId, 'p1');
  s.es().emit('realtime.close', '1001 going away');
  assert.equal(s.sock.readyState, CONNECTING);
  assert.equal(s.sock.transport, '');
  const [r] = s.of('reconnecting');
  assert.deepEqual(r.detail, { code: 1001, reason: 'going away', delay: 250 });
  s.advance(250);
  // EventSource worked last: it goes first now, resuming from p1.
  assert.equal(s.ess.length, 2);
  assert.match(s.es().url, /lastEventId=p1/);
  assert.doesNotMatch(s.es().url, /fallback/, 'EventSource first is no fallback');
  s.es().hello('tok2', 'p1');
  assert.equal(s.sock.readyState, OPEN);
  assert.equal(s.of('open')[1].resumed, true);
  assert.equal(s.of('close').length, 0);
});

test('close(): CLOSING at once, the close event later, once; close() again does nothing', (t) => {
  const s = setup(t);
  s.ws().accept('p');
  assert.equal(s.sock.readyState, OPEN);
  let inside = true;
  s.sock.onclose = () => assert.equal(inside, false, 'close fired inside close()');
  s.sock.close(4000, 'done');
  inside = false;
  assert.equal(s.sock.readyState, CLOSING);
  assert.deepEqual(s.ws().closed, { code: 4000, reason: 'done' });
  assert.equal(s.of('close').length, 0);
  s.sock.close();
  s.advance(1);
  assert.equal(s.sock.readyState, CLOSED);
  const closes = s.of('close');
  assert.equal(closes.length, 1);
  assert.equal(closes[0].code, 4000);
  assert.equal(closes[0].reason, 'done');
  assert.equal(closes[0].wasClean, true);
  s.sock.close();
  s.advance(100000);
  assert.equal(s.of('close').length, 1);
  assert.equal(s.wss.length, 1, 'reconnected after close()');
  assert.throws(() => s.sock.send('x'), isDOM('InvalidStateError'));
});

test('close() while reconnecting stops the attempts', (t) => {
  const s = setup(t);
  s.ws().accept('p');
  s.ws().end(1006);
  assert.equal(s.sock.readyState, CONNECTING);
  s.sock.close();
  assert.equal(s.sock.readyState, CLOSING);
  assert.throws(() => s.sock.send('x'), isDOM('InvalidStateError'));
  s.advance(60000);
  assert.equal(s.wss.length, 1);
  assert.equal(s.ess.length, 0);
  assert.equal(s.sock.readyState, CLOSED);
  assert.equal(s.of('close').length, 1);
});

test('close(code, reason) checks its arguments and leaves the socket as it was', (t) => {
  const s = setup(t);
  s.ws().accept('p');
  assert.throws(() => s.sock.close(1001), isDOM('InvalidAccessError'));
  assert.throws(() => s.sock.close(1000, 'x'.repeat(124)), isDOM('SyntaxError'));
  assert.equal(s.sock.readyState, OPEN);
  assert.equal(s.ws().closed, null);
  s.sock.send('still works');
  assert.deepEqual(s.ws().sent, ['message\nstill works']);
});

test('a server close code that is not retried closes for good', (t) => {
  const s = setup(t);
  s.ws().accept('p');
  s.ws().end(4001, 'banned');
  assert.equal(s.sock.readyState, CLOSED);
  const [c] = s.of('close');
  assert.equal(c.code, 4001);
  assert.equal(c.reason, 'banned');
  s.advance(60000);
  assert.equal(s.wss.length, 1);
});

test('send: binary data throws a TypeError, text goes as a realtime.v2 message', (t) => {
  const s = setup(t);
  s.ws().accept('p');
  for (const bin of [new ArrayBuffer(1), new Uint8Array(1), new Blob(['x'])]) {
    assert.throws(() => s.sock.send(bin), TypeError);
  }
  s.sock.send(7);
  assert.deepEqual(s.ws().sent, ['message\n7']);
});

test('backoff: after 1013 the reconnection waits in the x8 window', (t) => {
  const s = setup(t, {}, 0.9999);
  s.ws().accept('p');
  s.advance(10000); // healthy: failures back to 0
  s.ws().end(1013, 'try again later');
  const [r] = s.of('reconnecting');
  assert.equal(r.detail.code, 1013);
  assert.equal(r.detail.delay, 3999); // [0, 500 * 2^3)
  s.advance(3998);
  assert.equal(s.wss.length, 1);
  s.advance(1);
  assert.equal(s.wss.length, 2);
  // And for 1001 the window is the first one, [0, 500).
  s.ws().accept('p');
  s.advance(10000);
  s.ws().end(1001);
  assert.equal(s.of('reconnecting')[1].detail.delay, 499);
});

test('backoff: failures are not reset by an open, only after 10 s open', (t) => {
  const s = setup(t, { minDelay: 100, maxDelay: 100000 }, 0.9999);
  const delays = () => s.of('reconnecting').map((e) => e.detail.delay);
  s.ws().accept('p');
  s.advance(9999);
  s.ws().end(1006);
  s.advance(delays().at(-1));
  s.ws().accept('p');
  s.ws().end(1006);
  s.advance(delays().at(-1));
  s.ws().accept('p');
  s.ws().end(1012);
  assert.deepEqual(delays(), [99, 199, 3199]); // failures 0, 1, 2+3
  s.advance(delays().at(-1));
  s.ws().accept('p');
  s.advance(10000);
  s.ws().end(1006);
  assert.equal(delays().at(-1), 99);
});

test('backoff: failed attempts grow the window up to maxDelay, with a reconnecting event each', (t) => {
  const s = setup(t, { minDelay: 100, maxDelay: 1000 }, 0.9999);
  for (let i = 0; i < 6; i++) {
    s.ws().end(1006);
    s.es().fail();
    s.advance(s.of('reconnecting').at(-1).detail.delay);
  }
  assert.deepEqual(s.of('reconnecting').map((e) => e.detail.delay), [99, 199, 399, 799, 999, 999]);
  assert.ok(s.of('reconnecting').every((e) => e.detail.code === 1006));
  assert.equal(s.sock.readyState, CONNECTING);
});

test('watchdog: silence for 2H + 1 s after the announcement drops the connection as 1006', (t) => {
  const s = setup(t, {}, 0);
  s.ws().accept('p');
  s.advance(100000); // no announcement, no watchdog
  assert.equal(s.sock.readyState, OPEN);
  s.ws().receive('\nheartbeat\n1000');
  s.advance(2999);
  s.ws().receive('p2\nmessage room\nhi'); // anything resets it
  s.advance(2999);
  s.ws().receive('\nheartbeat\n1000');
  const ws = s.ws();
  dropsAfter(s, 3000, () => ws.closed !== null, s.wss);
  assert.equal(s.of('message').length, 1, 'a heartbeat is not a message');
});

// dropsAfter checks that the open connection is dropped after ms of
// silence and not before, and that a new one is tried at once (the
// random draw of the test is 0).
function dropsAfter(s, ms, closed, conns) {
  s.advance(ms - 1);
  assert.equal(s.sock.readyState, OPEN);
  assert.equal(closed(), false);
  s.advance(1);
  assert.equal(closed(), true);
  assert.deepEqual(s.of('reconnecting')[0].detail, { code: 1006, reason: 'idle timeout', delay: 0 });
  assert.equal(conns.length, 2, 'reconnected');
  assert.equal(s.sock.readyState, CONNECTING);
}

test('watchdog over EventSource', (t) => {
  const s = setup(t, { transport: 'eventsource' }, 0);
  s.es().hello('tok', 'p');
  s.es().emit('message', 'heartbeat\n15000');
  s.advance(30999);
  s.es().emit('realtime.position', '', 'p2');
  const es = s.es();
  dropsAfter(s, 31000, () => es.closed, s.ess);
});

test('unknown kinds are ignored; a malformed known kind is a protocol error', (t) => {
  const s = setup(t);
  s.ws().accept('p');
  s.ws().receive('\nfuture\nsomething');
  s.ws().receive('p9\nfuture room');
  assert.equal(s.sock.readyState, OPEN);
  assert.equal(s.of('message').length, 0);
  assert.equal(s.sock.lastEventId, 'p9');
  s.ws().receive('\nsubscribed room\nmaybe');
  assert.equal(s.sock.readyState, CLOSED);
  assert.equal(s.of('close')[0].code, 1002);
});

test('queue: sends while connecting are bounded, then go out in order after the subscriptions', (t) => {
  const s = setup(t, { maxQueue: 3, maxQueueBytes: 100 });
  const room = s.sock.subscribe('room');
  assert.ok(room);
  s.sock.send('a');
  s.sock.send('bé');
  s.sock.send('c');
  assert.equal(s.sock.bufferedAmount, 5);
  assert.throws(() => s.sock.send('d'), isDOM('QuotaExceededError'));
  s.ws().accept('p');
  assert.deepEqual(s.ws().sent, ['subscribe room', 'message\na', 'message\nbé', 'message\nc']);
  s.ws().flush();
  assert.equal(s.sock.bufferedAmount, 0);
  s.sock.send('e');
  assert.deepEqual(s.ws().sent.at(-1), 'message\ne');
});

test('queue: maxQueueBytes bounds the UTF-8 bytes', (t) => {
  const s = setup(t, { maxQueueBytes: 4 });
  s.sock.send('ab');
  s.sock.send('é');
  assert.throws(() => s.sock.send('c'), isDOM('QuotaExceededError'));
  assert.equal(s.sock.bufferedAmount, 4);
});

test('queue: what a broken WebSocket had not transmitted goes again, in order, before later sends', (t) => {
  const s = setup(t, {}, 0);
  s.ws().accept('p');
  s.sock.send('a');
  s.ws().flush(); // a reached the network
  s.sock.send('b');
  s.sock.send('c');
  assert.equal(s.sock.bufferedAmount, 18);
  s.ws().end(1006);
  assert.equal(s.sock.bufferedAmount, 2);
  s.sock.send('d');
  s.advance(1);
  s.ws().end(1006); // the upgrade fails: EventSource
  s.es().hello('tok', 'p');
  assert.equal(s.posts.length, 1);
  assert.equal(s.posts[0].body, 'message\nb');
});

test('POST: Realtime-Seq counts per token; one at a time, in order', async (t) => {
  const s = setup(t, { transport: 'eventsource' });
  s.sock.send('queued');
  s.es().hello('tok', 'p');
  s.sock.send('second');
  assert.equal(s.posts.length, 1);
  assert.deepEqual([s.posts[0].token, s.posts[0].seq, s.posts[0].body], ['tok', '1', 'message\nqueued']);
  assert.equal(s.sock.bufferedAmount, 12);
  s.posts[0].answer(204);
  await settle();
  assert.equal(s.posts.length, 2);
  assert.deepEqual([s.posts[1].token, s.posts[1].seq, s.posts[1].body], ['tok', '2', 'message\nsecond']);
  s.posts[1].answer(204);
  await settle();
  assert.equal(s.sock.bufferedAmount, 0);
  assert.equal(s.sock.readyState, OPEN);
});

test('POST: a network error or a 5xx is retried with the same token and seq; later messages wait', async (t) => {
  const s = setup(t, { transport: 'eventsource' }, 0.9999);
  s.es().hello('tok', 'p');
  s.sock.send('one');
  s.sock.send('two');
  s.posts[0].fail();
  await settle();
  assert.equal(s.sock.readyState, OPEN);
  assert.equal(s.posts.length, 1);
  s.advance(499); // [0, minDelay)
  assert.equal(s.posts.length, 2);
  assert.deepEqual([s.posts[1].token, s.posts[1].seq, s.posts[1].body], ['tok', '1', 'message\none']);
  s.posts[1].answer(503);
  await settle();
  s.advance(999);
  assert.deepEqual([s.posts[2].token, s.posts[2].seq, s.posts[2].body], ['tok', '1', 'message\none']);
  s.posts[2].answer(204);
  await settle();
  assert.deepEqual([s.posts[3].token, s.posts[3].seq, s.posts[3].body], ['tok', '2', 'message\ntwo']);
});

test('POST: 410 sends the message again under the next connection', async (t) => {
  const s = setup(t, { transport: 'eventsource' }, 0);
  s.es().hello('tok1', 'p');
  s.sock.send('one');
  s.sock.send('two');
  s.posts[0].answer(204);
  await settle();
  s.posts[1].answer(410);
  await settle();
  assert.equal(s.es().closed, true, 'the ended stream is dropped');
  assert.equal(s.sock.readyState, CONNECTING);
  assert.equal(s.sock.bufferedAmount, 3);
  s.advance(1);
  s.es().hello('tok2', 'p');
  assert.deepEqual([s.posts[2].token, s.posts[2].seq, s.posts[2].body], ['tok2', '1', 'message\ntwo']);
});

test('POST: the stream ends while a POST waits: it is aborted, retried under its token, then resent on 410', async (t) => {
  const s = setup(t, { transport: 'eventsource' }, 0);
  const room = s.sock.subscribe('room');
  s.es().hello('tok1', 'p');
  assert.deepEqual([s.posts[0].seq, s.posts[0].body], ['1', 'subscribe room']);
  s.posts[0].answer(204);
  await settle();
  s.sock.send('one');
  s.es().emit('realtime.close', '1012 restart');
  assert.equal(s.posts[1].aborted, true);
  await settle();
  s.advance(1);
  // The retry of seq 1 of tok1 goes first; the new stream waits behind it.
  assert.deepEqual([s.posts[2].token, s.posts[2].seq, s.posts[2].body], ['tok1', '2', 'message\none']);
  s.es().hello('tok2', 'p');
  s.sock.send('two');
  assert.equal(s.posts.length, 3);
  s.posts[2].answer(410);
  await settle();
  assert.deepEqual(s.posts.slice(3).map((p) => [p.token, p.seq, p.body]), [['tok2', '1', 'message\none']]);
  s.posts[3].answer(204);
  await settle();
  assert.deepEqual(s.posts.slice(4).map((p) => [p.token, p.seq, p.body]), [['tok2', '2', 'subscribe room']]);
  assert.ok(room.active);
});

test('POST: a retry answered 204 was delivered: not sent again', async (t) => {
  const s = setup(t, { transport: 'eventsource' }, 0);
  s.es().hello('tok1', 'p');
  s.sock.send('one');
  s.es().fail();
  await settle();
  s.advance(1);
  s.posts[1].answer(204);
  await settle();
  s.es().hello('tok2', 'p');
  assert.equal(s.posts.length, 2);
  assert.equal(s.sock.bufferedAmount, 0);
});

test('POST: a refused message is dropped with an error event', async (t) => {
  const s = setup(t, { transport: 'eventsource' }, 0);
  s.es().hello('tok', 'p');
  s.sock.send('x'.repeat(10));
  s.sock.send('next');
  s.posts[0].answer(413);
  await settle();
  assert.equal(s.of('error').length, 1);
  assert.equal(s.sock.readyState, OPEN);
  // The server delivered nothing under seq 1: the next message has it.
  assert.equal(s.posts[1].body, 'message\nnext');
  assert.equal(s.posts[1].seq, '1');
});

test('a realtime.v1 server: plain messages, no channels', (t) => {
  const s = setup(t);
  const room = s.sock.subscribe('room');
  let reason = '';
  room.onunsubscribed = (e) => { reason = e.detail.reason; };
  s.ws().accept('p', 'realtime.v1');
  assert.equal(reason, 'realtime.v1');
  s.sock.send('hi');
  assert.deepEqual(s.ws().sent, ['hi']);
  s.ws().receive('p2\nhello');
  assert.equal(s.of('message')[0].data, 'hello');
  assert.equal(s.sock.lastEventId, 'p2');
});

test('channels: subscriptions again after a reconnection, before the queue', (t) => {
  const s = setup(t, {}, 0);
  const room = s.sock.subscribe('room');
  const got = [];
  room.onmessage = (e) => got.push(e.data);
  s.ws().accept('p');
  s.ws().receive('p1\nmessage room\nhello');
  assert.deepEqual(got, ['hello']);
  s.ws().end(1001);
  s.sock.send('queued');
  s.advance(1);
  s.ws().accept('p1');
  assert.deepEqual(s.ws().sent, ['subscribe room', 'message\nqueued']);
  assert.match(s.ws().url, /^ws:\/\/rt\.example\/socket\?lastEventId=p1$/);
});

test('a handler that throws does not break the socket', (t) => {
  const s = setup(t);
  s.sock.onopen = () => { throw new Error('page bug'); };
  // The browser's reportError, which reports as an uncaught exception.
  const errors = [];
  globalThis.reportError = (err) => errors.push(err.message);
  t.after(() => { delete globalThis.reportError; });
  s.sock.subscribe('room');
  s.ws().accept('p');
  assert.equal(s.sock.readyState, OPEN);
  assert.deepEqual(s.ws().sent, ['subscribe room']);
  assert.deepEqual(errors, ['page bug']);
});

test('options: an unknown transport throws; none means auto', (t) => {
  assert.throws(() => new RealtimeSocket('http://rt.example/socket', { transport: 'websockets' }), TypeError);
  const s = setup(t, { transport: null });
  assert.equal(s.sock.options.transport, 'auto');
  assert.equal(s.wss.length, 1);
});
