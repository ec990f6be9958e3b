'use strict';
// What corral-agent tells a worker through its environment
// (docs/agent-contract.md, "Worker environment"), read once and checked.

const UNITS = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };

// A Go/Abseil duration ("500ms", "1s", "1.5s", "1m30s", "0") in
// milliseconds. `name` names the variable or option in the error.
function parseDuration(text, name) {
  const s = String(text).trim();
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let ms = 0;
  let end = 0;
  for (let m; (m = re.exec(s)) !== null; end = re.lastIndex) ms += Number(m[1]) * UNITS[m[2]];
  if (s === '' || end !== s.length) {
    throw new Error(`${name}="${text}" is not a duration (examples: 500ms, 1s, 1m30s)`);
  }
  return ms;
}

// A duration from the environment, or `fallback` (ms) when unset or empty.
function durationEnv(name, fallback, env = process.env) {
  const v = env[name];
  return v === undefined || v === '' ? fallback : parseDuration(v, name);
}

function intEnv(name, env) {
  const v = env[name];
  if (v === undefined || v === '') return null;
  if (!/^\d+$/.test(v)) throw new Error(`${name}="${v}" is not a non-negative integer`);
  return Number(v);
}

// The sockets passed by the agent (systemd's LISTEN_FDS protocol): fds 3..
// with their names, only when LISTEN_PID is this process (a child of the
// app inherits the variables but not the meaning).
function inheritedSockets(env = process.env, pid = process.pid) {
  const count = intEnv('LISTEN_FDS', env);
  if (!count || intEnv('LISTEN_PID', env) !== pid) return [];
  const names = (env.LISTEN_FDNAMES || '').split(':');
  const out = [];
  for (let i = 0; i < count; i++) out.push({ fd: 3 + i, name: names[i] || `fd${3 + i}` });
  return out;
}

// How often to ping the agent's watchdog (ms), or 0: half of WATCHDOG_USEC,
// when WATCHDOG_PID is unset, empty or this process.
function watchdogInterval(env = process.env, pid = process.pid) {
  const usec = intEnv('WATCHDOG_USEC', env);
  if (!usec) return 0;
  const owner = env.WATCHDOG_PID;
  if (owner !== undefined && owner !== '' && Number(owner) !== pid) return 0;
  return Math.max(1, Math.floor(usec / 2000));
}

module.exports = { parseDuration, durationEnv, intEnv, inheritedSockets, watchdogInterval };
