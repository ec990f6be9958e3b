'use strict';
// corral-agent --node-register: the agent adds the register module through
// NODE_OPTIONS, so the tutorial app runs as plain `node tutorial.js` (no
// -r): it takes the agent's socket, is READY, and reloads under keep-alive
// load with no failed request. The user's NODE_OPTIONS stay, and each
// worker has NODE_APP_INSTANCE. Without a path the agent finds the copy
// installed beside it (PREFIX/bin, PREFIX/lib/corral/node).

const { test } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { startAgent, waitFor, tempDir, REGISTER, PACKAGE, agentPath } = require('./helpers');
const { keepAliveLoad, failureCount, request } = require('./http_load');

const TUTORIAL = path.join(__dirname, 'fixtures', 'tutorial.js');
const ENV_REPORT = path.join(__dirname, 'fixtures', 'env-report.js');

// The env-report lines of the workers: { id, instance, options }.
function envReports(agent) {
  return agent.workerLines('env-report:').map((e) => {
    const m = /CORRAL_WORKER_ID=(\S*) NODE_APP_INSTANCE=(\S*) NODE_OPTIONS=(.*)$/.exec(e.msg);
    return { id: m[1], instance: m[2], options: m[3] };
  });
}

test('--node-register=PATH: the tutorial app as plain `node app.js` serves and reloads with 0 failures', async (t) => {
  const agent = await startAgent(t, {
    args: ['--ready=ipc', `--node-register=${REGISTER}`, '--workers=2', '--stop-timeout=20s'],
    command: ['node', TUTORIAL],
    env: { NODE_OPTIONS: `--require ${ENV_REPORT}` },
  });
  await agent.waitReady(2);
  const [port] = agent.ports();
  const first = await request(port, '/', null, 5000);
  assert.ok(first.ok && first.status === 200, first.kind);
  assert.ok(agent.workerLines("takes the agent's socket").length >= 2, 'the register module took the socket');
  const reports = await waitFor(() => envReports(agent).length >= 2 && envReports(agent), 5000, 'env reports');
  for (const r of reports) {
    assert.equal(r.instance, r.id, 'NODE_APP_INSTANCE is the worker id');
    assert.equal(r.options, `--require ${REGISTER} --require ${ENV_REPORT}`, "the agent's --require first, the user's kept");
  }
  assert.deepEqual(reports.map((r) => r.id).sort(), ['0', '1']);

  const load = keepAliveLoad(port, { connections: 16 });
  for (let i = 1; i <= 3; i++) {
    const before = agent.agentEvents('reload_finished').length;
    process.kill(agent.child.pid, 'SIGHUP');
    await agent.waitEvent(() => agent.agentEvents('reload_finished').length > before, 30000, `reload ${i} finished`);
    await waitFor(() => agent.agentEvents('worker_exited').length >= 2 * i, 15000,
      `the old workers of reload ${i} to exit`);
  }
  const stats = await load.stop();
  t.diagnostic(`${stats.ok} requests ok, ${stats.closes} with Connection: close, failures ${JSON.stringify(stats.failures)}`);
  assert.ok(stats.ok > 300, `too little load to mean anything: ${stats.ok}`);
  assert.equal(failureCount(stats), 0,
    `failed requests by kind: ${JSON.stringify(stats.failures)} ${JSON.stringify(stats.examples)}`);
  for (const e of agent.agentEvents('worker_exited')) assert.equal(e.code, 0, JSON.stringify(e));
  // Replacements get the same slots, and the same NODE_APP_INSTANCE.
  for (const r of envReports(agent)) assert.equal(r.instance, r.id);
  assert.equal(await agent.stop(), 0);
});

test('--node-register alone finds the copy installed beside the agent', async (t) => {
  // PREFIX/bin/corral-agent and PREFIX/lib/corral/node, as `cmake --install`
  // lays them out (worker/CMakeLists.txt).
  const prefix = tempDir(t, 'corral-prefix-');
  fs.mkdirSync(path.join(prefix, 'bin'));
  fs.copyFileSync(agentPath(), path.join(prefix, 'bin', 'corral-agent'));
  fs.chmodSync(path.join(prefix, 'bin', 'corral-agent'), 0o755);
  const installed = path.join(prefix, 'lib', 'corral', 'node');
  fs.mkdirSync(path.join(installed, 'lib'), { recursive: true });
  for (const f of ['register.js', 'package.json']) fs.copyFileSync(path.join(PACKAGE, f), path.join(installed, f));
  for (const f of fs.readdirSync(path.join(PACKAGE, 'lib'))) {
    fs.copyFileSync(path.join(PACKAGE, 'lib', f), path.join(installed, 'lib', f));
  }
  // An empty working directory: no node_modules to find the package in.
  const cwd = tempDir(t, 'corral-app-');
  const agent = await startAgent(t, {
    agent: path.join(prefix, 'bin', 'corral-agent'),
    cwd,
    args: ['--ready=ipc', '--node-register', '--workers=1'],
    command: ['node', '-r', ENV_REPORT, TUTORIAL],
  });
  await agent.waitReady(1);
  const r = await request(agent.ports()[0], '/', null, 5000);
  assert.ok(r.ok && r.status === 200, r.kind);
  const [report] = await waitFor(() => envReports(agent).length >= 1 && envReports(agent), 5000, 'env report');
  assert.equal(report.options, `--require ${path.join(installed, 'register.js')}`);
  assert.equal(report.instance, '0');
  assert.equal(await agent.stop(), 0);
});

test('--node-register without --ready=ipc, or with a missing file: exit 2 naming the flag', async (t) => {
  const { spawnSync } = require('node:child_process');
  const run = (...args) => spawnSync(agentPath(), [...args, '--', 'node', TUTORIAL], { encoding: 'utf8' });
  let r = run('--node-register');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /invalid --node-register value 'auto': it needs --ready=ipc/);
  r = run('--ready=ipc', '--node-register=/nonexistent/register.js');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /invalid --node-register value '\/nonexistent\/register.js': No such file or directory/);
  t.diagnostic(r.stderr.trim());
});
