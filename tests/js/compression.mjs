// permessage-deflate with STOMP.js over the ws package, which offers the
// extension by default: reports what was agreed and how many bytes 200
// JSON messages of about 540 bytes took on the subscriber's socket.
import { scenario, connect, stop, subscribe, Inbox, check, uniq } from './lib.mjs';

const N = 200;

// order is a JSON document with varied values, as application messages
// have them (a repeated body would compress far better than anything real).
function order(i) {
  const lines = [];
  for (let j = 0; j < 6; j++) {
    lines.push({
      sku: Math.random().toString(36).slice(2, 12).toUpperCase(),
      quantity: 1 + Math.floor(Math.random() * 20),
      price: Math.round(Math.random() * 100000) / 100,
      warehouse: ['ams', 'fra', 'dub', 'lhr'][Math.floor(Math.random() * 4)],
    });
  }
  return JSON.stringify({
    id: `order-${i}-${Math.random().toString(16).slice(2, 14)}`,
    customer: { id: Math.floor(Math.random() * 1e9), country: ['NL', 'DE', 'IE', 'GB'][i % 4] },
    created: new Date(Date.now() - Math.floor(Math.random() * 1e8)).toISOString(),
    status: ['new', 'paid', 'shipped'][i % 3],
    lines,
  });
}

scenario('compression', async () => {
  const sub = await connect('subscriber');
  const pub = await connect('publisher');
  const dest = `/topic/compression.${uniq}`;
  const inbox = new Inbox(dest);
  await subscribe(sub, dest, inbox);

  const socket = sub.webSocket._socket;
  const before = socket.bytesRead;
  const bodies = [];
  for (let i = 0; i < N; i++) {
    bodies.push(order(i));
    pub.publish({ destination: dest, body: bodies[i], headers: { 'content-type': 'application/json' } });
  }
  await inbox.waitFor(N, 'every message', 10000);
  const wire = socket.bytesRead - before;
  for (let i = 0; i < N; i++) {
    check(inbox.messages[i].body === bodies[i], `message ${i} arrived changed`);
  }
  const bodyBytes = bodies.reduce((n, b) => n + Buffer.byteLength(b), 0);
  const extensions = sub.webSocket.extensions;
  await stop(pub);
  await stop(sub);
  return { extensions, messages: N, body_bytes: bodyBytes, wire_bytes: wire, ratio: +(wire / bodyBytes).toFixed(3) };
});
