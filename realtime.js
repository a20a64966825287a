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
(function (global) {
  'use strict';

  const PROTOCOL = 'realtime.v1';
  const TOKEN_HEADER = 'Realtime-Token';
  // Close codes after which the client reconnects: the server is going
  // away or restarting, the connection broke, or a condition is temporary.
  const RETRY_CODES = [1001, 1006, 1011, 1012, 1013, 1014];

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
      this.lastEventId = this.options.lastEventId;
      this.onopen = this.onmessage = this.onclose = this.onerror = null;
      this._conn = null;      // {send, close} of the open connection
      this._worked = '';      // the transport that last opened
      this._round = [];       // transports still to try in this attempt
      this._failures = 0;     // attempts failed since the last open
      this._timer = 0;
      this._connect();
    }

    // send sends text to the server. Like WebSocket.send it throws unless
    // the socket is open. Over EventSource each message is a POST; they are
    // sent one at a time, so they arrive in order.
    send(data) {
      if (this.readyState !== RealtimeSocket.OPEN) throw new Error('RealtimeSocket is not open');
      this._conn.send(String(data));
    }

    // close closes the socket for good.
    close(code, reason) {
      if (this.readyState === RealtimeSocket.CLOSED) return;
      this._drop(code || 1000, reason || '');
      this._finish(code || 1000, reason || '', true);
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
      if (this.lastEventId) u.searchParams.set('lastEventId', this.lastEventId);
      return u.href;
    }

    _openWebSocket() {
      const presented = this.lastEventId;
      let ws;
      try {
        ws = new WebSocket(this._target(true), [PROTOCOL]);
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
        this._opened(conn, 'websocket', id, presented);
      };
      // Without the subprotocol (a server that does not speak it) messages
      // are plain: no ids, no resume.
      ws.onopen = () => { if (ws.protocol !== PROTOCOL) open(''); };
      ws.onmessage = (e) => {
        if (typeof e.data !== 'string') return;
        if (ws.protocol !== PROTOCOL) { this._message(e.data); return; }
        // "ID" alone announces a position; "ID\nDATA" delivers DATA.
        const i = e.data.indexOf('\n');
        const id = i < 0 ? e.data : e.data.slice(0, i);
        if (!opened) open(id);
        else if (id) this.lastEventId = id;
        if (i >= 0) this._message(e.data.slice(i + 1));
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
        this._opened(conn, 'eventsource', e.lastEventId, presented);
      });
      es.onmessage = (e) => {
        if (!opened) return;
        this.lastEventId = e.lastEventId;
        this._message(e.data);
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
    _opened(conn, transport, id, presented) {
      if (this.readyState === RealtimeSocket.CLOSED) { conn.close(1000, ''); return; }
      this._conn = conn;
      this._worked = this.transport = transport;
      this._failures = 0;
      if (id) this.lastEventId = id;
      this.readyState = RealtimeSocket.OPEN;
      const e = new Event('open');
      e.transport = transport;
      e.resumed = presented !== '' && id === presented;
      e.missed = presented !== '' && id !== presented; // messages may have been lost
      this._emit(e);
    }

    _message(data) {
      this._emit(new MessageEvent('message', { data, lastEventId: this.lastEventId }));
    }

    // _lost handles the end of an open connection.
    _lost(code, reason) {
      if (this.readyState === RealtimeSocket.CLOSED) return;
      this._conn = null;
      this.transport = '';
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
      clearTimeout(this._timer);
      this._emit(new CloseEvent('close', { code, reason, wasClean }));
    }

    _emit(e) {
      this.dispatchEvent(e);
      const handler = this['on' + e.type];
      if (typeof handler === 'function') handler.call(this, e);
    }
  }

  RealtimeSocket.CONNECTING = 0;
  RealtimeSocket.OPEN = 1;
  RealtimeSocket.CLOSING = 2;
  RealtimeSocket.CLOSED = 3;
  global.RealtimeSocket = RealtimeSocket;
})(globalThis);
