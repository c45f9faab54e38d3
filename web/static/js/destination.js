// One destination: its figures, purge and delete, a form to publish a
// test message, peek at waiting messages, and a live tail.

import { api, dest } from './api.js';
import { h, card, setText, fmtNum, fmtRate, fmtDuration, fmtBytes, fmtClock, toast, confirmAction } from './dom.js';
import { rateTracker, typeBadges } from './destinations.js';

const TAIL_KEEP = 100;

function messageView(m) {
  const rows = Object.entries(m.headers || {}).map(([k, v]) => h('tr', null, h('td', null, k), h('td', null, v)));
  const body = m.body_base64 !== undefined && m.body_base64 !== ''
    ? `(binary, base64) ${m.body_base64}`
    : m.body;
  return h('article', { class: 'message' },
    h('div', { class: 'meta' },
      h('span', { class: 'mono' }, m.id),
      h('span', { title: m.timestamp }, fmtClock(m.timestamp)),
      h('span', null, fmtBytes(m.size)),
      h('span', null, 'priority ' + m.priority),
      m.persistent ? h('span', { class: 'badge ok' }, 'persistent') : null,
      m.redelivered ? h('span', { class: 'badge warn' }, 'redelivered') : null,
      m.truncated ? h('span', { class: 'badge' }, 'body cut') : null),
    rows.length ? h('table', null, h('tbody', null, rows)) : null,
    h('pre', null, body === '' ? h('span', { class: 'muted' }, '(empty body)') : body));
}

function headerRow(key = '', value = '') {
  const row = h('div', { class: 'header-row' },
    h('input', { placeholder: 'header', 'aria-label': 'Header name', class: 'mono', value: key }),
    h('input', { placeholder: 'value', 'aria-label': 'Header value', class: 'mono', value }),
    h('button', { type: 'button', class: 'small', 'aria-label': 'Remove header', onclick: () => row.remove() }, '×'));
  return row;
}

export function mount(main, { name }, navigate) {
  const isQueue = name.startsWith('/queue/');
  const path = 'destinations/' + dest(name);
  const rates = rateTracker();

  const purge = isQueue ? h('button', { type: 'button', class: 'danger', id: 'purge' }, 'Purge') : null;
  const del = h('button', { type: 'button', class: 'danger', id: 'delete' }, 'Delete');
  const missing = h('div', { class: 'alert', hidden: true, id: 'missing' });

  // Publish form.
  const headers = h('div', { class: 'headers-edit', id: 'pub-headers' }, headerRow('content-type', 'text/plain'));
  const body = h('textarea', { id: 'pub-body', 'aria-label': 'Body', placeholder: 'Message body' }, '');
  const pubForm = h('form', { class: 'stack', id: 'publish-form' },
    h('div', { class: 'field' }, h('span', { class: 'field-label' }, 'Headers'), headers,
      h('div', null, h('button', { type: 'button', class: 'small', onclick: () => headers.append(headerRow()) }, '+ Add header'))),
    h('label', { class: 'field' }, 'Body', body),
    h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary', id: 'publish' }, 'Publish')));
  pubForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const hs = {};
    for (const row of headers.querySelectorAll('.header-row')) {
      const [k, v] = row.querySelectorAll('input');
      if (k.value.trim()) hs[k.value.trim()] = v.value;
    }
    try {
      await api(path + '/messages', { method: 'POST', json: { headers: hs, body: body.value } });
      toast('Published to ' + name);
      refresh();
    } catch (err) {
      toast(err.message, 'error');
    }
  });

  // Peek.
  const peekN = h('input', { type: 'number', min: 1, max: 1000, value: 10, 'aria-label': 'How many', id: 'peek-n' });
  peekN.style.width = '90px';
  // On a topic the same panel shows its history: the latest messages it
  // keeps for subscribers that ask for them (x-history, x-resume-after).
  const peekList = h('div', { class: 'messages', id: 'peek-list' }, h('div', { class: 'muted' },
    isQueue ? 'Shows waiting messages without taking them from the queue.' : 'The latest messages this topic keeps for subscribers that ask for its history.'));
  const peekBtn = h('button', { type: 'button', id: 'peek' }, isQueue ? 'Peek' : 'Show');
  async function peek() {
    try {
      const r = await api(path + '/messages?limit=' + encodeURIComponent(peekN.value || 10));
      const empty = isQueue ? 'The queue is empty.' : 'This topic keeps no messages (topic history is off for it, or nothing was published).';
      peekList.replaceChildren(...(r.messages.length ? r.messages.map(messageView) : [h('div', { class: 'muted' }, empty)]));
      peekList.dataset.count = r.messages.length;
    } catch (err) {
      if (err.status !== 404) toast(err.message, 'error');
    }
  }
  peekBtn.addEventListener('click', peek);
  if (!isQueue) peek();

  // Live tail.
  let es = null;
  let seen = 0;
  let dropped = 0;
  const tailBtn = h('button', { type: 'button', id: 'tail-toggle', class: 'primary' }, 'Start');
  const tailStatus = h('span', { class: 'tail-status', id: 'tail-status' }, 'Not watching.');
  const tailList = h('div', { class: 'messages', id: 'tail-list' });
  function tailText() {
    tailStatus.textContent = `Watching · ${fmtNum(seen)} ${seen === 1 ? 'message' : 'messages'}` + (dropped ? ` · ${fmtNum(dropped)} dropped (too fast to show)` : '');
  }
  function stopTail() {
    if (es) es.close();
    es = null;
    tailBtn.textContent = 'Start';
    tailBtn.className = 'primary';
    tailStatus.textContent = seen ? `Stopped after ${fmtNum(seen)} messages.` : 'Not watching.';
  }
  tailBtn.addEventListener('click', () => {
    if (es) return stopTail();
    seen = 0;
    dropped = 0;
    tailList.replaceChildren();
    es = new EventSource('/api/v1/' + path + '/tail');
    tailBtn.textContent = 'Stop';
    tailBtn.className = '';
    tailStatus.textContent = 'Connecting…';
    es.addEventListener('ready', () => { tailText(); tailList.dataset.ready = '1'; });
    es.addEventListener('message', (e) => {
      seen++;
      tailList.prepend(messageView(JSON.parse(e.data)));
      while (tailList.children.length > TAIL_KEEP) tailList.lastChild.remove();
      tailText();
    });
    es.addEventListener('dropped', (e) => { dropped = JSON.parse(e.data).dropped; tailText(); });
    es.addEventListener('error', () => { if (es) tailStatus.textContent = 'Connection lost; retrying…'; });
  });

  main.append(
    h('div', { class: 'page-head' },
      h('div', null,
        h('a', { class: 'crumb', href: '/admin/destinations', 'data-nav': true }, '‹ Destinations'),
        h('div', { class: 'row' }, h('h1', { class: 'title-name', id: 'dest-name' }, name), h('span', { class: 'row', id: 'dest-badges' }))),
      h('div', { class: 'actions' }, purge, del)),
    missing,
    h('div', { class: 'cards' },
      isQueue ? card('Depth', 'd-depth', { sub: 'waiting' }) : null,
      card(isQueue ? 'Consumers' : 'Subscribers', 'd-consumers'),
      isQueue ? card('Unacknowledged', 'd-unacked') : null,
      card('In', 'd-in', { dot: 'in', sub: 'per second' }),
      card('Out', 'd-out', { dot: 'out', sub: 'per second' }),
      isQueue ? card('Oldest message', 'd-oldest') : null),
    h('div', { class: 'detail' },
      h('section', { class: 'panel' }, h('header', null, h('h2', null, 'Publish a test message')), h('div', { class: 'body' }, pubForm)),
      h('section', { class: 'panel' },
        h('header', null, h('h2', null, isQueue ? 'Peek' : 'Retained messages'), h('div', { class: 'row' }, isQueue ? 'First' : 'Latest', peekN, peekBtn)),
        h('div', { class: 'body' }, peekList)),
      h('section', { class: 'panel wide' },
        h('header', null, h('h2', null, 'Live tail'), h('div', { class: 'row' }, tailStatus, tailBtn)),
        h('div', { class: 'body' }, h('p', { class: 'muted' }, 'Messages as they arrive; consumers still get every one.'), tailList))),
  );

  async function refresh() {
    let d;
    try {
      d = await api(path);
    } catch (err) {
      if (err.status === 404) {
        missing.hidden = false;
        missing.textContent = isQueue
          ? 'This queue does not exist (yet). Publishing to it creates it.'
          : 'Nothing has been published or subscribed to this topic yet. You can still publish to it and watch it.';
        for (const id of ['d-depth', 'd-consumers', 'd-unacked', 'd-in', 'd-out', 'd-oldest']) setText(id, '–');
      } else if (err.status !== 401) {
        toast(err.message, 'error');
      }
      return;
    }
    missing.hidden = true;
    rates.update([d]);
    document.getElementById('dest-badges').replaceChildren(...typeBadges(d).filter(Boolean));
    setText('d-depth', fmtNum(d.depth));
    setText('d-consumers', fmtNum(d.consumers));
    setText('d-in-sub', `per second · ${fmtNum(d.enqueued)} in all`);
    setText('d-out-sub', `per second · ${fmtNum(d.dequeued)} in all`);
    setText('d-unacked', fmtNum(d.unacked));
    setText('d-in', fmtRate(d.in_rate));
    setText('d-out', fmtRate(d.out_rate));
    setText('d-oldest', d.depth ? fmtDuration(d.oldest_age_seconds) : '–');
  }

  if (purge) {
    purge.addEventListener('click', async () => {
      if (!await confirmAction('Purge ' + name + '?', 'Every waiting message is dropped. Messages already delivered and not yet acknowledged stay with their consumers.', 'Purge')) return;
      try {
        const r = await api(path + '/messages', { method: 'DELETE' });
        toast(`Purged ${fmtNum(r.purged)} ${r.purged === 1 ? 'message' : 'messages'}`);
      } catch (err) {
        toast(err.message, 'error');
      }
      refresh();
    });
  }
  del.addEventListener('click', async () => {
    const text = isQueue
      ? 'The queue and its messages are removed, and its consumers are disconnected with an ERROR.'
      : 'The topic\'s figures are forgotten. Subscribers stay subscribed.';
    if (!await confirmAction('Delete ' + name + '?', text, 'Delete')) return;
    try {
      await api(path, { method: 'DELETE' });
      toast('Deleted ' + name);
      navigate('/admin/destinations');
    } catch (err) {
      toast(err.message, 'error');
    }
  });

  refresh();
  const timer = setInterval(refresh, 2000);
  return () => {
    clearInterval(timer);
    if (es) es.close();
  };
}
