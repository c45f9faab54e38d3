// STOMP.js through SockJS with one transport forced: connect, subscribe,
// 1,000 messages in order, a cumulative ACK with its RECEIPT, a body that
// is not UTF-8 (published over plain WebSocket) arriving base64-encoded,
// DISCONNECT with its RECEIPT, and the acked messages not coming back.
import WebSocket from 'ws';
import { scenario, connect, stop, subscribe, receipt, usedTransport, Inbox, check, sleep, uniq, transport } from './sockjs-lib.mjs';

const N = 1000;

scenario('sockjs-roundtrip', async () => {
  const queue = `/queue/sockjs-${transport}-${uniq}`;
  const consumer = await connect('consumer');
  check(usedTransport(consumer) === transport, `consumer connected over ${usedTransport(consumer)}, want ${transport}`);
  check(consumer.connectedVersion === '1.2', `negotiated STOMP ${consumer.connectedVersion}, want 1.2`);
  const inbox = new Inbox('consumer');
  await subscribe(consumer, queue, inbox, { ack: 'client' });

  const producer = await connect('producer');
  check(usedTransport(producer) === transport, `producer connected over ${usedTransport(producer)}`);
  const start = Date.now();
  const sent = receipt(producer, 'last-send', 'the last SEND');
  for (let i = 0; i < N; i++) {
    const headers = { seq: String(i) };
    if (i === N - 1) headers.receipt = 'last-send';
    producer.publish({ destination: queue, body: `m-${i} ☃ "quoted" \\ % \n`, headers });
  }
  await sent;
  const msgs = await inbox.waitFor(N, `${N} messages`, 25000);
  const elapsed = Date.now() - start;
  for (let i = 0; i < N; i++) {
    const m = msgs[i];
    check(m.headers.seq === String(i), `message ${i} has seq ${m.headers.seq}: out of order`);
    check(m.body === `m-${i} ☃ "quoted" \\ % \n`, `message ${i} body ${JSON.stringify(m.body)}`);
    check(m.headers.redelivered !== 'true', `message ${i} marked redelivered`);
  }
  const acked = receipt(consumer, 'ack-all', 'the cumulative ACK');
  msgs[N - 1].ack({ receipt: 'ack-all' });
  await acked;
  await sleep(200);
  check(inbox.messages.length === N, `got ${inbox.messages.length} messages, want ${N}`);

  // SockJS carries text only: a body that is not UTF-8 arrives base64.
  const bytes = new Uint8Array(256).map((_, i) => i);
  const binQueue = `/queue/sockjs-bin-${transport}-${uniq}`;
  const binInbox = new Inbox('consumer-binary');
  await subscribe(consumer, binQueue, binInbox);
  const wsProducer = await connect('ws-producer', { ws: WebSocket });
  const binSent = receipt(wsProducer, 'bin-send', 'the binary SEND');
  wsProducer.publish({ destination: binQueue, binaryBody: bytes, headers: { 'content-type': 'application/octet-stream', receipt: 'bin-send' } });
  await binSent;
  const [bin] = await binInbox.waitFor(1, 'the binary message');
  check(bin.headers['content-transfer-encoding'] === 'base64', `binary body arrived without content-transfer-encoding:base64: ${JSON.stringify(bin.headers)}`);
  check(bin.headers['content-length'] === String(bin.body.length), `content-length ${bin.headers['content-length']} for ${bin.body.length} base64 characters`);
  const decoded = Buffer.from(bin.body, 'base64');
  check(decoded.length === 256 && decoded.every((b, i) => b === i), `base64 body decodes to ${decoded.length} wrong bytes`);
  check(bin.headers['content-type'] === 'application/octet-stream', `content-type ${bin.headers['content-type']}`);

  check(await stop(consumer), 'no RECEIPT for DISCONNECT');

  // Everything was acked: a new consumer gets nothing.
  const again = await connect('consumer-2');
  const inbox2 = new Inbox('consumer-2');
  await subscribe(again, queue, inbox2, { ack: 'client' });
  await sleep(500);
  check(inbox2.messages.length === 0, `acked messages came back: ${inbox2.messages.length}`);
  await stop(again);
  await stop(producer);
  await stop(wsProducer);
  return { messages: N, ms: elapsed };
});
