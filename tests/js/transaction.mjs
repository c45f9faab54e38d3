// Transactions: sends inside BEGIN..COMMIT are held until the COMMIT and
// then delivered in order; a send inside BEGIN..ABORT is never delivered.
import { scenario, connect, stop, subscribe, send, Inbox, check, sleep, uniq } from './lib.mjs';

scenario('transaction', async () => {
  const dest = `/queue/tx-${uniq}`;
  const cons = await connect('consumer');
  const prod = await connect('producer');
  const inbox = new Inbox('consumer');
  await subscribe(cons, dest, inbox);

  const tx = prod.begin();
  prod.publish({ destination: dest, body: 'tx-1', headers: { transaction: tx.id } });
  prod.publish({ destination: dest, body: 'tx-2', headers: { transaction: tx.id } });
  // Frames of one connection take effect in order, so once this receipt is
  // back the broker has seen both transactional sends.
  await send(prod, { destination: `/topic/fence-${uniq}`, body: 'fence' });
  await sleep(300);
  check(inbox.messages.length === 0, `delivered before COMMIT: ${JSON.stringify(inbox.bodies)}`);
  tx.commit();
  await inbox.waitFor(2, 'committed messages');
  check(JSON.stringify(inbox.bodies) === '["tx-1","tx-2"]', `after COMMIT got ${JSON.stringify(inbox.bodies)}`);

  const tx2 = prod.begin();
  prod.publish({ destination: dest, body: 'aborted', headers: { transaction: tx2.id } });
  tx2.abort();
  await send(prod, { destination: dest, body: 'after-abort' });
  await inbox.waitFor(3, 'message after ABORT');
  await sleep(300);
  check(
    JSON.stringify(inbox.bodies) === '["tx-1","tx-2","after-abort"]',
    `after ABORT got ${JSON.stringify(inbox.bodies)}, want the aborted send dropped`,
  );

  await stop(prod);
  await stop(cons);
  return { delivered: inbox.bodies };
});
