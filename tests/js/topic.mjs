// Topic round trip through STOMP.js: a plain subscription and a `*`
// wildcard subscription, with a publisher on a second connection.
import { scenario, connect, stop, subscribe, send, Inbox, check, sleep, uniq } from './lib.mjs';

scenario('topic', async () => {
  const sub = await connect('subscriber');
  const pub = await connect('publisher');

  // Offered v12.stomp first, so the broker must settle on STOMP 1.2.
  check(sub.webSocket.protocol === 'v12.stomp', `subprotocol: want v12.stomp, got ${JSON.stringify(sub.webSocket.protocol)}`);
  check(sub.connectedVersion === '1.2', `STOMP version: want 1.2, got ${sub.connectedVersion}`);

  const x = new Inbox('/topic/x');
  const wild = new Inbox('/topic/a.*');
  const xSub = await subscribe(sub, `/topic/x${uniq}`, x);
  await subscribe(sub, `/topic/a${uniq}.*`, wild);

  await send(pub, {
    destination: `/topic/x${uniq}`,
    body: 'hello topic',
    headers: { 'content-type': 'text/plain', 'x-trace': 'abc 123' },
  });
  const [m] = await x.waitFor(1, 'round trip');
  check(m.body === 'hello topic', `body: ${JSON.stringify(m.body)}`);
  check(m.headers.destination === `/topic/x${uniq}`, `destination header: ${m.headers.destination}`);
  check(m.headers.subscription === xSub.id, `subscription header: want ${xSub.id}, got ${m.headers.subscription}`);
  check(!!m.headers['message-id'], 'no message-id header');
  check(m.headers['x-trace'] === 'abc 123', `user header x-trace: ${JSON.stringify(m.headers['x-trace'])}`);
  check(m.headers['content-type'] === 'text/plain', `content-type: ${m.headers['content-type']}`);
  check(m.headers['content-length'] === '11', `content-length: ${m.headers['content-length']}`);
  // The broker stamps its receive time in ms; same machine, so it is close.
  const ts = Number(m.headers.timestamp);
  check(Math.abs(Date.now() - ts) < 10000, `timestamp header: ${JSON.stringify(m.headers.timestamp)}`);

  // `*` is exactly one word: a.b.c must not match, a.b must.
  await send(pub, { destination: `/topic/a${uniq}.b.c`, body: 'two words' });
  await send(pub, { destination: `/topic/a${uniq}.b`, body: 'one word' });
  await wild.waitFor(1, 'wildcard delivery');
  await sleep(300); // room for a wrong extra delivery to show up
  check(
    wild.messages.length === 1 && wild.messages[0].body === 'one word',
    `/topic/a.* got ${JSON.stringify(wild.bodies)}, want ["one word"]`,
  );
  check(
    wild.messages[0].headers.destination === `/topic/a${uniq}.b`,
    `wildcard destination header: ${wild.messages[0].headers.destination}`,
  );
  check(x.messages.length === 1, `/topic/x got ${x.messages.length} messages, want 1`);

  await stop(pub);
  await stop(sub);
  return { version: sub.connectedVersion, wildcard: wild.bodies };
});
