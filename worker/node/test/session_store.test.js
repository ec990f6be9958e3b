'use strict';
// CorralStore with real express-session and a real redis-server: the corral
// layout, updates, sliding and absolute expiry, Redis down, no lost or
// resurrected writes, Sentinel.

const { test } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { startRedis, start, waitFor, freePort, tempDir } = require('./helpers');
const { sessionApp } = require('./fixtures/session_app');
const { Jar, fetchWith } = require('./cookies');
const { isWellFormedId } = require('../lib/session_store');
const { serve, rawClient, storeFor, keyOf, idOf } = require('./session_helpers');

test('create, read, update in the corral layout', async (t) => {
  const redis = await startRedis(t);
  const store = storeFor(t, redis);
  const base = await serve(t, sessionApp(store));
  const raw = await rawClient(t, redis.url);
  const jar = new Jar();
  assert.equal((await fetchWith(jar, `${base}/count`)).json.count, 1);
  const id = idOf(jar);
  assert.ok(isWellFormedId(id), `a 43-character corral id: ${id}`);
  const hash = await raw.hGetAll(keyOf(id));
  assert.equal(hash.count, '1'); // JSON text of the number: HINCRBY works on it
  assert.ok(Number(hash._expires) - Number(hash._created) >= 8 * 3600 - 1);
  assert.equal(JSON.parse(hash._cookie).path, '/');
  assert.equal((await raw.keys('*')).length, 1, 'only the hashed key; the id is not in Redis');
  assert.equal((await fetchWith(jar, `${base}/count`)).json.count, 2);
  await fetchWith(jar, `${base}/set?user=${encodeURIComponent('bob "b"')}`);
  assert.equal((await raw.hGetAll(keyOf(id))).user, '"bob \\"b\\""');
  const shown = (await fetchWith(jar, `${base}/show`)).json.session;
  assert.equal(shown.user, 'bob "b"');
  assert.equal(shown.count, 2);
  await fetchWith(jar, `${base}/set?user=DELETE`);
  assert.equal((await raw.hGetAll(keyOf(id))).user, undefined, 'a deleted property is deleted in Redis');
  assert.equal((await fetchWith(jar, `${base}/logout`)).status, 200);
  assert.equal(await raw.exists(keyOf(id)), 0);
});

test('sliding idle expiry, and an absolute end no use extends', async (t) => {
  const redis = await startRedis(t);
  const raw = await rawClient(t, redis.url);
  // Idle 1 s: unused, the session is gone after it.
  const idle = await serve(t, sessionApp(storeFor(t, redis, { idleTimeout: 1000 })));
  const jar = new Jar();
  await fetchWith(jar, `${idle}/count`);
  const ttl = await raw.pTTL(keyOf(idOf(jar)));
  assert.ok(ttl > 0 && ttl <= 1000, `TTL ${ttl} ms`);
  await waitFor(async () => (await raw.exists(keyOf(idOf(jar)))) === 0, 5000, 'the idle session to expire');
  assert.equal((await fetchWith(jar, `${idle}/count`)).json.count, 1, 'a new session');
  // Absolute 3 s, idle 1 s: used every 300 ms it lives on past the idle
  // timeout, and ends at 3 s however busy. Expiry is in whole seconds of
  // Redis' clock (as for the C++ store), so the end is 2-3 s after creation.
  const abs = await serve(t, sessionApp(storeFor(t, redis, { idleTimeout: 1000, absoluteTimeout: 3000 })));
  const jar2 = new Jar();
  const t0 = Date.now();
  await fetchWith(jar2, `${abs}/count`);
  let last = 1;
  let endedAt = null;
  while (Date.now() - t0 < 6000) {
    await new Promise((r) => setTimeout(r, 300));
    const r = await fetchWith(jar2, `${abs}/count`);
    if (r.json.count <= last) {
      endedAt = Date.now() - t0;
      break;
    }
    last = r.json.count;
  }
  assert.ok(endedAt !== null, 'the session ended');
  assert.ok(last >= 4, `it lived past the idle timeout by use: ${last} requests`);
  assert.ok(endedAt >= 1900 && endedAt < 3800, `ended ${endedAt} ms after creation, absolute 3 s`);
});

test('Redis down: 503 with the reason; back up: sessions work again', async (t) => {
  const redis = await startRedis(t);
  const store = storeFor(t, redis);
  const base = await serve(t, sessionApp(store));
  const jar = new Jar();
  assert.equal((await fetchWith(jar, `${base}/count`)).json.count, 1);
  await redis.kill();
  // The first reason seen is the lost connection (ECONNRESET or closed);
  // the reconnect attempts that follow are refused, and the 503 names the
  // latest reason.
  await waitFor(() => !store.up && /ECONNREFUSED/.test(store.lastError), 5000,
    'the store to see Redis down and its reconnects refused');
  const down = await fetchWith(jar, `${base}/count`);
  assert.equal(down.status, 503);
  assert.match(down.text, /redis is down \(redis:\/\/127\.0\.0\.1:\d+\/?\): .*ECONNREFUSED/);
  await redis.start(); // same port, empty (no persistence)
  await waitFor(async () => (await fetchWith(jar, `${base}/count`)).status === 200, 3000,
    'sessions to work again after Redis is back');
});

test('close() while Redis is down returns at once (a graceful close would wait for a reconnect)', async (t) => {
  const redis = await startRedis(t);
  const store = storeFor(t, redis);
  await waitFor(() => store.up, 5000, 'the store to connect');
  await redis.kill();
  await waitFor(() => !store.up, 5000, 'the store to see Redis down');
  let timer;
  const late = new Promise((resolve) => { timer = setTimeout(() => resolve('still waiting'), 3000); });
  const result = await Promise.race([store.close().then(() => 'closed'), late]);
  clearTimeout(timer);
  assert.equal(result, 'closed');
});

test('two requests changing different fields of one session lose nothing; a logout is not undone', async (t) => {
  const redis = await startRedis(t);
  const raw = await rawClient(t, redis.url);
  const base = await serve(t, sessionApp(storeFor(t, redis)));
  const jar = new Jar();
  await fetchWith(jar, `${base}/count`);
  const key = keyOf(idOf(jar));
  // A slow request sets `cart` while the counter moves underneath it (as a
  // C++ worker's HINCRBY would).
  const started = (n) => waitFor(async () => (await fetchWith(new Jar(), `${base}/slow-started`)).json === n,
    2000, `slow request ${n} to load the session`);
  const slow = fetchWith(jar, `${base}/slow-set?field=cart&value=book&ms=400`);
  await started(1);
  await raw.hIncrBy(key, 'count', 10);
  await slow;
  const h = await raw.hGetAll(key);
  assert.equal(h.cart, '"book"', JSON.stringify(h));
  assert.equal(h.count, '11', 'the increment made during the slow request survives its save');
  // A logout during a slow request: its save does not bring the session back.
  const slow2 = fetchWith(jar, `${base}/slow-set?field=cart&value=pen&ms=400`);
  await started(2);
  await fetchWith(jar, `${base}/logout`);
  await slow2;
  assert.equal(await raw.exists(key), 0);
});

test('a stray key (no _expires: an increment on an ended session) is no session, and a new save does not keep its fields', async (t) => {
  const redis = await startRedis(t);
  const raw = await rawClient(t, redis.url);
  const store = storeFor(t, redis);
  const id = store.genid();
  await raw.hSet(keyOf(id), { counter: '41', user: '"mallory"' });
  const got = await new Promise((resolve, reject) => store.get(id, (err, s) => (err ? reject(err) : resolve(s))));
  assert.equal(got, null);
  await new Promise((resolve, reject) => store.set(id, { cookie: { path: '/' }, cart: 'book' },
    (err) => (err ? reject(err) : resolve())));
  const h = await raw.hGetAll(keyOf(id));
  assert.deepEqual(Object.keys(h).sort(), ['_cookie', '_created', '_expires', 'cart'], JSON.stringify(h));
});

test('store.increment: concurrent requests lose no count (a plain req.session update would)', async (t) => {
  const redis = await startRedis(t);
  const raw = await rawClient(t, redis.url);
  const base = await serve(t, sessionApp(storeFor(t, redis)));
  const jar = new Jar();
  const first = await fetchWith(jar, `${base}/incr`);
  assert.deepEqual([first.json.count, first.json.new], [1, true]);
  const counts = await Promise.all(Array.from({ length: 50 }, () => fetchWith(jar, `${base}/incr`)));
  assert.deepEqual(counts.map((r) => r.json.count).sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i + 2));
  assert.equal(await raw.hGet(keyOf(idOf(jar)), 'count'), '51');
  // The same with read-modify-write (/count) loses updates: that is why.
  const lossy = await Promise.all(Array.from({ length: 50 }, () => fetchWith(jar, `${base}/count`)));
  const final = Number(await raw.hGet(keyOf(idOf(jar)), 'count'));
  t.diagnostic(`read-modify-write: 50 concurrent requests moved the count from 51 to ${final}`);
  assert.ok(lossy.every((r) => r.status === 200));
});

test('ids not drawn by genid are refused with a clear error', async (t) => {
  const redis = await startRedis(t);
  const store = storeFor(t, redis);
  const app = sessionApp(store, { genid: undefined });
  const base = await serve(t, app);
  // express-session's own uid-safe ids (32 characters)
  const r = await fetchWith(new Jar(), `${base}/count`);
  assert.equal(r.status, 500);
  assert.match(r.text, /genid: store\.genid/);
});

test('Sentinel: the store finds the master through redis-sentinel', async (t) => {
  const master = await startRedis(t);
  const dir = tempDir(t);
  let sentinel = null;
  let port = null;
  for (let attempt = 0; attempt < 5 && !sentinel; attempt++) {
    port = await freePort();
    const conf = path.join(dir, `sentinel-${attempt}.conf`);
    fs.writeFileSync(conf, `port ${port}\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 ${master.port} 1\n` +
      'sentinel down-after-milliseconds mymaster 1000\n');
    const child = start(t, 'redis-server', [conf, '--sentinel']);
    const up = await waitFor(() => /Sentinel ID is|monitor master/.test(child.out) ||
      (child.exitCode !== null && 'exited'), 10000, 'redis-sentinel to start');
    if (up === true) sentinel = child;
  }
  assert.ok(sentinel, 'redis-sentinel started');
  const store = storeFor(t, master, { url: undefined, sentinels: `127.0.0.1:${port}`, masterName: 'mymaster' });
  const base = await serve(t, sessionApp(store));
  const raw = await rawClient(t, master.url);
  const jar = new Jar();
  await waitFor(async () => (await fetchWith(jar, `${base}/count`)).status === 200, 10000,
    'a session through Sentinel');
  assert.equal((await fetchWith(jar, `${base}/count`)).json.count, 2);
  assert.equal(await raw.hGet(keyOf(idOf(jar)), 'count'), '2');
});
