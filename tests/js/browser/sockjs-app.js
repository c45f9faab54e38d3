// Runs STOMP.js over SockJS against the broker named by ?sockjs=..., once
// per HTTP transport (WebSocket is never allowed), and publishes the
// outcome on window.results for the Go test to read:
//   { done, error, checks: { transport: { ok, detail } } }
// The banner turns green when every transport passed, red otherwise; the
// Go test checks the screenshot for it.
'use strict';

window.results = { done: false, error: '', checks: {} };

(function () {
  const params = new URLSearchParams(location.search);
  const sockjsURL = params.get('sockjs');
  const transports = (params.get('transports') || 'xhr-streaming,xhr-polling,eventsource,jsonp-polling').split(',');
  const count = 200;
  const uniq = Date.now().toString(36);
  document.getElementById('broker').textContent = sockjsURL || '(no ?sockjs= parameter)';

  function render() {
    const rows = document.getElementById('rows');
    rows.textContent = '';
    for (const [name, c] of Object.entries(window.results.checks)) {
      const tr = document.createElement('tr');
      for (const [text, cls] of [[name, ''], [c.ok ? 'ok' : 'FAIL', c.ok ? 'ok' : 'fail'], [c.detail, '']]) {
        const td = document.createElement('td');
        td.textContent = text;
        if (cls) td.className = cls;
        tr.appendChild(td);
      }
      rows.appendChild(tr);
    }
    const r = window.results;
    document.getElementById('status').textContent = r.error ? 'error: ' + r.error : r.done ? 'done' : 'running';
    const banner = document.getElementById('banner');
    if (r.done) {
      const ok = !r.error && transports.every((t) => r.checks[t] && r.checks[t].ok);
      banner.className = ok ? 'ok' : 'fail';
      banner.textContent = ok ? 'all SockJS transports passed' : 'failed';
    }
  }

  function withTimeout(promise, ms, what) {
    let timer;
    return Promise.race([
      promise,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(what + ': timed out after ' + ms + ' ms')), ms);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  function connect(transport, label) {
    return withTimeout(
      new Promise((resolve, reject) => {
        const client = new StompJs.Client({
          webSocketFactory: () => new SockJS(sockjsURL, null, { transports: [transport], timeout: 8000 }),
          connectHeaders: { login: 'guest', passcode: 'guest' },
          reconnectDelay: 0,
          connectionTimeout: 8000,
          debug: () => {},
        });
        client.onConnect = () => resolve(client);
        client.onStompError = (f) => reject(new Error(label + ': ERROR frame: ' + f.headers.message));
        client.onWebSocketClose = (e) => {
          if (!client.stopping) reject(new Error(label + ': closed unexpectedly (code ' + e.code + ' ' + e.reason + ')'));
        };
        client.activate();
      }),
      10000,
      label + ' connect',
    );
  }

  function receipt(client, id, what) {
    return withTimeout(new Promise((resolve) => client.watchForReceipt(id, resolve)), 8000, 'RECEIPT for ' + what);
  }

  async function roundTrip(transport) {
    const c = await connect(transport, transport);
    const used = c.webSocket.transport;
    if (used !== transport) throw new Error('connected over ' + used);
    const queue = '/queue/browser-sockjs-' + transport + '-' + uniq;
    const got = [];
    let all;
    const arrived = new Promise((resolve) => {
      all = resolve;
    });
    const subscribed = receipt(c, 'sub-' + transport, 'SUBSCRIBE');
    c.subscribe(
      queue,
      (m) => {
        got.push(m);
        if (got.length === count) all();
      },
      { ack: 'client', receipt: 'sub-' + transport },
    );
    await subscribed;
    const sent = receipt(c, 'send-' + transport, 'the last SEND');
    for (let i = 0; i < count; i++) {
      const headers = { seq: String(i) };
      if (i === count - 1) headers.receipt = 'send-' + transport;
      c.publish({ destination: queue, body: 'msg ' + i + ' ✓', headers: headers });
    }
    await sent;
    await withTimeout(arrived, 15000, count + ' messages (got ' + got.length + ')');
    for (let i = 0; i < count; i++) {
      if (got[i].headers.seq !== String(i) || got[i].body !== 'msg ' + i + ' ✓') {
        throw new Error('message ' + i + ' out of order or altered: ' + got[i].body);
      }
    }
    const acked = receipt(c, 'ack-' + transport, 'ACK');
    got[count - 1].ack({ receipt: 'ack-' + transport });
    await acked;
    c.stopping = true;
    let receipted = false;
    c.onDisconnect = () => {
      receipted = true;
    };
    await withTimeout(c.deactivate(), 5000, 'disconnect');
    if (!receipted) throw new Error('no RECEIPT for DISCONNECT');
    return count + ' messages in order, ACK and DISCONNECT receipted';
  }

  async function run() {
    for (const t of transports) {
      const start = performance.now();
      try {
        const detail = await roundTrip(t);
        window.results.checks[t] = { ok: true, detail: detail + ' in ' + Math.round(performance.now() - start) + ' ms' };
      } catch (err) {
        window.results.checks[t] = { ok: false, detail: String(err && err.message ? err.message : err) };
      }
      render();
    }
  }

  if (!sockjsURL || typeof SockJS === 'undefined' || typeof StompJs === 'undefined') {
    window.results.error = !sockjsURL ? 'no ?sockjs= parameter' : 'SockJS or STOMP.js did not load';
    window.results.done = true;
    render();
    return;
  }
  run().then(
    () => {
      window.results.done = true;
      render();
    },
    (err) => {
      window.results.error = String(err && err.message ? err.message : err);
      window.results.done = true;
      render();
    },
  );
})();
