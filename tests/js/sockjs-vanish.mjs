// A STOMP.js client on SockJS xhr-polling vanishes (its requests stop
// reaching the broker, as when a network drops, without any connection
// being closed). After the session timeout the broker ends its session
// and the queue messages it held unacknowledged go to another consumer,
// marked redelivered.
import http from 'node:http';
import { EventEmitter } from 'node:events';
import { scenario, connect, stop, subscribe, receipt, usedTransport, Inbox, check, note, uniq } from './sockjs-lib.mjs';

// Requests of the sessions in `lost` go nowhere: they never complete and
// nothing is sent. sockjs-client's node driver looks http.request up on
// each request, so patching the module reaches it.
const lost = new Set();
let capture = null; // records session ids while a client connects
const realRequest = http.request;
http.request = function (options, ...rest) {
  const parts = String(options.path || '').split('/');
  const session = parts.length >= 4 ? parts[parts.length - 2] : '';
  if (capture && session) capture.add(session);
  if (!lost.has(session)) return realRequest.call(this, options, ...rest);
  note(`blackholed ${options.method} ${options.path}`);
  const req = new EventEmitter();
  req.write = () => true;
  req.end = () => {};
  req.abort = () => {};
  req.destroy = () => {};
  return req;
};

scenario('sockjs-vanish', async () => {
  const queue = `/queue/sockjs-vanish-${uniq}`;
  const producer = await connect('producer');
  const sent = receipt(producer, 'sent', 'the SENDs');
  for (const body of ['v1', 'v2', 'v3']) {
    producer.publish({ destination: queue, body, headers: body === 'v3' ? { receipt: 'sent' } : {} });
  }
  await sent;

  capture = new Set();
  const doomed = await connect('doomed');
  const sessions = capture;
  capture = null;
  check(sessions.size === 1, `could not tell the doomed client's session: ${[...sessions]}`);
  check(usedTransport(doomed) === 'xhr-polling', `doomed client on ${usedTransport(doomed)}`);
  const held = new Inbox('doomed');
  await subscribe(doomed, queue, held, { ack: 'client-individual' });
  await held.waitFor(3, 'first delivery');

  const other = await connect('other');
  const inbox = new Inbox('other');
  await subscribe(other, queue, inbox, { ack: 'client-individual' });

  // Vanish. The poll already in flight ends with the next SockJS
  // heart-beat; later ones never arrive.
  doomed.onUnexpectedClose = () => true;
  for (const s of sessions) lost.add(s);
  const vanishedAt = Date.now();
  check(inbox.messages.length === 0, 'the other consumer got messages the doomed one still held');

  const again = await inbox.waitFor(3, 'redelivery after the session timeout', 20000);
  const after = Date.now() - vanishedAt;
  check(JSON.stringify(again.map((m) => m.body)) === '["v1","v2","v3"]', `redelivered ${JSON.stringify(again.map((m) => m.body))}`);
  for (const m of again) {
    check(m.headers.redelivered === 'true', `${m.body} redelivered without redelivered:true`);
    m.ack();
  }
  await stop(other);
  await stop(producer);
  doomed.stopping = true;
  doomed.forceDisconnect();
  return { redeliveredAfterMs: after };
});
