// Durable topic subscriptions with STOMP.js. The Go test runs this script
// twice against the same data directory, restarting the broker (SIGTERM)
// in between; the phase is the second argument.
//  online:    subscribe durable (CONNECT client-id + SUBSCRIBE id), get and
//             ack live messages, disconnect; what is published meanwhile,
//             persistent or not, arrives on reconnect in order, without
//             the acked ones. One is left unacked, then a persistent and a
//             plain message are published while away.
//  restarted: the unacked one comes back marked redelivered, followed by
//             the persistent one; the plain one did not survive. UNSUBSCRIBE
//             durable:true deletes the subscription: a later publish is not
//             kept for it.
import { scenario, connect, stop, subscribe, send, receipt, Inbox, check, sleep } from './lib.mjs';

const topic = '/topic/jsdur.news';
const phase = process.argv[3];
const durableHeaders = { id: 'news', durable: 'true', ack: 'client-individual' };

function app(label) {
  return connect(label, { connectHeaders: { login: 'guest', passcode: 'guest', 'client-id': 'stompjs-app' } });
}

async function ack(client, message) {
  const id = `ack-${message.body}-${Date.now()}`;
  const got = receipt(client, id, `ACK of ${message.body}`);
  message.ack({ receipt: id });
  await got;
}

// expect waits for the inbox to hold exactly want (bodies, in order) and
// checks which of them carry redelivered:true.
async function expect(inbox, want, redelivered, what) {
  const got = await inbox.waitFor(want.length, what);
  await sleep(300); // anything more would be a duplicate or a leak
  check(
    JSON.stringify(inbox.bodies) === JSON.stringify(want),
    `${what}: got ${JSON.stringify(inbox.bodies)}, want ${JSON.stringify(want)}`,
  );
  for (const m of got) {
    const flagged = m.headers.redelivered === 'true';
    check(flagged === redelivered.includes(m.body), `${what}: ${m.body} has redelivered:${m.headers.redelivered}`);
  }
  return got;
}

async function online() {
  const pub = await connect('publisher');
  let sub = await app('subscriber');
  let inbox = new Inbox('subscriber');
  await subscribe(sub, topic, inbox, durableHeaders);
  await send(pub, { destination: topic, body: 'live-1' });
  await send(pub, { destination: topic, body: 'live-2' });
  for (const m of await expect(inbox, ['live-1', 'live-2'], [], 'live')) await ack(sub, m);
  await stop(sub);

  await send(pub, { destination: topic, body: 'away-1', headers: { persistent: 'true' } });
  await send(pub, { destination: topic, body: 'away-2' });
  await send(pub, { destination: topic, body: 'away-3', headers: { persistent: 'true' } });
  sub = await app('subscriber-again');
  inbox = new Inbox('subscriber-again');
  await subscribe(sub, topic, inbox, durableHeaders);
  const away = await expect(inbox, ['away-1', 'away-2', 'away-3'], [], 'after reconnect');
  await ack(sub, away[0]);
  await ack(sub, away[1]);
  await stop(sub); // away-3 stays unacked

  await send(pub, { destination: topic, body: 'kept', headers: { persistent: 'true' } });
  await send(pub, { destination: topic, body: 'not-persistent' });
  await stop(pub);
  return { phase, reconnect: inbox.bodies };
}

async function restarted() {
  const sub = await app('subscriber-after-restart');
  const inbox = new Inbox('subscriber-after-restart');
  await subscribe(sub, topic, inbox, durableHeaders);
  for (const m of await expect(inbox, ['away-3', 'kept'], ['away-3'], 'after restart')) await ack(sub, m);

  const unsub = receipt(sub, 'unsub-durable', 'UNSUBSCRIBE durable:true');
  sub.unsubscribe('news', { durable: 'true', receipt: 'unsub-durable' });
  await unsub;
  const pub = await connect('publisher');
  await send(pub, { destination: topic, body: 'after-delete', headers: { persistent: 'true' } });
  await stop(sub);

  const again = await app('subscriber-anew');
  const fresh = new Inbox('subscriber-anew');
  await subscribe(again, topic, fresh, durableHeaders);
  await sleep(300);
  check(fresh.messages.length === 0, `a deleted durable subscription kept ${JSON.stringify(fresh.bodies)}`);
  await send(pub, { destination: topic, body: 'fresh', headers: { persistent: 'true' } });
  const [m] = await expect(fresh, ['fresh'], [], 'new subscription');
  await ack(again, m);
  const gone = receipt(again, 'unsub-anew', 'UNSUBSCRIBE durable:true');
  again.unsubscribe('news', { durable: 'true', receipt: 'unsub-anew' });
  await gone;
  await stop(again);
  await stop(pub);
  return { phase, afterRestart: inbox.bodies };
}

scenario('durable', async () => {
  switch (phase) {
    case 'online':
      return online();
    case 'restarted':
      return restarted();
    default:
      throw new Error(`unknown phase ${JSON.stringify(phase)}: want online or restarted`);
  }
});
