// Small DOM and formatting helpers. Every piece of broker data goes into
// the page as text (never as HTML), so names and bodies cannot inject markup.

// h builds an element: h('td', {class: 'num', dataset: {label: 'Depth'}}, '12').
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

const SVG = 'http://www.w3.org/2000/svg';

// s builds an SVG element.
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) el.setAttribute(k, v);
  }
  for (const c of children) if (c) el.append(c);
  return el;
}

const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const dec1 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

export function fmtNum(n) {
  return n === undefined || n === null ? '–' : int.format(n);
}

// fmtRate shows a per-second figure with the precision it deserves.
export function fmtRate(n) {
  if (n === undefined || n === null || !isFinite(n)) return '–';
  if (n === 0) return '0';
  if (n < 10) return dec1.format(n);
  return int.format(n);
}

export function fmtCompact(n) {
  if (n < 1000) return fmtRate(n);
  const units = ['k', 'M', 'G'];
  let u = -1;
  while (n >= 1000 && u < units.length - 1) { n /= 1000; u++; }
  return dec1.format(n) + units[u];
}

export function fmtBytes(n) {
  if (n === undefined || n === null) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
  return (u === 0 ? int.format(n) : dec1.format(n)) + ' ' + units[u];
}

// fmtDuration shows seconds as the two largest units: "3d 4h", "5m 12s".
export function fmtDuration(sec) {
  if (sec === undefined || sec === null) return '–';
  sec = Math.max(0, Math.floor(sec));
  const parts = [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]];
  const out = [];
  for (const [unit, size] of parts) {
    if (sec >= size || (unit === 's' && out.length === 0)) {
      out.push(Math.floor(sec / size) + unit);
      sec %= size;
    }
    if (out.length === 2) break;
  }
  return out.join(' ');
}

export function fmtMs(ms) {
  if (!ms) return 'off';
  return ms % 1000 === 0 ? ms / 1000 + 's' : ms + 'ms';
}

export function fmtTime(iso) {
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

export function fmtClock(iso) {
  return new Date(iso).toLocaleTimeString(undefined, { hour12: false });
}

// toast shows a short message in the corner for a few seconds.
export function toast(text, kind) {
  const box = document.getElementById('toasts');
  const t = h('div', { class: 'toast' + (kind === 'error' ? ' error' : ''), role: 'status' }, text);
  box.append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 6000 : 3500);
}

// confirmAction asks before something that cannot be undone.
export function confirmAction(title, text, button) {
  const dlg = document.getElementById('confirm');
  dlg.querySelector('h2').textContent = title;
  dlg.querySelector('p').textContent = text;
  dlg.querySelector('#confirm-ok').textContent = button || 'Confirm';
  dlg.returnValue = '';
  dlg.showModal();
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
  });
}

// card is one figure of a page's summary row.
export function card(label, id, extra) {
  return h('div', { class: 'card' },
    h('div', { class: 'label' }, extra && extra.dot ? h('span', { class: 'dot ' + extra.dot }) : null, label),
    h('div', { class: 'value', id }, '–'),
    h('div', { class: 'sub', id: id + '-sub' }, extra && extra.sub ? extra.sub : '\u00a0'));
}

export function setText(id, text) {
  const el = document.getElementById(id);
  if (el && el.textContent !== text) el.textContent = text;
}

// pageHead is a page's title row.
export function pageHead(title, text, actions) {
  return h('div', { class: 'page-head' },
    h('div', null, h('h1', null, title), text ? h('p', null, text) : null),
    actions ? h('div', { class: 'actions' }, actions) : null);
}
