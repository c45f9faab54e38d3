// Destinations: queues and topics with their figures. Rates are worked
// out here from the counters of successive refreshes.

import { h, pageHead, fmtNum, fmtRate, fmtDuration } from './dom.js';
import { dest } from './api.js';
import { DataTable } from './table.js';

// rateTracker turns running counters into per-second rates between loads.
export function rateTracker() {
  const last = new Map();
  return {
    update(items) {
      const now = performance.now();
      for (const d of items) {
        const p = last.get(d.name);
        if (p && now > p.at) {
          const secs = (now - p.at) / 1000;
          d.in_rate = Math.max(0, (d.enqueued - p.enqueued) / secs);
          d.out_rate = Math.max(0, (d.dequeued - p.dequeued) / secs);
        }
        last.set(d.name, { at: now, enqueued: d.enqueued, dequeued: d.dequeued });
      }
    },
  };
}

export function typeBadges(d) {
  return [h('span', { class: 'badge ' + d.type }, d.type), d.dlq ? h('span', { class: 'badge dlq', title: 'dead letter queue' }, 'DLQ') : null];
}

export function mount(main, params, navigate) {
  const filter = h('input', { type: 'search', class: 'search', placeholder: 'Filter by name…', 'aria-label': 'Filter destinations', id: 'dest-filter' });
  const type = h('select', { 'aria-label': 'Type', id: 'dest-type' },
    h('option', { value: '' }, 'Queues and topics'), h('option', { value: 'queue' }, 'Queues'), h('option', { value: 'topic' }, 'Topics'));
  const rates = rateTracker();
  const count = h('span', { class: 'muted' });
  const table = new DataTable({
    endpoint: 'destinations',
    id: 'destinations',
    sort: 'name',
    params: () => ({ q: filter.value.trim(), type: type.value }),
    empty: 'No destinations yet. Queues appear when first used; topics when first published or subscribed to.',
    onData: (d) => { count.textContent = `${fmtNum(d.total)} ${d.total === 1 ? 'destination' : 'destinations'}`; },
    columns: [
      { label: 'Name', sort: 'name', primary: true,
        render: (d) => h('a', { class: 'name-link', href: '/admin/destinations/' + dest(d.name), 'data-nav': true, 'data-dest': d.name }, d.name) },
      { label: 'Type', sort: 'type', render: (d) => h('span', { class: 'row' }, typeBadges(d)) },
      { label: 'Depth', sort: 'depth', num: true, render: (d) => d.type === 'queue' ? h('span', { 'data-depth': d.name }, fmtNum(d.depth)) : h('span', { class: 'muted' }, '—') },
      { label: 'Consumers', sort: 'consumers', num: true, render: (d) => fmtNum(d.consumers) },
      { label: 'Unacked', sort: 'unacked', num: true, render: (d) => d.type === 'queue' ? fmtNum(d.unacked) : h('span', { class: 'muted' }, '—') },
      { label: 'In /s', num: true, render: (d) => fmtRate(d.in_rate) },
      { label: 'Out /s', num: true, render: (d) => fmtRate(d.out_rate) },
      { label: 'Oldest', sort: 'oldest_age', num: true, render: (d) => d.depth ? fmtDuration(d.oldest_age_seconds) : h('span', { class: 'muted' }, '—') },
    ],
  });
  // Rates need the counters before the rows are drawn.
  const render = table.render.bind(table);
  table.render = (data) => { rates.update(data.items); render(data); };

  let debounce;
  filter.addEventListener('input', () => { clearTimeout(debounce); debounce = setTimeout(() => table.reset(), 200); });
  type.addEventListener('change', () => table.reset());

  const goName = h('input', { placeholder: '/queue/name or /topic/name', 'aria-label': 'Destination name', class: 'mono go-name', id: 'go-name' });
  const goForm = h('form', { class: 'row', onsubmit: (e) => {
    e.preventDefault();
    const name = goName.value.trim();
    if (name) navigate('/admin/destinations/' + dest(name));
  } }, goName, h('button', { type: 'submit' }, 'Open'));

  main.append(
    pageHead('Destinations', 'Queues and topics. Open one to peek, publish, purge or watch it live.', goForm),
    h('section', { class: 'panel' }, h('div', { class: 'toolbar' }, filter, type, h('span', { class: 'spacer' }), count), table.el),
  );
  table.load();
  const timer = setInterval(() => table.load(), 2000);
  return () => clearInterval(timer);
}
