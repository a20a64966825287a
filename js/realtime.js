// realtime.js: the browser client of github.com/realtime-go/realtime.
//
//   const sock = new RealtimeSocket('/socket');
//   sock.onopen = (e) => console.log('open over', sock.transport);
//   sock.onmessage = (e) => console.log(e.data);
//   sock.send('hello');
//
// It has the shape of the browser's WebSocket (onopen, onmessage, onclose,
// onerror, send, close, readyState) plus `transport`, the transport in use.
// It tries a WebSocket first and falls back to EventSource plus fetch POSTs
// when the upgrade fails or does not open within `connectTimeout`. When a
// connection is lost it reconnects, with backoff, and resumes from the id
// of the last message it received, so that it gets each missed message once.
// Unlike a WebSocket, `open` fires on every (re)connection and `close` only
// once, when the socket is closed for good. The wire protocol is described
// in the Go package's documentation (doc.go).
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
//                 after the replay of what it missed; status 'failed'
//                 means messages may be missing (the history no longer
//                 reaches back): catch up by other means;
//   unsubscribed  detail {channel, reason}: left (reason 'left'), or refused
//                 by the server; the Subscription is over and is not asked
//                 for again (a refusal may be temporary: subscribe again);
//   lost          detail {channel}: mid-stream the server lost its place in
//                 the channel: messages may be missing, live ones follow;
//   join, leave   detail {channel, entry}, entry = {socket, user, info}.
// Its methods: publish(text) (throws unless the socket is open, like send),
// presence() (a Promise of the entries, rejected when the server refuses, as
// for a channel the socket is not in, or when the connection ends first),
// unsubscribe(). A subscription is asked for when made (or on the
// next open) and again after every reconnection, before anything else the
// page sends, and the server resumes it from the last event id.
//
// The socket itself still fires `message` for every message: those sent to
// this socket only (e.channel === '') and, so that a page written for one
// room keeps working when the server puts it in channels, every channel
// message too (e.channel names it). It also fires subscribed, unsubscribed,
// lost, join and leave for every channel, including those the server put
// the socket in, and `servererror` (detail {text}) when the server could not
// parse a request. Against a server that speaks only realtime.v1 (it
// selects that WebSocket subprotocol) everything works as before, and each
// Subscription gets `unsubscribed` with the reason 'realtime.v1', and
// publish and presence throw. Over EventSource the client cannot see which
// protocol the server chose and counts on realtime.v2, which this file's
// own server (realtime.ClientJS) speaks.
(function (global) {
  'use strict';

  const PROTOCOL_V1 = 'realtime.v1';
  const PROTOCOL_V2 = 'realtime.v2';
  const TOKEN_HEADER = 'Realtime-Token';
  // Close codes after which the client reconnects: the server is going
  // away or restarting, the connection broke, or a condition is temporary.
  const RETRY_CODES = [1001, 1006, 1011, 1012, 1013, 1014];
  const KINDS = ['message', 'subscribed', 'unsubscribed', 'lost', 'join', 'leave', 'presence', 'error'];

  // validChannel reports whether name can be a channel's: 1 to 200 bytes
  // of UTF-8 without spaces or control characters.
  function validChannel(name) {
    return /^[^ \x00-\x1f\x7f-\x9f]+$/u.test(name) && new TextEncoder().encode(name).length <= 200;
  }

  // dispatch fires e on target, and target's on<type> property.
  function dispatch(target, e) {
    target.dispatchEvent(e);
    const handler = target['on' + e.type];
    if (typeof handler === 'function') handler.call(target, e);
  }

  // parseFrame parses a realtime.v2 server message after its id: "HEADER"
  // or "HEADER\nDATA", HEADER being "KIND" or "KIND CHANNEL". It returns
  // null for a malformed one.
  function parseFrame(frame) {
    const nl = frame.indexOf('\n');
    const header = nl < 0 ? frame : frame.slice(0, nl);
    const data = nl < 0 ? '' : frame.slice(nl + 1);
    const sp = header.indexOf(' ');
    const kind = sp < 0 ? header : header.slice(0, sp);
    const channel = sp < 0 ? '' : header.slice(sp + 1);
    if (!KINDS.includes(kind)) return null;
    if (sp >= 0 ? !validChannel(channel) : kind !== 'message' && kind !== 'error') return null;
    const f = { kind, channel, data };
    try {
      if (kind === 'subscribed' && !['fresh', 'resumed', 'failed'].includes(data)) return null;
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
        sock._conn.send('unsubscribe ' + this.channel);
      }
    }
  }

  class RealtimeSocket extends EventTarget {
    // options: transport ('auto', 'websocket' or 'eventsource'),
    // connectTimeout (ms, 5000), minDelay and maxDelay (reconnect backoff
    // in ms, 500 and 30000), lastEventId (to resume across page loads).
    constructor(url, options) {
      super();
      this.options = Object.assign({
        transport: 'auto', connectTimeout: 5000, minDelay: 500, maxDelay: 30000, lastEventId: '',
      }, options);
      this.url = new URL(url, global.location.href).href;
      this.readyState = RealtimeSocket.CONNECTING;
      this.transport = ''; // 'websocket' or 'eventsource' while open
      this.protocol = '';  // 'realtime.v2', 'realtime.v1' or '' (a plain WebSocket) while open
      this.lastEventId = this.options.lastEventId;
      this.onopen = this.onmessage = this.onclose = this.onerror = null;
      this._conn = null;      // {send, close} of the open connection
      this._worked = '';      // the transport that last opened
      this._round = [];       // transports still to try in this attempt
      this._failures = 0;     // attempts failed since the last open
      this._timer = 0;
      this._subs = new Map();    // channel -> Subscription
      this._waiters = [];        // presence() calls waiting, in the order of their requests
      this._connect();
    }

    // send sends text to the server. Like WebSocket.send it throws unless
    // the socket is open. Over EventSource each message is a POST; they are
    // sent one at a time, so they arrive in order.
    send(data) {
      if (this.readyState !== RealtimeSocket.OPEN) throw new Error('RealtimeSocket is not open');
      const text = String(data);
      this._conn.send(this.protocol === PROTOCOL_V2 ? 'message\n' + text : text);
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
        if (this.protocol === PROTOCOL_V2) this._conn.send('subscribe ' + channel);
        // Once the caller has had the Subscription to set its handlers.
        else queueMicrotask(() => { if (this._subs.get(channel) === sub) this._refuseV1(sub); });
      }
      return sub;
    }

    // close closes the socket for good.
    close(code, reason) {
      if (this.readyState === RealtimeSocket.CLOSED) return;
      this._drop(code || 1000, reason || '');
      this._finish(code || 1000, reason || '', true);
    }

    // _request sends a channel request, which needs realtime.v2.
    _request(text) {
      if (this.readyState !== RealtimeSocket.OPEN) throw new Error('RealtimeSocket is not open');
      if (this.protocol !== PROTOCOL_V2) throw new Error('the server speaks ' + (this.protocol || 'no subprotocol') + ': no channels');
      this._conn.send(text);
    }

    _connect() {
      const t = this.options.transport;
      if (t !== 'auto') this._round = [t];
      else if (this._worked === 'eventsource') this._round = ['eventsource', 'websocket'];
      else this._round = ['websocket', 'eventsource'];
      this._next();
    }

    // _next tries the next transport of the round, or waits and starts a
    // new round.
    _next() {
      if (this.readyState === RealtimeSocket.CLOSED) return;
      const t = this._round.shift();
      if (t === 'websocket') this._openWebSocket();
      else if (t === 'eventsource') this._openEventSource();
      else {
        const delay = Math.min(this.options.maxDelay, this.options.minDelay * 2 ** this._failures++);
        this._timer = setTimeout(() => this._connect(), delay * (0.5 + Math.random() / 2));
      }
    }

    _target(wsScheme) {
      const u = new URL(this.url);
      if (wsScheme) u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
      else u.searchParams.set('protocol', PROTOCOL_V2);
      if (this.lastEventId) u.searchParams.set('lastEventId', this.lastEventId);
      return u.href;
    }

    _openWebSocket() {
      const presented = this.lastEventId;
      let ws;
      try {
        ws = new WebSocket(this._target(true), [PROTOCOL_V2, PROTOCOL_V1]);
      } catch (err) {
        this._next();
        return;
      }
      let opened = false;
      const conn = {
        send: (text) => ws.send(text),
        close: (code, reason) => { ws.onclose = ws.onmessage = null; ws.close(code, reason); },
      };
      const timer = setTimeout(() => { conn.close(1000, ''); this._next(); }, this.options.connectTimeout);
      const open = (id) => {
        opened = true;
        clearTimeout(timer);
        this._opened(conn, 'websocket', ws.protocol, id, presented);
      };
      // Without a subprotocol (a server that does not speak it) messages
      // are plain: no ids, no resume.
      ws.onopen = () => { if (ws.protocol !== PROTOCOL_V1 && ws.protocol !== PROTOCOL_V2) open(''); };
      ws.onmessage = (e) => {
        if (typeof e.data !== 'string') return;
        if (ws.protocol !== PROTOCOL_V1 && ws.protocol !== PROTOCOL_V2) { this._message(e.data, ''); return; }
        // "ID" alone announces a position; "ID\nDATA" delivers DATA.
        const i = e.data.indexOf('\n');
        const id = i < 0 ? e.data : e.data.slice(0, i);
        if (!opened) open(id);
        else if (id) this.lastEventId = id;
        if (i >= 0 && !this._frame(conn, e.data.slice(i + 1))) {
          // A browser may only close with 1000 or 3000-4999.
          conn.close(1000, 'malformed message');
          this._lost(1002, 'malformed message');
        }
      };
      ws.onclose = (e) => {
        clearTimeout(timer);
        if (opened) this._lost(e.code, e.reason);
        else this._next();
      };
    }

    _openEventSource() {
      const presented = this.lastEventId;
      const es = new EventSource(this._target(false));
      let opened = false;
      let token = '';
      let posts = Promise.resolve();
      const conn = {
        send: (text) => {
          posts = posts.then(() => fetch(this.url, {
            method: 'POST', body: text,
            headers: { [TOKEN_HEADER]: token, 'Content-Type': 'text/plain;charset=utf-8' },
          })).then((r) => {
            if (!r.ok) throw new Error('POST answered ' + r.status);
          }).catch(() => {
            // The message may be lost; the stream is not to be trusted
            // either (404 and 410 mean it has ended): start over.
            this._emit(new Event('error'));
            if (this._conn === conn) { es.close(); this._lost(1006, 'POST failed'); }
          });
        },
        close: () => es.close(),
      };
      const timer = setTimeout(() => { es.close(); this._next(); }, this.options.connectTimeout);
      es.addEventListener('realtime.hello', (e) => {
        token = e.data;
        if (opened) return;
        opened = true;
        clearTimeout(timer);
        this._opened(conn, 'eventsource', PROTOCOL_V2, e.lastEventId, presented);
      });
      // A new last event id that no message carried (realtime.v1).
      es.addEventListener('realtime.position', (e) => { if (opened && e.lastEventId) this.lastEventId = e.lastEventId; });
      es.onmessage = (e) => {
        if (!opened) return;
        if (e.lastEventId) this.lastEventId = e.lastEventId;
        if (!this._frame(conn, e.data)) {
          es.close();
          this._lost(1002, 'malformed message');
        }
      };
      es.addEventListener('realtime.close', (e) => {
        const sp = e.data.indexOf(' ');
        es.close();
        clearTimeout(timer);
        this._lost(Number(sp < 0 ? e.data : e.data.slice(0, sp)), sp < 0 ? '' : e.data.slice(sp + 1));
      });
      // The browser would reconnect by itself, but without backoff and
      // with a token that is no longer valid: do it here instead.
      es.onerror = () => {
        es.close();
        clearTimeout(timer);
        if (opened) this._lost(1006, '');
        else this._next();
      };
    }

    // _opened makes conn the connection in use. id is the position the
    // server starts from: the id presented if it could resume from it.
    _opened(conn, transport, protocol, id, presented) {
      if (this.readyState === RealtimeSocket.CLOSED) { conn.close(1000, ''); return; }
      this._conn = conn;
      this._worked = this.transport = transport;
      this.protocol = protocol;
      this._failures = 0;
      if (id) this.lastEventId = id;
      this.readyState = RealtimeSocket.OPEN;
      // The subscriptions go first, before anything the page sends.
      for (const sub of [...this._subs.values()]) {
        if (protocol === PROTOCOL_V2) conn.send('subscribe ' + sub.channel);
        else this._refuseV1(sub);
      }
      const e = new Event('open');
      e.transport = transport;
      e.protocol = protocol;
      e.resumed = presented !== '' && id === presented;
      e.missed = presented !== '' && id !== presented; // messages may have been lost
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
      if (this.protocol !== PROTOCOL_V2) { this._message(data, ''); return true; }
      const f = parseFrame(data);
      if (!f) return false;
      const sub = this._subs.get(f.channel);
      switch (f.kind) {
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

    // _lost handles the end of an open connection.
    _lost(code, reason) {
      if (this.readyState === RealtimeSocket.CLOSED) return;
      this._conn = null;
      this.transport = '';
      this.protocol = '';
      // Presence requests in flight have no answer coming.
      for (const w of this._waiters.splice(0)) w.reject(new Error('the connection ended before the answer'));
      if (!RETRY_CODES.includes(code)) { this._finish(code, reason, code !== 1006); return; }
      this.readyState = RealtimeSocket.CONNECTING;
      this._emit(new Event('error'));
      this._round = [];
      this._next();
    }

    _drop(code, reason) {
      clearTimeout(this._timer);
      if (this._conn) this._conn.close(code, reason);
      this._conn = null;
    }

    _finish(code, reason, wasClean) {
      this.readyState = RealtimeSocket.CLOSED;
      this.transport = '';
      this.protocol = '';
      clearTimeout(this._timer);
      for (const w of this._waiters.splice(0)) w.reject(new Error('the socket is closed'));
      this._emit(new CloseEvent('close', { code, reason, wasClean }));
    }

    _emit(e) {
      dispatch(this, e);
    }
  }

  RealtimeSocket.CONNECTING = 0;
  RealtimeSocket.OPEN = 1;
  RealtimeSocket.CLOSING = 2;
  RealtimeSocket.CLOSED = 3;
  RealtimeSocket.Subscription = Subscription;
  global.RealtimeSocket = RealtimeSocket;
})(globalThis);
