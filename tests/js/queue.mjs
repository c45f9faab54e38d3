// Queue work sharing: two consumers on one queue, N messages from a
// producer. Each message must reach exactly one consumer, both consumers
// must get work (round robin), and each sees its share in send order.
import { scenario, connect, stop, subscribe, send, Inbox, check, sleep, uniq } from './lib.mjs';

const N = 20;

scenario('queue', async () => {
  const dest = `/queue/work-${uniq}`;
  const c1 = await connect('consumer-1');
  const c2 = await connect('consumer-2');
  const prod = await connect('producer');
  const in1 = new Inbox('consumer-1');
  const in2 = new Inbox('consumer-2');
  await subscribe(c1, dest, in1);
  await subscribe(c2, dest, in2);

  for (let i = 0; i < N; i++) {
    prod.publish({ destination: dest, body: `job-${i}` });
  }
  await send(prod, { destination: `/topic/unused-${uniq}`, body: 'fence' });

  const deadline = Date.now() + 8000;
  while (in1.messages.length + in2.messages.length < N && Date.now() < deadline) {
    await sleep(20);
  }
  await sleep(300); // a duplicate delivery would show up here
  const got1 = in1.bodies;
  const got2 = in2.bodies;
  const all = [...got1, ...got2];
  check(all.length === N, `got ${all.length} deliveries, want ${N}: c1=${JSON.stringify(got1)} c2=${JSON.stringify(got2)}`);
  const seen = new Set(all);
  check(seen.size === N, `duplicate deliveries: c1=${JSON.stringify(got1)} c2=${JSON.stringify(got2)}`);
  for (let i = 0; i < N; i++) check(seen.has(`job-${i}`), `job-${i} never delivered`);
  check(got1.length > 0 && got2.length > 0, `one consumer got nothing: c1=${got1.length} c2=${got2.length}`);
  for (const [name, got] of [['c1', got1], ['c2', got2]]) {
    const idx = got.map((b) => Number(b.slice(4)));
    check(idx.every((v, i) => i === 0 || v > idx[i - 1]), `${name} out of order: ${JSON.stringify(got)}`);
  }

  await stop(prod);
  await stop(c1);
  await stop(c2);
  return { consumer1: got1.length, consumer2: got2.length };
});
