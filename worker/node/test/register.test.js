'use strict';
// register.js with an unmodified tutorial app under the real corral-agent:
// it takes the agent's socket, becomes READY without sending anything
// itself, and drains so that keep-alive clients see no failure across
// rolling reloads, then exits 0 on the agent's SIGTERM.

const { test } = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const { startAgent, waitFor, REGISTER } = require('./helpers');
const { keepAliveLoad, failureCount, request } = require('./http_load');

const TUTORIAL = path.join(__dirname, 'fixtures', 'tutorial.js');

function tutorialAgent(t, args = []) {
  return startAgent(t, {
    args: ['--ready=ipc', '--workers=2', '--stop-timeout=20s', ...args],
    command: ['node', '-r', REGISTER, TUTORIAL],
  });
}

test('a tutorial app runs unchanged: READY on listen, serves on the agent socket, exits 0', async (t) => {
  const agent = await tutorialAgent(t);
  await agent.waitReady(2);
  const [port] = agent.ports();
  const pids = new Set();
  for (let i = 0; i < 20 && pids.size < 2; i++) {
    const r = await request(port, '/', null, 5000);
    assert.ok(r.ok, `request failed: ${r.kind}`);
    pids.add(r.body);
  }
  assert.ok(agent.workerLines("takes the agent's socket").length >= 2, 'each worker says it took the socket');
  assert.equal(await agent.stop(), 0);
  const exits = agent.agentEvents('worker_exited');
  assert.equal(exits.length, 2);
  for (const e of exits) assert.equal(e.code, 0, JSON.stringify(e));
  assert.equal(agent.agentEvents('shutdown_finished')[0].killed, false);
});

test('5 rolling reloads under keep-alive load: 0 failed requests', async (t) => {
  const agent = await tutorialAgent(t);
  await agent.waitReady(2);
  const [port] = agent.ports();
  const load = keepAliveLoad(port, { connections: 16 });
  for (let i = 1; i <= 5; i++) {
    const before = agent.agentEvents('reload_finished').length;
    process.kill(agent.child.pid, 'SIGHUP');
    await agent.waitEvent(() => agent.agentEvents('reload_finished').length > before, 30000,
      `reload ${i} finished`);
    // Old workers drain (idle window 1 s) and exit before the next reload.
    await waitFor(() => agent.agentEvents('worker_exited').length >= 2 * i, 15000,
      `the old workers of reload ${i} to exit`);
  }
  const stats = await load.stop();
  const exits = agent.agentEvents('worker_exited');
  for (const e of exits) assert.equal(e.code, 0, `drained worker exit: ${JSON.stringify(e)}`);
  t.diagnostic(`${stats.ok} requests ok, ${stats.closes} answered with Connection: close, ` +
    `failures ${JSON.stringify(stats.failures)}`);
  assert.ok(stats.ok > 500, `too little load to mean anything: ${stats.ok}`);
  assert.ok(stats.closes >= 16, `drains closed connections with Connection: close: ${stats.closes}`);
  assert.equal(failureCount(stats), 0,
    `failed requests by kind: ${JSON.stringify(stats.failures)} ${JSON.stringify(stats.examples)}`);
  assert.equal(await agent.stop(), 0);
});
