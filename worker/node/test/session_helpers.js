'use strict';
// Helpers shared by the session store tests: an app on a loopback port, a
// raw Redis client, a store, and the corral key of an id. Everything made
// here is closed in t.after(), also on failure.

const crypto = require('node:crypto');
const { createClient } = require('redis');
const { CorralStore } = require('../lib/session_store');

async function serve(t, app) {
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  t.after(() => server.close());
  return `http://127.0.0.1:${server.address().port}`;
}

async function rawClient(t, url) {
  const c = createClient({ url });
  c.on('error', () => {});
  await c.connect();
  t.after(() => c.close());
  return c;
}

function storeFor(t, redis, options = {}) {
  const store = new CorralStore({ url: redis.url, ...options });
  t.after(() => store.close());
  return store;
}

const keyOf = (id) => `corral:sess:${crypto.createHash('sha256').update(id).digest('hex')}`;
const idOf = (jar) => /^s%3A([^.]+)\./.exec(jar.get('corral_sid'))[1];

module.exports = { serve, rawClient, storeFor, keyOf, idOf };
