// Binary bodies: every byte value 0..255 (NUL included, invalid UTF-8) and a
// larger pattern come back byte-identical, via a queue and via a topic.
import { scenario, connect, stop, subscribe, send, Inbox, check, uniq } from './lib.mjs';

function pattern(n) {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = i % 256;
  return b;
}

function sameBytes(got, want) {
  if (!(got instanceof Uint8Array)) return `binaryBody is ${Object.prototype.toString.call(got)}`;
  if (got.length !== want.length) return `length ${got.length}, want ${want.length}`;
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) return `byte ${i} is ${got[i]}, want ${want[i]}`;
  }
  return '';
}

scenario('binary', async () => {
  const c = await connect('client');
  const all = pattern(256);
  const big = pattern(64 * 1024 + 7);

  const q = new Inbox('queue');
  const t = new Inbox('topic');
  await subscribe(c, `/queue/bin-${uniq}`, q);
  await subscribe(c, `/topic/bin-${uniq}`, t);

  const headers = { 'content-type': 'application/octet-stream' };
  await send(c, { destination: `/queue/bin-${uniq}`, binaryBody: all, headers });
  await send(c, { destination: `/queue/bin-${uniq}`, binaryBody: big, headers });
  await send(c, { destination: `/topic/bin-${uniq}`, binaryBody: all, headers });

  const [m1, m2] = await q.waitFor(2, 'queue binary messages');
  const [m3] = await t.waitFor(1, 'topic binary message');
  for (const [name, m, want] of [
    ['queue 0..255', m1, all],
    ['queue 64 KiB', m2, big],
    ['topic 0..255', m3, all],
  ]) {
    const bad = sameBytes(m.binaryBody, want);
    check(!bad, `${name}: ${bad}`);
    check(m.headers['content-length'] === String(want.length), `${name}: content-length ${m.headers['content-length']}`);
    check(m.headers['content-type'] === 'application/octet-stream', `${name}: content-type ${m.headers['content-type']}`);
  }
  await stop(c);
  return { bytes: [m1.binaryBody.length, m2.binaryBody.length, m3.binaryBody.length] };
});
