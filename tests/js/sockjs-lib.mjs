// Plumbing for the STOMP.js-over-SockJS scenarios run by ../sockjs_test.go.
// Usage: node sockjs-NAME.mjs http://HOST:PORT/sockjs TRANSPORT
// A scenario prints one JSON line on stdout and exits 0 when its checks
// hold; otherwise it prints {"ok":false,...}, the recent client events on
// stderr, and exits 1. A hard timer ends it whatever happens.
import { Client } from '@stomp/stompjs';
import SockJS from 'sockjs-client';

export const sockjsURL = process.argv[2];
export const transport = process.argv[3];
// The same broker's plain WebSocket endpoint, for the parts of a scenario
// that SockJS cannot do (publishing a body that is not text).
export const wsURL = sockjsURL && sockjsURL.replace(/^http/, 'ws').replace(/\/sockjs$/, '/ws');

const trace = [];
export function note(line) {
  trace.push(`${new Date().toISOString().slice(11, 23)} ${line}`);
  if (trace.length > 300) trace.shift();
}

let name = '';
let failed = false;
export function fail(err) {
  if (failed) return;
  failed = true;
  const message = err && err.message ? err.message : String(err);
  console.log(JSON.stringify({ scenario: name, transport, ok: false, error: message }));
  console.error(`--- last client events (${name} over ${transport}) ---\n${trace.join('\n')}`);
  process.exit(1);
}

export function check(cond, message) {
  if (!cond) throw new Error(message);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const uniq = `${process.pid}-${Date.now().toString(36)}`;

export function scenario(scenarioName, fn, { timeoutMs = 30000 } = {}) {
  name = scenarioName;
  if (!/^https?:\/\/.*\/sockjs$/.test(sockjsURL || '') || !transport) {
    console.error(`usage: node ${scenarioName}.mjs http://HOST:PORT/sockjs TRANSPORT`);
    process.exit(2);
  }
  setTimeout(() => fail(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  Promise.resolve()
    .then(fn)
    .then((result) => {
      if (failed) return;
      console.log(JSON.stringify({ scenario: name, transport, ok: true, ...(result || {}) }));
      process.exit(0);
    }, fail);
}

// connect resolves with a STOMP.js client connected through SockJS with
// only the given transport allowed (or, with ws set, through plain
// WebSocket). An ERROR or a connection that ends without stop() fails
// the scenario, unless the client's onUnexpectedClose says otherwise.
export function connect(label, { transports = [transport], ws = null, ...conf } = {}) {
  return new Promise((resolve, reject) => {
    const client = new Client({
      webSocketFactory: () =>
        ws ? new ws(wsURL, ['v12.stomp']) : new SockJS(sockjsURL, null, { transports, timeout: 10000 }),
      connectHeaders: { login: 'guest', passcode: 'guest' },
      reconnectDelay: 0,
      connectionTimeout: 10000,
      debug: (s) => note(`[${label}] ${s.length > 300 ? s.slice(0, 300) + '…' : s}`),
      ...conf,
    });
    client.label = label;
    client.onConnect = () => resolve(client);
    client.onStompError = (frame) => {
      const err = new Error(`${label}: ERROR from the broker: ${frame.headers.message} ${frame.body}`.trim());
      reject(err);
      fail(err);
    };
    client.onWebSocketClose = (evt) => {
      if (client.stopping) return;
      if (client.onUnexpectedClose && client.onUnexpectedClose(evt)) return;
      const err = new Error(`${label}: connection closed unexpectedly (code ${evt.code} ${evt.reason || ''})`);
      reject(err);
      fail(err);
    };
    client.activate();
  });
}

// usedTransport names the SockJS transport a connected client ended up on.
export function usedTransport(client) {
  const sock = client.webSocket;
  return sock && sock.transport;
}

export async function stop(client, ms = 5000) {
  client.stopping = true;
  let receipted = false;
  client.onDisconnect = () => {
    receipted = true;
  };
  const closed = client.deactivate().then(() => true);
  if (!(await Promise.race([closed, sleep(ms).then(() => false)]))) {
    await client.deactivate({ force: true });
  }
  return receipted;
}

export function receipt(client, id, what, ms = 10000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${client.label}: no RECEIPT for ${what} within ${ms} ms`)), ms);
    client.watchForReceipt(id, (frame) => {
      clearTimeout(t);
      resolve(frame);
    });
  });
}

// Inbox collects a subscription's messages and lets a scenario wait for
// a number of them.
export class Inbox {
  constructor(label) {
    this.label = label;
    this.messages = [];
    this.waiters = [];
    this.push = (m) => {
      this.messages.push(m);
      this.waiters = this.waiters.filter((w) => !w());
    };
  }

  waitFor(n, what, ms = 15000) {
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`${this.label}: ${what}: got ${this.messages.length} of ${n} messages in ${ms} ms`)),
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

export async function subscribe(client, destination, inbox, headers = {}) {
  const id = `sub-${destination}-${Math.random().toString(36).slice(2)}`;
  const got = receipt(client, id, `SUBSCRIBE ${destination}`);
  const sub = client.subscribe(destination, inbox.push, { ...headers, receipt: id });
  await got;
  return sub;
}
