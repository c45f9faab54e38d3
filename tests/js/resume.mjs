// Resume after the server closes the connection, in node: see
// resume-core.mjs. The Go test (tests/history_test.go) does the closing.
import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';
import { scenario, wsURL, uniq, note } from './lib.mjs';
import { runResume } from './resume-core.mjs';

scenario('resume', () => runResume({
  Client,
  webSocketFactory: () => new WebSocket(wsURL, ['v12.stomp']),
  prefix: `resume-${uniq}`,
  log: note,
}), { timeoutMs: 60000 });
