// Legacy Kull clients, played by Node's `ws`, against a running kullsync-server.
// KULLSYNC_URL=http://127.0.0.1:PORT node --test legacy_clients.test.js
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');

const base = process.env.KULLSYNC_URL;
const wsBase = base.replace(/^http/, 'ws') + '/ws';

/** A client that queues every message and close event for awaiting. */
function client(query, opts = {}) {
  const ws = new WebSocket(wsBase + query, opts);
  const inbox = [];
  const waiters = [];
  const push = (ev) => {
    const w = waiters.findIndex((x) => x.match(ev));
    if (w >= 0) waiters.splice(w, 1)[0].resolve(ev);
    else inbox.push(ev);
  };
  ws.on('message', (m) => push({ kind: 'msg', msg: JSON.parse(m.toString()) }));
  ws.on('close', (code, reason) => push({ kind: 'close', code, reason: reason.toString() }));
  ws.on('error', () => {});
  const next = (match, ms = 3000) => {
    const i = inbox.findIndex(match);
    if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timed out waiting')), ms);
      waiters.push({ match, resolve: (ev) => { clearTimeout(t); resolve(ev); } });
    });
  };
  return {
    ws,
    open: () => new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); }),
    msg: (type, ms) => next((e) => e.kind === 'msg' && e.msg.type === type, ms).then((e) => e.msg),
    closed: (ms) => next((e) => e.kind === 'close', ms),
    send: (o) => ws.send(typeof o === 'string' ? o : JSON.stringify(o)),
    none: async (type, ms = 300) => {
      await new Promise((r) => setTimeout(r, ms));
      assert.equal(inbox.filter((e) => e.kind === 'msg' && e.msg.type === type).length, 0,
                   `unexpected ${type}`);
    },
  };
}

/**
 * DEVICE_CONNECTED / DEVICE_DISCONNECTED exactly as the deployed server sends
 * them, checked field by field as a strict client would:
 * {"type","data":{"deviceId","timestamp"},"timestamp","deviceId","userId"},
 * the device named both in data and as the envelope's deviceId.
 */
function assertDeviceEnvelope(m, type, device, user) {
  assert.deepEqual(Object.keys(m).sort(), ['data', 'deviceId', 'timestamp', 'type', 'userId']);
  assert.equal(m.type, type);
  assert.deepEqual(Object.keys(m.data).sort(), ['deviceId', 'timestamp']);
  assert.equal(m.data.deviceId, device);
  assert.ok(Number.isInteger(m.data.timestamp), 'data.timestamp is epoch ms');
  assert.ok(Math.abs(m.data.timestamp - Date.now()) < 60000);
  assert.ok(Number.isInteger(m.timestamp), 'timestamp is epoch ms');
  assert.ok(Math.abs(m.timestamp - Date.now()) < 60000);
  assert.equal(m.deviceId, device);
  assert.equal(m.userId, user);
}

async function post(path, body, raw) {
  const r = await fetch(base + '/api/sync' + path, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: raw !== undefined ? raw : JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

test('no token: close 4001 "No token provided"', async () => {
  const c = client('');
  const ev = await c.closed();
  assert.equal(ev.code, 4001);
  assert.equal(ev.reason, 'No token provided');
});

test('empty user: close 4002 "Invalid token"', async () => {
  const c = client('?token=' + encodeURIComponent(':dev'));
  const ev = await c.closed();
  assert.equal(ev.code, 4002);
  assert.equal(ev.reason, 'Invalid token');
});

test('token without ":" gets a generated web device id', async () => {
  const c = client('?token=webuser');
  const m = await c.msg('DEVICE_CONNECTED');
  assert.match(m.data.deviceId, /^web-\d+-[a-z0-9]+$/);
  assertDeviceEnvelope(m, 'DEVICE_CONNECTED', m.data.deviceId, 'webuser');
  c.ws.close();
});

test('Authorization: Bearer works like ?token=', async () => {
  const c = client('', { headers: { Authorization: 'Bearer bearer-user:tv' } });
  const m = await c.msg('DEVICE_CONNECTED');
  assert.equal(m.data.deviceId, 'tv');
  c.ws.close();
});

test('devices, PING, relayed progress, ignored junk, HTTP triggers, disconnects', async () => {
  const a = client('?token=u-flow:mac');
  assertDeviceEnvelope(await a.msg('DEVICE_CONNECTED'), 'DEVICE_CONNECTED', 'mac', 'u-flow');

  // The new device hears of itself, then the others hear of it: one envelope.
  const b = client('?token=u-flow:ipad');
  assertDeviceEnvelope(await b.msg('DEVICE_CONNECTED'), 'DEVICE_CONNECTED', 'ipad', 'u-flow');
  assertDeviceEnvelope(await a.msg('DEVICE_CONNECTED'), 'DEVICE_CONNECTED', 'ipad', 'u-flow');

  a.send({ type: 'PING', payload: { timestamp: Date.now() / 1000 } });
  const pong = await a.msg('PONG');
  assert.deepEqual(Object.keys(pong).sort(), ['timestamp', 'type']);
  assert.ok(Math.abs(pong.timestamp - Date.now()) < 60000);

  const payload = { shootId: 's9', status: 'processing', processedCount: 1, totalCount: 2,
                    provider: 'p', progress: 0.5, currentImage: 'IMG_1.CR3' };
  a.send({ type: 'UPDATE_PROGRESS', payload });
  for (const c of [a, b]) {
    const m = await c.msg('SHOOT_PROGRESS');
    assert.deepEqual(m.data, payload); // relayed verbatim, extras included
    assert.equal(m.deviceId, 'mac');
    assert.equal(m.userId, 'u-flow');
  }

  a.send('this is not json');
  a.send({ type: 'SUBSCRIBE', payload: { channel: 'x' } });
  a.send({ type: 'UNSUBSCRIBE' });
  a.send({ type: 'SOMETHING_ELSE' });
  a.send({ type: 'UPDATE_PROGRESS', payload: { shootId: 7 } });
  a.send({ type: 'PING' });
  await a.msg('PONG'); // still open and served
  await b.none('SHOOT_PROGRESS', 100);

  let r = await post('/credit-update', { userId: 'u-flow', newBalance: 950, change: -50, reason: 'shoot s9' });
  assert.equal(r.status, 200);
  assert.equal(r.body.success, true);
  for (const c of [a, b]) {
    const m = await c.msg('CREDIT_UPDATE');
    assert.deepEqual(m.data, { userId: 'u-flow', newBalance: 950, change: -50, reason: 'shoot s9' });
    assert.equal(m.deviceId, 'server');
  }

  r = await post('/shoot-progress', { userId: 'u-flow', shootId: 's1', status: 'completed',
                                      processedCount: 5, totalCount: 5, provider: 'x' });
  assert.equal(r.status, 200);
  const sp = await b.msg('SHOOT_PROGRESS');
  assert.equal(sp.data.shootId, 's1');
  assert.equal(sp.data.userId, undefined);

  r = await post('/prompt-change', { promptId: 'p1', action: 'voted', userIds: ['u-flow'] });
  assert.equal(r.status, 200);
  assert.deepEqual((await a.msg('PROMPT_CHANGE')).data, { promptId: 'p1', action: 'voted' });

  const state = await (await fetch(base + '/api/sync/state?token=u-flow:x')).json();
  assert.equal(state.userId, 'u-flow');
  assert.deepEqual(state.credits, { newBalance: 950, change: -50, reason: 'shoot s9' });
  assert.deepEqual(state.shoots.map((p) => p.shootId).sort(), ['s1', 's9']);
  assert.deepEqual(state.devices.map((d) => d.deviceId).sort(), ['ipad', 'mac']);

  b.ws.close();
  await b.closed();
  assertDeviceEnvelope(await a.msg('DEVICE_DISCONNECTED'), 'DEVICE_DISCONNECTED', 'ipad',
                       'u-flow');
  a.ws.close();
});

test('an "id" of any shape is ignored on a v1 socket, as the deployed server does', async () => {
  const a = client('?token=u-ids:mac');
  try {
    await a.msg('DEVICE_CONNECTED');
    const ids = [5, null, '', 'x'.repeat(65), { k: 1 }, 'ok'];
    for (const [i, id] of ids.entries()) {
      const payload = { shootId: `s${i}`, status: 'processing', processedCount: i, totalCount: 9,
                        provider: 'p' };
      a.send({ type: 'UPDATE_PROGRESS', id, payload });
      const m = await a.msg('SHOOT_PROGRESS').catch(() => null);
      assert.ok(m, `not relayed with id ${JSON.stringify(id)}`);
      assert.deepEqual(m.data, payload, `relayed with id ${JSON.stringify(id)}`);
      assert.equal(m.seq, undefined);
    }
    a.send({ type: 'PING', id: 7, payload: { timestamp: Date.now() / 1000 } });
    assert.ok(await a.msg('PONG').catch(() => null), 'a PING with an id is answered');
  } finally {
    a.ws.close();
  }
});

test('a device whose socket is open gets what is published right after', async () => {
  // The deployed server registers a socket before its upgrade is answered:
  // an update posted the moment a client sees "open" must reach it.
  for (let i = 0; i < 40; i++) {
    const user = 'u-open-' + i;
    const c = client('?token=' + user + ':mac');
    try {
      await c.open();
      const r = await post('/credit-update', { userId: user, newBalance: i, change: 1, reason: 'r' });
      assert.equal(r.status, 200);
      assert.equal((await c.msg('CREDIT_UPDATE', 2000)).data.newBalance, i, `round ${i}`);
    } finally {
      c.ws.terminate();
    }
  }
});

test('admin user receives admin session updates and provider health', async () => {
  const admin = client('?token=admin:console');
  await admin.msg('DEVICE_CONNECTED');
  let r = await post('/admin-session', { sessionId: 'sess', userId: 'u7', action: 'new_message', messageCount: 3 });
  assert.equal(r.status, 200);
  const m = await admin.msg('ADMIN_SESSION_UPDATE');
  assert.equal(m.data.sessionId, 'sess');
  r = await post('/provider-health', { providers: [{ provider: 'openai', status: 'healthy', healthScore: 99 }], timestamp: 1 });
  assert.equal(r.status, 200);
  const h = await admin.msg('PROVIDER_HEALTH');
  assert.equal(h.data.providers[0].provider, 'openai');
  admin.ws.close();
});

test('HTTP errors: exact 400s, 404, 405, bad JSON, 413', async () => {
  let r = await post('/shoot-progress', { userId: 'u1' });
  assert.deepEqual(r, { status: 400, body: { error: 'userId and shootId are required' } });
  r = await post('/shoot-progress', { shootId: 's' });
  assert.equal(r.status, 400);
  r = await post('/shoot-progress', { userId: 'u', shootId: 's', status: 'paused', processedCount: 1, totalCount: 1 });
  assert.equal(r.status, 400);
  assert.match(r.body.error, /status/);
  r = await post('/credit-update', { userId: 'u1', newBalance: 5 });
  assert.equal(r.status, 400);
  r = await post('/prompt-change', { action: 'voted' });
  assert.deepEqual(r, { status: 400, body: { error: 'promptId and action are required' } });
  r = await post('/prompt-change', { promptId: 'p', action: 'voted' }); // nobody listed
  assert.equal(r.status, 200);
  r = await post('/prompt-change', { promptId: 'p', action: 'voted', userIds: 'u1' });
  assert.equal(r.status, 400);
  r = await post('/credit-update', { userId: 'u1', newBalance: 5 });
  assert.deepEqual(r, { status: 400, body: { error: 'userId, newBalance, and change are required' } });
  r = await post('/credit-update', null, '{not json');
  assert.equal(r.status, 400);
  assert.match(r.body.error, /Invalid JSON/);
  r = await post('/credit-update', null, '[1,2]');
  assert.equal(r.status, 400);
  r = await post('/nope', {});
  assert.equal(r.status, 404);
  const g = await fetch(base + '/api/sync/credit-update');
  assert.equal(g.status, 405);
  const s = await (await fetch(base + '/api/sync/status')).json();
  assert.equal(s.status, 'ok');
  assert.equal(s.service, 'websocket-sync');
  assert.equal(typeof s.timestamp, 'number');
  r = await post('/credit-update', null, JSON.stringify({ userId: 'u', pad: 'x'.repeat(200000) }));
  assert.equal(r.status, 413);
  const bad = await fetch(base + '/api/sync/state?token=' + encodeURIComponent(':x'));
  assert.equal(bad.status, 401);
});

test('a frame over the limit closes with 1009; the server lives on', async () => {
  const c = client('?token=big:one');
  await c.msg('DEVICE_CONNECTED');
  c.send({ type: 'UPDATE_PROGRESS', payload: { shootId: 'x'.repeat(70 * 1024) } });
  const ev = await c.closed();
  assert.equal(ev.code, 1009);
  const s = await fetch(base + '/api/sync/status');
  assert.equal(s.status, 200);
});

test('a client killed mid-broadcast does not cost the others a message', async () => {
  const n = 300;
  const sender = client('?token=fan:sender');
  await sender.msg('DEVICE_CONNECTED');
  const keep = client('?token=fan:keeper');
  await keep.msg('DEVICE_CONNECTED');
  const victim = client('?token=fan:victim');
  await victim.msg('DEVICE_CONNECTED');
  let got = 0;
  keep.ws.on('message', (m) => { if (JSON.parse(m).type === 'SHOOT_PROGRESS') got++; });
  for (let i = 0; i < n; i++) {
    sender.send({ type: 'UPDATE_PROGRESS', payload: { shootId: 's', status: 'processing', processedCount: i, totalCount: n, provider: 'p' } });
    if (i === n / 3) victim.ws._socket.destroy(); // killed, no close frame
  }
  const deadline = Date.now() + 5000;
  while (got < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(got, n);
  sender.ws.close();
  keep.ws.close();
});

test('a consumer that stops reading is cut with 1008, others unaffected', async () => {
  const slow = client('?token=slow:reader');
  await slow.msg('DEVICE_CONNECTED');
  const other = client('?token=other:healthy');
  await other.msg('DEVICE_CONNECTED');
  let cut = null;
  slow.ws.on('close', (code) => { cut = code; });
  slow.ws._socket.pause(); // stops reading: kernel buffers fill, then our queue
  const big = 'y'.repeat(30 * 1024);
  let sent = 0;
  for (; sent < 1500; sent++) {
    const r = await post('/shoot-progress', { userId: 'slow', shootId: 's', status: 'processing',
                                              processedCount: sent, totalCount: 1500, provider: 'p',
                                              currentImage: big });
    assert.equal(r.status, 200);
    if (sent % 100 === 99) {
      const st = await (await fetch(base + '/api/sync/state?token=slow:probe')).json();
      if (!st.devices.some((d) => d.deviceId === 'reader')) break; // the server let it go
    }
  }
  assert.ok(sent < 1500, 'the slow reader was never cut');
  slow.ws._socket.resume();
  const deadline = Date.now() + 15000;
  while (cut === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(cut, 1008);
  other.send({ type: 'PING' });
  await other.msg('PONG');
  other.ws.close();
});

test('sockets per user are capped (1008)', async () => {
  const cap = Number(process.env.KULLSYNC_MAX_SOCKETS || 4);
  const cs = [];
  for (let i = 0; i < cap; i++) {
    const c = client('?token=capped:d' + i);
    await c.msg('DEVICE_CONNECTED');
    cs.push(c);
  }
  const extra = client('?token=capped:extra');
  const ev = await extra.closed();
  assert.equal(ev.code, 1008);
  for (const c of cs) c.ws.close();
});
