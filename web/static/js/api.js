// The console's client of the JSON API. A cookie session sends its CSRF
// token with every state-changing request; a lost session goes back to
// the login form.

let csrfToken = '';

export function setCSRF(token) {
  csrfToken = token || '';
}

export function csrf() {
  return csrfToken;
}

export class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function toLogin() {
  const next = location.pathname + location.search;
  location.assign('/admin/login?next=' + encodeURIComponent(next));
}

// api calls /api/v1/<path> and returns the decoded JSON (null for 204).
export async function api(path, options = {}) {
  const method = options.method || 'GET';
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') headers['X-CSRF-Token'] = csrfToken;
  let body;
  if (options.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(options.json);
  }
  const res = await fetch('/api/v1/' + path, { method, headers, body, credentials: 'same-origin', cache: 'no-store' });
  if (res.status === 401) {
    toLogin();
    throw new APIError(401, 'signed out');
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch {
    // A body that is not JSON (a proxy's error page) leaves data null.
  }
  if (!res.ok) throw new APIError(res.status, (data && data.error) || res.status + ' ' + res.statusText);
  return data;
}

// dest escapes a whole destination name for a path: /queue/a → %2Fqueue%2Fa.
export function dest(name) {
  return encodeURIComponent(name);
}

// query builds ?a=1&b=2 from the set values of an object.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? '?' + s : '';
}
