'use strict';
// listen(server, name) under the real agent (sockets by LISTEN_FDNAMES),
// alone on $PORT, and the IPC notifications.

const { test } = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const path = require('node:path');
const { startAgent, start, waitFor, exited } = require('./helpers');
const { request } = require('./http_load');
const sockets = require('../lib/sockets');

const APP = path.join(__dirname, 'fixtures', 'app.js');


test('listen(server, name) takes the socket of that name', async (t) => {
  const agent = await startAgent(t, {
    listen: ['web=tcp://127.0.0.1:0', 'admin=tcp://127.0.0.1:0'],
    args: ['--ready=ipc', '--workers=1'],
    command: [process.execPath, APP],
    env: { APP_LISTEN: 'admin,web' }, // in the other order than the fds
  });
  await agent.waitReady(1);
  const [web, admin] = agent.ports();
  const a = await request(admin, '/', null, 5000);
  const w = await request(web, '/', null, 5000);
  assert.match(a.body, /^ok \/ admin /);
  assert.match(w.body, /^ok \/ web /);
  assert.equal(await agent.stop(), 0);
  assert.equal(agent.agentEvents('worker_exited')[0].code, 0);
});

test('an unknown name fails with the names there are', async (t) => {
  const agent = await startAgent(t, {
    listen: ['web=tcp://127.0.0.1:0'],
    args: ['--ready=ipc', '--workers=1', '--ready-timeout=20s'],
    command: [process.execPath, APP],
    env: { APP_LISTEN: 'api' },
  });
  await agent.waitEvent((e) => e.event === 'worker_exited', 15000, 'the worker to exit');
  const line = await waitFor(() => agent.workerLines('no inherited socket named')[0], 5000, 'the error line');
  assert.match(line.msg, /no inherited socket named "api" \(LISTEN_FDNAMES has: web\)/);
  assert.notEqual(agent.agentEvents('worker_exited')[0].code, 0);
});

test('alone, listen() uses $PORT and ready()/status() are no-ops', async (t) => {
  const app = start(t, process.execPath, [APP], { env: { ...process.env, PORT: '0', APP_STATUS: 'x' } });
  const m = await waitFor(() => /listening\s+(\d+)/.exec(app.out), 10000, 'the app to listen');
  const r = await request(Number(m[1]), '/', null, 5000);
  assert.ok(r.ok);
  app.kill('SIGTERM');
  assert.equal((await exited(app)).code, 0);
  assert.equal(app.err, '');
});

test('a bad PORT is reported by name', async (t) => {
  const app = start(t, process.execPath, [APP], { env: { ...process.env, PORT: 'http' } });
  assert.equal((await exited(app)).code, 3);
  assert.match(app.err, /PORT="http" is not a port number/);
});

test('register: the port of an inherited socket is read from /proc', async (t) => {
  const server = net.createServer();
  t.after(() => server.close());
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  assert.equal(sockets.portOf({ fd: server._handle.fd }), server.address().port);
  assert.equal(sockets.portOf({ fd: 0 }), null); // not a socket
});

test('status() reaches the agent as worker_status', async (t) => {
  const agent = await startAgent(t, {
    args: ['--ready=ipc', '--workers=1'],
    command: [process.execPath, APP],
    env: { APP_STATUS: 'serving; warmed up' },
  });
  const e = await agent.waitEvent((x) => x.event === 'worker_status', 10000, 'worker_status');
  assert.equal(e.status, 'serving; warmed up');
  assert.equal(await agent.stop(), 0);
});

test('watchdog pings keep a live worker; a stuck loop is killed', async (t) => {
  const agent = await startAgent(t, {
    args: ['--ready=ipc', '--workers=1', '--watchdog=400ms'],
    command: [process.execPath, APP],
    env: { APP_BLOCK_AFTER_MS: '2000' },
  });
  await agent.waitReady(1);
  // Pinging (every 200 ms): alive past five watchdog periods...
  const kill = await agent.waitEvent((e) => e.event === 'worker_killed', 10000, 'the watchdog kill');
  assert.equal(kill.reason, 'watchdog');
  const ready = agent.agentEvents('worker_ready')[0];
  const ms = Date.parse(kill.ts) - Date.parse(ready.ts);
  // ...and killed within a period or two of blocking at 2 s.
  assert.ok(ms >= 1800, `killed ${ms} ms after READY, before the loop blocked`);
  assert.ok(ms < 3500, `killed only ${ms} ms after READY`);
});
