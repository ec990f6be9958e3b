'use strict';
// Redis CPU per CorralStore.get(), measured (not a test: run by hand).
//
//   node test/session_cpu.js [path/to/session_store.js] [gets]
//
// Starts its own redis-server on loopback, makes the sessions, then runs
// `gets` get() calls (default 20000, 64 in flight) from one store, twice:
// "one session" (all on one session: the idle timeout's EXPIRE is due at
// most every 1/64 of it) and "distinct sessions" (each get on another
// session: EXPIRE is due on every one). Redis' CPU time is read from
// /proc/<pid>/stat (utime + stime) before and after each run. Give the path
// of another version of the store (e.g. one from `git show`, put beside
// lib/session_store.js) to compare.

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { createClient } = require('redis');

const modulePath = path.resolve(process.argv[2] || path.join(__dirname, '../lib/session_store.js'));
const GETS = Number(process.argv[3] || 20000);
const IN_FLIGHT = 64;
const { CorralStore, genid } = require(modulePath);
const TICK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// utime + stime of `pid`, in seconds.
function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / TICK;
}

async function run(store, ids, pid) {
  const get = (id) => new Promise((resolve, reject) => store.get(id, (err, s) => (err ? reject(err) : resolve(s))));
  let next = 0;
  let missing = 0;
  const cpu0 = cpuSeconds(pid);
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < GETS) {
      const s = await get(ids[next++ % ids.length]);
      if (!s) missing++;
    }
  }));
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = cpuSeconds(pid) - cpu0;
  if (missing) throw new Error(`${missing} gets found no session`);
  return { cpuUsPerGet: (cpu * 1e6) / GETS, wallUsPerGet: (wall * 1e6) / GETS };
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-session-cpu-'));
  const port = await freePort();
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  const raw = createClient({ url });
  raw.on('error', () => {});
  let store = null;
  try {
    for (let i = 0; ; i++) {
      try { await raw.connect(); break; } catch (err) {
        if (i > 100) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const ids = Array.from({ length: GETS + 1000 }, () => genid());
    const now = Math.floor(Date.now() / 1000);
    const keyOf = (id) => `corral:sess:${require('node:crypto').createHash('sha256').update(id).digest('hex')}`;
    for (let i = 0; i < ids.length; i += 500) {
      const m = raw.multi();
      for (const id of ids.slice(i, i + 500)) {
        m.hSet(keyOf(id), { _created: String(now), _expires: String(now + 8 * 3600), count: '7', user: '"ann"',
          _cookie: '{"path":"/","httpOnly":true}' });
        m.expire(keyOf(id), 1800);
      }
      await m.exec();
    }
    store = new CorralStore({ url, idleTimeout: 30 * 60 * 1000, absoluteTimeout: 8 * 3600 * 1000 });
    await new Promise((r) => (store.up ? r() : store.once('redis', r)));
    await run(store, ids.slice(GETS), redis.pid); // warm up (and load the scripts, if any)
    const one = await run(store, [ids[0]], redis.pid);
    const distinct = await run(store, ids.slice(0, GETS), redis.pid);
    console.log(JSON.stringify({ module: path.relative(process.cwd(), modulePath), gets: GETS,
      inFlight: IN_FLIGHT, oneSession: one, distinctSessions: distinct }));
  } finally {
    if (store) await store.close();
    if (raw.isOpen) await raw.close();
    redis.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => { console.error(err); process.exitCode = 1; });
