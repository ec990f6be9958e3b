// The rendered Redis StatefulSet's command, args and redis.conf run as they
// would in the pod, with a real sh and redis-server (Debian's, Redis 7.0; the
// image runs 7.2): $(VAR) in command and args expanded as the kubelet does,
// the env entries from the Secret holding the password. They give the
// persistence, memory and password settings the manifests promise: a client
// without the password is refused, AUTH with it and redis-cli with
// REDISCLI_AUTH (the readiness probe's way) get in, and the password is in
// no argv: not in the argv redis-server was started with (recorded by a
// redis-server wrapper first on PATH, as an exec tracer sees it), nor in
// /proc/PID/cmdline or /proc/PID/environ of the running server. The pid
// spawned is redis-server itself (sh execs it) and exits 0 on SIGTERM.
// The script also refuses passwords its config line cannot carry.
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync,
} from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { OVERLAYS, find, render } from "./lib.mjs";

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    }).on("error", reject);
  });
}

// One RESP command, its reply as text.
function command(port, ...args) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1");
    let data = "";
    sock.setTimeout(2000, () => { sock.destroy(); reject(new Error("timeout")); });
    sock.on("connect", () => {
      sock.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(""));
    });
    sock.on("data", (d) => {
      data += d;
      // Enough for the simple replies and two-element arrays used here.
      if (/^[+-:]/.test(data) && data.endsWith("\r\n")) { sock.end(); resolve(data.trim()); }
      if (/^\*2\r\n(\$\d+\r\n[^\r]*\r\n){2}$/.test(data)) { sock.end(); resolve(data.split("\r\n").filter((_, i) => i === 4)[0]); }
    });
    sock.on("error", reject);
  });
}

async function waitFor(fn, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    try { return await fn(); } catch (e) { if (Date.now() > deadline) throw e; }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function withDeadline(promise, ms, what) {
  let timer;
  const late = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms); });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

// The kubelet's expansion of command and args: $(VAR) of a defined VAR
// becomes its value, $$ becomes $, anything else stays as written.
function kubeletExpand(text, env) {
  return text.replace(/\$(\$|\((\w+)\))/g, (all, inner, name) =>
    (inner === "$" ? "$" : (name in env ? env[name] : all)));
}

// "160mb" as redis-server counts it (mb = 1024^2, m = 10^6).
function redisBytes(text) {
  const m = /^(\d+)(k|kb|m|mb|g|gb)?$/i.exec(text);
  const mult = { k: 1e3, kb: 1024, m: 1e6, mb: 1024 ** 2, g: 1e9, gb: 1024 ** 3 };
  return Number(m[1]) * (m[2] ? mult[m[2].toLowerCase()] : 1);
}

const redisServer = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].find(existsSync);
const redisCli = ["/usr/bin/redis-cli", "/usr/local/bin/redis-cli"].find(existsSync);

// Starts the Redis container of a render as the pod would (only where it
// listens differs), in a temp dir: the config's `dir /data` becomes the temp
// dir, /etc/redis/redis.conf its copy. `password` is the Secret's value.
async function startRedis(t, objects, sts, password) {
  assert.ok(redisServer, "redis-server not installed (scripts/deps.sh installs redis-server)");
  const c = sts.spec.template.spec.containers.find((x) => x.name === "redis");
  const mount = c.volumeMounts.find((m) => m.mountPath === "/etc/redis");
  const vol = sts.spec.template.spec.volumes.find((v) => v.name === mount.name);
  const cm = find(objects, "ConfigMap", vol.configMap.name)[0];
  const dir = mkdtempSync(join(tmpdir(), "corral-redis-conf-"));
  // `dir` is read (chdir) while parsing: the pod's /data becomes our temp dir.
  const conf = cm.data["redis.conf"];
  assert.match(conf, /^dir \/data$/m);
  const confPath = join(dir, "redis.conf");
  writeFileSync(confPath, conf.replace(/^dir \/data$/m, `dir ${dir}`));
  // redis-server first on PATH: records the argv it is started with (what
  // an exec tracer or a `ps` at the right moment sees), then becomes the
  // real one (exec: same pid).
  const bin = join(dir, "bin");
  mkdirSync(bin);
  const argvFile = join(dir, "argv");
  writeFileSync(join(bin, "redis-server"),
    `#!/bin/sh\nprintf '%s\\n' "$0" "$@" > '${argvFile}'\nexec '${redisServer}' "$@"\n`);
  chmodSync(join(bin, "redis-server"), 0o755);
  const port = await freePort();
  // The env entries as the kubelet sets them (the Secret's value for each
  // secretKeyRef), and the image's PATH.
  const env = Object.fromEntries((c.env ?? []).map((e) =>
    [e.name, e.valueFrom?.secretKeyRef ? password : e.value]));
  const expand = (list) => (list ?? []).map((a) => kubeletExpand(a, env).replaceAll("/etc/redis/redis.conf", confPath));
  const cmd = expand(c.command);
  const args = [...expand(c.args), "--port", String(port), "--bind", "127.0.0.1", "--daemonize", "no"];
  assert.ok(cmd.length, "the Redis container sets no command");
  const child = spawn(cmd[0], [...cmd.slice(1), ...args],
    { env: { ...env, PATH: `${bin}:${process.env.PATH}` }, stdio: ["ignore", "pipe", "pipe"] });
  const out = { c, dir, port, env, argvFile, child, log: "" };
  child.stdout.on("data", (d) => { out.log += d; });
  child.stderr.on("data", (d) => { out.log += d; });
  out.exited = new Promise((r) => child.on("exit", (code, sig) => r({ code, sig })));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await out.exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return out;
}

for (const overlay of OVERLAYS) {
  const objects = render(overlay).objects;
  const sts = find(objects, "StatefulSet", "redis")[0];
  if (!sts) continue;
  test(`${overlay}: redis-server runs the rendered command and config, the password in no argv`, async (t) => {
    const password = randomBytes(16).toString("hex");
    const r = await startRedis(t, objects, sts, password);
    try {
      // Up, and refusing a client without the password.
      assert.match(await waitFor(() => command(r.port, "PING"), 5000), /^-NOAUTH/);
    } catch (e) {
      throw new Error(`redis-server did not come up asking for a password: ${e.message}\n${r.log}`);
    }
    assert.match(await command(r.port, "AUTH", "not-the-password"), /^-WRONGPASS/);
    assert.equal(await command(r.port, "AUTH", password), "+OK");
    // redis-cli with REDISCLI_AUTH from the container's env, as the probe runs.
    const probe = r.c.readinessProbe.exec.command;
    const cli = (...a) => execFileSync(redisCli, [...probe.slice(1).filter((x) => x !== "ping")
      .map((x) => (x === "6379" ? String(r.port) : x)), ...a], {
      encoding: "utf8", env: { ...process.env, REDISCLI_AUTH: r.env.REDISCLI_AUTH ?? "" },
    }).trim();
    assert.equal(cli("ping"), "PONG");
    const get = (k) => cli("CONFIG", "GET", k).split("\n")[1];
    assert.equal(get("appendonly"), "yes");
    assert.equal(get("appendfsync"), "everysec");
    assert.equal(get("maxmemory-policy"), "volatile-lru");
    // The overlay's --maxmemory reached redis-server (through "$@").
    const size = r.c.args[r.c.args.indexOf("--maxmemory") + 1];
    assert.equal(Number(get("maxmemory")), redisBytes(size), `maxmemory is not the args' ${size}`);
    assert.equal(cli("SET", "corral:probe", "1", "EX", "60"), "OK");
    await waitFor(() => { assert.ok(existsSync(join(r.dir, "appendonlydir"))); return true; }, 3000);

    // No argv held the password: the one redis-server started with, and its
    // process title now. Its environment does not hold it either.
    const argv = readFileSync(r.argvFile, "utf8");
    assert.ok(!argv.includes(password), `redis-server was started with the password in its argv:\n${argv}`);
    assert.equal(argv.split("\n").at(-2), "-", `redis-server does not read config from stdin: ${argv}`);
    const pid = r.child.pid;
    assert.equal(realpathSync(`/proc/${pid}/exe`), realpathSync(redisServer),
      "the pid spawned is not redis-server: the script does not exec it");
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    assert.ok(!cmdline.includes(password), `password in /proc/${pid}/cmdline: ${cmdline}`);
    const environ = readFileSync(`/proc/${pid}/environ`, "utf8");
    assert.ok(!environ.includes(password), `password in /proc/${pid}/environ`);

    // SIGTERM to that pid (what the kubelet sends PID 1) stops redis-server cleanly.
    r.child.kill("SIGTERM");
    const { code, sig } = await withDeadline(r.exited, 10000, "redis-server exit after SIGTERM");
    assert.equal(code, 0, `redis-server exited ${code} ${sig} on SIGTERM:\n${r.log}`);
    assert.match(r.log, /ready to exit/);
    console.log(`${overlay}: redis-server ${execFileSync(redisServer, ["--version"], { encoding: "utf8" }).split(" ")[2]}` +
      ` ran sh -c ... ${r.c.args.join(" ")}, the password (Secret) on stdin: NOAUTH without it, AUTH +OK and` +
      ` PONG with REDISCLI_AUTH; maxmemory ${size}; argv '${argv.trim().split("\n").slice(1).join(" ")}',` +
      ` cmdline '${cmdline.replace(/\0/g, " ").trim()}' without it; exit 0 on SIGTERM`);
  });
}

// Passwords the shell must pass through untouched, and those the quoted
// config line cannot carry (refused before redis-server starts).
const dev = render("dev").objects;
const devSts = find(dev, "StatefulSet", "redis")[0];

test("dev: a password with spaces, quotes, $ and backquotes reaches Redis as is", async (t) => {
  const password = `p w $HOME \`id\` $(id) 'x' #;* ${randomBytes(4).toString("hex")}`;
  const r = await startRedis(t, dev, devSts, password);
  try {
    assert.match(await waitFor(() => command(r.port, "PING"), 5000), /^-NOAUTH/);
  } catch (e) {
    throw new Error(`redis-server did not come up asking for a password: ${e.message}\n${r.log}`);
  }
  assert.equal(await command(r.port, "AUTH", password), "+OK");
  assert.ok(!readFileSync(r.argvFile, "utf8").includes(password));
});

for (const [what, password] of [["an empty password", ""], ["a double quote", 'ab"cd'],
  ["a backslash", "ab\\cd"], ["a trailing newline", "abcd\n"]]) {
  test(`dev: ${what} is refused, naming REDIS_PASSWORD`, async (t) => {
    const r = await startRedis(t, dev, devSts, password);
    const { code } = await withDeadline(r.exited, 5000, "the script's exit");
    assert.notEqual(code, 0);
    assert.match(r.log, /REDIS_PASSWORD \(Secret redis-auth, key password\)/);
    assert.ok(!existsSync(r.argvFile), "redis-server was started anyway");
  });
}
