// The dashboard: polls GET /stats (the same registry as /metrics) every
// 2 s, shows the sockets by transport and the totals, and makes rates
// of the message counters from two polls in a row. It writes text only
// (textContent) and builds no HTML, as the page's CSP wants.
'use strict';

const POLL = 2000;
const KEEP = 60; // points of the sparkline: 2 minutes
let last = null;
const rates = [];

const $ = (id) => document.getElementById(id);
const fmt = (n) => Math.round(n).toLocaleString('en');

function rate(now, prev, key) {
  const dt = (now.at - prev.at) / 1000;
  return dt > 0 ? Math.max(0, (now.messages[key] - prev.messages[key]) / dt) : 0;
}

function draw() {
  const max = Math.max(1, ...rates);
  const step = 240 / (KEEP - 1);
  const start = KEEP - rates.length;
  $('line').setAttribute('points', rates.map((r, i) => `${((start + i) * step).toFixed(1)},${(58 - (r / max) * 56).toFixed(1)}`).join(' '));
}

function show(s) {
  $('ws').textContent = fmt(s.sockets.websocket || 0);
  $('es').textContent = fmt(s.sockets.eventsource || 0);
  $('fallbacks').textContent = fmt(s.fallbacks);
  $('reconnects').textContent = fmt(s.reconnections);
  $('connections').textContent = fmt(s.connections);
  $('resumes').textContent = `${fmt(s.resumes.resumed)} / ${fmt(s.resumes.failed)}`;
  $('messages').textContent = `${fmt(s.messages.in)} / ${fmt(s.messages.out)}`;
  $('bytes').textContent = `${fmt(s.bytes.in)} / ${fmt(s.bytes.out)}`;
  $('refusals').textContent = fmt(s.refusals);
  $('drops').textContent = fmt(s.drops);
  $('missed').textContent = fmt(s.heartbeatMissed);
  if (last) {
    const out = rate(s, last, 'out');
    $('out-rate').textContent = out.toFixed(1);
    $('in-rate').textContent = rate(s, last, 'in').toFixed(1);
    rates.push(out);
    if (rates.length > KEEP) rates.shift();
    draw();
  }
  last = s;
}

async function poll() {
  try {
    const resp = await fetch('/stats', { cache: 'no-store' });
    if (!resp.ok) throw new Error(resp.status + ' ' + resp.statusText);
    show(await resp.json());
    $('state').textContent = 'updated ' + new Date().toLocaleTimeString();
    $('state').dataset.state = 'ok';
  } catch (err) {
    $('state').textContent = 'cannot read /stats: ' + err.message;
    $('state').dataset.state = 'bad';
  }
  setTimeout(poll, POLL);
}

poll();
