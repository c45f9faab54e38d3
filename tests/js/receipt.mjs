// Receipts: a SEND with a receipt header is answered with RECEIPT
// receipt-id, only after it has taken effect (a consumer that subscribes
// after the receipt finds the message), and DISCONNECT is receipted too.
import { scenario, connect, stop, Inbox, check, uniq } from './lib.mjs';

function waitReceipt(client, id, what, ms = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no RECEIPT for ${what} within ${ms} ms`)), ms);
    client.watchForReceipt(id, (frame) => {
      clearTimeout(t);
      resolve(frame);
    });
  });
}

scenario('receipt', async () => {
  const dest = `/queue/receipts-${uniq}`;
  const prod = await connect('producer');

  const got = waitReceipt(prod, 'r-send-1', 'SEND');
  prod.publish({ destination: dest, body: 'needs a receipt', headers: { receipt: 'r-send-1' } });
  const frame = await got;
  check(frame.command === 'RECEIPT', `command: ${frame.command}`);
  check(frame.headers['receipt-id'] === 'r-send-1', `receipt-id: ${frame.headers['receipt-id']}`);

  const got2 = waitReceipt(prod, 'r-send-2', 'persistent SEND');
  prod.publish({ destination: dest, body: 'persistent', headers: { receipt: 'r-send-2', persistent: 'true' } });
  await got2;

  // Both sends have taken effect: a consumer that arrives now gets them.
  const cons = await connect('consumer');
  const inbox = new Inbox('consumer');
  cons.subscribe(dest, inbox.push);
  await inbox.waitFor(2, 'messages sent before the RECEIPT');
  check(
    JSON.stringify(inbox.bodies) === JSON.stringify(['needs a receipt', 'persistent']),
    `bodies: ${JSON.stringify(inbox.bodies)}`,
  );

  const disconnectReceipted = await stop(prod);
  check(disconnectReceipted, 'no RECEIPT for DISCONNECT');
  await stop(cons);
  return { receiptId: frame.headers['receipt-id'] };
});
