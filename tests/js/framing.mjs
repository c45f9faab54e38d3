// WebSocket framing options STOMP.js users turn on: splitLargeFrames sends
// one STOMP frame as many WebSocket text messages, and forceBinaryWSFrames
// sends every frame, CONNECT included, as a binary message. The broker must
// reassemble the first and accept the second.
import { scenario, connect, stop, subscribe, send, Inbox, check, uniq } from './lib.mjs';

scenario('framing', async () => {
  // 20 000 UTF-16 units in 1 KiB pieces: about 20 messages for one SEND.
  // Only BMP characters, so no piece ends inside a surrogate pair.
  const body = 'é-ü-'.repeat(5000);
  const split = await connect('split', { splitLargeFrames: true, maxWebSocketChunkSize: 1024 });
  const inSplit = new Inbox('split');
  await subscribe(split, `/queue/split-${uniq}`, inSplit);
  await send(split, { destination: `/queue/split-${uniq}`, body });
  const [m] = await inSplit.waitFor(1, 'frame sent in pieces');
  check(m.body === body, `split frame body: ${m.body.length} chars, want ${body.length}`);
  check(
    m.headers['content-length'] === String(Buffer.byteLength(body)),
    `content-length ${m.headers['content-length']}, want ${Buffer.byteLength(body)}`,
  );
  await stop(split);

  const bin = await connect('binary-frames', { forceBinaryWSFrames: true });
  const inBin = new Inbox('binary-frames');
  await subscribe(bin, `/topic/bin-frames-${uniq}`, inBin);
  await send(bin, { destination: `/topic/bin-frames-${uniq}`, body: 'grüße über binary', headers: { 'x-h': 'ä' } });
  const [b] = await inBin.waitFor(1, 'message sent in binary WebSocket frames');
  check(b.body === 'grüße über binary', `body ${JSON.stringify(b.body)}`);
  check(b.headers['x-h'] === 'ä', `header x-h ${JSON.stringify(b.headers['x-h'])}`);
  await stop(bin);
  return { splitChars: body.length };
});
