'use strict';
// A node-redis client configured as the C++ SDK's RedisClient
// (worker/sdk/redis_config.h): REDIS_URL, or Sentinel with REDIS_SENTINELS
// and REDIS_MASTER_NAME; connect timeout 500 ms, command timeout 1 s,
// reconnect at once then with backoff up to 500 ms; while Redis is down
// commands fail at once (no offline queue), so callers can answer 503
// instead of piling up work.

const redis = require('redis');

const CONNECT_TIMEOUT_MS = 500;
const COMMAND_TIMEOUT_MS = 1000;

// First retry at once, then doubling from 50 ms to 500 ms, +-20% jitter.
function reconnectDelay(retries) {
  if (retries === 0) return 0;
  const base = Math.min(500, 50 * 2 ** (retries - 1));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

function parseSentinels(list) {
  return list.split(',').map((item) => {
    const m = /^\s*([^:\s]+|\[[^\]]+\]):(\d+)\s*$/.exec(item);
    if (!m) throw new Error(`REDIS_SENTINELS: "${item}" is not host:port`);
    return { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) };
  });
}

// Options for createClient from a URL (redis://[[user]:password@]host[:port][/db]).
function nodeOptions(url) {
  let u;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`REDIS_URL="${url}" is not a URL (redis://[[user]:password@]host[:port][/db])`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new Error(`REDIS_URL="${u.protocol}//${u.host}": only redis:// and rediss:// are supported`);
  }
  return {
    url,
    disableOfflineQueue: true,
    commandOptions: { timeout: COMMAND_TIMEOUT_MS },
    socket: { connectTimeout: CONNECT_TIMEOUT_MS, reconnectStrategy: reconnectDelay },
  };
}

// { client, send(args) -> Promise, describe } for the options or the
// environment. `options`: { url, sentinels: 'h:p,h:p' | [{host,port}],
// masterName, sentinelPassword }.
function createRedis(options = {}, env = process.env) {
  const url = options.url || env.REDIS_URL || 'redis://127.0.0.1:6379/0';
  const sentinels = options.sentinels || env.REDIS_SENTINELS;
  const base = nodeOptions(url);
  if (!sentinels) {
    const client = redis.createClient(base);
    const safe = new URL(url);
    safe.password = '';
    return { client, send: (args) => client.sendCommand(args), describe: safe.toString() };
  }
  const nodes = Array.isArray(sentinels) ? sentinels : parseSentinels(sentinels);
  const name = options.masterName || env.REDIS_MASTER_NAME || 'mymaster';
  const { url: _ignored, ...nodeClientOptions } = base;
  const u = new URL(url);
  if (u.password) nodeClientOptions.password = decodeURIComponent(u.password);
  if (u.username) nodeClientOptions.username = decodeURIComponent(u.username);
  const db = Number(u.pathname.slice(1) || 0);
  if (db) nodeClientOptions.database = db;
  const sentinelPassword = options.sentinelPassword || env.REDIS_SENTINEL_PASSWORD;
  const client = redis.createSentinel({
    name,
    sentinelRootNodes: nodes,
    nodeClientOptions,
    sentinelClientOptions: {
      socket: { connectTimeout: CONNECT_TIMEOUT_MS, reconnectStrategy: reconnectDelay },
      ...(sentinelPassword ? { password: sentinelPassword } : {}),
    },
  });
  return {
    client,
    send: (args) => client.sendCommand(false, args),
    describe: `sentinel:${name}@${nodes.map((n) => `${n.host}:${n.port}`).join(',')}/${db}`,
  };
}

// True for errors that mean "Redis is not reachable now" (answer 503), as
// opposed to an error reply from Redis itself.
function isUnavailable(err) {
  return !(err instanceof redis.ErrorReply);
}

module.exports = { createRedis, isUnavailable, reconnectDelay, parseSentinels };
