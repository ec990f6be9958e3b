// The rendered redis.conf and the StatefulSet's redis-server arguments load
// into a real redis-server (Debian's, Redis 7.0; the image runs 7.2) and
// give the persistence, memory and password settings the manifests promise:
// $(VAR) arguments are expanded as the kubelet does (the password from the
// Secret), a client without it is refused, and redis-cli with REDISCLI_AUTH
// (the readiness probe's way) gets in.
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
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

const redisServer = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].find(existsSync);
const redisCli = ["/usr/bin/redis-cli", "/usr/local/bin/redis-cli"].find(existsSync);

for (const overlay of OVERLAYS) {
  const objects = render(overlay).objects;
  const sts = find(objects, "StatefulSet", "redis")[0];
  if (!sts) continue;
  test(`${overlay}: redis-server accepts the rendered config`, async (t) => {
    assert.ok(redisServer, "redis-server not installed (scripts/deps.sh installs redis-server)");
    const c = sts.spec.template.spec.containers.find((x) => x.name === "redis");
    const mount = c.volumeMounts.find((m) => m.mountPath === "/etc/redis");
    const vol = sts.spec.template.spec.volumes.find((v) => v.name === mount.name);
    const cm = find(objects, "ConfigMap", vol.configMap.name)[0];
    const dir = mkdtempSync(join(tmpdir(), "corral-redis-conf-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    // `dir` is read (chdir) while parsing: the pod's /data becomes our temp dir.
    const conf = cm.data["redis.conf"];
    assert.match(conf, /^dir \/data$/m);
    writeFileSync(join(dir, "redis.conf"), conf.replace(/^dir \/data$/m, `dir ${dir}`));
    const port = await freePort();
    // The Secret's value, as the kubelet puts it in the env entries.
    const password = randomBytes(16).toString("hex");
    const env = Object.fromEntries((c.env ?? []).map((e) =>
      [e.name, e.valueFrom?.secretKeyRef ? password : e.value]));
    const args = [...(c.command ?? []).slice(1), ...c.args]
      .map((a) => (a === "/etc/redis/redis.conf" ? join(dir, "redis.conf") : a))
      .map((a) => a.replace(/\$\((\w+)\)/g, (_, v) => env[v] ?? `$(${v})`));
    assert.ok(!args.some((a) => a.includes("$(")), `unexpanded argument in ${args}`);
    // Only where it listens differs from the pod.
    const child = spawn(redisServer, [...args, "--port", String(port), "--bind", "127.0.0.1",
      "--daemonize", "no"], { stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    child.stdout.on("data", (d) => { log += d; });
    child.stderr.on("data", (d) => { log += d; });
    const exited = new Promise((r) => child.on("exit", (code, sig) => r({ code, sig })));
    t.after(async () => { child.kill("SIGTERM"); await exited; });
    try {
      // Up, and refusing a client without the password.
      assert.match(await waitFor(() => command(port, "PING"), 5000), /^-NOAUTH/);
    } catch (e) {
      throw new Error(`redis-server did not come up asking for a password: ${e.message}\n${log}`);
    }
    // redis-cli with REDISCLI_AUTH from the container's env, as the probe runs.
    const probe = c.readinessProbe.exec.command;
    const cli = (...a) => execFileSync(redisCli, [...probe.slice(1).filter((x) => x !== "ping")
      .map((x) => (x === "6379" ? String(port) : x)), ...a], {
      encoding: "utf8", env: { ...process.env, REDISCLI_AUTH: env.REDISCLI_AUTH ?? "" },
    }).trim();
    assert.equal(cli("ping"), "PONG");
    const get = async (k) => cli("CONFIG", "GET", k).split("\n")[1];
    assert.equal(await get("appendonly"), "yes");
    assert.equal(await get("appendfsync"), "everysec");
    assert.equal(await get("maxmemory-policy"), "volatile-lru");
    const maxmemory = Number(await get("maxmemory"));
    assert.ok(maxmemory > 0, "maxmemory not set");
    assert.equal(cli("SET", "corral:probe", "1", "EX", "60"), "OK");
    await waitFor(() => { assert.ok(existsSync(join(dir, "appendonlydir"))); return true; }, 3000);
    console.log(`${overlay}: redis-server ${execFileSync(redisServer, ["--version"], { encoding: "utf8" }).split(" ")[2]}` +
      ` loaded redis.conf + ${c.args.slice(1, 3).join(" ")} --requirepass (Secret): NOAUTH without it, PONG with REDISCLI_AUTH; appendonly yes, maxmemory ${maxmemory}, AOF in ${dir}/appendonlydir`);
  });
}
