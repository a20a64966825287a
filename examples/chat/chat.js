// The chat page (examples/chat). Each room is a channel of one
// RealtimeSocket: the page is subscribed to every room it joined and
// shows one, the current room, with its lines and who is in it. Who is in
// a room comes from the channel's presence (asked on every subscribe, then
// kept up to date by join and leave events). On entering a room (and when
// a resume failed) the page asks the server for the room's recent lines.
// The page sends JSON requests: {type: 'say', room, text, nonce},
// {type: 'history', room} and {type: 'ping', t}; the server answers the
// last two to this socket only ({kind: 'history'} and {kind: 'pong'}).
//
// Everything a user wrote reaches the page through textContent and
// dataset, never as HTML.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const ROOM = /^[a-z0-9][a-z0-9-]{0,31}$/;
  const MAX_LINES = 500; // per room; older lines are dropped from the page
  const PING_EVERY = 5000; // ms

  // localStorage can be off (private modes, file policies): then nothing
  // is remembered.
  const store = {
    get(key) { try { return localStorage.getItem(key) || ''; } catch (e) { return ''; } },
    set(key, v) { try { if (v) localStorage.setItem(key, v); else localStorage.removeItem(key); } catch (e) { /* not remembered */ } },
  };

  const params = new URLSearchParams(location.search);
  let myName = (params.get('name') || store.get('chat.name')).trim().slice(0, 32);
  let forceES = params.get('transport') === 'eventsource';

  let sock = null;
  const me = { name: '', socket: '' }; // from the server's pong
  const rooms = new Map(); // name -> {sub, lines: [{at, id, li}], ids: Set, people: Map(socket -> entry), asked, since: presence events while a list is on its way}
  const pending = new Map(); // nonce -> {req, li}: lines sent, not yet back from the server
  let current = '';
  let listed = []; // GET /rooms
  const conn = { rtt: -1, retryAt: 0, detail: '', detailKind: '', detailUntil: 0, code: 0, pingTimer: 0 };

  // ---- lines ----

  function timeOf(at) {
    const t = document.createElement('time');
    const d = new Date(at);
    t.dateTime = d.toISOString();
    t.textContent = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    t.title = d.toLocaleString();
    return t;
  }

  function viaBadge(transport) {
    const via = document.createElement('span');
    via.className = 'via ' + transport;
    via.textContent = transport;
    return via;
  }

  // sayLine is the element of a line someone said.
  function sayLine(ev, cls) {
    const li = document.createElement('li');
    li.className = cls;
    if (ev.from === me.name) li.classList.add('mine');
    li.dataset.from = ev.from;
    li.dataset.transport = ev.transport;
    li.dataset.text = ev.text;
    if (ev.id) li.dataset.id = ev.id;
    const meta = document.createElement('div');
    meta.className = 'meta';
    const from = document.createElement('span');
    from.className = 'from';
    from.textContent = ev.from;
    from.style.color = 'hsl(' + hue(ev.from) + ' 55% 45%)';
    meta.append(from, viaBadge(ev.transport), timeOf(ev.at));
    const text = document.createElement('div');
    text.className = 'text';
    text.textContent = ev.text;
    li.append(meta, text);
    return li;
  }

  function hue(s) {
    let h = 0;
    for (const c of s) h = (h * 31 + c.codePointAt(0)) % 360;
    return h;
  }

  function noteLine(text, warn) {
    const li = document.createElement('li');
    li.className = warn ? 'note warn' : 'note';
    li.textContent = text;
    return li;
  }

  // addLine puts a line in a room's lines in the order of time, and on
  // screen when the room is the current one.
  function addLine(name, at, li, id) {
    const room = rooms.get(name);
    if (!room) return;
    if (id) {
      if (room.ids.has(id)) return;
      room.ids.add(id);
    }
    const item = { at, id, li };
    let i = room.lines.length;
    while (i > 0 && room.lines[i - 1].at > at) i--;
    room.lines.splice(i, 0, item);
    if (room.lines.length > MAX_LINES) {
      for (const old of room.lines.splice(0, room.lines.length - MAX_LINES)) if (old.id) room.ids.delete(old.id);
    }
    if (name === current) renderLog(i === room.lines.length - 1 ? li : null);
  }

  function note(name, text, warn) { addLine(name, Date.now(), noteLine(text, warn)); }

  // renderLog shows the current room's lines, then its lines on their
  // way. With appended, only that line is new, at the end.
  function renderLog(appended) {
    const log = $('log');
    const stick = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    const room = rooms.get(current);
    const mine = [...pending.values()].filter((p) => p.req.room === current).map((p) => p.li);
    if (appended && !mine.length && log.lastElementChild && !log.lastElementChild.classList.contains('empty')) {
      log.append(appended);
    } else {
      const lis = room ? room.lines.map((l) => l.li) : [];
      if (!lis.length && !mine.length) {
        const empty = document.createElement('li');
        empty.className = 'empty';
        empty.textContent = 'Nobody has said anything here yet. Say hello!';
        lis.push(empty);
      }
      log.replaceChildren(...lis, ...mine);
    }
    if (stick || appended) log.scrollTop = log.scrollHeight;
  }

  // ---- people and rooms ----

  function renderWho() {
    const room = rooms.get(current);
    const people = room ? [...room.people.values()] : [];
    people.sort((a, b) => (a.user || '').localeCompare(b.user || '') || a.socket.localeCompare(b.socket));
    $('count').textContent = people.length ? '(' + people.length + ')' : '';
    $('who').replaceChildren(...people.map((p) => {
      const li = document.createElement('li');
      li.dataset.name = p.user || '';
      li.dataset.transport = p.info || '';
      const user = document.createElement('span');
      user.className = 'user';
      user.textContent = p.user || '?';
      li.append(user);
      if (p.socket === me.socket) {
        const you = document.createElement('span');
        you.className = 'you';
        you.textContent = '(you)';
        li.append(you);
      }
      li.append(viaBadge(p.info || '?'));
      return li;
    }));
  }

  function renderRooms() {
    const names = [...new Set([...listed.map((r) => r.name), ...rooms.keys()])];
    $('rooms').replaceChildren(...names.map((n) => {
      const li = document.createElement('li');
      li.dataset.room = n;
      li.classList.toggle('current', n === current);
      li.classList.toggle('joined', rooms.has(n));
      const a = document.createElement('a');
      a.href = '?room=' + encodeURIComponent(n);
      if (n === current) a.setAttribute('aria-current', 'page');
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = n;
      a.append(name);
      a.onclick = (e) => { e.preventDefault(); join(n); };
      const r = listed.find((x) => x.name === n);
      if (r) {
        const count = document.createElement('span');
        count.className = 'count';
        count.textContent = String(r.people);
        count.title = r.people + ' here';
        a.append(count);
      }
      li.append(a);
      return li;
    }));
    // In the sideways row of narrow screens, the current room in view
    // (scrollIntoView could scroll the page itself).
    const ul = $('rooms');
    const cur = ul.querySelector('li.current');
    if (cur && ul.scrollWidth > ul.clientWidth) {
      if (cur.offsetLeft < ul.scrollLeft) ul.scrollLeft = cur.offsetLeft;
      else if (cur.offsetLeft + cur.offsetWidth > ul.scrollLeft + ul.clientWidth) ul.scrollLeft = cur.offsetLeft + cur.offsetWidth - ul.clientWidth;
    }
  }

  async function refreshRooms() {
    try {
      const r = await fetch('/rooms');
      if (r.ok) { listed = await r.json(); renderRooms(); }
    } catch (e) { /* the next refresh will do */ }
  }

  // ---- rooms as channels ----

  // subscribe asks the socket s for the room's channel and handles its
  // events, as long as s is the page's socket.
  function subscribe(s, name, room) {
    const sub = s.subscribe(name);
    room.sub = sub;
    room.asked = false;
    sub.onmessage = (e) => {
      if (s !== sock) return;
      let ev;
      try { ev = JSON.parse(e.data); } catch (err) { return; }
      if (ev.kind === 'say') said(name, ev);
    };
    // After every (re)subscribe: the whole presence list, then its
    // changes; the recent lines unless the server resumed the room.
    sub.onsubscribed = (e) => {
      if (s !== sock) return;
      const status = e.detail.status;
      if (status === 'failed') note(name, 'some messages may be missing', true);
      if (status !== 'resumed' || !room.asked) {
        room.asked = true;
        send({ type: 'history', room: name });
      }
      // Joins and leaves that arrive while the list is on its way are
      // applied again on top of it: the list may predate them (an entry
      // is added to the broker asynchronously, so a page's own join can
      // come before a list without it).
      const since = [];
      room.since = since;
      sub.presence().then((entries) => {
        if (room.since === since) room.since = null;
        if (s !== sock) return;
        room.people = new Map(entries.map((p) => [p.socket, p]));
        for (const [join, entry] of since) {
          if (join) room.people.set(entry.socket, entry);
          else room.people.delete(entry.socket);
        }
        if (name === current) renderWho();
      }, () => { if (room.since === since) room.since = null; });
      refreshRooms(); // the counts now include this page
    };
    sub.onlost = () => { if (s === sock) note(name, 'some messages may be missing', true); };
    sub.onjoin = (e) => {
      if (s !== sock) return;
      if (room.since) room.since.push([true, e.detail.entry]);
      room.people.set(e.detail.entry.socket, e.detail.entry);
      if (name === current) renderWho();
    };
    sub.onleave = (e) => {
      if (s !== sock) return;
      if (room.since) room.since.push([false, e.detail.entry]);
      room.people.delete(e.detail.entry.socket);
      if (name === current) renderWho();
    };
    sub.onunsubscribed = (e) => { if (s === sock) note(name, 'not in this room: ' + e.detail.reason, true); };
  }

  // said handles a line of a room, live or from its history.
  function said(name, ev) {
    if (typeof ev.text !== 'string' || typeof ev.from !== 'string') return;
    const p = ev.nonce && pending.get(ev.nonce);
    if (p && p.req.room === name) pending.delete(ev.nonce);
    addLine(name, ev.at, sayLine(ev, 'say'), ev.id);
    if (p) { renderLog(); renderStatus(); }
  }

  // join subscribes to a room (once) and makes it the current one.
  function join(name) {
    if (!ROOM.test(name)) return;
    if (!rooms.has(name)) {
      const room = { lines: [], ids: new Set(), people: new Map(), sub: null, asked: false, since: null };
      rooms.set(name, room);
      subscribe(sock, name, room);
    }
    current = name;
    $('room').textContent = name;
    document.title = '#' + name + ' · realtime chat';
    renderLog();
    renderWho();
    renderRooms();
    setParam('room', name);
  }

  function setParam(key, value) {
    const u = new URL(location.href);
    if (value) u.searchParams.set(key, value); else u.searchParams.delete(key);
    history.replaceState(null, '', u);
  }

  // ---- the socket ----

  // send sends a request, and returns why it could not, or ''. While the
  // socket reconnects the client queues it, within its bounds.
  function send(req) {
    try { sock.send(JSON.stringify(req)); return ''; } catch (e) { return e.name === 'QuotaExceededError' ? 'too many waiting' : 'disconnected'; }
  }

  function connect(lastEventId) {
    const url = new URL('/chat', location.href);
    if (myName) url.searchParams.set('name', myName);
    const s = new RealtimeSocket(url, { transport: forceES ? 'eventsource' : 'auto', lastEventId: lastEventId || '' });
    sock = s;
    conn.rtt = -1;
    conn.retryAt = 0;
    s.onopen = (e) => {
      if (s !== sock) return;
      conn.retryAt = 0;
      if (e.resumed) flash('resumed: nothing missed', 'resumed');
      else if (e.missed) flash('some messages may be missing', 'missed');
      $('status').dataset.transport = e.transport;
      for (const p of pending.values()) p.li.querySelector('time').textContent = 'sending';
      ping();
      renderStatus();
    };
    s.addEventListener('reconnecting', (e) => {
      if (s !== sock) return;
      conn.retryAt = Date.now() + ((e.detail && e.detail.delay) || 0);
      lost();
    });
    s.onerror = () => { if (s === sock && s.readyState === RealtimeSocket.CONNECTING) lost(); };
    s.onclose = (e) => {
      if (s !== sock) return;
      conn.code = e.code;
      lost();
    };
    s.onmessage = (e) => {
      if (s !== sock || e.channel) return;
      let m;
      try { m = JSON.parse(e.data); } catch (err) { return; }
      if (m.kind === 'pong') pong(m);
      else if (m.kind === 'history' && rooms.has(m.room) && Array.isArray(m.lines)) {
        for (const ev of m.lines) said(m.room, ev);
      }
    };
    for (const [name, room] of rooms) subscribe(s, name, room);
  }

  function lost() {
    delete $('status').dataset.transport;
    for (const p of pending.values()) p.li.querySelector('time').textContent = 'queued';
    conn.rtt = -1;
    renderStatus();
  }

  // reconnect replaces the socket (a new name or transport), resuming
  // the rooms from where the old one was. When the old one was not open,
  // the lines it held for sending go with the new one.
  function reconnect() {
    const old = sock;
    const held = old.readyState !== RealtimeSocket.OPEN;
    sock = null;
    try { old.close(); } catch (e) { /* closed already */ }
    connect(old.lastEventId);
    if (held) for (const p of pending.values()) send(p.req);
    renderStatus();
  }

  function ping() {
    clearTimeout(conn.pingTimer);
    if (sock.readyState === RealtimeSocket.OPEN) send({ type: 'ping', t: performance.now() });
    conn.pingTimer = setTimeout(ping, PING_EVERY);
  }

  function pong(m) {
    conn.rtt = Math.max(0, performance.now() - m.t);
    const changed = me.socket !== m.socket;
    me.name = m.name;
    me.socket = m.socket;
    $('name').placeholder = m.name;
    if (changed) renderWho();
    renderStatus();
  }

  function flash(text, kind) {
    conn.detail = text;
    conn.detailKind = kind;
    conn.detailUntil = Date.now() + 8000;
  }

  // renderStatus shows the connection: its state and transport, the
  // round-trip time, when it tries again, and the lines waiting.
  function renderStatus() {
    if (!sock) return;
    let state, text;
    const rs = sock.readyState;
    if (rs === RealtimeSocket.OPEN) {
      state = 'open';
      text = (sock.transport || 'connected') + (conn.rtt >= 0 ? ' · ' + Math.round(conn.rtt) + ' ms' : '');
    } else if (rs === RealtimeSocket.CONNECTING && !navigator.onLine) {
      state = 'offline';
      text = 'offline';
    } else if (rs === RealtimeSocket.CONNECTING) {
      state = 'connecting';
      const wait = Math.ceil((conn.retryAt - Date.now()) / 1000);
      text = wait > 0 ? 'reconnecting in ' + wait + ' s' : me.socket ? 'reconnecting…' : 'connecting…';
    } else {
      state = 'closed';
      text = 'disconnected' + (conn.code ? ' (' + conn.code + ')' : '');
    }
    if (pending.size && state !== 'open') text += ' · ' + pending.size + ' queued';
    else if (pending.size) text += ' · sending ' + pending.size;
    $('conn').dataset.state = state;
    $('status').textContent = text;
    $('conn').dataset.queued = String(pending.size);
    $('conn').dataset.rtt = conn.rtt >= 0 ? String(Math.round(conn.rtt)) : '';
    const detail = Date.now() < conn.detailUntil ? conn.detail : '';
    $('detail').textContent = detail;
    $('detail').dataset.kind = detail ? conn.detailKind : '';
    $('retry').hidden = state !== 'closed';
  }

  // ---- the controls ----

  $('form').onsubmit = (e) => {
    e.preventDefault();
    const text = $('msg').value.trim();
    if (!text || !current) return;
    const bytes = new Uint8Array(9);
    crypto.getRandomValues(bytes);
    const nonce = btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_');
    const req = { type: 'say', room: current, text, nonce };
    const li = sayLine({ from: me.name || myName || 'you', transport: sock.transport || '…', text, at: Date.now() }, 'pending mine');
    const queued = sock.readyState !== RealtimeSocket.OPEN;
    li.querySelector('time').textContent = queued ? 'queued' : 'sending';
    pending.set(nonce, { req, li });
    const err = send(req);
    if (err) {
      pending.delete(nonce);
      li.classList.replace('pending', 'failed');
      li.querySelector('time').textContent = 'not sent: ' + err;
      addLine(current, Date.now(), li);
    }
    $('msg').value = '';
    renderLog();
    renderStatus();
  };

  $('join-form').onsubmit = (e) => {
    e.preventDefault();
    const name = $('join-room').value.trim().toLowerCase();
    if (!ROOM.test(name)) {
      $('join-room').setCustomValidity('1 to 32 of a-z, 0-9 and -');
      $('join-room').reportValidity();
      return;
    }
    join(name);
    $('join-room').value = '';
  };
  $('join-room').oninput = () => $('join-room').setCustomValidity('');

  // A new name is remembered and takes a new connection (the server
  // reads the name when the socket connects).
  function rename() {
    const name = $('name').value.trim().slice(0, 32);
    if (name === myName) return;
    myName = name;
    store.set('chat.name', name);
    setParam('name', '');
    reconnect();
  }
  $('name-form').onsubmit = (e) => { e.preventDefault(); $('name').blur(); };
  $('name').onchange = rename;

  $('es').checked = forceES;
  $('es').onchange = () => {
    forceES = $('es').checked;
    setParam('transport', forceES ? 'eventsource' : '');
    reconnect();
  };
  $('retry').onclick = reconnect;
  addEventListener('online', renderStatus);
  addEventListener('offline', renderStatus);

  $('name').value = myName;
  connect('');
  refreshRooms().then(() => { if (!current) join(listed.length ? listed[0].name : 'lobby'); });
  for (const r of params.getAll('room')) join(r);
  setInterval(refreshRooms, 5000);
  setInterval(renderStatus, 1000);
}());
