'use strict';
// A plain-Node HTTP app (no express) that runs under corral the way PM2 apps
// run under pm2: it listens on the socket the agent passes (fd 3), says
// process.send('ready') when it serves, drains on SIGTERM, and keeps its
// sessions in Redis in the same layout as corral-worker (docs/sessions.md),
// so Node and C++ workers can even share sessions.
//
//   corral-agent --ready=ipc --listen=tcp://0.0.0.0:8080 -- node server.js
//   PORT=3000 node server.js          # alone
const http = require('node:http');
const crypto = require('node:crypto');
const { RedisClient } = require('./resp');

const WORKER = process.env.CORRAL_WORKER_ID || process.env.NODE_APP_INSTANCE || 'standalone';
const IDLE_S = Number(process.env.SESSION_IDLE_SECONDS || 1800);
const ABSOLUTE_S = Number(process.env.SESSION_ABSOLUTE_SECONDS || 8 * 3600);
const SECURE = process.env.CORRAL_SECURE_COOKIE === '1';
const PREFIX = 'corral:sess:';

// The same scripts as worker/sdk/session_store.cc: atomic, Redis' clock.
const INCREMENT = `
local exp = redis.call('HGET', KEYS[1], '_expires')
if not exp then return false end
local left = tonumber(exp) - tonumber(redis.call('TIME')[1])
if left <= 0 then redis.call('DEL', KEYS[1]) return false end
local v = redis.call('HINCRBY', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], math.min(tonumber(ARGV[1]), left))
return {v, tonumber(exp)}`;
const CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local now = tonumber(redis.call('TIME')[1])
local exp = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], '_created', now, '_expires', exp, unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], math.min(tonumber(ARGV[1]), tonumber(ARGV[2])))
return {now, exp}`;

const redis = new RedisClient(process.env.REDIS_URL || 'redis://127.0.0.1:6379/0', {
  onState: (up, detail) => console.error(`node worker ${WORKER}: redis ${up ? `up at ${detail}` : `down: ${detail}`}`),
});

const keyFor = (id) => PREFIX + crypto.createHash('sha256').update(id).digest('hex');
const wellFormed = (id) => typeof id === 'string' && /^[A-Za-z0-9_-]{43}$/.test(id) &&
  Buffer.from(id, 'base64url').toString('base64url') === id;

function cookieOf(req, name) {
  for (const part of (req.headers.cookie || '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return '';
}

async function increment(cookie) {
  if (wellFormed(cookie)) {
    const r = await redis.send(['EVAL', INCREMENT, 1, keyFor(cookie), IDLE_S, 'counter', 1]);
    if (r !== null) return { id: cookie, isNew: false, value: Number(r[0]) };
  }
  for (let tries = 0; tries < 3; tries++) {
    const id = crypto.randomBytes(32).toString('base64url');
    const r = await redis.send(['EVAL', CREATE, 1, keyFor(id), IDLE_S, ABSOLUTE_S, 'counter', 1]);
    if (Array.isArray(r)) return { id, isNew: true, value: 1 };
  }
  throw new Error('could not draw a free session id');
}

let draining = false;

function send(res, status, type, body, headers = {}) {
  if (draining) headers.Connection = 'close';  // this answer is the last
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'method not allowed\n', { Allow: 'GET, HEAD' });
  switch (url.pathname) {
    case '/':
      return send(res, 200, 'text/plain', `hello from node worker ${WORKER} (pid ${process.pid})\n`);
    case '/healthz':
      return send(res, 200, 'application/json', JSON.stringify({ status: 'ok', worker: WORKER, pid: process.pid, redis: redis.up ? 'up' : 'down' }) + '\n');
    case '/heavy': {
      const n = url.searchParams.has('n') ? Number(url.searchParams.get('n')) : 1e7;
      if (!Number.isInteger(n) || n < 0 || n > 1e9) return send(res, 400, 'text/plain', 'n must be an integer from 0 to 1000000000\n');
      let result = 0;
      for (let i = 0; i < n; i++) result += Math.sqrt(i);
      return send(res, 200, 'application/json', JSON.stringify({ n, result, worker: WORKER, pid: process.pid }) + '\n');
    }
    case '/session':
      return increment(cookieOf(req, 'corral_sid')).then((s) => {
        const headers = { 'Cache-Control': 'no-store' };
        if (s.isNew) {
          headers['Set-Cookie'] = `corral_sid=${s.id}; Path=/; Max-Age=${ABSOLUTE_S}; HttpOnly; SameSite=Lax${SECURE ? '; Secure' : ''}`;
        }
        send(res, 200, 'application/json', JSON.stringify({ counter: s.value, new: s.isNew, worker: WORKER, pid: process.pid }) + '\n', headers);
      }, (err) => {
        if (err.unavailable) {
          return send(res, 503, 'text/plain', `session store unavailable: ${err.message}\nSessions need Redis; the rest of this service keeps working. Retry shortly.\n`, { 'Retry-After': '1' });
        }
        send(res, 500, 'text/plain', `session error: ${err.message}\n`);
      });
    default:
      return send(res, 404, 'text/plain', `no such page: ${url.pathname}\n`);
  }
});
server.keepAliveTimeout = 60000;

// systemd socket activation, as corral passes it: LISTEN_PID must be us.
const inherited = process.env.LISTEN_FDS && Number(process.env.LISTEN_PID) === process.pid;
const where = inherited ? { fd: 3 } : { port: Number(process.env.PORT || 3000), host: '0.0.0.0' };
server.listen(where, () => {
  console.error(`node worker ${WORKER}: pid ${process.pid} serving on ${inherited ? 'fd 3 (from corral)' : `port ${where.port}`}`);
  if (process.send) process.send('ready');  // --ready=ipc, as with pm2
});

function drain() {
  if (draining) return process.exit(1);  // second signal: stop now
  draining = true;
  server.close(() => { redis.stop(); process.exit(0); });  // after in-flight requests
  server.closeIdleConnections();  // idle keep-alive connections go at once
  setTimeout(() => process.exit(1), Number(process.env.DRAIN_TIMEOUT_MS || 15000)).unref();
}
process.on('SIGTERM', drain);
process.on('SIGINT', drain);
