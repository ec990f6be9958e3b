'use strict';
// Sessions shared between Node and the C++ SessionStore (through
// session_tool), both ways, with the real npm packages:
// - CorralStore (corral layout) <-> SessionStore, signed corral_sid cookies;
// - express-session + connect-redis (sess:<id> JSON, signed connect.sid)
//   <-> SessionStore with SESSION_FORMAT=connect-redis.

const { test } = require('node:test');
const assert = require('node:assert');
const { execFile } = require('node:child_process');
const { promisify } = require('node:util');
const { createClient } = require('redis');
const { RedisStore } = require('connect-redis');
const { startRedis, sessionToolPath } = require('./helpers');
const { sessionApp } = require('./fixtures/session_app');
const { Jar, fetchWith } = require('./cookies');
const { CorralStore } = require('../lib/session_store');

const SECRET = 'shared secret of the Express app';

async function serve(t, app) {
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  t.after(() => server.close());
  return `http://127.0.0.1:${server.address().port}`;
}

// One SessionStore operation in C++; its JSON answer.
async function cpp(redis, env, ...args) {
  const { stdout } = await promisify(execFile)(sessionToolPath(), args, {
    env: { PATH: process.env.PATH, REDIS_URL: redis.url, SESSION_SECRET: SECRET, ...env },
  }).catch((err) => ({ stdout: err.stdout || String(err) }));
  const out = JSON.parse(stdout);
  assert.equal(out.error, undefined, `session_tool ${args.join(' ')}: ${out.error}`);
  return out;
}

test('CorralStore and the C++ SessionStore share sessions both ways', async (t) => {
  const redis = await startRedis(t);
  const store = new CorralStore({ url: redis.url });
  t.after(() => store.close());
  const base = await serve(t, sessionApp(store, { secret: SECRET }));
  const jar = new Jar();
  // Node creates, C++ reads and updates, Node reads the update.
  assert.equal((await fetchWith(jar, `${base}/count`)).json.count, 1);
  const cookie = jar.get('corral_sid');
  const up = await cpp(redis, {}, 'increment', cookie, 'count', '1');
  assert.deepEqual([up.new, up.value, up.cookie], [false, 2, cookie]);
  assert.equal((await fetchWith(jar, `${base}/count`)).json.count, 3);
  await fetchWith(jar, `${base}/set?user=ann`);
  const seen = await cpp(redis, {}, 'load', cookie);
  assert.equal(seen.fields.count, '3');
  assert.equal(seen.fields.user, '"ann"');
  assert.equal(seen.fields._cookie, undefined, 'reserved fields stay hidden');
  // C++ creates, Node continues it.
  const made = await cpp(redis, {}, 'increment', '', 'count', '5');
  assert.equal(made.new, true);
  assert.match(made.cookie, /^s%3A[A-Za-z0-9_-]{43}\./);
  const jar2 = new Jar();
  jar2.cookies.set('corral_sid', made.cookie);
  const shown = await fetchWith(jar2, `${base}/count`);
  assert.equal(shown.json.count, 6);
  assert.equal((await cpp(redis, {}, 'load', made.cookie)).fields.count, '6');
  // A cookie signed with another secret is not accepted by C++.
  const other = await cpp(redis, { SESSION_SECRET: 'another' }, 'increment', cookie, 'count', '1');
  assert.equal(other.new, true);
});

test('express-session + connect-redis and the C++ connect-redis format share sessions both ways', async (t) => {
  const redis = await startRedis(t);
  const client = createClient({ url: redis.url });
  client.on('error', () => {});
  await client.connect();
  t.after(() => client.close());
  // The tutorial setup, as written: default cookie name connect.sid.
  const store = new RedisStore({ client });
  const base = await serve(t, sessionApp(store, {
    secret: SECRET, name: 'connect.sid', cookie: { maxAge: 60000 },
  }));
  const env = { SESSION_FORMAT: 'connect-redis' };
  const jar = new Jar();
  assert.equal((await fetchWith(jar, `${base}/count`)).json.count, 1);
  const cookie = jar.get('connect.sid');
  assert.match(cookie, /^s%3A/);
  const up = await cpp(redis, env, 'increment', cookie, 'count', '1');
  assert.deepEqual([up.new, up.value, up.cookie], [false, 2, cookie]);
  assert.equal((await fetchWith(jar, `${base}/count`)).json.count, 3);
  const set = await cpp(redis, env, 'set', cookie, 'user', JSON.stringify({ name: 'bob', roles: [] }));
  assert.equal(set.cookie, cookie);
  const shown = (await fetchWith(jar, `${base}/show`)).json;
  assert.deepEqual(shown.session.user, { name: 'bob', roles: [] });
  assert.equal(shown.session.count, 3);
  assert.equal(shown.session.cookie.originalMaxAge > 0, true);
  // C++ wrote a document connect-redis reads; what it did not touch is as
  // express-session wrote it; the TTL follows the cookie's maxAge.
  const id = decodeURIComponent(cookie).slice(2).split('.')[0];
  const doc = JSON.parse(await client.get(`sess:${id}`));
  assert.equal(doc.count, 3);
  assert.equal(doc.cookie.path, '/');
  const ttl = await client.ttl(`sess:${id}`);
  assert.ok(ttl > 50 && ttl <= 60, `TTL ${ttl}`);
  // C++ creates a session; the Express app continues it.
  const made = await cpp(redis, env, 'increment', '', 'count', '10');
  const jar2 = new Jar();
  jar2.cookies.set('connect.sid', made.cookie);
  assert.equal((await fetchWith(jar2, `${base}/count`)).json.count, 11);
  assert.equal((await cpp(redis, env, 'load', made.cookie)).fields.count, '11');
});

// The store reads SESSION_IDLE_TIMEOUT / SESSION_ABSOLUTE_TIMEOUT from
// process.env when it is made: set them for one construction.
function withEnv(vars, fn) {
  const saved = {};
  for (const k of Object.keys(vars)) {
    saved[k] = process.env[k];
    if (vars[k] === undefined) delete process.env[k];
    else process.env[k] = vars[k];
  }
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

// Redis' view of a session: { ttl (s), span (_expires - _created, s) }.
async function lifetime(raw, cookie) {
  const id = /^s%3A([^.]+)\./.exec(cookie)[1];
  const key = `corral:sess:${require('node:crypto').createHash('sha256').update(id).digest('hex')}`;
  const [created, expires] = await raw.hmGet(key, ['_created', '_expires']);
  return { ttl: await raw.ttl(key), span: Number(expires) - Number(created) };
}

test('one name for the timeouts: SESSION_IDLE_TIMEOUT=90s and SESSION_ABSOLUTE_TIMEOUT=2h mean the same in Node and C++', async (t) => {
  const redis = await startRedis(t);
  const raw = createClient({ url: redis.url });
  raw.on('error', () => {});
  await raw.connect();
  t.after(() => raw.close());
  const timeouts = { SESSION_IDLE_TIMEOUT: '90s', SESSION_ABSOLUTE_TIMEOUT: '2h' };
  // C++ (corral-worker's SessionStore) creates one...
  const made = await cpp(redis, timeouts, 'increment', '', 'count', '1');
  const cppLife = await lifetime(raw, made.cookie);
  // ...and Node, from the same variables, another.
  const store = withEnv({ ...timeouts, SESSION_IDLE_SECONDS: undefined, SESSION_ABSOLUTE_SECONDS: undefined },
    () => new CorralStore({ url: redis.url }));
  t.after(() => store.close());
  assert.deepEqual([store.idleSeconds, store.absoluteSeconds], [90, 7200]);
  const base = await serve(t, sessionApp(store, { secret: SECRET }));
  const jar = new Jar();
  await fetchWith(jar, `${base}/count`);
  const nodeLife = await lifetime(raw, jar.get('corral_sid'));
  for (const life of [cppLife, nodeLife]) {
    assert.ok(life.ttl > 80 && life.ttl <= 90, `idle TTL ${life.ttl} s`);
    assert.equal(life.span, 7200);
  }
});

test('the old Node names (SESSION_IDLE_SECONDS, SESSION_ABSOLUTE_SECONDS) still work, with a deprecation warning', async (t) => {
  const redis = await startRedis(t);
  const warnings = [];
  const onWarning = (w) => warnings.push(w);
  process.on('warning', onWarning);
  t.after(() => process.removeListener('warning', onWarning));
  const make = (vars) => withEnv({ SESSION_IDLE_TIMEOUT: undefined, SESSION_ABSOLUTE_TIMEOUT: undefined,
    SESSION_IDLE_SECONDS: undefined, SESSION_ABSOLUTE_SECONDS: undefined, ...vars }, () => {
    const s = new CorralStore({ url: redis.url });
    t.after(() => s.close());
    return s;
  });
  const old = make({ SESSION_IDLE_SECONDS: '90', SESSION_ABSOLUTE_SECONDS: '7200' });
  assert.deepEqual([old.idleSeconds, old.absoluteSeconds], [90, 7200]);
  // Both set: the new name wins, and the warning says the old one is ignored.
  const both = make({ SESSION_IDLE_TIMEOUT: '5m', SESSION_IDLE_SECONDS: '90' });
  assert.equal(both.idleSeconds, 300);
  await new Promise((r) => setImmediate(r));  // warnings are emitted on the next tick
  assert.deepEqual(warnings.map((w) => [w.name, w.code, w.message]), [
    ['DeprecationWarning', 'CORRAL_SESSION_SECONDS',
      'SESSION_IDLE_SECONDS is deprecated: use SESSION_IDLE_TIMEOUT=90s (a duration such as 30m or 8h, the name corral-worker reads)'],
    ['DeprecationWarning', 'CORRAL_SESSION_SECONDS',
      'SESSION_ABSOLUTE_SECONDS is deprecated: use SESSION_ABSOLUTE_TIMEOUT=7200s (a duration such as 30m or 8h, the name corral-worker reads)'],
    ['DeprecationWarning', 'CORRAL_SESSION_SECONDS',
      'SESSION_IDLE_SECONDS is ignored: SESSION_IDLE_TIMEOUT is set too (remove SESSION_IDLE_SECONDS)'],
  ]);
  assert.throws(() => make({ SESSION_IDLE_SECONDS: '30m' }),
    /SESSION_IDLE_SECONDS="30m" is not a whole number of seconds \(it is deprecated: set SESSION_IDLE_TIMEOUT to a duration such as 30m instead\)/);
});
