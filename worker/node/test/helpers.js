'use strict';
// Test helpers: the real corral-agent, real redis-server, real sockets.
// Everything started here is killed by pid in t.after(), also on failure;
// waits poll real conditions with deadlines.

const assert = require('node:assert');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '../../..');
const PACKAGE = path.resolve(__dirname, '..');
const REGISTER = path.join(PACKAGE, 'register.js');

function buildDir() {
  return process.env.CORRAL_BUILD_DIR || path.join(ROOT, 'build');
}

function binary(envName, relative) {
  const p = process.env[envName] || path.join(buildDir(), relative);
  if (!fs.existsSync(p)) throw new Error(`${p} is missing: build it first (or set ${envName})`);
  return p;
}

const agentPath = () => binary('CORRAL_AGENT', 'agent/corral-agent');
const sessionToolPath = () => binary('CORRAL_SESSION_TOOL', 'tests/node/session_tool');

// Polls `fn` until it returns a truthy value; fails naming `what`.
async function waitFor(fn, timeoutMs, what) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function tempDir(t, prefix = 'corral-node-test-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function killQuietly(pid, signal = 'SIGKILL') {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

function exited(child) {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

// A child process that is killed (by pid) when the test ends. Its output
// is collected in .out / .err.
function start(t, command, args, options = {}) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  child.out = '';
  child.err = '';
  child.stdout.setEncoding('utf8').on('data', (d) => { child.out += d; });
  child.stderr.setEncoding('utf8').on('data', (d) => { child.err += d; });
  t.after(() => killQuietly(child.pid));
  return child;
}

// --- corral-agent -------------------------------------------------------------

class Agent {
  constructor(child) {
    this.child = child;
    this.events = [];
    this.lines = [];
    let partial = '';
    child.stdout.on('data', (d) => {
      partial += d;
      const lines = partial.split('\n');
      partial = lines.pop();
      for (const line of lines) {
        this.lines.push(line);
        try {
          this.events.push(JSON.parse(line));
        } catch {
          // not JSON: kept in .lines
        }
      }
    });
  }

  agentEvents(name) {
    return this.events.filter((e) => e.src === 'agent' && (!name || e.event === name));
  }

  waitEvent(pred, timeoutMs, what) {
    return waitFor(() => this.events.find((e) => e.src === 'agent' && pred(e)) ||
      (this.child.exitCode !== null && this.fail(`agent exited ${this.child.exitCode} before ${what}`)),
    timeoutMs, what);
  }

  fail(message) {
    throw new Error(`${message}\n--- agent stdout (last lines):\n${this.lines.slice(-30).join('\n')}` +
      `\n--- agent stderr:\n${this.child.err.slice(-3000)}`);
  }

  async started() {
    const e = await this.waitEvent((x) => x.event === 'agent_started', 10000, 'agent_started');
    this.listen = (e.listen || '').split(',').filter(Boolean);
    return e;
  }

  // The TCP ports the agent bound, in --listen order.
  ports() {
    return this.listen.filter((a) => a.startsWith('tcp://')).map((a) => Number(a.split(':').pop()));
  }

  readyWorkers() {
    const ready = new Map();
    for (const e of this.agentEvents()) {
      if (e.event === 'worker_ready') ready.set(e.pid, e);
      if (e.event === 'worker_exited' || e.event === 'worker_stopping') ready.delete(e.pid);
    }
    return [...ready.values()];
  }

  waitReady(count, timeoutMs = 15000) {
    return waitFor(() => this.readyWorkers().length >= count ||
      (this.child.exitCode !== null && this.fail(`agent exited ${this.child.exitCode}`)),
    timeoutMs, `${count} READY workers`);
  }

  workerLines(text) {
    return this.events.filter((e) => e.src === 'worker' && (!text || String(e.msg).includes(text)));
  }

  // SIGTERM, then the exit code (SIGKILL after timeoutMs).
  async stop(timeoutMs = 30000) {
    killQuietly(this.child.pid, 'SIGTERM');
    const timer = setTimeout(() => killQuietly(this.child.pid), timeoutMs);
    const { code } = await exited(this.child);
    clearTimeout(timer);
    return code;
  }
}

// Starts corral-agent (not PID 1: a subreaper) with JSON logs, no control
// socket, listeners on kernel-given loopback ports, and `command`.
// `agent`: another corral-agent binary; `cwd`: the agent's (and workers')
// working directory.
async function startAgent(t, { args = [], listen = ['tcp://127.0.0.1:0'], command, env = {}, agent: binaryPath,
  cwd }) {
  const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CORRAL_') &&
    !k.startsWith('LISTEN_') && !k.startsWith('NODE_CHANNEL') && !k.startsWith('WATCHDOG_')));
  const argv = ['--log-format=json', '--control-socket=', '--drain-delay=0s',
    ...listen.map((l) => `--listen=${l}`), ...args, '--', ...command];
  const child = start(t, binaryPath || agentPath(), argv, { env: { ...cleanEnv, ...env }, detached: true, cwd });
  const agent = new Agent(child);
  // Workers die with the agent (parent-death signal); kill them by pid too.
  t.after(() => {
    for (const e of agent.agentEvents('worker_spawned')) killQuietly(e.pid);
  });
  await agent.started();
  return agent;
}

// --- redis-server -------------------------------------------------------------

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// redis-server on loopback. It cannot bind port 0, so a port is taken from
// the kernel and the start is retried when another process grabbed it.
class Redis {
  constructor(t, extra = []) {
    this.t = t;
    this.extra = extra;
    this.dir = tempDir(t, 'corral-node-redis-');
    this.child = null;
    this.port = null;
  }

  get url() { return `redis://127.0.0.1:${this.port}`; }

  async start() {
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = this.port || await freePort();
      const child = start(this.t, 'redis-server', ['--port', String(port), '--bind', '127.0.0.1',
        '--save', '', '--appendonly', 'no', '--dir', this.dir, ...this.extra]);
      const up = await waitFor(() => child.out.includes('Ready to accept connections') ||
        (child.exitCode !== null && 'exited'), 10000, 'redis-server to start');
      if (up === true) {
        this.child = child;
        this.port = port;
        return this;
      }
      if (!/Address already in use/.test(child.out + child.err) || this.port) {
        throw new Error(`redis-server failed:\n${child.out}${child.err}`);
      }
    }
    throw new Error('redis-server: no free port after 5 attempts');
  }

  async kill() {
    killQuietly(this.child.pid);
    await exited(this.child);
  }
}

async function startRedis(t, extra) {
  return new Redis(t, extra).start();
}

module.exports = {
  ROOT, PACKAGE, REGISTER, agentPath, sessionToolPath, waitFor, tempDir, start, exited,
  killQuietly, startAgent, startRedis, freePort, assert,
};
