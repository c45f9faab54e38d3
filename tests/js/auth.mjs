// Logins and permissions as STOMP.js sees them, against a broker running
// docs/broker.example.toml: a wrong passcode gets ERROR "access refused",
// the right one works, and a SEND outside the user's write pattern gets
// ERROR "access refused: write /queue/x".
import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';
import { scenario, connect, stop, subscribe, send, Inbox, check, note, wsURL, uniq } from './lib.mjs';

// nextError resolves with the next ERROR frame and the close that must
// follow it, taking over the handlers that would fail the scenario.
function nextError(client, what, ms = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: no ERROR within ${ms} ms`)), ms);
    let error = null;
    client.onStompError = (frame) => {
      note(`[${client.label}] ERROR ${frame.headers.message}`);
      error = frame;
    };
    client.onWebSocketClose = () => {
      clearTimeout(t);
      if (!error) reject(new Error(`${what}: closed without an ERROR`));
      else resolve(error);
    };
  });
}

scenario('auth', async () => {
  // A wrong passcode: ERROR, then the close, and no CONNECTED.
  const bad = new Client({
    webSocketFactory: () => new WebSocket(wsURL, ['v12.stomp']),
    connectHeaders: { login: 'orders', passcode: 'not-the-passcode' },
    reconnectDelay: 0,
    debug: (s) => note(`[wrong passcode] ${s}`),
  });
  bad.label = 'wrong passcode';
  let connected = false;
  bad.onConnect = () => {
    connected = true;
  };
  const refused = nextError(bad, 'wrong passcode');
  bad.activate();
  const loginError = await refused;
  await bad.deactivate();
  check(!connected, 'a wrong passcode got CONNECTED');
  check(loginError.headers.message === 'access refused', `login ERROR message: ${loginError.headers.message}`);
  check(!/passcode|password|user/i.test(loginError.body), `login ERROR says too much: ${loginError.body}`);

  // The right passcode works, for what the user may do.
  const orders = await connect('orders', { connectHeaders: { login: 'orders', passcode: 'orders-secret' } });
  const dest = `/queue/orders.js-${uniq}`;
  const inbox = new Inbox('orders');
  await subscribe(orders, dest, inbox);
  await send(orders, { destination: dest, body: 'allowed' });
  await inbox.waitFor(1, 'own queue');
  check(inbox.bodies[0] === 'allowed', `got ${JSON.stringify(inbox.bodies)}`);

  // A forbidden destination: ERROR naming it, and the connection ends.
  const forbidden = nextError(orders, 'forbidden SEND');
  orders.publish({ destination: '/queue/x', body: 'not allowed' });
  const writeError = await forbidden;
  check(
    writeError.headers.message === 'access refused: write /queue/x',
    `forbidden SEND ERROR message: ${writeError.headers.message}`,
  );
  await stop(orders);
  return { login: loginError.headers.message, write: writeError.headers.message };
});
