'use strict';
// An express-session Store over the corral session layout (docs/sessions.md),
// the one the C++ SessionStore uses, so Node and C++ workers share sessions:
//
//   key    corral:sess:<hex SHA-256 of the id>      (the id never reaches Redis)
//   _created, _expires                             unix seconds, Redis' clock
//   _cookie                                         express-session's cookie (JSON)
//   <name>                                          one field per session property,
//                                                   as JSON text ("7", "\"bob\"")
//   TTL    min(idle timeout, _expires - now), renewed on use (below)
//
// get(), touch() and increment(), which run on every request, are pipelines
// of plain commands, as the C++ store's load and increment: Redis spends
// about 5 us entering a script and 1.5-2 us per redis.call in it. A save is
// one Lua script (atomic, EVALSHA with an EVAL fallback). A pipeline cannot
// branch and other clients' commands may run between its commands, so it
// keeps the rules of docs/sessions.md ("Operations") that hold whatever ran
// in between:
//   - a hash without `_expires`, or whose `_expires` has passed (this
//     process's clock), is no session: the caller gets none (a new session
//     is started) and the key is deleted; that also removes the stray key
//     an HINCRBY on an ended session re-creates;
//   - EXPIRE renews the idle timeout, at most every 1/64 of it (at most
//     every minute) per process and session;
//   - near the absolute end (within twice the idle timeout, slack for clock
//     skew) a renewal is followed by EXPIREAT `_expires` LT, and the caller
//     is answered after it: Redis ends the key at its absolute end (LT: it
//     only shortens the TTL, which stays min(idle timeout, what is left)).
// A save writes only the properties the request changed (and deletes the
// ones it removed), so two requests, or a Node and a C++ worker, changing
// different fields of one session at once lose nothing, and a session that
// ended (logout, expiry) while a request was running is not brought back by
// it; a save with nothing to write sends nothing.
//
// While Redis is down every call fails at once with an error that has
// .unavailable = true and .status = 503 (Express answers 503 with it) and
// says why ("redis is down (redis://...): connect ECONNREFUSED ...").
//
//   const session = require('express-session');
//   const { CorralStore } = require('@corral/node/session');
//   const store = new CorralStore();            // REDIS_URL / REDIS_SENTINELS
//   app.use(session({ store, genid: store.genid, secret: process.env.SESSION_SECRET,
//                     name: 'corral_sid', resave: false, saveUninitialized: false }));

const crypto = require('node:crypto');
const { Store } = require('express-session');
const { createRedis, isUnavailable } = require('./redis');
const { durationEnv } = require('./env');

// KEYS[1] session; ARGV[1] idle s, ARGV[2] absolute s, ARGV[3] mode,
// ARGV[4] n, ARGV[5 .. 4+2n] field/value pairs to write, the rest: fields to
// delete. mode "update": only an existing session (0 when it is gone);
// "replace": create it when missing, and drop application fields not written.
const SAVE = `
local now = tonumber(redis.call('TIME')[1])
local exp = redis.call('HGET', KEYS[1], '_expires')
if exp and tonumber(exp) <= now then redis.call('DEL', KEYS[1]) exp = false end
local n = tonumber(ARGV[4])
local del = 5 + 2 * n
if not exp then
  if ARGV[3] ~= 'replace' then return 0 end
  redis.call('DEL', KEYS[1])
  exp = now + tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], '_created', now, '_expires', exp)
elseif ARGV[3] == 'replace' then
  local keep = {}
  for i = 5, del - 1, 2 do keep[ARGV[i]] = true end
  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
    if f ~= '_created' and f ~= '_expires' and not keep[f] then redis.call('HDEL', KEYS[1], f) end
  end
end
if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 5, del - 1)) end
if #ARGV >= del then redis.call('HDEL', KEYS[1], unpack(ARGV, del)) end
redis.call('EXPIRE', KEYS[1], math.max(1, math.min(tonumber(ARGV[1]), tonumber(exp) - now)))
return 1
`;

const sha1 = (text) => crypto.createHash('sha1').update(text).digest('hex');
const SHAS = new Map([SAVE].map((s) => [s, sha1(s)]));
// The idle timeout is renewed at most every 1/64 of it, at most every
// minute, per session; the time of the last renewal is kept for this many
// sessions (the map is emptied when full, as the C++ store's cache).
const RENEWAL_FRACTION = 64;
const MAX_RENEWAL_INTERVAL_MS = 60 * 1000;
const RENEWALS_KEPT = 4096;
const RESERVED = new Set(['_created', '_expires', '_cookie']);
// How long a command waits for a connection being made (the connect timeout).
const CONNECT_WAIT_MS = 500;
const NOT_CORRAL_ID = 'CorralStore: the session id is not a corral id: ' +
  'give express-session genid: store.genid (32 random bytes, base64url)';
const kLoaded = Symbol('corral.session.loaded');
const kFields = Symbol('corral.session.fields');

// A fresh session id: 32 random bytes as unpadded base64url (43 characters),
// as the C++ SDK draws them. Give it to express-session as `genid`.
function genid() {
  return crypto.randomBytes(32).toString('base64url');
}

// Exactly the ids genid() can return; anything else never reaches Redis.
function isWellFormedId(id) {
  return typeof id === 'string' && /^[A-Za-z0-9_-]{43}$/.test(id) &&
    Buffer.from(id, 'base64url').toString('base64url') === id;
}

function seconds(ms) {
  return String(Math.max(1, Math.floor(ms / 1000)));
}

// Session properties -> { field: JSON text }.
function toFields(sess) {
  const fields = {};
  for (const [name, value] of Object.entries(sess)) {
    if (name === 'cookie') continue;
    if (RESERVED.has(name)) throw new Error(`session property "${name}" is reserved by the corral layout`);
    const text = JSON.stringify(value);
    if (text !== undefined) fields[name] = text;
  }
  if (sess.cookie) fields._cookie = JSON.stringify(sess.cookie);
  return fields;
}

// HGETALL's [name, value, ...] -> session object. A value that is not JSON
// (a C++ worker wrote a plain string) is that string.
function fromHash(flat) {
  const sess = {};
  const fields = {};
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = String(flat[i]);
    const text = String(flat[i + 1]);
    if (name === '_created' || name === '_expires') continue;
    fields[name] = text;
    if (name === '_cookie') continue;
    try {
      sess[name] = JSON.parse(text);
    } catch {
      sess[name] = text;
    }
  }
  let cookie = null;
  try {
    cookie = fields._cookie ? JSON.parse(fields._cookie) : null;
  } catch {
    cookie = null;
  }
  // A session a C++ worker created has no express-session cookie: a session
  // cookie (no Max-Age); the browser keeps the one the C++ worker set.
  sess.cookie = cookie || { originalMaxAge: null, expires: null, httpOnly: true, path: '/' };
  Object.defineProperty(sess, kFields, { value: fields });
  return sess;
}

// `_expires` of HGETALL's [name, value, ...]; 0 when it has none (a stray
// key) or it is not a number.
function expiresOf(flat) {
  for (let i = 0; i + 1 < flat.length; i += 2) {
    if (String(flat[i]) === '_expires') return Number(flat[i + 1]) || 0;
  }
  return 0;
}

function unavailable(err, store) {
  const why = store && !store.up ? `redis is down (${store.where}): ${store.lastError}` : err.message;
  const e = new Error(why);
  e.unavailable = true;
  e.status = 503;
  e.cause = err;
  return e;
}

// The names before the Node store took the C++ SDK's (durations, as
// corral-worker reads them): whole seconds. Still read, with a warning.
const DEPRECATED_SECONDS = {
  SESSION_IDLE_TIMEOUT: 'SESSION_IDLE_SECONDS',
  SESSION_ABSOLUTE_TIMEOUT: 'SESSION_ABSOLUTE_SECONDS',
};

// A session timeout (ms) from `name` (a duration: 30m, 8h), else from its
// deprecated seconds variable, else `fallback`.
function timeoutEnv(name, fallback, env = process.env) {
  const old = DEPRECATED_SECONDS[name];
  const oldValue = env[old];
  if (oldValue === undefined || oldValue === '') return durationEnv(name, fallback, env);
  if (env[name] !== undefined && env[name] !== '') {
    process.emitWarning(`${old} is ignored: ${name} is set too (remove ${old})`,
      'DeprecationWarning', 'CORRAL_SESSION_SECONDS');
    return durationEnv(name, fallback, env);
  }
  if (!/^\d+$/.test(oldValue)) {
    throw new Error(`${old}="${oldValue}" is not a whole number of seconds ` +
      `(it is deprecated: set ${name} to a duration such as 30m instead)`);
  }
  process.emitWarning(`${old} is deprecated: use ${name}=${oldValue}s ` +
    '(a duration such as 30m or 8h, the name corral-worker reads)',
  'DeprecationWarning', 'CORRAL_SESSION_SECONDS');
  return Number(oldValue) * 1000;
}

class CorralStore extends Store {
  // options: { client (a node-redis client or sentinel; else one is made
  // from url / sentinels / masterName or REDIS_URL, REDIS_SENTINELS,
  // REDIS_MASTER_NAME), idleTimeout (ms; SESSION_IDLE_TIMEOUT, 30m),
  // absoluteTimeout (ms; SESSION_ABSOLUTE_TIMEOUT, 8h), prefix
  // ('corral:sess:') }. The variables are the C++ SDK's, durations;
  // SESSION_IDLE_SECONDS and SESSION_ABSOLUTE_SECONDS (whole seconds, the
  // old example's names) still work, with a DeprecationWarning.
  constructor(options = {}) {
    super();
    const idle = options.idleTimeout ?? timeoutEnv('SESSION_IDLE_TIMEOUT', 30 * 60 * 1000);
    const absolute = options.absoluteTimeout ?? timeoutEnv('SESSION_ABSOLUTE_TIMEOUT', 8 * 3600 * 1000);
    if (!(idle > 0) || !(absolute > 0)) throw new Error('CorralStore: idle and absolute timeouts must be positive');
    this.idleSeconds = seconds(idle);
    this.absoluteSeconds = seconds(absolute);
    this.renewalMs = Math.min(idle / RENEWAL_FRACTION, MAX_RENEWAL_INTERVAL_MS);
    this.renewed = new Map(); // key -> performance.now() of our last EXPIRE
    this.prefix = options.prefix ?? 'corral:sess:';
    this.genid = genid;
    this.up = false;
    this.lastError = 'not connected yet';
    if (options.client) {
      this.client = options.client;
      // A sentinel client (createSentinel) takes an isReadonly first.
      this.send = typeof options.client.getMasterNode === 'function'
        ? (args) => options.client.sendCommand(false, args)
        : (args) => options.client.sendCommand(args);
      this.where = 'the given client';
    } else {
      const r = createRedis(options);
      this.client = r.client;
      this.send = r.send;
      this.where = r.describe;
    }
    this.checkGeneratedIds();
    this.watch();
    if (!this.client.isOpen) {
      // Retries by itself (reconnect strategy); errors arrive as events.
      this.client.connect().catch(() => {});
    } else {
      this.up = this.client.isReady;
    }
  }

  // express-session installs store.generate with its own id generator: a
  // session it makes with an id the C++ side would refuse (no genid option)
  // fails the request at once, with the fix in the message, instead of
  // failing later, after the response is sent, in set().
  checkGeneratedIds() {
    let generate;
    Object.defineProperty(this, 'generate', {
      configurable: true,
      get: () => generate,
      set: (fn) => {
        generate = (req) => {
          fn(req);
          if (!isWellFormedId(req.sessionID)) throw new Error(NOT_CORRAL_ID);
        };
      },
    });
  }

  // 'redis' events (up, detail) on every change between up and down, not
  // on every failed retry; the latest reason is kept for the 503 message.
  // `connecting` (the first connection, or a reconnect attempt after a
  // loss) lets commands wait for it, as the C++ RedisClient does.
  watch() {
    let reported = false;
    this.connecting = true;
    this.waiters = new Set();
    const settle = () => {
      this.connecting = false;
      for (const w of this.waiters) w();
      this.waiters.clear();
    };
    const report = (up, detail) => {
      if (!up) this.lastError = detail;
      settle();
      if (reported && up === this.up) return;
      reported = true;
      this.up = up;
      if (up) this.lastError = '';
      this.emit('redis', up, detail);
    };
    this.client.on('ready', () => report(true, this.where));
    this.client.on('error', (err) => report(false, err.message || String(err)));
    this.client.on('end', () => report(false, 'connection closed'));
    this.client.on('reconnecting', () => { if (this.up) this.connecting = true; });
  }

  // While a connection is being made, waits for it (up to the connect
  // timeout); while Redis is down, returns at once (the command fails).
  settled() {
    if (this.up || !this.connecting) return null;
    return new Promise((resolve) => {
      const done = () => { clearTimeout(timer); this.waiters.delete(done); resolve(); };
      const timer = setTimeout(done, CONNECT_WAIT_MS);
      this.waiters.add(done);
    });
  }

  keyFor(id) {
    return this.prefix + crypto.createHash('sha256').update(id).digest('hex');
  }

  async eval(script, keys, args) {
    const tail = [String(keys.length), ...keys, ...args];
    await this.settled();
    try {
      try {
        return await this.send(['EVALSHA', SHAS.get(script), ...tail]);
      } catch (err) {
        if (!String(err.message).startsWith('NOSCRIPT')) throw err;
        return await this.send(['EVAL', script, ...tail]);
      }
    } catch (err) {
      throw isUnavailable(err) ? unavailable(err, this) : err;
    }
  }

  // Whether this use of `key` renews its idle timeout (sends EXPIRE): when
  // this process has not done so in the last renewalMs.
  shouldRenew(key) {
    const now = performance.now();
    const last = this.renewed.get(key);
    if (last !== undefined && now - last < this.renewalMs) return false;
    if (last === undefined && this.renewed.size >= RENEWALS_KEPT) this.renewed.clear();
    this.renewed.set(key, now);
    return true;
  }

  // Sends `commands` back to back: node-redis writes the commands of one
  // tick in one write, in order. Resolves with each command's reply, or its
  // error reply (an Error); Redis unreachable fails the whole as eval() does
  // (and the renewal of `key` is forgotten, as it may not have happened).
  async pipeline(key, commands) {
    await this.settled();
    const replies = await Promise.all(commands.map((c) => this.send(c).catch((err) => err)));
    const lost = replies.find((r) => r instanceof Error && isUnavailable(r));
    if (lost) {
      this.renewed.delete(key);
      throw unavailable(lost, this);
    }
    return replies;
  }

  // After a pipeline read `_expires` (0: none): whether the session lives.
  // An ended session or a stray key is deleted before the caller hears
  // back; near the absolute end a renewal is capped at `_expires` (LT: the
  // TTL only shortens, so it stays min(idle, what is left)). As in the C++
  // store, a failed DEL or EXPIREAT fails no request: readers compare
  // `_expires` with their clock, and the idle TTL ends the key anyway.
  async settle(key, expires, renewed) {
    const left = expires - Math.floor(Date.now() / 1000);
    if (!(expires > 0) || left <= 0) {
      await this.send(['DEL', key]).catch(() => {});
      return false;
    }
    if (renewed && left < 2 * Number(this.idleSeconds)) {
      await this.send(['EXPIREAT', key, String(expires), 'LT']).catch(() => {});
    }
    return true;
  }

  // The session's HGETALL, or null (none, ended, a stray key).
  async load(key) {
    const renew = this.shouldRenew(key);
    const commands = [['HGETALL', key]];
    // EXPIRE on a missing key does nothing: a renewal brings nothing back.
    if (renew) commands.push(['EXPIRE', key, this.idleSeconds]);
    const [flat] = await this.pipeline(key, commands);
    if (flat instanceof Error) throw flat;
    return (await this.settle(key, expiresOf(flat), renew)) ? flat : null;
  }

  get(sid, cb) {
    if (!isWellFormedId(sid)) return process.nextTick(cb, null, null);
    this.load(this.keyFor(sid)).then((flat) => cb(null, flat ? fromHash(flat) : null), (err) => cb(err));
  }

  // express-session makes req.session from what get() returned: remember
  // the fields as loaded, so that set() writes only what changed.
  createSession(req, sess) {
    Object.defineProperty(req, kLoaded, { value: { id: req.sessionID, fields: sess[kFields] || {} },
      configurable: true });
    return super.createSession(req, sess);
  }

  set(sid, sess, cb = () => {}) {
    if (!isWellFormedId(sid)) {
      return process.nextTick(cb, new Error(NOT_CORRAL_ID));
    }
    let fields;
    try {
      fields = toFields(sess);
    } catch (err) {
      return process.nextTick(cb, err);
    }
    const loaded = sess.req && sess.req[kLoaded] && sess.req[kLoaded].id === sid
      ? sess.req[kLoaded].fields : null;
    const write = [];
    const remove = [];
    for (const [name, text] of Object.entries(fields)) {
      if (!loaded || loaded[name] !== text) write.push(name, text);
    }
    if (loaded) {
      for (const name of Object.keys(loaded)) if (!(name in fields)) remove.push(name);
    }
    // Nothing changed (an increment stored it already, or resave: true): no
    // write, and the renewal is get()'s, at most every renewalMs.
    if (loaded && write.length === 0 && remove.length === 0) return process.nextTick(cb, null);
    const mode = loaded ? 'update' : 'replace';
    this.eval(SAVE, [this.keyFor(sid)],
      [this.idleSeconds, this.absoluteSeconds, mode, String(write.length / 2), ...write, ...remove])
      .then(() => {
        // Later saves in this request compare against what is now stored.
        if (loaded) sess.req[kLoaded].fields = fields;
        cb(null);
      }, (err) => cb(err));
  }

  // True when req.session came from Redis (not created by this request).
  loaded(req) {
    return Boolean(req[kLoaded] && req[kLoaded].id === req.sessionID);
  }

  // Adds `delta` to the integer property `field` of req.session in Redis,
  // atomically (HINCRBY, as the C++ SessionStore::Increment): concurrent
  // requests, on any worker in any language, lose no increment, which a
  // read-modify-write of req.session would. Resolves with the new value,
  // also set in req.session. A session new in this request is saved at once
  // (so Redis being down fails the request, not after the answer). A session
  // that ended during the request (logout, expiry) is replaced by a new one
  // (regenerate) holding `field` = `delta`, as the C++ store does.
  async increment(req, field, delta = 1) {
    if (RESERVED.has(field) || field === 'cookie') throw new Error(`session property "${field}" is reserved`);
    const loaded = req[kLoaded];
    if (!this.loaded(req)) {
      // New in this request: create it in Redis now, so that Redis being
      // down is an error before the answer (express-session would save it
      // after the headers are out, too late for a 503).
      req.session[field] = (Number(req.session[field]) || 0) + delta;
      await new Promise((resolve, reject) => req.session.save((err) => (err ? reject(err) : resolve())));
      return req.session[field];
    }
    const key = this.keyFor(req.sessionID);
    const renew = this.shouldRenew(key);
    // On an ended session HINCRBY re-creates the key with only `field`: the
    // HGET after it sees no `_expires`, and settle() deletes the key.
    const commands = [['HINCRBY', key, field, String(delta)], ['HGET', key, '_expires']];
    if (renew) commands.push(['EXPIRE', key, this.idleSeconds]);
    const [r, expires] = await this.pipeline(key, commands);
    if (expires instanceof Error) throw expires;
    if (!(await this.settle(key, expires === null ? 0 : Number(expires) || 0, renew))) {
      await new Promise((resolve, reject) => req.session.regenerate((err) => (err ? reject(err) : resolve())));
      return this.increment(req, field, delta);
    }
    if (r instanceof Error) throw r;
    const value = Number(r);
    req.session[field] = value;
    // Stored already: the save at the end of the request must not write it
    // again (that would undo increments made since by other requests).
    loaded.fields[field] = JSON.stringify(value);
    return value;
  }

  // express-session's touch (an unchanged session, after the response):
  // the renewal of get(), without the read. It is rarely due, since the
  // get() of the same request has just renewed the session.
  touch(sid, sess, cb = () => {}) {
    if (!isWellFormedId(sid)) return process.nextTick(cb, null);
    const key = this.keyFor(sid);
    if (!this.shouldRenew(key)) return process.nextTick(cb, null);
    this.pipeline(key, [['HGET', key, '_expires'], ['EXPIRE', key, this.idleSeconds]])
      .then(([expires]) => {
        if (expires instanceof Error) throw expires;
        return this.settle(key, expires === null ? 0 : Number(expires) || 0, true);
      }).then(() => cb(null), (err) => cb(err));
  }

  destroy(sid, cb = () => {}) {
    if (!isWellFormedId(sid)) return process.nextTick(cb, null);
    Promise.resolve(this.settled()).then(() => this.send(['DEL', this.keyFor(sid)])).then(() => cb(null),
      (err) => cb(isUnavailable(err) ? unavailable(err, this) : err));
  }

  // Closes the Redis connection (call it from corral.onShutdown).
  async close() {
    if (!this.client.isOpen) return;
    // While Redis is away the client is reconnecting: a graceful close would
    // wait for a connection that may never come, so drop it at once.
    if (!this.client.isReady) {
      this.client.destroy();
      return;
    }
    await (typeof this.client.close === 'function' ? this.client.close() : this.client.quit());
  }
}

module.exports = { CorralStore, genid, isWellFormedId, timeoutEnv };
