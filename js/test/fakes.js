// Fakes of the browser APIs realtime.js uses (WebSocket, EventSource,
// fetch), installed on globalThis, and node:test's mock timers, so that
// the tests drive the socket's state machine step by step. Not a test
// file itself: node --test runs it and finds no tests.
import { mock } from 'node:test';
import '../realtime.js';

export const { RealtimeSocket } = globalThis;
export const internal = RealtimeSocket._internal;

const utf8 = (s) => new TextEncoder().encode(s).length;

// FakeWebSocket is a WebSocket whose server side the test plays.
export class FakeWebSocket {
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.protocol = '';
    this.readyState = 0;
    this.bufferedAmount = 0;
    this.sent = [];
    this.closed = null; // {code, reason} once the client closed it
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    FakeWebSocket.instances.push(this);
  }

  send(data) {
    if (this.readyState !== 1) throw new Error('FakeWebSocket: send while not open');
    this.sent.push(data);
    this.bufferedAmount += utf8(data);
  }

  close(code, reason) {
    if (this.closed === null) this.closed = { code, reason };
    this.readyState = 3;
  }

  // Test side: the browser transmitted everything sent.
  flush() { this.bufferedAmount = 0; }

  // Test side: the server accepts with the subprotocol and sends the
  // position.
  accept(position = '', protocol = 'realtime.v2') {
    this.protocol = protocol;
    this.readyState = 1;
    if (this.onopen) this.onopen({ type: 'open' });
    if (protocol) this.receive(position);
  }

  receive(text) {
    if (this.onmessage) this.onmessage({ type: 'message', data: text });
  }

  // Test side: the connection ends with code.
  end(code, reason = '') {
    this.readyState = 3;
    if (this.onclose) this.onclose({ type: 'close', code, reason, wasClean: code !== 1006 });
  }
}

// FakeEventSource is an EventSource whose server side the test plays.
export class FakeEventSource {
  constructor(url) {
    this.url = url;
    this.closed = false;
    this.listeners = {};
    this.onmessage = this.onerror = null;
    FakeEventSource.instances.push(this);
  }

  addEventListener(type, fn) {
    (this.listeners[type] ||= []).push(fn);
  }

  close() { this.closed = true; }

  // Test side: an event of the stream.
  emit(type, data, lastEventId = '') {
    if (this.closed) return;
    const e = { type, data, lastEventId };
    if (type === 'message' && this.onmessage) this.onmessage(e);
    for (const fn of this.listeners[type] || []) fn(e);
  }

  hello(token, position = '') { this.emit('realtime.hello', token, position); }

  fail() {
    if (!this.closed && this.onerror) this.onerror({ type: 'error' });
  }
}

// fakeFetch records the POSTs; the test answers each with a status, or
// fails it as the network would.
export function fakeFetch() {
  const calls = [];
  const f = (url, init) => new Promise((resolve, reject) => {
    const call = {
      url, body: init.body, method: init.method,
      token: init.headers['Realtime-Token'], seq: init.headers['Realtime-Seq'],
      aborted: false,
      answer: (status) => resolve({ status, ok: status >= 200 && status < 300 }),
      fail: () => reject(new TypeError('Failed to fetch')),
    };
    if (init.signal) {
      init.signal.addEventListener('abort', () => {
        call.aborted = true;
        reject(new DOMException('aborted', 'AbortError'));
      });
    }
    calls.push(call);
  });
  f.calls = calls;
  return f;
}

// setup installs the fakes and mock timers for the test t, and returns a
// socket to http://rt.example/socket with options, and helpers.
export function setup(t, options, random = 0.5) {
  FakeWebSocket.instances = [];
  FakeEventSource.instances = [];
  const saved = { WebSocket: globalThis.WebSocket, EventSource: globalThis.EventSource, fetch: globalThis.fetch };
  globalThis.WebSocket = FakeWebSocket;
  globalThis.EventSource = FakeEventSource;
  globalThis.fetch = fakeFetch();
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const rnd = { value: random };
  t.mock.method(Math, 'random', () => rnd.value);
  const sock = new RealtimeSocket('http://rt.example/socket', options);
  const events = [];
  for (const type of ['open', 'message', 'error', 'close', 'reconnecting']) {
    sock.addEventListener(type, (e) => events.push(e));
  }
  t.after(() => {
    // Leave no timer behind: close the socket if the test did not.
    try { sock.close(); } catch (err) { /* closed */ }
    Object.assign(globalThis, saved);
  });
  return {
    sock, events, rnd,
    ws: () => FakeWebSocket.instances.at(-1),
    wss: FakeWebSocket.instances,
    es: () => FakeEventSource.instances.at(-1),
    ess: FakeEventSource.instances,
    posts: globalThis.fetch.calls,
    of: (type) => events.filter((e) => e.type === type),
    // advance moves the clock ms forward, 1 ms at a time, so that timers
    // set by timers run when they are due.
    advance: (ms) => { for (let i = 0; i < ms; i++) t.mock.timers.tick(1); },
  };
}

// settle lets the promises of fetch and its handlers run.
export function settle() {
  return new Promise((resolve) => setImmediate(resolve));
}

export { mock };
