// The demo chat: STOMP.js over the broker's /ws, one topic per room.
// Everything it shows comes from the broker; it keeps no state but the
// name in localStorage.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);

  // A room is one word of a topic name: no dots, wildcards or slashes.
  const params = new URLSearchParams(location.search);
  const asked = params.get('room') || 'lobby';
  const room = /^[A-Za-z0-9_-]{1,64}$/.test(asked) ? asked : 'lobby';
  const topic = '/topic/demo.' + room;
  const tab = Math.random().toString(36).slice(2, 10); // tells our own lines apart

  $('room-name').textContent = room;
  $('topic').textContent = topic;
  $('cli').textContent = `broker publish ${topic} 'hello from a shell'`;
  $('share').href = location.pathname + '?room=' + encodeURIComponent(room);
  document.title = `${room} · Demo chat · Stampede`;

  const nick = $('nick');
  nick.value = localStorage.getItem('stampede-demo-name') || 'guest-' + tab.slice(0, 4);
  nick.addEventListener('change', () => localStorage.setItem('stampede-demo-name', nick.value.trim()));

  const status = (text, state) => {
    $('status').textContent = text;
    $('status').dataset.state = state;
    $('send-button').disabled = state !== 'connected';
  };

  const client = new StompJs.Client({
    brokerURL: (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws',
    reconnectDelay: 2000,
    heartbeatIncoming: 10000,
    heartbeatOutgoing: 10000,
  });
  let connected = false;
  let lastId = null; // the last line shown, to resume from after a reconnect

  client.onConnect = (frame) => {
    connected = true;
    const who = frame.headers['user-name'] || client.connectHeaders.login || 'guest';
    status(`connected as ${who}`, 'connected');
    $('login').hidden = true;
    // With topic history on, the broker first replays the room's latest
    // lines, and after a dropped connection what the tab missed, from
    // the last line it showed; without history the headers are ignored.
    client.subscribe(topic, show, lastId ? { 'x-resume-after': lastId } : { 'x-history': '50' });
  };
  client.onWebSocketClose = () => {
    if (connected) status('disconnected, reconnecting…', 'down');
    connected = false;
  };
  client.onStompError = (frame) => {
    const msg = frame.headers.message || 'error';
    if (!connected && msg.startsWith('access refused')) {
      // Refused at CONNECT: users are configured, or this is not the
      // broker's machine. Ask rather than retry.
      client.deactivate();
      status('login needed', 'down');
      $('login').hidden = false;
      $('login-error').hidden = !$('login-name').value;
      $('login-error').textContent = 'Wrong login or passcode.';
      $('login-name').focus();
      return;
    }
    notice(msg);
  };

  $('login').addEventListener('submit', (e) => {
    e.preventDefault();
    client.connectHeaders = { login: $('login-name').value, passcode: $('login-pass').value };
    status('connecting…', 'connecting');
    client.activate();
  });

  $('send').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('message');
    const text = input.value.trim();
    if (!text || !connected) return;
    client.publish({
      destination: topic,
      body: text,
      headers: { 'content-type': 'text/plain', 'x-demo-from': nick.value.trim() || 'anonymous', 'x-demo-tab': tab },
    });
    input.value = '';
    input.focus();
  });

  // show appends a message. A line without x-demo-from came from another
  // STOMP client (a shell, a service), and says so.
  function show(m) {
    lastId = m.headers['message-id'];
    if (m.headers['x-resume-gap'] === 'true') notice('some lines were missed while disconnected');
    const li = document.createElement('li');
    const from = m.headers['x-demo-from'];
    if (m.headers['x-demo-tab'] === tab) li.className = 'mine';
    if (m.headers['x-replayed'] === 'true') li.classList.add('replayed');
    const time = document.createElement('time');
    const ts = new Date(Number(m.headers.timestamp) || Date.now());
    time.dateTime = ts.toISOString();
    time.textContent = ts.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    const name = document.createElement('span');
    name.className = from ? 'from' : 'from other';
    name.textContent = from || 'STOMP client';
    const text = document.createElement('span');
    text.className = 'text';
    text.textContent = m.body;
    li.append(time, name, text);
    append(li);
  }

  function notice(text) {
    const li = document.createElement('li');
    li.className = 'notice';
    li.textContent = text;
    append(li);
  }

  function append(li) {
    const list = $('lines');
    const atEnd = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
    list.append(li);
    while (list.children.length > 500) list.firstElementChild.remove();
    if (atEnd) list.scrollTop = list.scrollHeight;
  }

  status('connecting…', 'connecting');
  client.activate();
})();
