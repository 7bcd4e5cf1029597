// A third-party v2 client, written against ../shared/PROTOCOL.md "v2" with
// Node's `ws`, against a running kullsync-server (--history-size 5).
// KULLSYNC_URL=http://127.0.0.1:PORT node --test v2_clients.test.js
// Across a cluster: KULLSYNC_URL names the node the devices connect to,
// KULLSYNC_TRIGGER_URL the node the backend posts to, and
// KULLSYNC_OTHER_URL a node for a second device.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');

const base = process.env.KULLSYNC_URL;
const triggerBase = process.env.KULLSYNC_TRIGGER_URL || base;
const otherBase = process.env.KULLSYNC_OTHER_URL || base;
const wsBase = base.replace(/^http/, 'ws') + '/ws';
const otherWsBase = otherBase.replace(/^http/, 'ws') + '/ws';
const historySize = Number(process.env.KULLSYNC_HISTORY_SIZE || 5);

/** A client that queues every message and close event for awaiting. */
function client(query, protocols, at = wsBase) {
  const ws = protocols ? new WebSocket(at + query, protocols) : new WebSocket(at + query);
  const inbox = [];
  const all = []; // every message, in order
  const waiters = [];
  const push = (ev) => {
    if (ev.kind === 'msg') all.push(ev.msg);
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
    ws, all,
    open: () => new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); }),
    msg: (type, ms) => next((e) => e.kind === 'msg' && e.msg.type === type, ms).then((e) => e.msg),
    msgWhere: (match, ms) => next((e) => e.kind === 'msg' && match(e.msg), ms).then((e) => e.msg),
    closed: (ms) => next((e) => e.kind === 'close', ms),
    send: (o) => ws.send(JSON.stringify(o)),
    close: () => new Promise((res) => { ws.once('close', res); ws.close(); }),
  };
}

const v2 = (query) => client(query, 'kull.v2');
/** A v2 device on the other node (the same node without a cluster). */
const v2Other = (query) => client(query, 'kull.v2', otherWsBase);

/** Whatever the user's stream held before now has reached each of
 *  `clients` once a credit update published now has: a stream is delivered
 *  in order, on every node. (What did not arrive before it never will.) */
let markers = 0;
async function marker(user, ...clients) {
  const balance = 1e6 + ++markers;
  await post('/credit-update', { userId: user, newBalance: balance, change: 0, reason: 'marker' });
  for (const c of clients)
    await next(c, (m) => m.type === 'CREDIT_UPDATE' && m.data.newBalance === balance);
}
const next = (c, match) => c.msgWhere(match);

async function post(path, body, headers = {}) {
  const r = await fetch(triggerBase + '/api/sync' + path, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

const credit = (user, n) => post('/credit-update', { userId: user, newBalance: n, change: 1, reason: 'r' + n });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** WELCOME exactly as the contract states it. */
function assertWelcome(w, device) {
  assert.equal(w.type, 'WELCOME');
  assert.deepEqual(Object.keys(w).sort(), ['data', 'timestamp', 'type']);
  assert.deepEqual(Object.keys(w.data).sort(),
                   ['deviceId', 'devices', 'epoch', 'expiresAt', 'recovered', 'seq']);
  assert.equal(typeof w.data.epoch, 'string');
  assert.ok(w.data.epoch.length > 0);
  assert.ok(Number.isInteger(w.data.seq) && w.data.seq >= 0);
  assert.equal(typeof w.data.recovered, 'boolean');
  assert.equal(w.data.deviceId, device);
  assert.equal(w.data.expiresAt, null); // legacy tokens do not expire
  assert.ok(w.data.devices.some((d) => d.deviceId === device), 'devices lists this one');
}

test('kull.v2 is echoed; WELCOME is the first frame, then a SNAPSHOT', async () => {
  const c = v2('?token=v2-first:mac');
  await c.open();
  assert.equal(c.ws.protocol, 'kull.v2');
  const w = await c.msg('WELCOME');
  assert.equal(c.all[0].type, 'WELCOME', 'the first frame');
  assertWelcome(w, 'mac');
  assert.equal(w.data.recovered, false);
  const s = await c.msg('SNAPSHOT');
  assert.equal(c.all[1].type, 'SNAPSHOT', 'right behind WELCOME');
  assert.deepEqual(Object.keys(s.data).sort(), ['credits', 'devices', 'seq', 'shoots']);
  assert.equal(s.data.seq, w.data.seq);
  assert.equal(s.data.credits, null);
  assert.deepEqual(s.data.shoots, []);
  assert.deepEqual(s.data.devices.map((d) => d.deviceId), ['mac']);
  assert.equal(c.all.filter((m) => m.type === 'DEVICE_CONNECTED').length, 0,
               'a v2 device learns of itself from WELCOME only');
  await c.close();
});

test('a v1 socket of the same user stays byte-for-byte v1', async () => {
  const old = client('?token=v2-mixed:legacy');
  const first = await old.msg('DEVICE_CONNECTED');
  assert.equal(old.ws.protocol, '');
  assert.equal(first.deviceId, 'legacy');
  const c = v2('?token=v2-mixed:mac');
  await c.msg('SNAPSHOT');
  const r = await credit('v2-mixed', 10);
  assert.equal(r.status, 200);
  assert.ok(Number.isInteger(r.body.seq) && r.body.seq >= 1, 'the trigger answers the seq');
  const a = await c.msg('CREDIT_UPDATE');
  assert.equal(a.seq, r.body.seq);
  const b = await old.msg('CREDIT_UPDATE');
  assert.deepEqual(Object.keys(b).sort(), ['data', 'deviceId', 'timestamp', 'type', 'userId']);
  assert.ok(!old.all.some((m) => ['WELCOME', 'SNAPSHOT', 'ACK', 'NACK'].includes(m.type)));
  // Presence has no seq and reaches both.
  const d = await old.msg('DEVICE_CONNECTED');
  assert.equal(d.deviceId, 'mac');
  assert.equal(d.seq, undefined);
  await c.close();
  await old.close();
});

test('one numbering per user: 1, 2, 3 ... the same on every device', async () => {
  const a = v2('?token=v2-num:a');
  const b = v2('?token=v2-num:b');
  const wa = await a.msg('WELCOME');
  await b.msg('SNAPSHOT');
  const seqs = [];
  for (let i = 1; i <= 4; i++) {
    const r = await credit('v2-num', i);
    // The answer as the contract writes it: {"success":true,"seq":n,...}.
    assert.deepEqual(Object.keys(r.body).slice(0, 2), ['success', 'seq']);
    seqs.push(r.body.seq);
  }
  assert.deepEqual(seqs, [wa.data.seq + 1, wa.data.seq + 2, wa.data.seq + 3, wa.data.seq + 4]);
  for (const c of [a, b]) {
    const got = [];
    for (let i = 0; i < 4; i++) got.push((await c.msg('CREDIT_UPDATE')).seq);
    assert.deepEqual(got, seqs);
  }
  // Presence, PONG and control messages carry no seq.
  a.send({ type: 'PING', payload: { timestamp: Date.now() / 1000 } });
  const pong = await a.msg('PONG');
  assert.equal(pong.seq, undefined);
  await a.close();
  await b.close();
});

test('a device that resumes gets exactly what it missed, then live messages', async () => {
  const a = v2('?token=v2-resume:mac');
  const w = await a.msg('WELCOME');
  await a.msg('SNAPSHOT');
  await credit('v2-resume', 1);
  const last = (await a.msg('CREDIT_UPDATE')).seq;
  await a.close();
  const missed = [];
  for (let i = 2; i <= 4; i++) missed.push((await credit('v2-resume', i)).body.seq);
  const b = v2(`?token=v2-resume:mac&epoch=${encodeURIComponent(w.data.epoch)}&since=${last}`);
  const w2 = await b.msg('WELCOME');
  assertWelcome(w2, 'mac');
  assert.equal(w2.data.recovered, true);
  assert.equal(w2.data.epoch, w.data.epoch);
  assert.equal(w2.data.seq, missed[missed.length - 1]);
  const replay = [];
  for (let i = 0; i < 3; i++) replay.push(await b.msg('CREDIT_UPDATE'));
  assert.deepEqual(replay.map((m) => m.seq), missed);
  assert.deepEqual(replay.map((m) => m.data.newBalance), [2, 3, 4]);
  assert.equal(b.all.filter((m) => m.type === 'SNAPSHOT').length, 0, 'no snapshot after a replay');
  const live = await credit('v2-resume', 5);
  assert.equal((await b.msg('CREDIT_UPDATE')).seq, live.body.seq);
  assert.equal(live.body.seq, missed[2] + 1);
  await b.close();
});

test('no partial replay: another epoch, a position ahead or evicted gets a SNAPSHOT', async () => {
  const a = v2('?token=v2-snap:mac');
  const w = await a.msg('WELCOME');
  await a.msg('SNAPSHOT');
  await a.close();
  for (let i = 1; i <= historySize + 2; i++) await credit('v2-snap', 100 + i);
  const top = w.data.seq + historySize + 2;
  for (const [epoch, since] of [['not-the-epoch', top], [w.data.epoch, top + 5], [w.data.epoch, w.data.seq]]) {
    const c = v2(`?token=v2-snap:mac&epoch=${encodeURIComponent(epoch)}&since=${since}`);
    const w2 = await c.msg('WELCOME');
    assert.equal(w2.data.recovered, false, `epoch ${epoch} since ${since}`);
    const s = await c.msg('SNAPSHOT');
    assert.equal(s.data.seq, top);
    assert.deepEqual(s.data.credits, { newBalance: 100 + historySize + 2, change: 1,
                                       reason: 'r' + (100 + historySize + 2) });
    assert.equal(c.all.filter((m) => m.type === 'CREDIT_UPDATE').length, 0);
    await c.close();
  }
  // Still in the history: recovered, with nothing to replay.
  const c = v2(`?token=v2-snap:mac&epoch=${encodeURIComponent(w.data.epoch)}&since=${top}`);
  assert.equal((await c.msg('WELCOME')).data.recovered, true);
  await c.close();
});

test('client messages with ids are ACKed once in the stream, and applied once', async () => {
  const a = v2('?token=v2-ack:mac');
  const b = v2('?token=v2-ack:ipad');
  await a.msg('SNAPSHOT');
  await b.msg('SNAPSHOT');
  const payload = { shootId: 's1', status: 'processing', processedCount: 3, totalCount: 9, provider: 'p' };
  a.send({ type: 'UPDATE_PROGRESS', id: 'mac-1', payload });
  const ack = await a.msg('ACK');
  assert.deepEqual(Object.keys(ack.data).sort(), ['id', 'seq']);
  assert.equal(ack.data.id, 'mac-1');
  const seen = await b.msg('SHOOT_PROGRESS');
  assert.equal(seen.seq, ack.data.seq);
  assert.deepEqual(seen.data, payload);
  assert.equal(seen.deviceId, 'mac');
  // Resent (say, after a reconnect): the original ACK, nothing published.
  a.send({ type: 'UPDATE_PROGRESS', id: 'mac-1', payload });
  const again = await a.msg('ACK');
  assert.deepEqual(again.data, ack.data);
  await marker('v2-ack', b);
  assert.equal(b.all.filter((m) => m.type === 'SHOOT_PROGRESS').length, 1);
  // Refused: a NACK that names the id.
  a.send({ type: 'UPDATE_PROGRESS', id: 'mac-2', payload: { shootId: 7 } });
  const nack = await a.msg('NACK');
  assert.deepEqual(Object.keys(nack.data).sort(), ['code', 'error', 'id']);
  assert.equal(nack.data.id, 'mac-2');
  assert.equal(nack.data.code, 'invalid');
  assert.ok(nack.data.error.length > 0);
  // PING is answered by PONG, not ACK.
  a.send({ type: 'PING', id: 'mac-3', payload: { timestamp: 1 } });
  await a.msg('PONG');
  // An ACK for the PING would have come before the PONG (one socket, in order).
  assert.equal(a.all.filter((m) => m.type === 'ACK').length, 2);
  await a.close();
  await b.close();
});

test('a v2 device hears of the others, not of itself', async () => {
  const a = v2('?token=v2-pres:mac');
  await a.msg('SNAPSHOT');
  const b = v2('?token=v2-pres:ipad');
  const wb = await b.msg('WELCOME');
  assert.deepEqual(wb.data.devices.map((d) => d.deviceId).sort(), ['ipad', 'mac']);
  const hi = await a.msg('DEVICE_CONNECTED');
  assert.equal(hi.deviceId, 'ipad');
  await b.close();
  const bye = await a.msg('DEVICE_DISCONNECTED');
  assert.equal(bye.deviceId, 'ipad');
  await a.close();
});

test('an Idempotency-Key retry answers the first seq and publishes nothing', async () => {
  const a = v2('?token=v2-idem:mac');
  await a.msg('SNAPSHOT');
  const first = await post('/credit-update', { userId: 'v2-idem', newBalance: 5, change: 5, reason: 'x' },
                           { 'Idempotency-Key': 'k-1' });
  const retry = await post('/credit-update', { userId: 'v2-idem', newBalance: 5, change: 5, reason: 'x' },
                           { 'Idempotency-Key': 'k-1' });
  assert.equal(retry.status, 200);
  assert.equal(retry.body.seq, first.body.seq);
  await a.msg('CREDIT_UPDATE');
  await marker('v2-idem', a);
  assert.equal(a.all.filter((m) => m.type === 'CREDIT_UPDATE' && m.data.newBalance === 5).length, 1);
  const p = await post('/prompt-change', { promptId: 'p', action: 'voted', userIds: ['v2-idem', 'v2-other'] });
  assert.equal(p.status, 200);
  assert.deepEqual(Object.keys(p.body.seqs).sort(), ['v2-idem', 'v2-other']);
  assert.equal((await a.msg('PROMPT_CHANGE')).seq, p.body.seqs['v2-idem']);
  await a.close();
});

test('an Idempotency-Key retry of a message outside the stream publishes it once', async () => {
  const adm = v2('?token=admin:idem-console');
  await adm.msg('SNAPSHOT');
  const body = { providers: [{ provider: 'idem-check', status: 'healthy' }], timestamp: 1 };
  const first = await post('/provider-health', body, { 'Idempotency-Key': 'ph-1' });
  const retry = await post('/provider-health', body, { 'Idempotency-Key': 'ph-1' });
  assert.equal(first.status, 200);
  assert.equal(retry.status, 200);
  await marker('admin', adm);
  const seen = adm.all.filter((m) => m.type === 'PROVIDER_HEALTH'
                                     && m.data.providers[0]?.provider === 'idem-check');
  assert.equal(seen.length, 1, `PROVIDER_HEALTH arrived ${seen.length} times`);
  await adm.close();
});

test('WELCOME is the first frame, also to a client that sends the moment it is open', async () => {
  // Across two nodes a fresh user's head is read from Redis meanwhile; a
  // node alone starts the socket within its join, so this is the cluster's.
  for (let i = 0; i < 20; ++i) {
    const c = v2(`?token=v2-first-${i}:mac`);
    await c.open();
    c.send({ type: 'PING', payload: { timestamp: Date.now() / 1000 } });
    c.send({ type: 'UPDATE_PROGRESS', id: `first-${i}`,
             payload: { shootId: 's', status: 'processing', processedCount: 1, totalCount: 2,
                        provider: 'p' } });
    c.send({ type: 'UPDATE_PROGRESS', id: '' }); // refused: NACK invalid
    await c.msg('ACK');
    await c.msg('NACK');
    await c.msg('PONG');
    assert.equal(c.all[0].type, 'WELCOME', `first frames: ${c.all.slice(0, 3).map((m) => m.type)}`);
    await c.close();
  }
});

test('a v2 consumer that stops reading is cut with 4009 so that it resumes', async () => {
  const slow = v2('?token=v2-slow:reader');
  await slow.msg('SNAPSHOT');
  let cut = null;
  slow.ws.on('close', (code) => { cut = code; });
  slow.ws._socket.pause();
  const big = 'y'.repeat(30 * 1024);
  let sent = 0;
  for (; sent < 1500; sent++) {
    await post('/shoot-progress', { userId: 'v2-slow', shootId: 's', status: 'processing',
                                    processedCount: sent, totalCount: 1500, provider: 'p', currentImage: big });
    if (sent % 100 === 99) {
      const st = await (await fetch(base + '/api/sync/state?token=v2-slow:probe')).json();
      if (!st.devices.some((d) => d.deviceId === 'reader')) break;
    }
  }
  assert.ok(sent < 1500, 'the slow reader was never cut');
  slow.ws._socket.resume();
  const deadline = Date.now() + 15000;
  while (cut === null && Date.now() < deadline) await sleep(20);
  assert.equal(cut, 4009);
});

test('ids are scoped to the device: two devices may both send id "1"', async () => {
  const a = v2('?token=v2-scope:mac');
  const b = v2Other('?token=v2-scope:ipad');
  await a.msg('SNAPSHOT');
  await b.msg('SNAPSHOT');
  const p = (shoot, n) => ({ shootId: shoot, status: 'processing', processedCount: n, totalCount: 9, provider: 'p' });
  a.send({ type: 'UPDATE_PROGRESS', id: '1', payload: p('from-mac', 1) });
  const ackA = await a.msg('ACK');
  b.send({ type: 'UPDATE_PROGRESS', id: '1', payload: p('from-ipad', 2) });
  const ackB = await b.msg('ACK');
  assert.equal(ackA.data.id, '1');
  assert.equal(ackB.data.id, '1');
  assert.notEqual(ackB.data.seq, ackA.data.seq, 'the second device\'s message got a position of its own');
  // Both were applied: every device sees both shoots, at their positions.
  await marker('v2-scope', a, b);
  for (const c of [a, b]) {
    const got = c.all.filter((m) => m.type === 'SHOOT_PROGRESS').map((m) => [m.data.shootId, m.seq]);
    assert.deepEqual(got.sort(), [['from-ipad', ackB.data.seq], ['from-mac', ackA.data.seq]].sort());
  }
  // The same id again from the same device is still answered, not applied.
  b.send({ type: 'UPDATE_PROGRESS', id: '1', payload: p('from-ipad', 2) });
  assert.deepEqual((await b.msg('ACK')).data, ackB.data);
  await marker('v2-scope', a);
  assert.equal(a.all.filter((m) => m.type === 'SHOOT_PROGRESS').length, 2);
  await a.close();
  await b.close();
});

test('a device\'s id never matches the backend\'s Idempotency-Key', async () => {
  const a = v2('?token=v2-keys:mac');
  await a.msg('SNAPSHOT');
  a.send({ type: 'UPDATE_PROGRESS', id: 'http:K7',
           payload: { shootId: 's', status: 'processing', processedCount: 1, totalCount: 2, provider: 'p' } });
  const ack = await a.msg('ACK');
  const r = await post('/credit-update', { userId: 'v2-keys', newBalance: 7, change: 7, reason: 'k' },
                       { 'Idempotency-Key': 'K7' });
  assert.equal(r.status, 200);
  assert.notEqual(r.body.seq, ack.data.seq, 'the backend\'s publish has a position of its own');
  const c = await a.msg('CREDIT_UPDATE');
  assert.equal(c.seq, r.body.seq);
  assert.equal(c.data.newBalance, 7);
  // And the other way round: a key first, then a device id that spells it.
  const r2 = await post('/credit-update', { userId: 'v2-keys', newBalance: 8, change: 1, reason: 'k' },
                        { 'Idempotency-Key': 'K8' });
  for (const id of ['K8', 'h:K8', 'http:K8']) {
    a.send({ type: 'UPDATE_PROGRESS', id,
             payload: { shootId: 'x' + id, status: 'processing', processedCount: 1, totalCount: 2, provider: 'p' } });
    const ack2 = await a.msg('ACK');
    assert.equal(ack2.data.id, id);
    assert.notEqual(ack2.data.seq, r2.body.seq, `device id ${id} was applied on its own`);
  }
  await a.close();
});

test('an id that is not a string of 1-64 characters is refused with NACK invalid', async () => {
  const a = v2('?token=v2-badid:mac');
  await a.msg('SNAPSHOT');
  const payload = { shootId: 's', status: 'processing', processedCount: 1, totalCount: 2, provider: 'p' };
  const long = 'é'.repeat(64) + 'xyz'; // 67 characters (more bytes)
  const cases = [[long, 'é'.repeat(64)], ['', ''], [42, null], [null, null], [['1'], null], [{ a: 1 }, null]];
  for (const [id, echoed] of cases) {
    a.send({ type: 'UPDATE_PROGRESS', id, payload });
    const n = await a.msg('NACK');
    assert.deepEqual(Object.keys(n.data).sort(), ['code', 'error', 'id']);
    assert.equal(n.data.code, 'invalid', `id ${JSON.stringify(id)}`);
    assert.equal(n.data.id, echoed, `id ${JSON.stringify(id)} is echoed as ${JSON.stringify(echoed)}`);
    assert.ok(n.data.error.length > 0);
  }
  // 64 characters exactly is an id.
  a.send({ type: 'UPDATE_PROGRESS', id: 'é'.repeat(64), payload });
  assert.equal((await a.msg('ACK')).data.id, 'é'.repeat(64));
  await marker('v2-badid', a);
  assert.equal(a.all.filter((m) => m.type === 'SHOOT_PROGRESS').length, 1, 'only the valid one was applied');
  await a.close();
});
