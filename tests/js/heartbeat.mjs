// Heart-beats: the client asks for 1000,1000; the broker answers 1000,1000
// (inside its [1000, 60000] clamp), keeps sending heart-beats while the
// connection is idle, accepts the client's, and the connection still works
// after 3.5 s of silence.
import { scenario, connect, stop, subscribe, send, Inbox, check, sleep, uniq } from './lib.mjs';

scenario('heartbeat', async () => {
  let beats = 0;
  const c = await connect('client', {
    heartbeatIncoming: 1000,
    heartbeatOutgoing: 1000,
    onHeartbeatReceived: () => beats++,
  });
  const hb = c.connectedFrame.headers['heart-beat'];
  check(hb === '1000,1000', `CONNECTED heart-beat: want "1000,1000", got ${JSON.stringify(hb)}`);

  const start = Date.now();
  await sleep(3500); // idle: only heart-beats in either direction
  const idle = Date.now() - start;
  check(c.connected, 'connection gone after idling');
  check(c.connects === 1, `reconnected during idle (${c.connects} connects)`);
  // One every second, "on time" within half an interval: at least 2 in 3.5 s.
  check(beats >= 2, `only ${beats} heart-beats from the broker in ${idle} ms`);

  const inbox = new Inbox('client');
  await subscribe(c, `/queue/hb-${uniq}`, inbox);
  await send(c, { destination: `/queue/hb-${uniq}`, body: 'still here' });
  await inbox.waitFor(1, 'message after idling');
  check(inbox.messages[0].body === 'still here', `body ${inbox.messages[0].body}`);
  await stop(c);
  return { heartBeat: hb, serverBeats: beats, idleMs: idle };
});
