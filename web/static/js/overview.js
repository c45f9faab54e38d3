// Overview: the broker at a glance, with live charts fed every second by
// /api/v1/overview/stream and slower figures from /api/v1/overview.

import { api } from './api.js';
import { h, card, setText, pageHead, fmtNum, fmtRate, fmtBytes, fmtDuration, fmtCompact } from './dom.js';
import { LineChart } from './chart.js';

function bars(id) {
  return h('div', { class: 'bars', id });
}

function renderBars(id, counts, order) {
  const el = document.getElementById(id);
  if (!el) return;
  const entries = Object.entries(counts || {}).filter(([, n]) => n > 0);
  entries.sort((a, b) => (order ? order.indexOf(a[0]) - order.indexOf(b[0]) : b[1] - a[1]));
  const total = entries.reduce((t, [, n]) => t + n, 0);
  if (!entries.length) {
    el.replaceChildren(h('div', { class: 'muted' }, 'No sessions.'));
    return;
  }
  el.replaceChildren(...entries.map(([k, n]) => {
    const fill = h('div', { class: 'fill' });
    fill.style.width = (total ? (100 * n) / total : 0).toFixed(1) + '%';
    return h('div', { class: 'bar-row' }, h('span', null, k), h('div', { class: 'track' }, fill), h('span', { class: 'n' }, fmtNum(n)));
  }));
}

const transportNames = { tcp: 'TCP', ws: 'WebSocket', sockjs: 'SockJS' };

export function mount(main) {
  const live = h('span', { class: 'live', id: 'live' }, 'Connecting…');
  main.append(
    pageHead('Overview', 'What the broker is doing right now.', live),
    h('div', { class: 'cards' },
      card('Connections', 'f-conns'),
      card('Messages in', 'f-in', { dot: 'in', sub: 'per second' }),
      card('Messages out', 'f-out', { dot: 'out', sub: 'per second' }),
      card('Waiting in queues', 'f-waiting'),
      card('Destinations', 'f-dests'),
      card('Uptime', 'f-uptime')),
    h('div', { class: 'charts' },
      h('section', { class: 'panel' },
        h('header', null, h('h2', null, 'Message rates'),
          h('div', { class: 'legend' },
            h('span', null, h('i', { class: 'dot in' }), 'In ', h('b', { id: 'lg-in' }, '–'), '/s'),
            h('span', null, h('i', { class: 'dot out' }), 'Out ', h('b', { id: 'lg-out' }, '–'), '/s'))),
        h('div', { class: 'body' }, h('div', { class: 'chart', id: 'chart-rates' }))),
      h('section', { class: 'panel' },
        h('header', null, h('h2', null, 'Connections'),
          h('div', { class: 'legend' }, h('span', null, h('i', { class: 'dot conn' }), 'Open ', h('b', { id: 'lg-conns' }, '–')))),
        h('div', { class: 'body' }, h('div', { class: 'chart', id: 'chart-conns' })))),
    h('div', { class: 'split' },
      h('section', { class: 'panel' }, h('header', null, h('h2', null, 'Sessions')),
        h('div', { class: 'body stack-gap' },
          h('h3', null, 'By transport'), bars('by-transport'),
          h('h3', null, 'By STOMP version'), bars('by-version'))),
      h('section', { class: 'panel' }, h('header', null, h('h2', null, 'Messages')),
        h('div', { class: 'body' }, h('dl', { class: 'kv' },
          h('dt', null, 'Received'), h('dd', { id: 'k-in' }, '–'),
          h('dt', null, 'Delivered'), h('dd', { id: 'k-out' }, '–'),
          h('dt', null, 'Unacknowledged'), h('dd', { id: 'k-unacked' }, '–'),
          h('dt', null, 'Expired'), h('dd', { id: 'k-expired' }, '–'),
          h('dt', null, 'Dead-lettered'), h('dd', { id: 'k-dead' }, '–'),
          h('dt', null, 'Slow-consumer disconnects'), h('dd', { id: 'k-slow' }, '–')))),
      h('section', { class: 'panel' }, h('header', null, h('h2', null, 'Resources')),
        h('div', { class: 'body' }, h('dl', { class: 'kv' },
          h('dt', null, 'Go heap'), h('dd', { id: 'k-heap' }, '–'),
          h('dt', null, 'Goroutines'), h('dd', { id: 'k-goroutines' }, '–'),
          h('dt', null, 'Queued for clients'), h('dd', { id: 'k-outbound' }, '–'),
          h('dt', null, 'Memory'), h('dd', { id: 'k-memory' }, '–'),
          h('dt', null, 'Store on disk'), h('dd', { id: 'k-store' }, '–'),
          h('dt', null, 'Durable subscriptions'), h('dd', { id: 'k-durables' }, '–'),
          h('dt', null, 'Go version'), h('dd', { id: 'k-go' }, '–'))))),
  );

  const rates = new LineChart(document.getElementById('chart-rates'), {
    series: [{ key: 'in', label: 'Messages in per second', color: '#0ea5e9' }, { key: 'out', label: 'Messages out per second', color: '#10b981' }],
  });
  const conns = new LineChart(document.getElementById('chart-conns'), {
    series: [{ key: 'connections', label: 'Open connections', color: '#4f46e5' }],
    format: (v) => fmtCompact(v),
    integer: true,
  });

  function showSample(p) {
    setText('f-conns', fmtNum(p.connections));
    setText('f-in', fmtRate(p.in));
    setText('f-out', fmtRate(p.out));
    setText('f-waiting', fmtNum(p.waiting));
    setText('f-uptime', fmtDuration(p.uptime_seconds));
    setText('lg-in', fmtRate(p.in));
    setText('lg-out', fmtRate(p.out));
    setText('lg-conns', fmtNum(p.connections));
    setText('k-in', fmtNum(p.messages_in));
    setText('k-out', fmtNum(p.messages_out));
    setText('k-expired', fmtNum(p.expired));
    setText('k-dead', fmtNum(p.dead_lettered));
    setText('k-heap', fmtBytes(p.heap_bytes));
  }

  // The stream carries the cheap figures every second; sessions, store
  // size and the like come from the full overview every few seconds.
  const es = new EventSource('/api/v1/overview/stream');
  const liveEl = document.getElementById('live');
  es.addEventListener('open', () => { liveEl.textContent = 'Live'; liveEl.classList.add('on'); });
  es.addEventListener('error', () => { liveEl.textContent = 'Reconnecting…'; liveEl.classList.remove('on'); });
  es.addEventListener('history', (e) => {
    const past = JSON.parse(e.data) || [];
    rates.set(past);
    conns.set(past);
    if (past.length) showSample(past[past.length - 1]);
  });
  es.addEventListener('sample', (e) => {
    const p = JSON.parse(e.data);
    rates.push(p);
    conns.push(p);
    showSample(p);
  });

  async function refresh() {
    let o;
    try {
      o = await api('overview');
    } catch {
      return; // api() has sent a lost session to the login form
    }
    setText('f-dests', fmtNum(o.destinations));
    setText('f-dests-sub', `${fmtNum(o.queues)} queues · ${fmtNum(o.topics)} topics`);
    setText('f-conns-sub', Object.entries(o.sessions.by_transport).map(([k, n]) => `${fmtNum(n)} ${transportNames[k] || k}`).join(' · ') || 'none open');
    setText('f-waiting-sub', `${fmtNum(o.messages_unacked)} unacknowledged`);
    const started = new Date(o.started_at);
    const sameDay = started.toDateString() === new Date().toDateString();
    setText('f-uptime-sub', 'since ' + (sameDay
      ? started.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', hour12: false })
      : started.toLocaleDateString(undefined, { dateStyle: 'medium' })));
    setText('k-unacked', fmtNum(o.messages_unacked));
    setText('k-slow', fmtNum(o.slow_consumer_disconnects));
    setText('k-goroutines', fmtNum(o.go.goroutines));
    setText('k-outbound', fmtBytes(o.outbound_bytes));
    const mem = o.memory;
    setText('k-memory', mem.alarm
      ? `ALARM: ${fmtBytes(mem.bytes)} over ${fmtBytes(mem.high_watermark_bytes)}, publishers paused`
      : mem.high_watermark_bytes ? `${fmtBytes(mem.bytes)} of ${fmtBytes(mem.high_watermark_bytes)}` : fmtBytes(mem.bytes));
    document.getElementById('k-memory').classList.toggle('alarm', mem.alarm);
    setText('k-store', o.store_bytes === null ? 'n/a' : fmtBytes(o.store_bytes));
    setText('k-durables', fmtNum(o.durable_subscriptions));
    setText('k-go', o.go.version);
    const byTransport = {};
    for (const [k, n] of Object.entries(o.sessions.by_transport)) byTransport[transportNames[k] || k] = n;
    renderBars('by-transport', byTransport);
    renderBars('by-version', o.sessions.by_version, ['1.2', '1.1', '1.0', 'connecting']);
  }
  refresh();
  const timer = setInterval(refresh, 5000);

  return () => {
    es.close();
    clearInterval(timer);
    rates.destroy();
    conns.destroy();
  };
}
