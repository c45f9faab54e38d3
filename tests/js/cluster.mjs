// STOMP.js across a cluster of three nodes, given their three URLs.
// Topic: a publisher on node 1 reaches a `*` subscriber on node 2 and a
// `#` subscriber on node 3, each message exactly once, in send order.
// Queue: what a producer on node 1 sends goes to exactly one of two
// competing client-individual consumers on nodes 2 and 3.
import WebSocket from 'ws';
import { scenario, connect, stop, subscribe, send, Inbox, check, sleep, uniq } from './lib.mjs';

const [url1, url2, url3] = process.argv.slice(2, 5);
const N = 60;

// on connects to the node at url; lib.mjs's connect takes its options.
const on = (url, label) =>
  connect(label, { webSocketFactory: () => new WebSocket(url, ['v12.stomp', 'v11.stomp', 'v10.stomp']) });

// real drops the warm-up probes and end markers.
const real = (inbox) => inbox.messages.filter((m) => !m.headers['x-probe'] && !m.headers['x-end']);
const ends = (inbox) => inbox.messages.filter((m) => m.headers['x-end']).length;

scenario(
  'cluster',
  async () => {
    check(url2 && url3, 'usage: node cluster.mjs WS_URL_1 WS_URL_2 WS_URL_3');
    const pub = await on(url1, 'publisher@n1');
    const s2 = await on(url2, 'star@n2');
    const s3 = await on(url3, 'hash@n3');

    // Topic.
    const base = `/topic/cljs${uniq.replace(/[^a-z0-9]/gi, '')}`;
    const star = new Inbox('star@n2');
    const hash = new Inbox('hash@n3');
    await subscribe(s2, `${base}.*`, star);
    await subscribe(s3, `${base}.#`, hash);
    // A subscription reaches the other nodes a little after its RECEIPT:
    // probe until both have heard from node 1; what it sends afterwards
    // arrives after the probe, in order.
    for (let i = 0; star.messages.length === 0 || hash.messages.length === 0; i++) {
      check(i < 300, `no probe reached the other nodes: star ${star.messages.length}, hash ${hash.messages.length}`);
      await send(pub, { destination: `${base}.probe`, body: 'probe', headers: { 'x-probe': 'true' } });
      await sleep(100);
    }
    const want = [];
    for (let i = 0; i < N; i++) {
      const body = `t-${i}`;
      want.push(body);
      if (i % 10 === 9) await send(pub, { destination: `${base}.q`, body });
      else pub.publish({ destination: `${base}.q`, body });
    }
    await send(pub, { destination: `${base}.q.deep`, body: 'deep' }); // `#` only
    await send(pub, { destination: `${base}.q`, body: 'end', headers: { 'x-end': 'true' } });
    const deadline = Date.now() + 10000;
    while ((ends(star) < 1 || ends(hash) < 1) && Date.now() < deadline) await sleep(20);
    check(ends(star) === 1 && ends(hash) === 1, `end marker missing: star ${ends(star)}, hash ${ends(hash)}`);
    const gotStar = real(star).map((m) => m.body);
    const gotHash = real(hash).map((m) => m.body);
    check(JSON.stringify(gotStar) === JSON.stringify(want), `n2 ${base}.* got ${JSON.stringify(gotStar)}`);
    check(
      JSON.stringify(gotHash) === JSON.stringify([...want, 'deep']),
      `n3 ${base}.# got ${JSON.stringify(gotHash)}`,
    );

    // Queue: messages stay in the queue until someone takes them, so the
    // consumers need no warm-up.
    const queue = `/queue/cljs${uniq.replace(/[^a-z0-9]/gi, '')}`;
    const q2 = new Inbox('queue@n2');
    const q3 = new Inbox('queue@n3');
    for (const [client, inbox] of [
      [s2, q2],
      [s3, q3],
    ]) {
      const push = inbox.push;
      inbox.push = (m) => {
        push(m);
        m.ack();
      };
      await subscribe(client, queue, inbox, { ack: 'client-individual', 'prefetch-count': '5' });
    }
    for (let i = 0; i < N; i++) {
      await send(pub, { destination: queue, body: `q-${i}`, headers: { persistent: i % 2 ? 'true' : 'false' } });
    }
    const qdeadline = Date.now() + 20000;
    while (q2.messages.length + q3.messages.length < N && Date.now() < qdeadline) await sleep(20);
    await sleep(1000); // a second delivery of an acked message would show here
    const all = [...q2.bodies, ...q3.bodies];
    check(all.length === N, `queue: ${all.length} deliveries, want ${N}: n2=${JSON.stringify(q2.bodies)} n3=${JSON.stringify(q3.bodies)}`);
    const seen = new Set(all);
    check(seen.size === N, `queue: duplicate deliveries: n2=${JSON.stringify(q2.bodies)} n3=${JSON.stringify(q3.bodies)}`);
    for (let i = 0; i < N; i++) check(seen.has(`q-${i}`), `q-${i} never consumed`);
    check(q2.messages.length > 0 && q3.messages.length > 0, `queue not shared: n2 ${q2.messages.length}, n3 ${q3.messages.length}`);

    await stop(pub);
    await stop(s2);
    await stop(s3);
    return { topicN2: gotStar.length, topicN3: gotHash.length, queueN2: q2.messages.length, queueN3: q3.messages.length };
  },
  { timeoutMs: 60000 },
);
