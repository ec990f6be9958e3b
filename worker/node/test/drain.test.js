'use strict';
// The drain (lib/drain.js) on a real server alone on $PORT: what a client
// sees on its keep-alive connections after SIGTERM, and the exit code.

const { test } = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const path = require('node:path');
const { start, waitFor, exited } = require('./helpers');
const { request } = require('./http_load');

const APP = path.join(__dirname, 'fixtures', 'app.js');

async function startApp(t, env = {}) {
  const child = start(t, process.execPath, [APP], { env: { ...process.env, PORT: '0', ...env } });
  const m = await waitFor(() => /listening\s+(\d+)/.exec(child.out) ||
    (child.exitCode !== null && { error: child.err }), 10000, 'the app to listen');
  if (m.error !== undefined) throw new Error(`app exited: ${m.error}`);
  child.port = Number(m[1]);
  return child;
}

// Polls until the listening socket is gone: the drain has started.
function refused(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(false); });
    s.once('error', (err) => resolve(err.code === 'ECONNREFUSED'));
  });
}

async function signalAndWaitDrain(app, signal = 'SIGTERM') {
  app.kill(signal);
  await waitFor(() => refused(app.port), 5000, 'the app to stop accepting');
}

// A keep-alive connection that has served one request.
async function warmConnection(port) {
  const r = await request(port, '/', null, 5000);
  assert.ok(r.ok && !r.close, `warm-up request: ${JSON.stringify(r.kind)}`);
  return r.conn;
}

test('an idle keep-alive connection is kept through the idle window; its next request is answered with Connection: close', async (t) => {
  const app = await startApp(t, { CORRAL_DRAIN_IDLE_WINDOW: '3s' });
  const conn = await warmConnection(app.port);
  await signalAndWaitDrain(app);
  const r = await request(app.port, '/after', conn, 5000);
  assert.ok(r.ok, `request after SIGTERM failed: ${r.kind}`);
  assert.equal(r.close, true, 'the response says Connection: close');
  const { code } = await exited(app);
  assert.equal(code, 0);
  assert.match(app.out, /shutdown hook ran/);
});

test('a connection left idle is closed after the idle window, then the process exits 0', async (t) => {
  const app = await startApp(t, { CORRAL_DRAIN_IDLE_WINDOW: '600ms' });
  const conn = await warmConnection(app.port);
  const closed = new Promise((resolve) => conn.socket.once('close', () => resolve(Date.now())));
  const t0 = Date.now();
  app.kill('SIGTERM');
  const at = await closed;
  assert.ok(at - t0 >= 550, `closed ${at - t0} ms after SIGTERM, before the 600 ms idle window`);
  assert.ok(at - t0 < 5000, `closed only after ${at - t0} ms`);
  assert.equal((await exited(app)).code, 0);
});

test('a request in flight finishes, with Connection: close', async (t) => {
  const app = await startApp(t);
  const pending = request(app.port, '/slow?ms=800', null, 5000);
  await waitFor(() => app.out.includes('listening'), 1000, 'app');
  await new Promise((r) => setTimeout(r, 100)); // the request reaches the app
  app.kill('SIGTERM');
  const r = await pending;
  assert.ok(r.ok, `in-flight request failed: ${r.kind}`);
  assert.equal(r.close, true);
  assert.equal((await exited(app)).code, 0);
});

test('requests pipelined behind one in flight are all answered, then the connection closes', async (t) => {
  const app = await startApp(t);
  const socket = net.connect(app.port, '127.0.0.1');
  t.after(() => socket.destroy());
  await new Promise((r) => socket.once('connect', r));
  let data = '';
  socket.setEncoding('latin1').on('data', (d) => { data += d; });
  const ended = new Promise((r) => socket.once('close', r));
  socket.write('GET /slow?ms=800 HTTP/1.1\r\nHost: x\r\n\r\n');
  await new Promise((r) => setTimeout(r, 100)); // the app is handling it
  await signalAndWaitDrain(app);
  assert.equal(data, '', 'nothing answered yet');
  socket.write('GET /second HTTP/1.1\r\nHost: x\r\n\r\nGET /third HTTP/1.1\r\nHost: x\r\n\r\n');
  await ended;
  const heads = data.match(/HTTP\/1\.1 [^]*?\r\n\r\n/g) || [];
  assert.equal(heads.length, 3, data);
  for (const h of heads) assert.match(h, /^HTTP\/1\.1 200/);
  // None may say close before the last; Node queued /second and /third
  // behind /slow before the drain could mark them, so the idle window
  // closed the connection after the last answer.
  assert.doesNotMatch(heads[0], /Connection: close/i);
  assert.doesNotMatch(heads[1], /Connection: close/i);
  assert.match(data, /ok \/slow[^]*ok \/second[^]*ok \/third/);
  assert.equal((await exited(app)).code, 0);
});

test('at the drain deadline what is left is closed and the exit code is 1', async (t) => {
  const app = await startApp(t, { CORRAL_DRAIN_TIMEOUT: '500ms' });
  const pending = request(app.port, '/slow?ms=10000', null, 8000);
  await new Promise((r) => setTimeout(r, 100));
  const t0 = Date.now();
  app.kill('SIGTERM');
  const { code } = await exited(app);
  assert.equal(code, 1);
  assert.ok(Date.now() - t0 < 4000, `exit took ${Date.now() - t0} ms`);
  assert.equal((await pending).ok, false);
  assert.match(app.err, /drain deadline/);
});

test('a second SIGTERM ends the drain at once with 1', async (t) => {
  const app = await startApp(t, { CORRAL_DRAIN_IDLE_WINDOW: '30s' });
  await warmConnection(app.port);
  await signalAndWaitDrain(app);
  app.kill('SIGTERM');
  assert.equal((await exited(app)).code, 1);
});

test("an app's own SIGTERM handler: server.close(cb) waits for the drain, the app owns the exit", async (t) => {
  const app = await startApp(t, { APP_OWN_SIGTERM: '7', CORRAL_DRAIN_IDLE_WINDOW: '2s' });
  const conn = await warmConnection(app.port);
  await signalAndWaitDrain(app);
  // Node's own close() would have closed this idle connection at once.
  const r = await request(app.port, '/after', conn, 5000);
  assert.ok(r.ok && r.close, `request on the idle connection after SIGTERM: ${r.kind}`);
  assert.equal((await exited(app)).code, 7);
  assert.match(app.out, /shutdown hook ran[\s\S]*|app close callback/);
  assert.match(app.out, /app close callback/);
});

test('a bad CORRAL_DRAIN_IDLE_WINDOW fails at start, naming the variable', async (t) => {
  const app = start(t, process.execPath, [APP], { env: { ...process.env, PORT: '0', CORRAL_DRAIN_IDLE_WINDOW: 'soon' } });
  assert.equal((await exited(app)).code, 3);
  assert.match(app.err, /CORRAL_DRAIN_IDLE_WINDOW="soon" is not a duration/);
});
