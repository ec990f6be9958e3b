'use strict';
// A minimal Redis client (RESP2) in plain Node: one pipelined connection,
// AUTH and SELECT from REDIS_URL, reconnect with backoff (50 ms doubling to
// 500 ms), and fail-fast while Redis is down so callers can answer 503.
// Enough for sessions; use the npm `redis` package for anything bigger.
const net = require('node:net');

function parseRedisUrl(url) {
  if (url.startsWith('unix:')) {
    const u = new URL(url.replace(/^unix:(\/\/)?/, 'unix://localhost'));
    return { path: u.pathname, password: u.searchParams.get('password') || '',
             db: Number(u.searchParams.get('db') || 0) };
  }
  const u = new URL(url);
  if (u.protocol !== 'redis:') throw new Error(`REDIS_URL=${url}: expected redis://`);
  return { host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
           port: Number(u.port || 6379),
           username: decodeURIComponent(u.username || ''),
           password: decodeURIComponent(u.password || ''),
           db: Number((u.pathname || '/0').slice(1) || 0) };
}

function encode(args) {
  const parts = [`*${args.length}\r\n`];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
    parts.push(`$${b.length}\r\n`, b, '\r\n');
  }
  return Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p))));
}

// Parses one reply at buf[pos]; returns [value, nextPos] or null if partial.
function parse(buf, pos) {
  const end = buf.indexOf('\r\n', pos);
  if (end < 0) return null;
  const type = String.fromCharCode(buf[pos]);
  const line = buf.toString('utf8', pos + 1, end);
  const next = end + 2;
  switch (type) {
    case '+': return [line, next];
    case '-': return [new RedisError(line), next];
    case ':': return [Number(line), next];
    case '$': {
      const n = Number(line);
      if (n < 0) return [null, next];
      if (buf.length < next + n + 2) return null;
      return [buf.toString('utf8', next, next + n), next + n + 2];
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return [null, next];
      const out = [];
      let p = next;
      for (let i = 0; i < n; i++) {
        const r = parse(buf, p);
        if (!r) return null;
        out.push(r[0]);
        p = r[1];
      }
      return [out, p];
    }
    default: throw new Error(`bad RESP type ${type}`);
  }
}

class RedisError extends Error {}

class RedisClient {
  constructor(url, { onState = () => {}, commandTimeoutMs = 1000 } = {}) {
    this.config = parseRedisUrl(url);
    this.onState = onState;
    this.commandTimeoutMs = commandTimeoutMs;
    this.pending = [];    // {resolve, reject, deadline}
    this.up = false;
    this.lastError = 'not connected yet';
    this.delay = 0;
    this.stopped = false;
    this.connect();
    this.timer = setInterval(() => this.checkDeadlines(), 100).unref();
  }

  connect() {
    if (this.stopped) return;
    const c = this.config;
    const sock = c.path ? net.createConnection(c.path) : net.createConnection(c.port, c.host);
    this.sock = sock;
    sock.setNoDelay(true);
    let buf = Buffer.alloc(0);
    const connectTimer = setTimeout(() => sock.destroy(new Error('connect timed out')), 500);
    sock.on('connect', () => {
      clearTimeout(connectTimer);
      const hello = [];
      if (c.password) hello.push(c.username ? ['AUTH', c.username, c.password] : ['AUTH', c.password]);
      if (c.db) hello.push(['SELECT', c.db]);
      Promise.all(hello.map((args) => this.send(args, true))).then(() => {
        this.up = true;
        this.delay = 0;
        this.lastError = '';
        this.onState(true, `${c.path || `${c.host}:${c.port}`}`);
      }, (err) => sock.destroy(err));
    });
    sock.on('data', (chunk) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      let pos = 0;
      for (;;) {
        const r = parse(buf, pos);
        if (!r) break;
        pos = r[1];
        const p = this.pending.shift();
        if (!p) continue;
        if (r[0] instanceof RedisError) p.reject(r[0]); else p.resolve(r[0]);
      }
      buf = buf.subarray(pos);
    });
    sock.on('error', (err) => { this.lastError = err.message; });
    sock.on('close', () => {
      clearTimeout(connectTimer);
      const was = this.up;
      this.up = false;
      const failed = this.pending.splice(0);
      for (const p of failed) p.reject(new Error(`redis connection lost: ${this.lastError}`));
      if (was || !this.reported) this.onState(false, this.lastError || 'connection closed');
      this.reported = true;
      if (this.stopped) return;
      const d = this.delay;
      this.delay = Math.min(Math.max(this.delay * 2, 50), 500);
      setTimeout(() => this.connect(), d * (0.8 + Math.random() * 0.4)).unref();
    });
  }

  checkDeadlines() {
    if (this.pending.length && this.pending[0].deadline < Date.now()) {
      this.lastError = `redis did not answer within ${this.commandTimeoutMs} ms`;
      this.sock.destroy();
    }
  }

  send(args, handshake = false) {
    if (!handshake && !this.up) {
      return Promise.reject(Object.assign(new Error(`redis is down: ${this.lastError}`),
                                          { unavailable: true }));
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject: (e) => reject(Object.assign(e, { unavailable: !(e instanceof RedisError) || /^(READONLY|LOADING|MASTERDOWN)/.test(e.message) })),
                          deadline: Date.now() + this.commandTimeoutMs });
      this.sock.write(encode(args));
    });
  }

  stop() {
    this.stopped = true;
    clearInterval(this.timer);
    if (this.sock) this.sock.destroy();
  }
}

module.exports = { RedisClient, parseRedisUrl, RedisError };
