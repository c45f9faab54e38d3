// Shared plumbing for the STOMP.js scenarios that the Go tests in ../ run
// against a real broker. A scenario prints one JSON line on stdout and exits
// 0 when everything it checks holds, or prints {"ok":false,...} plus the
// client's recent debug log on stderr and exits 1. It never hangs: a hard
// timer ends the process.
import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';

export const wsURL = process.argv[2];

// The last debug lines of every client, printed on failure so a broken
// scenario shows the frames that were exchanged.
const trace = [];
export function note(line) {
  trace.push(`${new Date().toISOString().slice(11, 23)} ${line}`);
  if (trace.length > 400) trace.shift();
}

let failed = false;
export function fail(err) {
  if (failed) return;
  failed = true;
  const message = err && err.message ? err.message : String(err);
  console.log(JSON.stringify({ scenario: currentScenario, ok: false, error: message }));
  console.error(`--- last client events (${scenarioName()}) ---\n${trace.join('\n')}`);
  process.exit(1);
}

let currentScenario = '';
function scenarioName() {
  return currentScenario || 'scenario';
}

export function check(cond, message) {
  if (!cond) throw new Error(message);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A unique suffix keeps destinations apart if a broker is ever shared.
export const uniq = `${process.pid}-${Date.now().toString(36)}`;

// scenario runs fn, which returns an object merged into the success line.
export function scenario(name, fn, { timeoutMs = 15000 } = {}) {
  currentScenario = name;
  if (!wsURL || !/^wss?:\/\//.test(wsURL)) {
    console.error(`usage: node ${name}.mjs ws://HOST:PORT/ws`);
    process.exit(2);
  }
  // Kept referenced: it also keeps the process alive if fn waits on
  // something that will never happen.
  setTimeout(() => fail(new Error(`${name}: timed out after ${timeoutMs} ms`)), timeoutMs);
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  Promise.resolve()
    .then(fn)
    .then((result) => {
      if (failed) return;
      if (process.env.STOMPJS_TRACE) console.error(trace.join('\n'));
      console.log(JSON.stringify({ scenario: name, ok: true, ...(result || {}) }));
      process.exit(0);
    }, fail);
}

// connect resolves with a connected Client. Anything that ends the session
// without stop() (an ERROR frame, a dropped socket, a lost heart-beat) fails
// the scenario, since none of the scenarios expects one.
export function connect(label, conf = {}) {
  return new Promise((resolve, reject) => {
    const client = new Client({
      webSocketFactory: () => new WebSocket(wsURL, ['v12.stomp', 'v11.stomp', 'v10.stomp']),
      // Built-in guest account: allowed from loopback while no users are configured.
      connectHeaders: { login: 'guest', passcode: 'guest' },
      reconnectDelay: 0, // a reconnect would hide a dropped connection
      connectionTimeout: 5000,
      debug: (s) => note(`[${label}] ${s}`),
      ...conf,
    });
    client.label = label;
    client.connects = 0;
    client.onConnect = (frame) => {
      client.connects++;
      client.connectedFrame = frame;
      resolve(client);
    };
    client.onStompError = (frame) => {
      const err = new Error(
        `${label}: broker sent ERROR: ${frame.headers.message || '(no message header)'} ${frame.body || ''}`.trim(),
      );
      reject(err);
      fail(err);
    };
    client.onWebSocketClose = (evt) => {
      if (client.stopping) return;
      const err = new Error(`${label}: WebSocket closed unexpectedly (code ${evt.code} ${evt.reason || ''})`);
      reject(err);
      fail(err);
    };
    client.onWebSocketError = (evt) => note(`[${label}] websocket error: ${evt && evt.message}`);
    client.onHeartbeatLost = () => fail(new Error(`${label}: no heart-beat or frame from the broker in time`));
    client.onUnhandledMessage = (m) => fail(new Error(`${label}: MESSAGE for no known subscription: ${m.headers.subscription}`));
    client.activate();
  });
}

// stop sends DISCONNECT and waits for the socket to close. It resolves with
// true when the broker answered the DISCONNECT's receipt.
export async function stop(client, ms = 3000) {
  if (!client) return false;
  client.stopping = true;
  let receipted = false;
  client.onDisconnect = () => {
    receipted = true;
  };
  const closed = client.deactivate().then(() => true);
  const timedOut = sleep(ms).then(() => false);
  if (!(await Promise.race([closed, timedOut]))) {
    await client.deactivate({ force: true });
  }
  return receipted;
}

// receipt resolves once the broker sends RECEIPT receipt-id:id, and fails
// with `what` in the message after ms. Call it before sending the frame.
export function receipt(client, id, what, ms = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${client.label}: no RECEIPT for ${what} (receipt:${id}) within ${ms} ms`)), ms);
    client.watchForReceipt(id, (frame) => {
      clearTimeout(t);
      resolve(frame);
    });
  });
}

let seq = 0;
export const nextId = (prefix) => `${prefix}-${++seq}`;

// subscribe subscribes with a receipt and resolves once the broker has the
// subscription in place, so that what is published next must reach it.
export async function subscribe(client, destination, inbox, headers = {}) {
  const id = nextId('sub-receipt');
  const got = receipt(client, id, `SUBSCRIBE ${destination}`);
  const sub = client.subscribe(destination, inbox.push, { ...headers, receipt: id });
  await got;
  return sub;
}

// send publishes with a receipt and waits for it.
export async function send(client, params) {
  const id = nextId('send-receipt');
  const got = receipt(client, id, `SEND to ${params.destination}`);
  client.publish({ ...params, headers: { ...(params.headers || {}), receipt: id } });
  await got;
}

// Inbox collects messages from a subscription and lets a scenario wait for
// a number of them.
export class Inbox {
  constructor(label) {
    this.label = label;
    this.messages = [];
    this.waiters = [];
    this.push = (m) => {
      note(`[${label}] got ${m.headers.destination} ${JSON.stringify(m.isBinaryBody ? '<binary>' : m.body)}`);
      this.messages.push(m);
      this.waiters = this.waiters.filter((w) => !w());
    };
  }

  get bodies() {
    return this.messages.map((m) => m.body);
  }

  // waitFor resolves once at least n messages have arrived in total.
  waitFor(n, what, ms = 5000) {
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () =>
          reject(
            new Error(
              `${this.label}: ${what}: got ${this.messages.length} of ${n} messages in ${ms} ms: ${JSON.stringify(this.bodies)}`,
            ),
          ),
        ms,
      );
      const done = () => {
        if (this.messages.length < n) return false;
        clearTimeout(t);
        resolve(this.messages.slice());
        return true;
      };
      if (!done()) this.waiters.push(done);
    });
  }
}
