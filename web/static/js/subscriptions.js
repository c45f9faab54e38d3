// Subscriptions: durable ones (online and offline, with what waits for
// them) and the live consumers of each destination.

import { h, pageHead, fmtNum } from './dom.js';
import { dest } from './api.js';
import { DataTable } from './table.js';

export function mount(main) {
  const filter = h('input', { type: 'search', class: 'search', placeholder: 'Filter by name, destination, client-id…', 'aria-label': 'Filter subscriptions' });
  const kind = h('select', { 'aria-label': 'Kind' },
    h('option', { value: '' }, 'All subscriptions'), h('option', { value: 'true' }, 'Durable'), h('option', { value: 'false' }, 'Live'));
  const count = h('span', { class: 'muted' });
  const table = new DataTable({
    endpoint: 'subscriptions',
    id: 'subscriptions',
    sort: 'destination',
    params: () => ({ q: filter.value.trim(), durable: kind.value }),
    empty: 'No subscriptions. Durable ones appear here once a client subscribes with durable:true.',
    onData: (d) => { count.textContent = `${fmtNum(d.total)} ${d.total === 1 ? 'subscription' : 'subscriptions'}`; },
    columns: [
      { label: 'Destination', sort: 'destination', primary: true,
        render: (s) => s.destination.includes('*') || s.destination.includes('#')
          ? h('span', { class: 'name-link' }, s.destination)
          : h('a', { class: 'name-link', href: '/admin/destinations/' + dest(s.destination), 'data-nav': true }, s.destination) },
      { label: 'Name', sort: 'name', render: (s) => s.name ? h('span', { class: 'mono' }, s.name) : h('span', { class: 'muted' }, '—') },
      { label: 'Kind', render: (s) => h('span', { class: 'badge ' + (s.durable ? 'queue' : '') }, s.durable ? 'durable' : 'live') },
      { label: 'State', render: (s) => h('span', { class: 'state ' + (s.online ? 'online' : 'offline') }, s.online ? 'online' : 'offline') },
      { label: 'Consumers', sort: 'consumers', num: true, render: (s) => fmtNum(s.consumers) },
      { label: 'Backlog', sort: 'backlog', num: true, render: (s) => s.type === 'queue' || s.durable ? fmtNum(s.backlog) : h('span', { class: 'muted' }, '—') },
    ],
  });
  let debounce;
  filter.addEventListener('input', () => { clearTimeout(debounce); debounce = setTimeout(() => table.reset(), 200); });
  kind.addEventListener('change', () => table.reset());
  main.append(
    pageHead('Subscriptions', 'Durable subscriptions, online and offline, and the live consumers of each destination.'),
    h('section', { class: 'panel' }, h('div', { class: 'toolbar' }, filter, kind, h('span', { class: 'spacer' }), count), table.el),
  );
  table.load();
  const timer = setInterval(() => table.load(), 3000);
  return () => clearInterval(timer);
}
