// Connections: every client connection, filterable, each with a button
// that closes it (the client gets an ERROR saying so).

import { api } from './api.js';
import { h, pageHead, fmtNum, fmtBytes, fmtDuration, fmtMs, fmtTime, toast, confirmAction } from './dom.js';
import { DataTable } from './table.js';

const transportLabel = { tcp: 'TCP', ws: 'WebSocket', sockjs: 'SockJS' };

function meter(c) {
  const pct = Math.min(100, c.outbound_fill * 100);
  const fill = h('div', { class: 'fill' + (pct >= 90 ? ' full' : pct >= 50 ? ' high' : '') });
  fill.style.width = pct.toFixed(1) + '%';
  return h('div', { class: 'meter', title: `${fmtBytes(c.outbound_bytes)} of ${fmtBytes(c.outbound_max)}` },
    h('div', { class: 'track' }, fill),
    h('small', null, `${pct < 1 && pct > 0 ? '<1' : Math.round(pct)}% · ${fmtBytes(c.outbound_bytes)}`));
}

export function mount(main) {
  const filter = h('input', { type: 'search', class: 'search', placeholder: 'Filter by address, node, user, client-id, transport…', 'aria-label': 'Filter connections', id: 'conn-filter' });
  const table = new DataTable({
    endpoint: 'connections',
    id: 'connections',
    sort: 'connected_at',
    order: 'desc',
    params: () => ({ q: filter.value.trim() }),
    empty: 'No client is connected.',
    onData: (d) => { count.textContent = `${fmtNum(d.total)} ${d.total === 1 ? 'connection' : 'connections'}`; },
    columns: [
      { label: 'Remote address', sort: 'remote_addr', primary: true,
        render: (c) => h('div', { class: 'mono' }, c.remote_addr, h('span', { class: 'secondary', title: c.node ? 'node · connection id' : 'connection id' }, c.node ? `${c.node} · ${c.id}` : c.id)) },
      { label: 'User', sort: 'user',
        render: (c) => h('div', null, c.user || h('span', { class: 'muted' }, 'anonymous'), c.client_id ? h('span', { class: 'secondary mono', title: 'client-id' }, c.client_id) : null) },
      { label: 'Transport', sort: 'transport',
        render: (c) => h('div', null, h('span', { class: 'badge ' + c.transport }, transportLabel[c.transport] || c.transport),
          c.subprotocol ? h('span', { class: 'secondary mono' }, c.subprotocol) : null) },
      { label: 'STOMP', sort: 'version', render: (c) => c.version || h('span', { class: 'badge warn' }, 'connecting') },
      { label: 'Heart-beat', render: (c) => h('span', { title: 'broker sends every / expects every' }, `${fmtMs(c.heartbeat_out_ms)} / ${fmtMs(c.heartbeat_in_ms)}`) },
      { label: 'Subs', sort: 'subscriptions', num: true, render: (c) => fmtNum(c.subscriptions) },
      { label: 'In', sort: 'messages_in', num: true, render: (c) => fmtNum(c.messages_in) },
      { label: 'Out', sort: 'messages_out', num: true, render: (c) => fmtNum(c.messages_out) },
      { label: 'Outbound', sort: 'outbound_fill', render: meter },
      { label: 'Connected', sort: 'connected_at',
        render: (c) => h('span', { title: fmtTime(c.connected_at) }, fmtDuration(c.connected_seconds) + ' ago') },
      { label: '', actions: true,
        render: (c) => h('button', { class: 'small danger', type: 'button', 'data-close': c.id, 'aria-label': 'Close connection ' + c.remote_addr, onclick: () => close(c) }, 'Close') },
    ],
  });

  async function close(c) {
    const what = `${c.remote_addr}${c.user ? ' (' + c.user + ')' : ''}`;
    if (!await confirmAction('Close this connection?', `The client at ${what} gets an ERROR and is disconnected. Unacknowledged messages go back to their queues.`, 'Close connection')) return;
    try {
      await api('connections/' + encodeURIComponent(c.id), { method: 'DELETE' });
      toast(`Closed ${what}`);
    } catch (err) {
      toast(err.message, 'error');
    }
    table.load();
  }

  let debounce;
  filter.addEventListener('input', () => { clearTimeout(debounce); debounce = setTimeout(() => table.reset(), 200); });
  const count = h('span', { class: 'muted', id: 'conn-count' });
  main.append(
    pageHead('Connections', 'Clients connected over TCP, WebSocket and SockJS.'),
    h('section', { class: 'panel' }, h('div', { class: 'toolbar' }, filter, h('span', { class: 'spacer' }), count), table.el),
  );
  table.load();
  const timer = setInterval(() => table.load(), 2000);
  return () => clearInterval(timer);
}
