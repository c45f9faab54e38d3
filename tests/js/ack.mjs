// client-individual acknowledgement and NACK redelivery.
//  1. consumer A (client-individual) gets m1 m2 m3, acks only m3, disconnects:
//     m1 and m2 go back to the queue, m3 does not (an individual ack is not
//     cumulative).
//  2. consumer B gets m1 m2 again with redelivered:true, acks m2 and NACKs
//     m1, which comes back once more with redelivered:true; B acks it.
//  3. consumer C finds the queue empty.
import { scenario, connect, stop, subscribe, send, receipt, Inbox, check, sleep, uniq } from './lib.mjs';

function ackWithReceipt(client, message, id) {
  const got = receipt(client, id, `ACK of ${message.body}`);
  message.ack({ receipt: id });
  return got;
}

scenario('ack', async () => {
  const dest = `/queue/acks-${uniq}`;
  const prod = await connect('producer');
  for (const body of ['m1', 'm2', 'm3']) {
    await send(prod, { destination: dest, body });
  }

  const a = await connect('consumer-A');
  const inA = new Inbox('consumer-A');
  await subscribe(a, dest, inA, { ack: 'client-individual' });
  const first = await inA.waitFor(3, 'first delivery');
  check(JSON.stringify(first.map((m) => m.body)) === '["m1","m2","m3"]', `first delivery: ${JSON.stringify(inA.bodies)}`);
  for (const m of first) {
    check(m.headers.redelivered !== 'true', `${m.body} marked redelivered on its first delivery`);
    check(!!m.headers.ack, `${m.body} has no ack header (STOMP 1.2, client-individual)`);
  }
  await ackWithReceipt(a, first[2], 'ack-m3');
  await stop(a);

  const b = await connect('consumer-B');
  const inB = new Inbox('consumer-B');
  await subscribe(b, dest, inB, { ack: 'client-individual' });
  const again = await inB.waitFor(2, 'redelivery after disconnect');
  check(
    JSON.stringify(again.map((m) => m.body)) === '["m1","m2"]',
    `after A disconnected with m1 m2 unacked, B got ${JSON.stringify(inB.bodies)}, want ["m1","m2"]`,
  );
  for (const m of again) {
    check(m.headers.redelivered === 'true', `${m.body} redelivered without redelivered:true (headers ${JSON.stringify(m.headers)})`);
  }
  await ackWithReceipt(b, again[1], 'ack-m2');

  again[0].nack();
  const [, , back] = await inB.waitFor(3, 'redelivery after NACK');
  check(back.body === 'm1', `after NACK of m1, got ${back.body}`);
  check(back.headers.redelivered === 'true', `NACKed m1 came back without redelivered:true (headers ${JSON.stringify(back.headers)})`);
  await ackWithReceipt(b, back, 'ack-m1');
  await sleep(300);
  check(inB.messages.length === 3, `B got more than expected: ${JSON.stringify(inB.bodies)}`);
  await stop(b);

  const c = await connect('consumer-C');
  const inC = new Inbox('consumer-C');
  await subscribe(c, dest, inC, { ack: 'client-individual' });
  await send(prod, { destination: dest, body: 'last' });
  await inC.waitFor(1, 'fresh message');
  await sleep(200);
  check(
    JSON.stringify(inC.bodies) === '["last"]',
    `acked messages were delivered again: C got ${JSON.stringify(inC.bodies)}`,
  );
  inC.messages[0].ack();
  await stop(c);
  await stop(prod);
  return { firstDelivery: first.map((m) => m.body), redelivered: again.map((m) => m.body), nackRedelivered: back.body };
});
