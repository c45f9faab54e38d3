// Runs the browser checks against the broker named by ?ws=... and publishes
// the outcome on window.results for the Go test to read:
//   { done, error, version, checks: { name: { ok, detail } }, events: [...] }
'use strict';

window.results = { done: false, error: '', version: '', checks: {}, events: [] };

(function () {
  const wsURL = new URLSearchParams(location.search).get('ws');
  document.getElementById('broker').textContent = wsURL || '(no ?ws= parameter)';
  const uniq = Date.now().toString(36);
  let seq = 0;

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
  }

  function record(name, ok, detail) {
    window.results.checks[name] = { ok: !!ok, detail: String(detail) };
    render();
  }

  function withTimeout(promise, ms, what) {
    return Promise.race([
      promise,
      new Promise((_, reject) => setTimeout(() => reject(new Error(what + ': timed out after ' + ms + ' ms')), ms)),
    ]);
  }

  function connect(label) {
    return withTimeout(
      new Promise((resolve, reject) => {
        const client = new StompJs.Client({
          webSocketFactory: () => new WebSocket(wsURL, ['v12.stomp', 'v11.stomp', 'v10.stomp']),
          connectHeaders: { login: 'guest', passcode: 'guest' },
          reconnectDelay: 0,
          connectionTimeout: 5000,
          debug: () => {},
        });
        client.onConnect = () => resolve(client);
        client.onStompError = (f) => reject(new Error(label + ': ERROR frame: ' + f.headers.message + ' ' + f.body));
        client.onWebSocketClose = (e) => {
          if (client.stopping) return;
          const err = label + ': WebSocket closed unexpectedly (code ' + e.code + ')';
          window.results.events.push(err);
          reject(new Error(err));
        };
        client.activate();
      }),
      6000,
      label + ' connect',
    );
  }

  function receipt(client, id, what) {
    return withTimeout(new Promise((resolve) => client.watchForReceipt(id, resolve)), 5000, 'RECEIPT for ' + what);
  }

  // An inbox that can be awaited for the next message.
  function inbox() {
    const box = { messages: [], waiters: [] };
    box.push = (m) => {
      box.messages.push(m);
      box.waiters = box.waiters.filter((ready) => !ready());
    };
    box.nth = (n, what) =>
      withTimeout(
        new Promise((resolve) => {
          const ready = () => {
            if (box.messages.length < n) return false;
            resolve(box.messages[n - 1]);
            return true;
          };
          if (!ready()) box.waiters.push(ready);
        }),
        5000,
        what,
      );
    return box;
  }

  async function subscribe(client, dest, box, headers) {
    const id = 'sub-r-' + ++seq;
    const got = receipt(client, id, 'SUBSCRIBE ' + dest);
    client.subscribe(dest, box.push, Object.assign({}, headers || {}, { receipt: id }));
    await got;
  }

  async function send(client, params) {
    const id = 'send-r-' + ++seq;
    const got = receipt(client, id, 'SEND to ' + params.destination);
    client.publish(Object.assign({}, params, { headers: Object.assign({}, params.headers || {}, { receipt: id }) }));
    await got;
  }

  async function run() {
    const c = await connect('browser');
    window.results.version = c.connectedVersion + ' via ' + c.webSocket.protocol;

    // Round trip through a topic, with a user header.
    const topic = inbox();
    await subscribe(c, '/topic/browser-' + uniq, topic);
    c.publish({ destination: '/topic/browser-' + uniq, body: 'hello from the browser', headers: { 'x-from': 'page' } });
    const m = await topic.nth(1, 'topic message');
    record(
      'roundtrip',
      m.body === 'hello from the browser' && m.headers['x-from'] === 'page',
      'body=' + JSON.stringify(m.body) + ' x-from=' + JSON.stringify(m.headers['x-from']),
    );

    // A receipt for a SEND.
    const r = receipt(c, 'browser-receipt-1', 'SEND');
    c.publish({ destination: '/queue/browser-r-' + uniq, body: 'r', headers: { receipt: 'browser-receipt-1' } });
    const rf = await r;
    record('receipt', rf.headers['receipt-id'] === 'browser-receipt-1', 'receipt-id=' + rf.headers['receipt-id']);

    // client-individual: ack the second message only, NACK the first.
    const q = '/queue/browser-ack-' + uniq;
    await send(c, { destination: q, body: 'a1' });
    await send(c, { destination: q, body: 'a2' });
    const acks = inbox();
    await subscribe(c, q, acks, { ack: 'client-individual' });
    const a1 = await acks.nth(1, 'first queued message');
    const a2 = await acks.nth(2, 'second queued message');
    const ackGot = receipt(c, 'browser-ack-a2', 'ACK');
    a2.ack({ receipt: 'browser-ack-a2' });
    await ackGot;
    record(
      'ack',
      a1.body === 'a1' && a2.body === 'a2' && !!a2.headers.ack && a1.headers.redelivered !== 'true',
      'got ' + a1.body + ',' + a2.body + ' ack header=' + JSON.stringify(a2.headers.ack),
    );

    a1.nack();
    const again = await acks.nth(3, 'redelivery after NACK');
    record(
      'nack',
      again.body === 'a1' && again.headers.redelivered === 'true',
      'redelivered ' + again.body + ' redelivered=' + JSON.stringify(again.headers.redelivered),
    );
    again.ack();

    // Every byte value, through a queue, as a binary body.
    const bytes = new Uint8Array(256);
    for (let i = 0; i < 256; i++) bytes[i] = i;
    const bin = inbox();
    await subscribe(c, '/queue/browser-bin-' + uniq, bin);
    await send(c, {
      destination: '/queue/browser-bin-' + uniq,
      binaryBody: bytes,
      headers: { 'content-type': 'application/octet-stream' },
    });
    const b = await bin.nth(1, 'binary message');
    const got = b.binaryBody;
    let bad = got.length === 256 ? '' : 'length ' + got.length;
    for (let i = 0; !bad && i < 256; i++) if (got[i] !== i) bad = 'byte ' + i + ' is ' + got[i];
    record('binary', !bad, bad || '256 bytes, identical');

    c.stopping = true;
    await withTimeout(c.deactivate(), 3000, 'disconnect').catch(() => c.deactivate({ force: true }));
  }

  if (!wsURL) {
    window.results.error = 'no ?ws= parameter';
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
