'use strict';
// Graceful drain of HTTP servers on SIGTERM, with the semantics of the C++
// SDK (docs/worker-sdk.md, "Drain"), so that a client that keeps sending on
// its keep-alive connections through a reload sees no failure:
//
// 1. stop accepting: close this process's copy of the listening socket (the
//    agent keeps its own, so queued connections go to other workers);
// 2. the next response on every open connection carries `Connection: close`
//    and the connection closes after it; pipelined requests are answered
//    first (see closeAfter for the one case Node cannot see);
// 3. a connection that stays idle is closed only after the idle window
//    (CORRAL_DRAIN_IDLE_WINDOW, default 1s): closing it at once races the client's
//    next request, which then fails with EOF;
// 4. at the deadline (CORRAL_DRAIN_TIMEOUT, default 15s, under the agent's
//    --stop-timeout) whatever is left is closed;
// 5. then the shutdown hooks run and the process exits: 0, or 1 when the
//    deadline was hit. A second signal exits 1 at once.
//
// Node's own server.close() (Node >= 19) closes idle keep-alive connections
// at once, which is exactly the race of 3; a registered server's close() is
// therefore routed through the drain once it has started.

const net = require('node:net');
const tls = require('node:tls');
const notify = require('./notify');
const { durationEnv } = require('./env');

const kConn = Symbol('corral.drain.connection');

const state = {
  servers: new Map(), // server -> ServerDrain
  hooks: [],
  signalsInstalled: false,
  draining: false,
  code: 0,
  onSignal: null,
};

function settings() {
  return {
    idleMs: durationEnv('CORRAL_DRAIN_IDLE_WINDOW', 1000),
    timeoutMs: durationEnv('CORRAL_DRAIN_TIMEOUT', 15000),
  };
}

// Per-connection bookkeeping: requests received and not yet answered, the
// responses in flight, the idle timer.
class Conn {
  constructor(socket) {
    this.socket = socket;
    this.pending = 0;
    this.received = 0; // requests seen on this connection so far
    this.responses = new Set();
    this.idleTimer = null;
    this.bytesAtIdle = 0;
  }
}

class ServerDrain {
  constructor(server) {
    this.server = server;
    this.conns = new Set();
    this.closeCallbacks = [];
    this.started = false;
    this.closed = false;
    this.idleMs = 1000;
    this.done = null; // resolves when every connection is gone
    const event = server instanceof tls.Server ? 'secureConnection' : 'connection';
    server.on(event, (socket) => this.onConnection(socket));
    // First, so that the app's handler sees the header already set.
    server.prependListener('request', (req, res) => this.onRequest(req, res));
    const close = server.close;
    server.close = (cb) => {
      if (!this.started) return close.call(server, cb);
      if (typeof cb === 'function') {
        if (this.closed) process.nextTick(cb);
        else this.closeCallbacks.push(cb);
      }
      return server;
    };
  }

  onConnection(socket) {
    const conn = new Conn(socket);
    socket[kConn] = conn;
    this.conns.add(conn);
    socket.once('close', () => {
      clearTimeout(conn.idleTimer);
      this.conns.delete(conn);
    });
    if (this.started) this.armIdle(conn);
  }

  onRequest(req, res) {
    const conn = req.socket[kConn];
    if (!conn) return; // accepted before the server was registered
    conn.pending++;
    res.corralIndex = conn.received++;
    conn.responses.add(res);
    clearTimeout(conn.idleTimer);
    conn.idleTimer = null;
    if (this.started) this.closeAfter(res, conn);
    let counted = true;
    const finished = () => {
      if (!counted) return;
      counted = false;
      conn.pending--;
      conn.responses.delete(res);
      if (this.started && conn.pending === 0 && !conn.socket.destroyed) this.armIdle(conn);
    };
    res.once('finish', finished);
    res.once('close', finished);
  }

  // The response says `Connection: close` (and Node closes after it) when
  // its headers go out, if it is the last request received on the
  // connection and not queued behind another response. A pipelined
  // response (queued, or with a request behind it) keeps the connection
  // open; the connection then closes after the idle window, so the requests
  // behind it are answered too. Node parses a whole packet before it says
  // how many requests were in it, so requests pipelined in the same packet
  // as one answered synchronously cannot be seen here: they get no answer
  // (clients resend them, RFC 9112 9.3.2). Browsers and common HTTP clients
  // do not pipeline.
  closeAfter(res, conn) {
    if (res.headersSent || res.corralCloseArmed) return;
    res.corralCloseArmed = true;
    const writeHead = res.writeHead;
    res.writeHead = function writeHeadDraining(...args) {
      if (res.socket && res.corralIndex === conn.received - 1 && !res.headersSent) {
        res.setHeader('Connection', 'close');
      }
      return writeHead.apply(this, args);
    };
  }

  // An idle connection is closed after the idle window, unless bytes of a
  // new request arrived meanwhile (then it waits for that request).
  armIdle(conn) {
    clearTimeout(conn.idleTimer);
    conn.bytesAtIdle = conn.socket.bytesRead;
    conn.idleTimer = setTimeout(() => {
      conn.idleTimer = null;
      if (conn.pending > 0 || conn.socket.destroyed) return;
      if (conn.socket.bytesRead !== conn.bytesAtIdle) return this.armIdle(conn);
      conn.socket.destroy();
    }, this.idleMs);
  }

  start(idleMs) {
    this.started = true;
    this.idleMs = idleMs;
    this.done = new Promise((resolve) => {
      // net.Server's close, not http.Server's: the latter (Node >= 19)
      // would close the idle connections at once. It calls back when the
      // last connection is gone; ERR_SERVER_NOT_RUNNING is fine.
      net.Server.prototype.close.call(this.server, () => {
        this.closed = true;
        for (const cb of this.closeCallbacks.splice(0)) cb();
        resolve();
      });
    });
    for (const conn of this.conns) {
      for (const res of conn.responses) this.closeAfter(res, conn);
      if (conn.pending === 0) this.armIdle(conn);
    }
    return this.done;
  }

  destroyAll() {
    for (const conn of this.conns) conn.socket.destroy();
  }
}

// Drains `server` on SIGTERM / SIGINT (or shutdown()). listen() calls this.
function register(server) {
  if (state.servers.has(server)) return;
  settings(); // a bad CORRAL_DRAIN_* fails now, at start, not at SIGTERM
  state.servers.set(server, new ServerDrain(server));
  installSignals();
  if (state.draining) state.servers.get(server).start(settings().idleMs);
}

// Runs after every server has drained, before the exit (close the Redis
// client, flush logs). May return a promise; the deadline still applies.
function onShutdown(fn) {
  state.hooks.push(fn);
}

function installSignals() {
  if (state.signalsInstalled) return;
  state.signalsInstalled = true;
  state.onSignal = (signal) => {
    if (state.draining) {
      process.stderr.write(`corral: second ${signal} during the drain: exiting now\n`);
      process.exit(1);
    }
    shutdown();
  };
  process.on('SIGTERM', state.onSignal);
  process.on('SIGINT', state.onSignal);
}

// The app's own SIGTERM handlers own the exit; without any, we exit.
function appHandlesSignal() {
  return process.listeners('SIGTERM').some((l) => l !== state.onSignal);
}

// Starts the drain (as SIGTERM does). Resolves with the exit code.
async function shutdown() {
  if (state.draining) return state.finished;
  state.draining = true;
  state.finished = drainAll();
  return state.finished;
}

async function drainAll() {
  const { idleMs, timeoutMs } = settings();
  const exitAfter = !appHandlesSignal();
  notify.stopping();
  notify.status('draining');
  let timedOut = false;
  const deadline = new Promise((resolve) => {
    const t = setTimeout(() => {
      timedOut = true;
      for (const d of state.servers.values()) d.destroyAll();
      resolve();
    }, timeoutMs);
    t.unref();
  });
  const drained = Promise.all([...state.servers.values()].map((d) => d.start(idleMs)));
  await Promise.race([drained, deadline]);
  if (!timedOut) {
    const hooks = Promise.all(state.hooks.map((fn) => Promise.resolve().then(fn).catch((err) => {
      process.stderr.write(`corral: shutdown hook failed: ${err && err.stack || err}\n`);
    })));
    await Promise.race([hooks, deadline]);
  }
  state.code = timedOut ? 1 : 0;
  if (timedOut) process.stderr.write(`corral: drain deadline (${timeoutMs} ms) reached: closing what is left\n`);
  if (exitAfter) process.exit(state.code);
  return state.code;
}

module.exports = {
  register, onShutdown, shutdown,
  get draining() { return state.draining; },
};
