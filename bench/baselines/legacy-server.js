// The deployed Kull sync server as PROTOCOL.md describes it: Node `ws`,
// userId -> set of sockets, DEVICE_CONNECTED/DISCONNECTED, PING -> PONG,
// UPDATE_PROGRESS -> SHOOT_PROGRESS to all the user's devices, protocol pings
// every 30 s, HTTP triggers under /api/sync. Its known defects are kept on
// purpose (no auth, no limits): it is the baseline we compare against.
//
// usage: node legacy-server.js [--port N] [--host H] [--tls CERT KEY]
// prints {"listening":"HOST:PORT"} once ready.
'use strict';
const http = require('http');
const https = require('https');
const fs = require('fs');
const { WebSocketServer, WebSocket } = require('ws');

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const host = opt('--host', '127.0.0.1');
const port = Number(opt('--port', '0'));
const tlsAt = args.indexOf('--tls');

const clients = new Map(); // userId -> Set<ws>

function send(ws, message) {
  if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
}
function broadcastToUser(userId, message, excludeDeviceId) {
  const set = clients.get(userId);
  if (!set) return;
  const text = JSON.stringify({ ...message, timestamp: Date.now() });
  for (const ws of set) {
    if (excludeDeviceId && ws.deviceId === excludeDeviceId) continue;
    if (ws.readyState === WebSocket.OPEN) ws.send(text);
  }
}

function onApi(req, res, body) {
  const reply = (status, obj) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(obj));
  };
  const path = req.url.split('?')[0];
  let data = {};
  if (req.method === 'POST') {
    try { data = JSON.parse(body || '{}'); } catch { return reply(400, { error: 'Invalid JSON' }); }
  }
  if (path === '/api/sync/status' && req.method === 'GET')
    return reply(200, { status: 'ok', timestamp: Date.now(), service: 'websocket-sync' });
  if (path === '/api/sync/shoot-progress' && req.method === 'POST') {
    const { userId, shootId, status, processedCount, totalCount, currentImage, eta, provider, errorMessage } = data;
    if (!userId || !shootId) return reply(400, { error: 'userId and shootId are required' });
    broadcastToUser(userId, { type: 'SHOOT_PROGRESS', data: { shootId, status, processedCount, totalCount, currentImage, eta, provider, errorMessage }, deviceId: 'server', userId });
    return reply(200, { success: true });
  }
  if (path === '/api/sync/credit-update' && req.method === 'POST') {
    const { userId, newBalance, change, reason } = data;
    if (!userId || newBalance === undefined || change === undefined)
      return reply(400, { error: 'userId, newBalance, and change are required' });
    broadcastToUser(userId, { type: 'CREDIT_UPDATE', data: { userId, newBalance, change, reason }, deviceId: 'server', userId });
    return reply(200, { success: true });
  }
  if (path === '/api/sync/prompt-change' && req.method === 'POST') {
    const { promptId, action, userIds } = data;
    if (!promptId || !action) return reply(400, { error: 'promptId and action are required' });
    for (const u of userIds || []) broadcastToUser(u, { type: 'PROMPT_CHANGE', data: { promptId, action }, deviceId: 'server', userId: u });
    return reply(200, { success: true });
  }
  reply(404, { error: 'Not found' });
}

const handler = (req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => onApi(req, res, body));
};
const server = tlsAt >= 0
  ? https.createServer({ cert: fs.readFileSync(args[tlsAt + 1]), key: fs.readFileSync(args[tlsAt + 2]) }, handler)
  : http.createServer(handler);
const wss = new WebSocketServer({ server, path: '/ws' });

wss.on('connection', (ws, req) => {
  const url = new URL(req.url, 'http://x');
  let token = url.searchParams.get('token');
  const auth = req.headers.authorization;
  if (!token && auth && auth.startsWith('Bearer ')) token = auth.slice(7);
  if (!token) return ws.close(4001, 'No token provided');
  let [userId, deviceId] = token.split(':');
  if (!deviceId) deviceId = `web-${Date.now()}-${Math.random().toString(36).slice(2, 11)}`;
  if (!userId) return ws.close(4002, 'Invalid token');
  ws.userId = userId;
  ws.deviceId = deviceId;
  ws.isAlive = true;
  if (!clients.has(userId)) clients.set(userId, new Set());
  clients.get(userId).add(ws);
  const hello = { type: 'DEVICE_CONNECTED', data: { deviceId, timestamp: Date.now() }, deviceId, userId };
  send(ws, { ...hello, timestamp: Date.now() });
  broadcastToUser(userId, hello, deviceId);
  ws.on('pong', () => { ws.isAlive = true; });
  ws.on('message', (raw) => {
    let m;
    try { m = JSON.parse(raw.toString()); } catch { return; }
    switch (m.type) {
      case 'PING': send(ws, { type: 'PONG', timestamp: Date.now() }); break;
      case 'UPDATE_PROGRESS':
        broadcastToUser(userId, { type: 'SHOOT_PROGRESS', data: m.payload, deviceId, userId });
        break;
      default: break; // SUBSCRIBE, UNSUBSCRIBE, unknown: ignored
    }
  });
  ws.on('close', () => {
    const set = clients.get(userId);
    if (!set) return;
    set.delete(ws);
    if (set.size === 0) clients.delete(userId);
    broadcastToUser(userId, { type: 'DEVICE_DISCONNECTED', data: { deviceId, timestamp: Date.now() }, deviceId, userId });
  });
});

setInterval(() => {
  for (const ws of wss.clients) {
    if (!ws.isAlive) { ws.terminate(); continue; }
    ws.isAlive = false;
    ws.ping();
  }
}, 30000).unref();

server.listen(port, host, () => {
  console.log(JSON.stringify({ listening: `${host}:${server.address().port}` }));
});
process.on('SIGTERM', () => process.exit(0));
