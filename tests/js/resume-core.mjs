// A subscriber that resumes where it left off, as README shows, run both
// in node (resume.mjs) and in Chromium (browser/resume.html). The Go test
// closes the subscribers' connections from the server side (the admin
// API's kick) while a publisher sends at a steady rate; each subscriber
// reconnects with x-resume-after set to the last message-id it saw, and
// must get every message exactly once and in order: one subscriber on a
// topic, one on a wildcard over three topics (publication order across
// them).
//
// runResume({Client, webSocketFactory, prefix, total, minConnects, log})
// resolves with a summary, or rejects with what went wrong.

export async function runResume({ Client, webSocketFactory, prefix, total = 1200, minConnects = 4, log = () => {} }) {
  const topics = ['a', 'b', 'c'].map((w) => `/topic/${prefix}.${w}`);
  const failures = [];
  const fail = (msg) => {
    failures.push(msg);
    log(`FAIL ${msg}`);
  };

  // resumer is the pattern README documents: remember the last
  // message-id, and on every (re)connect subscribe from it.
  function resumer(label, destination, expected) {
    let lastId = null;
    let n = 0;
    const got = [];
    const resumes = [];
    const connectHeaders = { login: 'guest', passcode: 'guest' };
    const client = new Client({
      webSocketFactory,
      connectHeaders,
      reconnectDelay: 100,
      heartbeatIncoming: 0,
      heartbeatOutgoing: 0,
      debug: () => {},
      // A client-id per connection lets the test find, and close, this
      // subscriber's connections.
      beforeConnect: () => { connectHeaders['client-id'] = `resumer-${label}-${++n}`; },
    });
    client.onConnect = () => {
      const headers = { receipt: `r-${label}-${n}` };
      if (lastId) headers['x-resume-after'] = lastId;
      // Closed before the first message came: everything kept is new to it.
      else if (n > 1) headers['x-stream-offset'] = 'first';
      client.watchForReceipt(headers.receipt, (frame) => {
        resumes.push(frame.headers['x-resume'] || '(none)');
        if (lastId && frame.headers['x-resume'] !== 'ok') fail(`${label}: resume answered x-resume:${frame.headers['x-resume']}`);
        if (!lastId) ready();
      });
      client.subscribe(destination, (m) => {
        const want = expected[got.length];
        if (m.body !== want) fail(`${label}: message ${got.length} is ${m.body}, want ${want}`);
        if (m.headers['x-resume-gap']) fail(`${label}: gap at ${m.body}`);
        got.push(m.body);
        lastId = m.headers['message-id'];
      }, headers);
    };
    client.onStompError = (f) => log(`${label}: ERROR ${f.headers.message}`); // the kick
    let ready;
    const subscribed = new Promise((r) => { ready = r; });
    client.activate();
    return { label, client, got, resumes, subscribed, connects: () => n, expected };
  }

  const all = [];
  for (let i = 0; i < total; i++) all.push(String(i));
  const exact = resumer('exact', topics[0], all.filter((_, i) => i % 3 === 0));
  const wild = resumer('wild', `/topic/${prefix}.*`, all);
  await Promise.all([exact.subscribed, wild.subscribed]);

  // The publisher: one message every 4 ms, round robin over the topics.
  const pub = new Client({ webSocketFactory, connectHeaders: { login: 'guest', passcode: 'guest' }, reconnectDelay: 0, debug: () => {} });
  await new Promise((resolve) => { pub.onConnect = resolve; pub.activate(); });
  for (let i = 0; i < total; i++) {
    pub.publish({ destination: topics[i % 3], body: String(i) });
    await new Promise((r) => setTimeout(r, 4));
  }
  const done = () => [exact, wild].every((s) => s.got.length >= s.expected.length && s.connects() >= minConnects);
  while (!done() && failures.length === 0) await new Promise((r) => setTimeout(r, 50));
  // Anything more would be a duplicate.
  await new Promise((r) => setTimeout(r, 300));
  for (const s of [exact, wild]) {
    if (s.got.length !== s.expected.length) fail(`${s.label}: got ${s.got.length} messages, want ${s.expected.length}`);
  }
  await pub.deactivate();
  await exact.client.deactivate();
  await wild.client.deactivate();
  if (failures.length) throw new Error(failures.slice(0, 5).join('; '));
  return {
    published: total,
    exact: { got: exact.got.length, connects: exact.connects(), resumes: exact.resumes.join(',') },
    wild: { got: wild.got.length, connects: wild.connects(), resumes: wild.resumes.join(',') },
  };
}
