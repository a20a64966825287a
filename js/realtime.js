// realtime.js: the browser client of github.com/realtime-go/realtime, the
// classic script of the npm package @realtime-go/client (its index.js
// re-exports it as an ES module). It defines globalThis.RealtimeSocket.
//
//   const sock = new RealtimeSocket('/socket');
//   sock.onopen = (e) => console.log('open over', sock.transport);
//   sock.onmessage = (e) => console.log(e.data);
//   sock.send('hello');
//
// It has the shape of the browser's WebSocket (onopen, onmessage, onclose,
// onerror, send, close, readyState, bufferedAmount) plus `transport`, the
// transport in use. It tries a WebSocket first and falls back to
// EventSource plus fetch POSTs when the upgrade fails or does not open
// within `connectTimeout`. When a connection is lost it reconnects, with
// backoff, and resumes from the id of the last message it received, so
// that it gets each missed message once. Unlike a WebSocket, `open` fires
// on every (re)connection and `close` only once, when the socket is closed
// for good. The wire protocol is described in the Go package's
// documentation (doc.go). The page may be of another origin than the
// server (the server's Options.OriginPatterns must allow it); no
// credentials are sent, the session token is the only one.
//
// Options (times in ms):
//   transport       'auto' (WebSocket, then EventSource), 'websocket' or
//                   'eventsource';
//   connectTimeout  5000: how long a transport may take to open;
//   minDelay        500, maxDelay 30000: the reconnect backoff. The wait
//                   before a reconnection is random in [0, cap), cap =
//                   min(maxDelay, minDelay * 2^failures), failures
//                   counting the attempts since the last connection that
//                   stayed open 10 s; a close with 1012 or 1013 (the
//                   server restarts or is overloaded) adds 3 failures;
//   lastEventId     '': the id to resume from, across page loads;
//   maxQueue        1000 messages, maxQueueBytes 1048576 (UTF-8): how much
//                   send() queues while the socket is connecting.
//
// readyState is CONNECTING (0) while connecting or reconnecting, through
// every transport tried; OPEN (1); CLOSING (2) from close() to the close
// event; CLOSED (3).
//
// send(data) sends text (data other than a string is converted with
// String; an ArrayBuffer, a typed array, a DataView or a Blob throws a
// TypeError: the socket carries text only). While the socket is
// CONNECTING the message is queued, up to maxQueue messages and
// maxQueueBytes bytes, beyond which send throws a DOMException
// 'QuotaExceededError'; once CLOSING or CLOSED it throws
// 'InvalidStateError'. Queued messages, and those in flight when a
// connection broke, are sent in order after the (re)connection: over
// EventSource each message is a POST, one at a time, carrying the header
// Realtime-Seq (1, 2, 3, ... per session token); a POST that got no
// answer (a network error, a 5xx) is sent again with the same token and
// seq, which the server delivers at most once, and one the server answers
// 404 or 410 (its stream has ended) is sent again on the next connection.
// Over WebSocket the messages the browser had not yet transmitted when
// the connection broke are sent again. bufferedAmount is the UTF-8 bytes
// of the messages queued or not yet acknowledged, plus the WebSocket's own
// bufferedAmount.
//
// close(code, reason) closes the socket for good: code 1000 (the default)
// or 3000-4999, else it throws a DOMException 'InvalidAccessError'; a
// reason over 123 UTF-8 bytes throws 'SyntaxError'. readyState is then
// CLOSING, and `close` fires later (never inside close()), once. Calling
// close() again does nothing.
//
// Events, also as on<type> properties:
//   open          on every (re)connection: e.transport, e.protocol
//                 ('realtime.v2', 'realtime.v1' or '' for a server
//                 without the subprotocol), e.resumed (the server
//                 resumed from the last event id) and e.missed (it could
//                 not: messages may be missing);
//   message       a MessageEvent: data, lastEventId, and channel;
//   error         a connection broke, or the server refused a message;
//   reconnecting  detail {code, reason, delay}: the connection was lost
//                 (code and reason of its close, 1006 for a connection
//                 that broke or a failed attempt) and the socket tries
//                 again after delay ms;
//   close         a CloseEvent (code, reason, wasClean), once: the socket
//                 is closed for good, by close() or by a close code after
//                 which it does not reconnect (any but 1001, 1006, 1011,
//                 1012, 1013, 1014).
//
// A dead link is noticed: a realtime.v2 server announces its heartbeat
// interval H when a connection opens and sends a heartbeat whenever it had
// nothing else to send for H, and the client drops a connection on which
// nothing arrived for 2H + 1 s and reconnects (reconnecting with 1006).
//
// Channels (wire protocol realtime.v2, which the client asks for on both
// transports):
//
//   const room = sock.subscribe('room');
//   room.onmessage = (e) => console.log(e.data);          // this channel's messages
//   room.onsubscribed = (e) => e.detail.status;           // 'fresh', 'resumed' or 'failed'
//   room.onjoin = (e) => console.log(e.detail.entry.user); // presence: join and leave
//   room.publish('hi');                                    // the server's OnPublish decides
//   room.presence().then((entries) => console.log(entries));
//   room.unsubscribe();
//
// sock.subscribe(channel) returns the channel's Subscription (the same one
// while it lasts), an EventTarget with these events, also as on<type>
// properties:
//   message       a MessageEvent: data, lastEventId, and channel;
//   subscribed    detail {channel, status}: the socket is in the channel,
//                 after the replay of what it missed; status 'resumed'
//                 means nothing was lost, 'failed' means messages may be
//                 missing (the history no longer reaches back): catch up
//                 by other means;
//   unsubscribed  detail {channel, reason}: left (reason 'left'), or refused
//                 by the server; the Subscription is over and is not asked
//                 for again (a refusal may be temporary: subscribe again);
//   lost          detail {channel}: mid-stream the server lost its place in
//                 the channel: messages may be missing, live ones follow;
//   join, leave   detail {channel, entry}, entry = {socket, user, info}.
// Its methods: publish(text) (throws unless the socket is open; not
// queued), presence() (a Promise of the entries, rejected when the server
// refuses, as for a channel the socket is not in, or when the connection
// ends first), unsubscribe(). A subscription is asked for when made (or on
// the next open) and again after every reconnection, before anything else
// the page sends, and the server resumes it from the last event id.
//
// The socket itself still fires `message` for every message: those sent to
// this socket only (e.channel === '') and, so that a page written for one
// room keeps working when the server puts it in channels, every channel
// message too (e.channel names it). It also fires subscribed, unsubscribed,
// lost, join and leave for every channel, including those the server put
// the socket in, and `servererror` (detail {text}) when the server could not
// parse a request. Server messages of kinds this client does not know are
// ignored, so that servers can add kinds. Against a server that speaks only
// realtime.v1 (it selects that WebSocket subprotocol) everything works as
// before, and each Subscription gets `unsubscribed` with the reason
// 'realtime.v1', and publish and presence throw. Over EventSource the
// client cannot see which protocol the server chose and counts on
// realtime.v2, which this file's own server (realtime.ClientJS) speaks.
//
// RealtimeSocket._internal holds the pure functions and constants the unit
// tests (js/test) check; it is not part of the API.
(function (global) {
  'use strict';

  const PROTOCOL_V1 = 'realtime.v1';
  const PROTOCOL_V2 = 'realtime.v2';
  const TOKEN_HEADER = 'Realtime-Token';
  const SEQ_HEADER = 'Realtime-Seq';
  // Close codes after which the client reconnects: the server is going
  // away or restarting, the connection broke, or a condition is temporary.
  const RETRY_CODES = [1001, 1006, 1011, 1012, 1013, 1014];
  // After these the server asked for a longer wait: restarting, or
  // overloaded. Every client it closed would otherwise come back at once.
  const SLOW_CODES = [1012, 1013];
  const SLOW_FAILURES = 3;
  // A connection that stayed open this long was healthy: the backoff
  // starts over. Opening alone is not enough, or a server that accepts
  // and then closes everyone would get them back at the shortest delay,
  // for ever.
  const HEALTHY_MS = 10000;
  // setTimeout's longest delay.
  const MAX_TIMER_MS = 2 ** 31 - 1;
  const TRANSPORTS = ['auto', 'websocket', 'eventsource'];
  const KINDS = ['message', 'subscribed', 'unsubscribed', 'lost', 'join', 'leave', 'presence', 'error', 'heartbeat'];
  // The kinds without a channel.
  const BARE_KINDS = ['message', 'error', 'heartbeat'];
  const NAME = /^[^ \x00-\x1f\x7f-\x9f]+$/u;

  const encoder = new TextEncoder();
  function utf8Length(s) {
    return encoder.encode(s).length;
  }

  // validChannel reports whether name can be a channel's: 1 to 200 bytes
  // of UTF-8 without spaces or control characters.
  function validChannel(name) {
    return NAME.test(name) && utf8Length(name) <= 200;
  }

  // dispatch fires e on target, and target's on<type> property. A handler
  // that throws is reported as the browser reports a listener's exception,
  // without breaking the socket's own bookkeeping.
  function dispatch(target, e) {
    target.dispatchEvent(e);
    const handler = target['on' + e.type];
    if (typeof handler !== 'function') return;
    try {
      handler.call(target, e);
    } catch (err) {
      if (typeof reportError === 'function') reportError(err);
      else setTimeout(() => { throw err; }, 0);
    }
  }

  // parseFrame parses a realtime.v2 server message after its id: "HEADER"
  // or "HEADER\nDATA", HEADER being "KIND" or "KIND CHANNEL". It returns
  // null for a malformed one, and {kind, channel, data, unknown: true} for
  // a well-formed one of a kind this client does not know, to be ignored.
  function parseFrame(frame) {
    const nl = frame.indexOf('\n');
    const header = nl < 0 ? frame : frame.slice(0, nl);
    const data = nl < 0 ? '' : frame.slice(nl + 1);
    const sp = header.indexOf(' ');
    const kind = sp < 0 ? header : header.slice(0, sp);
    const channel = sp < 0 ? '' : header.slice(sp + 1);
    if (!NAME.test(kind) || (sp >= 0 && !validChannel(channel))) return null;
    const f = { kind, channel, data };
    if (!KINDS.includes(kind)) {
      f.unknown = true;
      return f;
    }
    if (sp >= 0 ? kind === 'heartbeat' : !BARE_KINDS.includes(kind)) return null;
    try {
      if (kind === 'subscribed' && !['fresh', 'resumed', 'failed'].includes(data)) return null;
      if (kind === 'heartbeat') {
        if (!/^[0-9]{1,16}$/.test(data) || !Number.isSafeInteger(Number(data))) return null;
        f.heartbeat = Number(data);
      }
      if (kind === 'join' || kind === 'leave') {
        f.entry = JSON.parse(data);
        if (f.entry === null || typeof f.entry !== 'object' || Array.isArray(f.entry)) return null;
      }
      if (kind === 'presence') {
        f.entries = JSON.parse(data);
        if (!Array.isArray(f.entries)) return null;
      }
    } catch (err) {
      return null;
    }
    return f;
  }

  // backoffCap is the upper bound of the wait before the next attempt.
  function backoffCap(failures, minDelay, maxDelay) {
    return Math.min(maxDelay, minDelay * 2 ** Math.min(failures, 64));
  }

  // backoffDelay is the wait before the next attempt: full jitter,
  // uniform in [0, cap), so that clients a server dropped together come
  // back spread over the window instead of in one wave.
  function backoffDelay(failures, minDelay, maxDelay, random) {
    return Math.floor((random || Math.random)() * backoffCap(failures, minDelay, maxDelay));
  }

  // watchdogDelay is how long a connection may stay silent, given the
  // heartbeat interval its server announced: two heartbeats may be late,
  // plus a second for the network.
  function watchdogDelay(heartbeat) {
    return Math.min(MAX_TIMER_MS, 2 * heartbeat + 1000);
  }

  function domException(message, name) {
    return new DOMException(message, name);
  }

  // checkClose validates the arguments of close() as WebSocket.close does,
  // and returns them with their defaults.
  function checkClose(code, reason) {
    if (code !== undefined) {
      // WebIDL's [Clamp] unsigned short.
      let n = Number(code);
      n = Number.isNaN(n) ? 0 : Math.min(65535, Math.max(0, Math.round(n)));
      if (n !== 1000 && (n < 3000 || n > 4999)) {
        throw domException('RealtimeSocket.close: the code must be 1000 or 3000-4999, not ' + code, 'InvalidAccessError');
      }
      code = n;
    } else {
      code = 1000;
    }
    reason = reason === undefined ? '' : String(reason);
    if (utf8Length(reason) > 123) {
      throw domException('RealtimeSocket.close: the reason is longer than 123 bytes of UTF-8', 'SyntaxError');
    }
    return { code, reason };
  }

  // checkText returns the text send() sends for data, or throws a
  // TypeError for binary data, which the socket does not carry.
  function checkText(data) {
    let what = '';
    if (data instanceof ArrayBuffer || (typeof SharedArrayBuffer === 'function' && data instanceof SharedArrayBuffer)) {
      what = 'an ArrayBuffer';
    } else if (ArrayBuffer.isView(data)) {
      what = 'an ArrayBufferView (' + data.constructor.name + ')';
    } else if (typeof Blob === 'function' && data instanceof Blob) {
      what = 'a Blob';
    }
    if (what) throw new TypeError('RealtimeSocket sends text only: ' + what + ' is not text; decode it to a string first');
    return String(data);
  }

  function closeEvent(code, reason, wasClean) {
    if (typeof CloseEvent === 'function') return new CloseEvent('close', { code, reason, wasClean });
    // Outside browsers (Node before 23) there is no CloseEvent.
    const e = new Event('close');
    Object.defineProperties(e, { code: { value: code }, reason: { value: reason }, wasClean: { value: wasClean } });
    return e;
  }

  // Subscription is one channel of a RealtimeSocket.
  class Subscription extends EventTarget {
    constructor(sock, channel) {
      super();
      this.socket = sock;
      this.channel = channel;
      this.active = true; // false once unsubscribed or refused
      this.onmessage = this.onsubscribed = this.onunsubscribed = this.onlost = this.onjoin = this.onleave = null;
    }

    // publish asks the server to publish text in the channel.
    publish(text) {
      this.socket._request('publish ' + this.channel + '\n' + String(text));
    }

    // presence resolves to who is in the channel, on every node: an array
    // of {socket, user, info}.
    presence() {
      return new Promise((resolve, reject) => {
        this.socket._request('presence ' + this.channel);
        this.socket._waiters.push({ channel: this.channel, resolve, reject });
      });
    }

    // unsubscribe leaves the channel; the server confirms with
    // `unsubscribed`.
    unsubscribe() {
      const sock = this.socket;
      if (sock._subs.get(this.channel) !== this) return;
      sock._subs.delete(this.channel);
      if (sock.readyState === RealtimeSocket.OPEN && sock.protocol === PROTOCOL_V2) {
        sock._request('unsubscribe ' + this.channel);
      }
    }
  }

  // outItem is an entry of a socket's outbox, which holds, in order, what
  // is to be sent. A message (request false) is the page's text, sent on
  // any connection; a request (subscribe, publish ...) belongs to the
  // connection it was made for (conn) and is dropped with it. wire is the
  // text as sent, fixed once sent; token and seq are set while the item is
  // POSTed, and kept for its retries. The head of the outbox is busy while
  // its POST, or the wait before its retry, is under way.
  function outItem(text, request, conn) {
    return {
      text, request, conn, bytes: request ? 0 : utf8Length(text),
      wire: '', token: '', seq: 0, busy: false, retries: 0, timer: 0, abort: null,
    };
  }

  class RealtimeSocket extends EventTarget {
    constructor(url, options) {
      super();
      this.options = Object.assign({
        transport: 'auto', connectTimeout: 5000, minDelay: 500, maxDelay: 30000, lastEventId: '',
        maxQueue: 1000, maxQueueBytes: 1048576,
      }, options);
      this.options.transport = this.options.transport || 'auto';
      if (!TRANSPORTS.includes(this.options.transport)) {
        throw new TypeError("RealtimeSocket: transport must be 'auto', 'websocket' or 'eventsource', not " + this.options.transport);
      }
      const base = global.location && global.location.href;
      this.url = (base ? new URL(url, base) : new URL(url)).href;
      this.readyState = RealtimeSocket.CONNECTING;
      this.transport = ''; // 'websocket' or 'eventsource' while open
      this.protocol = '';  // 'realtime.v2', 'realtime.v1' or '' (a plain WebSocket) while open
      this.lastEventId = String(this.options.lastEventId || '');
      this.onopen = this.onmessage = this.onclose = this.onerror = this.onreconnecting = null;
      this._conn = null;      // the open connection
      this._attempt = null;   // the connection being opened
      this._worked = '';      // the transport that last opened
      this._round = [];       // transports still to try in this attempt
      this._failures = 0;     // attempts since the last healthy connection
      this._timer = 0;        // the wait before the next attempt
      this._healthy = 0;      // the timer that makes the open connection healthy
      this._out = [];         // the outbox (see above)
      this._outCount = 0;     // messages in the outbox
      this._outBytes = 0;     // their UTF-8 bytes
      this._subs = new Map();    // channel -> Subscription
      this._waiters = [];        // presence() calls waiting, in the order of their requests
      this._connect();
    }

    // bufferedAmount is the UTF-8 bytes of the messages sent but not yet
    // handed to the network (or, over EventSource, acknowledged).
    get bufferedAmount() {
      const c = this._conn;
      return this._outBytes + (c && c.ws ? c.ws.bufferedAmount || 0 : 0);
    }

    // send sends text to the server, or queues it while the socket
    // connects.
    send(data) {
      const text = checkText(data);
      if (this.readyState >= RealtimeSocket.CLOSING) {
        throw domException('RealtimeSocket is closing or closed', 'InvalidStateError');
      }
      const item = outItem(text, false, null);
      if (this.readyState === RealtimeSocket.CONNECTING &&
          (this._outCount + 1 > this.options.maxQueue || this._outBytes + item.bytes > this.options.maxQueueBytes)) {
        throw domException('RealtimeSocket: the queue of messages waiting for the connection is full (maxQueue ' +
          this.options.maxQueue + ', maxQueueBytes ' + this.options.maxQueueBytes + ')', 'QuotaExceededError');
      }
      this._push(item, false);
      this._pump();
    }

    // subscribe returns the Subscription to channel, asking the server for
    // it if it is new.
    subscribe(channel) {
      channel = String(channel);
      if (!validChannel(channel) || channel[0] === '$') {
        throw new Error('invalid channel name: 1 to 200 bytes, no spaces or control characters, not starting with $');
      }
      let sub = this._subs.get(channel);
      if (sub) return sub;
      sub = new Subscription(this, channel);
      this._subs.set(channel, sub);
      if (this.readyState === RealtimeSocket.OPEN) {
        if (this.protocol === PROTOCOL_V2) this._request('subscribe ' + channel);
        // Once the caller has had the Subscription to set its handlers.
        else queueMicrotask(() => { if (this._subs.get(channel) === sub) this._refuseV1(sub); });
      }
      return sub;
    }

    // close closes the socket for good; `close` fires later.
    close(code, reason) {
      // WebSocket.close checks its arguments first, in any state.
      const c = checkClose(code, reason);
      if (this.readyState >= RealtimeSocket.CLOSING) return;
      this.readyState = RealtimeSocket.CLOSING;
      this._stop(c.code, c.reason);
      setTimeout(() => this._closed(c.code, c.reason, true), 0);
    }

    // _request sends a channel request, which needs realtime.v2.
    _request(text) {
      if (this.readyState !== RealtimeSocket.OPEN) throw new Error('RealtimeSocket is not open');
      if (this.protocol !== PROTOCOL_V2) throw new Error('the server speaks ' + (this.protocol || 'no subprotocol') + ': no channels');
      this._push(outItem(text, true, this._conn), false);
      this._pump();
    }

    // _push adds item to the outbox, at its end or, front, before what
    // was not sent yet (after a head still being POSTed).
    _push(item, front) {
      if (!item.request) {
        this._outCount++;
        this._outBytes += item.bytes;
      }
      if (!front) this._out.push(item);
      else this._out.splice(this._out.length && this._out[0].token ? 1 : 0, 0, item);
    }

    // _shift removes the head of the outbox.
    _shift() {
      const item = this._out.shift();
      if (!item.request) {
        this._outCount--;
        this._outBytes -= item.bytes;
      }
      return item;
    }

    // _clearOut empties the outbox; a POST under way is left to finish.
    _clearOut() {
      for (const item of this._out) clearTimeout(item.timer);
      this._out = [];
      this._outCount = this._outBytes = 0;
    }

    // _unsent resets item, sent before, to be sent again on some other
    // connection.
    _unsent(item) {
      clearTimeout(item.timer);
      Object.assign(item, outItem(item.text, false, null));
    }

    // _pump sends what the outbox holds, in order, as far as it can.
    _pump() {
      while (this._out.length && this.readyState < RealtimeSocket.CLOSING) {
        const item = this._out[0];
        if (item.busy) return;
        // A POST that got no answer goes again, under its token and seq,
        // whatever the connection now.
        if (item.token) { this._post(item); return; }
        const conn = this._conn;
        if (item.request && item.conn !== conn) { this._shift(); continue; }
        if (!conn || this.readyState !== RealtimeSocket.OPEN) return;
        if (!item.wire) item.wire = item.request || conn.protocol !== PROTOCOL_V2 ? item.text : 'message\n' + item.text;
        if (conn.ws) {
          this._shift();
          conn.sendWS(item);
          continue;
        }
        item.conn = conn;
        item.token = conn.token;
        item.seq = ++conn.seq;
        this._post(item);
        return;
      }
    }

    // _post POSTs the head of the outbox.
    _post(item) {
      item.busy = true;
      const ctl = typeof AbortController === 'function' ? new AbortController() : null;
      item.abort = ctl ? () => ctl.abort() : null;
      let p;
      try {
        p = fetch(this.url, {
          method: 'POST', body: item.wire, cache: 'no-store', signal: ctl ? ctl.signal : undefined,
          headers: { [TOKEN_HEADER]: item.token, [SEQ_HEADER]: String(item.seq), 'Content-Type': 'text/plain;charset=utf-8' },
        });
      } catch (err) {
        p = Promise.reject(err);
      }
      p.then((r) => r.status, () => 0).then((status) => this._posted(item, status));
    }

    // _posted handles the answer to the POST of item, status 0 when none
    // came.
    _posted(item, status) {
      item.abort = null;
      if (this._out[0] !== item || this.readyState >= RealtimeSocket.CLOSING) return;
      if (status >= 200 && status < 300) {
        item.busy = false;
        this._shift();
        this._pump();
        return;
      }
      if (status === 0 || status === 408 || status === 429 || status >= 500) {
        // The message may or may not have been delivered: the same token
        // and seq let the server tell.
        const delay = backoffDelay(item.retries++, this.options.minDelay, this.options.maxDelay, Math.random);
        item.timer = setTimeout(() => { item.busy = false; this._pump(); }, delay);
        return;
      }
      const conn = item.conn;
      // 404 and 410: the stream of the token has ended, the message was
      // not delivered: it goes again on the next connection.
      const ended = status === 404 || status === 410;
      if (ended && !item.request) this._unsent(item);
      else this._shift();
      if (!ended) {
        // Refused (400, 403, 413 ...): not delivered, so the server still
        // waits for this seq; the next POST carries it.
        if (conn && conn.seq === item.seq) conn.seq--;
        this._emit(new Event('error'));
      }
      // The stream is done for, or the server and the client disagree on
      // the seq; a message too large is the page's business.
      if (conn === this._conn && status !== 413) {
        conn.close(1000, '');
        this._lost(1006, ended ? 'the session has ended' : 'POST answered ' + status);
      }
      this._pump();
    }

    _connect() {
      const t = this.options.transport;
      if (t !== 'auto') this._round = [t];
      else if (this._worked === 'eventsource') this._round = ['eventsource', 'websocket'];
      else this._round = ['websocket', 'eventsource'];
      this._triedWebSocket = false;
      this._next();
    }

    // _next tries the next transport of the round, or waits and starts a
    // new round.
    _next() {
      if (this.readyState !== RealtimeSocket.CONNECTING) return;
      const t = this._round.shift();
      if (t === 'websocket') this._triedWebSocket = true;
      if (t === 'websocket') this._openWebSocket();
      else if (t === 'eventsource') this._openEventSource();
      else this._retry(1006, '');
    }

    // _retry waits with backoff and starts a new round.
    _retry(code, reason) {
      const delay = backoffDelay(this._failures++, this.options.minDelay, this.options.maxDelay, Math.random);
      this._timer = setTimeout(() => this._connect(), delay);
      this._emit(new CustomEvent('reconnecting', { detail: { code, reason, delay } }));
    }

    _target(wsScheme) {
      const u = new URL(this.url);
      if (wsScheme) u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
      else {
        u.searchParams.set('protocol', PROTOCOL_V2);
        // The server counts the fallbacks (realtime.v2's fallback=1).
        if (this._triedWebSocket) u.searchParams.set('fallback', '1');
      }
      if (this.lastEventId) u.searchParams.set('lastEventId', this.lastEventId);
      return u.href;
    }

    // _newConn returns a connection being opened, with what both
    // transports share: the connect timer, the watchdog and close.
    _newConn(transport, closeTransport) {
      const conn = {
        transport, protocol: '', presented: this.lastEventId, opened: false,
        idle: 0, watchdog: 0, timer: 0,
        close: (code, reason) => {
          clearTimeout(conn.timer);
          clearTimeout(conn.watchdog);
          closeTransport(code, reason);
        },
      };
      this._attempt = conn;
      conn.timer = setTimeout(() => {
        if (this._attempt !== conn) return;
        conn.close(1000, '');
        this._attempt = null;
        this._next();
      }, this.options.connectTimeout);
      return conn;
    }

    // _failed handles the end of conn, a connection opened or being
    // opened.
    _failed(conn, code, reason) {
      if (conn === this._conn) {
        conn.close(1000, '');
        this._lost(code, reason);
      } else if (conn === this._attempt) {
        conn.close(1000, '');
        this._attempt = null;
        this._next();
      }
    }

    // _alive notes that something arrived on conn: the watchdog starts
    // over.
    _alive(conn) {
      if (!conn.idle || conn !== this._conn) return;
      clearTimeout(conn.watchdog);
      conn.watchdog = setTimeout(() => this._failed(conn, 1006, 'idle timeout'), conn.idle);
    }

    _openWebSocket() {
      let ws;
      try {
        ws = new WebSocket(this._target(true), [PROTOCOL_V2, PROTOCOL_V1]);
      } catch (err) {
        this._next();
        return;
      }
      const conn = this._newConn('websocket', (code, reason) => {
        ws.onopen = ws.onclose = ws.onmessage = ws.onerror = null;
        try { ws.close(code, reason); } catch (err) { /* already closing */ }
      });
      conn.ws = ws;
      // What was sent and may not have been transmitted: the shortest
      // tail of the messages sent whose bytes cover ws.bufferedAmount.
      conn.sent = [];
      conn.sentBytes = 0;
      conn.trim = () => {
        const buffered = ws.bufferedAmount || 0;
        while (conn.sent.length && conn.sentBytes - conn.sent[0].bytes >= buffered) conn.sentBytes -= conn.sent.shift().bytes;
      };
      conn.sendWS = (item) => {
        ws.send(item.wire);
        const bytes = utf8Length(item.wire);
        conn.sent.push({ item, bytes });
        conn.sentBytes += bytes;
        conn.trim();
      };
      const open = (id) => {
        conn.protocol = ws.protocol;
        this._opened(conn, id);
      };
      const plain = () => ws.protocol !== PROTOCOL_V1 && ws.protocol !== PROTOCOL_V2;
      // Without a subprotocol (a server that does not speak it) messages
      // are plain: no ids, no resume.
      ws.onopen = () => { if (plain()) open(''); };
      ws.onmessage = (e) => {
        this._alive(conn);
        if (typeof e.data !== 'string') return;
        if (plain()) { this._message(e.data, ''); return; }
        // "ID" alone announces a position; "ID\nDATA" delivers DATA.
        const i = e.data.indexOf('\n');
        const id = i < 0 ? e.data : e.data.slice(0, i);
        if (!conn.opened) open(id);
        else if (id) this.lastEventId = id;
        if (i >= 0 && conn === this._conn && !this._frame(conn, e.data.slice(i + 1))) {
          // A browser may only close with 1000 or 3000-4999.
          this._failed(conn, 1002, 'malformed message');
        }
      };
      ws.onclose = (e) => this._failed(conn, e.code, e.reason);
    }

    _openEventSource() {
      let es;
      try {
        es = new EventSource(this._target(false));
      } catch (err) {
        this._next();
        return;
      }
      const conn = this._newConn('eventsource', () => es.close());
      conn.token = '';
      conn.seq = 0; // the last Realtime-Seq sent under token
      es.addEventListener('realtime.hello', (e) => {
        this._alive(conn);
        if (e.data !== conn.token) {
          conn.token = e.data;
          conn.seq = 0;
        }
        if (conn.opened) return;
        conn.protocol = PROTOCOL_V2;
        this._opened(conn, e.lastEventId);
      });
      // A new last event id that no message carried (realtime.v1).
      es.addEventListener('realtime.position', (e) => {
        this._alive(conn);
        if (conn.opened && e.lastEventId) this.lastEventId = e.lastEventId;
      });
      es.onmessage = (e) => {
        this._alive(conn);
        if (!conn.opened || conn !== this._conn) return;
        if (e.lastEventId) this.lastEventId = e.lastEventId;
        if (!this._frame(conn, e.data)) this._failed(conn, 1002, 'malformed message');
      };
      es.addEventListener('realtime.close', (e) => {
        const sp = e.data.indexOf(' ');
        this._failed(conn, Number(sp < 0 ? e.data : e.data.slice(0, sp)), sp < 0 ? '' : e.data.slice(sp + 1));
      });
      // The browser would reconnect by itself, but without backoff and
      // with a token that is no longer valid: do it here instead.
      es.onerror = () => this._failed(conn, 1006, '');
    }

    // _opened makes conn, the attempt in progress, the connection in use.
    // id is the position the server starts from: the id presented if it
    // could resume from it.
    _opened(conn, id) {
      if (conn !== this._attempt) { conn.close(1000, ''); return; }
      clearTimeout(conn.timer);
      conn.opened = true;
      this._attempt = null;
      this._conn = conn;
      this._worked = this.transport = conn.transport;
      this.protocol = conn.protocol;
      if (id) this.lastEventId = id;
      this.readyState = RealtimeSocket.OPEN;
      clearTimeout(this._healthy);
      this._healthy = setTimeout(() => { this._failures = 0; }, HEALTHY_MS);
      // The subscriptions go first, before anything the page sends.
      const requests = [];
      for (const sub of [...this._subs.values()]) {
        if (conn.protocol === PROTOCOL_V2) requests.push(outItem('subscribe ' + sub.channel, true, conn));
        else this._refuseV1(sub);
      }
      for (const item of requests.reverse()) this._push(item, true);
      this._pump();
      const e = new Event('open');
      e.transport = conn.transport;
      e.protocol = conn.protocol;
      e.resumed = conn.presented !== '' && id === conn.presented;
      e.missed = conn.presented !== '' && id !== conn.presented; // messages may have been lost
      this._emit(e);
    }

    // _refuseV1 ends a subscription the server cannot have.
    _refuseV1(sub) {
      this._subs.delete(sub.channel);
      sub.active = false;
      this._channelEvent(sub, 'unsubscribed', { channel: sub.channel, reason: this.protocol || 'no subprotocol' });
    }

    // _frame handles the data of a message of conn under its protocol. It
    // returns false for a malformed realtime.v2 message.
    _frame(conn, data) {
      if (conn.protocol !== PROTOCOL_V2) { this._message(data, ''); return true; }
      const f = parseFrame(data);
      if (!f) return false;
      if (f.unknown) return true;
      const sub = this._subs.get(f.channel);
      switch (f.kind) {
        case 'heartbeat':
          // The announcement, or a later one: the watchdog follows it.
          conn.idle = f.heartbeat > 0 ? watchdogDelay(f.heartbeat) : 0;
          clearTimeout(conn.watchdog);
          this._alive(conn);
          break;
        case 'message':
          this._message(f.data, f.channel);
          break;
        case 'subscribed':
          this._channelEvent(sub, 'subscribed', { channel: f.channel, status: f.data });
          break;
        case 'unsubscribed':
          if (sub) { this._subs.delete(f.channel); sub.active = false; }
          this._channelEvent(sub, 'unsubscribed', { channel: f.channel, reason: f.data });
          break;
        case 'lost':
          this._channelEvent(sub, 'lost', { channel: f.channel });
          break;
        case 'join':
        case 'leave':
          this._channelEvent(sub, f.kind, { channel: f.channel, entry: f.entry });
          break;
        // The server answers requests in order: a presence request with
        // the channel's presence, or with an error that says "presence ...".
        case 'presence':
          if (this._waiters.length && this._waiters[0].channel === f.channel) this._waiters.shift().resolve(f.entries);
          break;
        case 'error':
          if (this._waiters.length && f.data.startsWith('presence ')) this._waiters.shift().reject(new Error(f.data));
          else this._emit(new CustomEvent('servererror', { detail: { text: f.data } }));
          break;
      }
      return true;
    }

    // _channelEvent fires a channel's event on its Subscription, if any,
    // and on the socket.
    _channelEvent(sub, type, detail) {
      if (sub) dispatch(sub, new CustomEvent(type, { detail }));
      this._emit(new CustomEvent(type, { detail }));
    }

    _message(data, channel) {
      const sub = channel && this._subs.get(channel);
      if (sub) {
        const e = new MessageEvent('message', { data, lastEventId: this.lastEventId });
        e.channel = channel;
        dispatch(sub, e);
      }
      const e = new MessageEvent('message', { data, lastEventId: this.lastEventId });
      e.channel = channel;
      this._emit(e);
    }

    // _release takes back from conn, which has ended, what it had not
    // delivered: the messages a WebSocket had not transmitted go back to
    // the front of the outbox, and a POST waiting for its answer is
    // aborted, to be retried.
    _release(conn) {
      clearTimeout(conn.watchdog);
      if (conn.ws) {
        conn.trim();
        const again = conn.sent.filter((s) => !s.item.request).map((s) => s.item);
        for (const item of again.reverse()) {
          this._unsent(item);
          this._push(item, true);
        }
        conn.sent = [];
      }
      const head = this._out[0];
      if (head && head.conn === conn && head.abort) head.abort();
    }

    // _lost handles the end of the open connection.
    _lost(code, reason) {
      const conn = this._conn;
      this._conn = null;
      this.transport = '';
      this.protocol = '';
      clearTimeout(this._healthy);
      this._release(conn);
      // Presence requests in flight have no answer coming.
      for (const w of this._waiters.splice(0)) w.reject(new Error('the connection ended before the answer'));
      if (!RETRY_CODES.includes(code)) {
        this.readyState = RealtimeSocket.CLOSING;
        this._stop(code, reason);
        this._closed(code, reason, code !== 1006);
        return;
      }
      if (SLOW_CODES.includes(code)) this._failures += SLOW_FAILURES;
      this.readyState = RealtimeSocket.CONNECTING;
      this._emit(new Event('error'));
      // The page may have closed the socket in its handler.
      if (this.readyState === RealtimeSocket.CONNECTING) this._retry(code, reason);
    }

    // _stop ends every connection and timer, for close.
    _stop(code, reason) {
      clearTimeout(this._timer);
      clearTimeout(this._healthy);
      for (const conn of [this._conn, this._attempt]) if (conn) conn.close(code, reason);
      this._conn = this._attempt = null;
      this._clearOut();
      for (const w of this._waiters.splice(0)) w.reject(new Error('the socket is closed'));
    }

    _closed(code, reason, wasClean) {
      this.readyState = RealtimeSocket.CLOSED;
      this.transport = '';
      this.protocol = '';
      this._emit(closeEvent(code, reason, wasClean));
    }

    _emit(e) {
      dispatch(this, e);
    }
  }

  // The readyState constants, on the class and its instances as on
  // WebSocket.
  ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'].forEach((name, value) => {
    Object.defineProperty(RealtimeSocket, name, { value, enumerable: true });
    Object.defineProperty(RealtimeSocket.prototype, name, { value, enumerable: true });
  });
  RealtimeSocket.Subscription = Subscription;
  // For the unit tests only: not part of the API.
  RealtimeSocket._internal = {
    parseFrame, validChannel, backoffCap, backoffDelay, watchdogDelay, checkClose, checkText, utf8Length,
    HEALTHY_MS, RETRY_CODES, SLOW_CODES, SLOW_FAILURES, TOKEN_HEADER, SEQ_HEADER,
  };
  global.RealtimeSocket = RealtimeSocket;
})(globalThis);
