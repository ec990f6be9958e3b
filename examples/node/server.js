'use strict';
// An Express app under corral, on the @corral/node package (worker/node):
// it listens on the socket the agent passes (alone: $PORT), says READY when
// it serves, drains gracefully on SIGTERM (no failed request across a
// rolling reload), and keeps its sessions in Redis in the corral layout,
// shared with C++ workers (docs/sessions.md).
//
//   corral-agent --ready=ipc --listen=tcp://0.0.0.0:8080 -- node server.js
//   PORT=3000 node server.js          # alone
const http = require('node:http');
const express = require('express');
const session = require('express-session');
const corral = require('@corral/node');
const { CorralStore } = require('@corral/node/session');

const WORKER = String(corral.workerId ?? process.env.NODE_APP_INSTANCE ?? 'standalone');
const SECURE = process.env.CORRAL_SECURE_COOKIE === '1';
let SECRET = process.env.SESSION_SECRET;
if (!SECRET) {
  // Every worker (and every C++ worker sharing the sessions) needs the same
  // secret; this one is public, fine for a try-out only.
  SECRET = 'corral example: set SESSION_SECRET';
  console.error(`node worker ${WORKER}: SESSION_SECRET is not set: using an insecure example secret`);
}

// REDIS_URL or REDIS_SENTINELS + REDIS_MASTER_NAME; SESSION_IDLE_TIMEOUT,
// SESSION_ABSOLUTE_TIMEOUT (30m, 8h).
const store = new CorralStore();
store.on('redis', (up, detail) => {
  console.error(`node worker ${WORKER}: redis ${up ? `up at ${detail}` : `down: ${detail}`}`);
  corral.status(up ? `serving; redis up at ${detail}` : `serving; sessions unavailable, redis down: ${detail}`);
});

const sessions = session({
  store,
  genid: store.genid, // corral ids: C++ workers read these sessions too
  secret: SECRET,
  name: 'corral_sid',
  resave: false,
  saveUninitialized: false,
  cookie: { httpOnly: true, sameSite: 'lax', secure: SECURE, maxAge: store.absoluteSeconds * 1000 },
});

const app = express();
app.disable('x-powered-by');

app.get('/', (req, res) => {
  res.type('text').send(`hello from node worker ${WORKER} (pid ${process.pid})\n`);
});

app.get('/healthz', (req, res) => {
  res.json({ status: 'ok', worker: WORKER, pid: process.pid, redis: store.up ? 'up' : 'down' });
});

// CPU-bound work: blocks this worker only; the others keep serving.
app.get('/heavy', (req, res) => {
  const n = req.query.n === undefined ? 1e7 : Number(req.query.n);
  if (!Number.isInteger(n) || n < 0 || n > 1e9) {
    return res.status(400).type('text').send('n must be an integer from 0 to 1000000000\n');
  }
  let result = 0;
  for (let i = 0; i < n; i++) result += Math.sqrt(i);
  res.json({ n, result, worker: WORKER, pid: process.pid });
});

// A per-session counter, the same field corral-worker's /session counts,
// incremented atomically in Redis: concurrent requests on any worker (Node
// or C++) lose no count.
app.get('/session', sessions, async (req, res, next) => {
  try {
    const counter = await store.increment(req, 'counter', 1);
    // After the increment: one on a session that ended meanwhile starts a
    // new session (not loaded from Redis).
    const isNew = !store.loaded(req);
    res.set('Cache-Control', 'no-store').json({ counter, new: isNew, worker: WORKER, pid: process.pid });
  } catch (err) {
    next(err);
  }
});

app.delete('/session', sessions, (req, res, next) => {
  req.session.destroy((err) => (err ? next(err) : res.type('text').send('session ended\n')));
});

app.use((req, res) => res.status(404).type('text').send(`no such page: ${req.path}\n`));

// Redis down: 503 for session routes, everything else keeps working.
app.use((err, req, res, next) => {
  if (res.headersSent) return next(err);
  if (err.unavailable) {
    return res.status(503).set({ 'Retry-After': '1', 'Cache-Control': 'no-store' }).type('text')
      .send(`session store unavailable: ${err.message}\nSessions need Redis; the rest of this service keeps working. Retry shortly.\n`);
  }
  console.error(`node worker ${WORKER}: ${err.stack || err}`);
  res.status(500).type('text').send(`error: ${err.message}\n`);
});

async function main() {
  const server = http.createServer(app);
  server.keepAliveTimeout = 60000;
  await corral.listen(server); // the agent's socket, or $PORT alone
  const where = server.address();
  console.error(`node worker ${WORKER}: pid ${process.pid} serving on ${corral.underCorral ? 'the agent socket' : `port ${where.port}`}`);
  corral.onShutdown(() => store.close()); // after the drain, before exit 0
  corral.ready();
}

main().catch((err) => {
  console.error(`node worker ${WORKER}: ${err.message}`);
  process.exit(1);
});
