'use strict';
// CorralStore's per-request operations (get, touch, increment) are
// pipelines of plain commands, not scripts: with a real express-session and
// a real redis-server, the rules of docs/sessions.md ("Operations") that keep
// an ended session from coming back, the absolute end as Redis' TTL, and the
// idle timeout renewed at most every 1/64 of it.

const { test } = require('node:test');
const assert = require('node:assert');
const { startRedis, waitFor } = require('./helpers');
const { sessionApp } = require('./fixtures/session_app');
const { Jar, fetchWith } = require('./cookies');
const { serve, rawClient, storeFor, keyOf, idOf } = require('./session_helpers');

const nowSeconds = () => Math.floor(Date.now() / 1000);
const call = (fn) => new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));

// Starts /slow-incr (loads the session, increments `count` 300 ms later),
// runs `meanwhile` once the session is loaded, returns the response.
async function incrementAround(base, jar, meanwhile) {
  const before = (await fetchWith(new Jar(), `${base}/slow-started`)).json;
  const slow = fetchWith(jar, `${base}/slow-incr?ms=300`);
  await waitFor(async () => (await fetchWith(new Jar(), `${base}/slow-started`)).json === before + 1, 2000,
    'the slow increment to load the session');
  await meanwhile();
  return slow;
}

test('an ended session (deleted by another client): get and increment start a new session, no stray key', async (t) => {
  const redis = await startRedis(t);
  const raw = await rawClient(t, redis.url);
  const base = await serve(t, sessionApp(storeFor(t, redis)));
  // get: the old cookie finds nothing and nothing is written back.
  const jar = new Jar();
  await fetchWith(jar, `${base}/count`);
  const gone = idOf(jar);
  await raw.del(keyOf(gone));
  const shown = (await fetchWith(jar, `${base}/show`)).json;
  assert.notEqual(shown.id, gone, 'a new session');
  assert.equal(shown.session.count, undefined);
  assert.deepEqual(await raw.keys('*'), [], 'no key written for the ended session');
  // increment: the session ends between the request's get and its HINCRBY,
  // which re-creates the key with only `count`; the request gets a new
  // session with count = 1 and the stray key is deleted.
  const jar2 = new Jar();
  assert.equal((await fetchWith(jar2, `${base}/incr`)).json.count, 1);
  const ended = idOf(jar2);
  const r = await incrementAround(base, jar2, () => raw.del(keyOf(ended)));
  assert.equal(r.status, 200, r.text);
  assert.deepEqual([r.json.count, r.json.new], [1, true]);
  const fresh = idOf(jar2);
  assert.notEqual(fresh, ended, 'the client got the new session\'s cookie');
  assert.equal(r.json.id, fresh);
  assert.deepEqual(await raw.keys('*'), [keyOf(fresh)], 'only the new session, no stray key');
  const h = await raw.hGetAll(keyOf(fresh));
  assert.equal(h.count, '1');
  assert.ok(Number(h._expires) > nowSeconds(), JSON.stringify(h));
  assert.equal((await fetchWith(jar2, `${base}/incr`)).json.count, 2, 'the new session continues');
});

test('a hash without _expires is no session for get, touch and increment, and is deleted', async (t) => {
  const redis = await startRedis(t);
  const raw = await rawClient(t, redis.url);
  const store = storeFor(t, redis);
  const base = await serve(t, sessionApp(store));
  const id = store.genid();
  await raw.hSet(keyOf(id), { count: '41', user: '"mallory"' });
  assert.equal(await call((cb) => store.get(id, cb)), null);
  assert.equal(await raw.exists(keyOf(id)), 0, 'get deleted the stray key');
  const id2 = store.genid();
  await raw.hSet(keyOf(id2), { count: '41' });
  await call((cb) => store.touch(id2, {}, cb));
  assert.equal(await raw.exists(keyOf(id2)), 0, 'touch deleted the stray key');
  // A hash whose _expires has passed is no session either.
  const id3 = store.genid();
  await raw.hSet(keyOf(id3), { _created: String(nowSeconds() - 100), _expires: String(nowSeconds() - 1) });
  assert.equal(await call((cb) => store.get(id3, cb)), null);
  assert.equal(await raw.exists(keyOf(id3)), 0, 'get deleted the ended session');
  // increment: the session loses its _expires while the request runs.
  const jar = new Jar();
  await fetchWith(jar, `${base}/incr`);
  const old = idOf(jar);
  const r = await incrementAround(base, jar, () => raw.hDel(keyOf(old), '_expires'));
  assert.deepEqual([r.status, r.json.count, r.json.new], [200, 1, true]);
  assert.equal(await raw.exists(keyOf(old)), 0, 'increment deleted the stray key');
  assert.deepEqual(await raw.keys('*'), [keyOf(idOf(jar))]);
});

test('near the absolute end, get and increment cap the TTL at what is left before they answer', async (t) => {
  const redis = await startRedis(t);
  const raw = await rawClient(t, redis.url);
  const base = await serve(t, sessionApp(storeFor(t, redis, { idleTimeout: 60000 })));
  // A session (made by the store's save, which is no renewal: the next use
  // renews), its absolute end moved near by hand, its TTL set far.
  const nearEnd = async (path, left) => {
    const jar = new Jar();
    await fetchWith(jar, `${base}/incr`);
    const id = idOf(jar);
    const key = keyOf(id);
    await raw.hSet(key, '_expires', String(nowSeconds() + left));
    await raw.expire(key, 1000);
    const r = await fetchWith(jar, `${base}/${path}`);
    assert.equal(r.status, 200, r.text);
    if (path === 'show') assert.equal(r.json.id, id, 'the same session, alive');
    else assert.deepEqual([r.json.count, r.json.new], [2, false], 'the same session, alive');
    return raw.pTTL(key);
  };
  // 20 s left, idle 60 s: EXPIRE 60 then EXPIREAT caps it at the 20 s.
  const afterGet = await nearEnd('show', 20);
  assert.ok(afterGet > 0 && afterGet <= 20000, `TTL after get ${afterGet} ms, 20 s left`);
  const afterIncrement = await nearEnd('incr', 20);
  assert.ok(afterIncrement > 0 && afterIncrement <= 20000, `TTL after increment ${afterIncrement} ms, 20 s left`);
  // 90 s left (within twice the idle timeout), idle 60 s: the cap does not
  // lengthen the idle TTL (EXPIREAT ... LT).
  const idle = await nearEnd('show', 90);
  assert.ok(idle > 50000 && idle <= 60000, `TTL ${idle} ms: the idle timeout, 90 s left`);
});

test('the idle timeout is renewed at most every 1/64 of it (idle 64 s: every second)', async (t) => {
  const redis = await startRedis(t);
  const raw = await rawClient(t, redis.url);
  const store = storeFor(t, redis, { idleTimeout: 64000 });
  assert.equal(store.renewalMs, 1000);
  const base = await serve(t, sessionApp(store));
  // A use renews; the TTL is then lowered by hand; a second use within the
  // second leaves it. On a machine so loaded that the two uses are a second
  // apart, try again with a new session.
  let jar = null;
  let key = null;
  let t0 = 0;
  for (let attempt = 0; attempt < 5 && !key; attempt++) {
    jar = new Jar();
    await fetchWith(jar, `${base}/count`); // the save: no renewal recorded
    const k = keyOf(idOf(jar));
    t0 = Date.now();
    await fetchWith(jar, `${base}/show`); // renews
    assert.ok((await raw.ttl(k)) > 60);
    await raw.expire(k, 30);
    await fetchWith(jar, `${base}/show`); // within the interval: no EXPIRE
    const ttl = await raw.ttl(k);
    if (Date.now() - t0 >= 900) {
      t.diagnostic(`attempt ${attempt}: the two uses were ${Date.now() - t0} ms apart, again`);
      continue;
    }
    assert.ok(ttl > 0 && ttl <= 30, `TTL ${ttl} s: a use within the interval left it`);
    key = k;
  }
  assert.ok(key, 'two uses within the renewal interval');
  // Used again and again: renewed once the interval has passed, not before.
  await waitFor(async () => {
    await fetchWith(jar, `${base}/show`);
    return (await raw.ttl(key)) > 60;
  }, 5000, 'a use after the interval to renew the idle timeout');
  const after = Date.now() - t0;
  assert.ok(after >= 990, `renewed ${after} ms after the last renewal`);
  // An increment keeps the same interval: the TTL it finds it leaves.
  await raw.expire(key, 30);
  await fetchWith(jar, `${base}/incr`);
  const ttl = await raw.ttl(key);
  const since = Date.now() - t0 - after;
  if (since < 900) assert.ok(ttl <= 30, `TTL ${ttl} s after an increment within the interval`);
  else t.diagnostic(`the increment came ${since} ms after the renewal: not checked`);
});
