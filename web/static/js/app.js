// The console's entry point: checks the session, routes between pages
// without reloading, and signs out.

import { api, csrf, setCSRF, toLogin } from './api.js';
import { toast } from './dom.js';
import * as overview from './overview.js';
import * as connections from './connections.js';
import * as destinations from './destinations.js';
import * as destination from './destination.js';
import * as subscriptions from './subscriptions.js';

const main = document.getElementById('main');
let unmount = null;

function route(path) {
  const m = path.match(/^\/admin\/destinations\/([^/]+)$/);
  if (m) return { nav: 'destinations', page: destination, params: { name: decodeURIComponent(m[1]) } };
  switch (path) {
    case '/admin/connections': return { nav: 'connections', page: connections };
    case '/admin/destinations': return { nav: 'destinations', page: destinations };
    case '/admin/subscriptions': return { nav: 'subscriptions', page: subscriptions };
    default: return { nav: 'overview', page: overview };
  }
}

function show() {
  if (unmount) unmount();
  const r = route(location.pathname);
  for (const a of document.querySelectorAll('.nav a')) {
    if (a.dataset.page === r.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  main.replaceChildren();
  document.title = (r.nav[0].toUpperCase() + r.nav.slice(1)) + ' · Stampede';
  unmount = r.page.mount(main, r.params || {}, navigate) || null;
  main.dataset.page = r.page === destination ? 'destination' : r.nav;
  window.scrollTo(0, 0);
}

// navigate moves to another console page without a reload.
export function navigate(href) {
  if (href !== location.pathname + location.search) history.pushState(null, '', href);
  show();
}

document.addEventListener('click', (e) => {
  const a = e.target.closest('a[data-nav]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  navigate(a.getAttribute('href'));
});
window.addEventListener('popstate', show);

document.getElementById('logout').addEventListener('click', async () => {
  try {
    await fetch('/admin/logout', { method: 'POST', headers: { 'X-CSRF-Token': csrf() }, credentials: 'same-origin' });
  } finally {
    location.assign('/admin/login');
  }
});

async function start() {
  try {
    const s = await api('session');
    setCSRF(s.csrf_token);
    document.getElementById('user').textContent = s.user;
  } catch (err) {
    if (err.status === 401) return toLogin();
    toast(err.message, 'error');
  }
  show();
}

start();
