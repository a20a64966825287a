// The pure logic of realtime.js: frame parsing, backoff windows, the
// checks of close() and send().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { internal } from './fakes.js';

const { parseFrame, backoffCap, backoffDelay, watchdogDelay, checkClose, checkText, utf8Length } = internal;

test('parseFrame: the kinds of realtime.v2', () => {
  assert.deepEqual(parseFrame('message\nhi\nthere'), { kind: 'message', channel: '', data: 'hi\nthere' });
  assert.deepEqual(parseFrame('message room\nhi'), { kind: 'message', channel: 'room', data: 'hi' });
  assert.deepEqual(parseFrame('subscribed room\nresumed'), { kind: 'subscribed', channel: 'room', data: 'resumed' });
  assert.deepEqual(parseFrame('lost room'), { kind: 'lost', channel: 'room', data: '' });
  assert.deepEqual(parseFrame('error\npresence x: refused'), { kind: 'error', channel: '', data: 'presence x: refused' });
  assert.deepEqual(parseFrame('join room\n{"socket":"s","user":"u","info":""}').entry, { socket: 's', user: 'u', info: '' });
  assert.deepEqual(parseFrame('presence room\n[]').entries, []);
});

test('parseFrame: heartbeat carries the interval in ms', () => {
  assert.deepEqual(parseFrame('heartbeat\n15000'), { kind: 'heartbeat', channel: '', data: '15000', heartbeat: 15000 });
  assert.equal(parseFrame('heartbeat\n0').heartbeat, 0);
  for (const bad of ['heartbeat', 'heartbeat\n', 'heartbeat\n-1', 'heartbeat\n1.5', 'heartbeat\n 15', 'heartbeat\n99999999999999999', 'heartbeat room\n15000']) {
    assert.equal(parseFrame(bad), null, bad);
  }
});

test('parseFrame: a well-formed unknown kind is returned as unknown, to be ignored', () => {
  assert.deepEqual(parseFrame('future\nwhatever'), { kind: 'future', channel: '', data: 'whatever', unknown: true });
  assert.deepEqual(parseFrame('future room'), { kind: 'future', channel: 'room', data: '', unknown: true });
  assert.deepEqual(parseFrame('x.y-z room\n{'), { kind: 'x.y-z', channel: 'room', data: '{', unknown: true });
});

test('parseFrame: malformed headers and known kinds', () => {
  for (const bad of [
    '', '\ndata', ' room', 'future a b', 'future ', 'fu\x01ture', 'future ' + 'c'.repeat(201),
    'subscribed room\nmaybe', 'subscribed\nfresh', 'lost', 'join room\n[1]', 'join room\nnull', 'join room\n{',
    'presence room\n{}', 'unsubscribed',
  ]) {
    assert.equal(parseFrame(bad), null, JSON.stringify(bad));
  }
});

test('backoff: full jitter in [0, min(maxDelay, minDelay * 2^failures))', () => {
  assert.equal(backoffCap(0, 500, 30000), 500);
  assert.equal(backoffCap(1, 500, 30000), 1000);
  assert.equal(backoffCap(3, 500, 30000), 4000); // after 1012/1013: +3, window x8
  assert.equal(backoffCap(6, 500, 30000), 30000);
  assert.equal(backoffCap(1e6, 500, 30000), 30000);
  assert.equal(backoffDelay(3, 500, 30000, () => 0), 0);
  assert.equal(backoffDelay(3, 500, 30000, () => 0.5), 2000);
  assert.equal(backoffDelay(3, 500, 30000, () => 0.9999999), 3999);
  // Spread over the window, not bunched at its top.
  const seen = new Set();
  for (let i = 0; i < 10; i++) seen.add(Math.floor(backoffDelay(0, 500, 30000, () => i / 10) / 50));
  assert.equal(seen.size, 10);
});

test('watchdog: 2 heartbeats plus 1 s', () => {
  assert.equal(watchdogDelay(15000), 31000);
  assert.equal(watchdogDelay(1000), 3000);
  assert.equal(watchdogDelay(2 ** 40), 2 ** 31 - 1);
});

test('checkClose: codes and reasons WebSocket.close accepts', () => {
  assert.deepEqual(checkClose(), { code: 1000, reason: '' });
  assert.deepEqual(checkClose(1000, 'bye'), { code: 1000, reason: 'bye' });
  assert.deepEqual(checkClose(3000), { code: 3000, reason: '' });
  assert.deepEqual(checkClose('4999', 1), { code: 4999, reason: '1' });
  assert.deepEqual(checkClose(1000, 'é'.repeat(61) + 'a'), { code: 1000, reason: 'é'.repeat(61) + 'a' }); // 123 bytes
  for (const code of [0, 999, 1001, 1005, 1006, 2999, 5000, 65536 + 1000, NaN, 'x', null]) {
    assert.throws(() => checkClose(code), (err) => err instanceof DOMException && err.name === 'InvalidAccessError', String(code));
  }
  assert.throws(() => checkClose(1000, 'é'.repeat(62)), (err) => err instanceof DOMException && err.name === 'SyntaxError');
  assert.throws(() => checkClose(1000, 'a'.repeat(124)), (err) => err.name === 'SyntaxError');
  // The code is checked first.
  assert.throws(() => checkClose(1001, 'a'.repeat(124)), (err) => err.name === 'InvalidAccessError');
});

test('checkText: text only', () => {
  assert.equal(checkText('hi'), 'hi');
  assert.equal(checkText(42), '42');
  assert.equal(checkText(null), 'null');
  assert.equal(checkText({ toString: () => 'obj' }), 'obj');
  for (const bin of [new ArrayBuffer(2), new Uint8Array(2), new DataView(new ArrayBuffer(2)), new Blob(['x'])]) {
    assert.throws(() => checkText(bin), (err) => err instanceof TypeError && /sends text only/.test(err.message), bin.constructor.name);
  }
});

test('utf8Length', () => {
  assert.equal(utf8Length(''), 0);
  assert.equal(utf8Length('aé€😀'), 1 + 2 + 3 + 4);
});
