// Policy of the rendered manifests (docs/kubernetes.md; research section 3.3):
// the restricted security profile, gRPC probes on the agent's probe port
// with its services, ports that agree with the agent's settings in the
// ConfigMap, the termination budget, resources and resize, availability,
// Redis persistence, its fence and its password (in no argv). Each check
// also runs on a deliberately broken copy, to prove it can fail.
import assert from "node:assert/strict";
import { test } from "node:test";
import { OVERLAYS, render } from "./lib.mjs";
import { ALL_CHECKS, GRACE_MARGIN_S, corralPod, graceBudget } from "./policy.mjs";

for (const overlay of OVERLAYS) {
  for (const [name, check] of Object.entries(ALL_CHECKS)) {
    test(`${overlay}: ${name}`, () => {
      assert.deepEqual(check(render(overlay).objects), []);
    });
  }

  test(`${overlay}: termination budget`, () => {
    const b = graceBudget(render(overlay).objects);
    console.log(`${overlay}: terminationGracePeriodSeconds ${b.grace} >= preStop ${b.preStop}` +
      ` + drain-delay ${b.drain} + stop-timeout ${b.stop} + margin ${GRACE_MARGIN_S}` +
      ` (slack ${b.margin - GRACE_MARGIN_S}s); worker drain ${b.workerDrain}s < ${b.stop}s`);
    assert.ok(b.grace >= b.preStop + b.drain + b.stop + GRACE_MARGIN_S);
  });

  test(`${overlay}: worker count follows the CPU limit`, () => {
    const { container, env } = corralPod(render(overlay).objects);
    const limit = container.resources.limits.cpu;
    const cores = String(limit).endsWith("m") ? Number(limit.slice(0, -1)) / 1000 : Number(limit);
    console.log(`${overlay}: CORRAL_WORKERS=${env.CORRAL_WORKERS}, CPU limit ${limit}` +
      ` -> ${Math.max(1, Math.ceil(cores))} worker(s) per pod (ceil)`);
    assert.equal(env.CORRAL_WORKERS, "auto");
  });
}

// Mutations of the prod render that each check must reject.
function mutated(edit) {
  const objects = structuredClone(render("prod").objects);
  edit(objects);
  return objects;
}
const dep = (objects) => objects.find((o) => o.kind === "Deployment" && o.metadata.name === "corral");
const pod = (objects) => dep(objects).spec.template.spec;
const ctr = (objects) => pod(objects).containers[0];
const agentCm = (objects) => objects.find((o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("corral-agent"));
const sts = (objects) => objects.find((o) => o.kind === "StatefulSet");
const redisCm = (objects) => objects.find((o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("redis-config"));
const envEntry = (objects, name) => ctr(objects).env.find((e) => e.name === name);
const redisCtr = (objects) => sts(objects).spec.template.spec.containers[0];
// Edits the Redis container's sh -c script (command[2]); the edit must change it.
function editScript(objects, edit) {
  const c = redisCtr(objects);
  const before = c.command[2];
  c.command[2] = edit(before);
  if (c.command[2] === before) throw new Error("the edit did not change the Redis script");
}

const BREAKS = [
  ["restricted", "root user", (o) => { pod(o).securityContext.runAsUser = 0; }, /runAsUser/],
  ["restricted", "writable root", (o) => { ctr(o).securityContext.readOnlyRootFilesystem = false; }, /readOnlyRootFilesystem/],
  ["restricted", "escalation", (o) => { delete ctr(o).securityContext.allowPrivilegeEscalation; }, /allowPrivilegeEscalation/],
  ["restricted", "capabilities", (o) => { ctr(o).securityContext.capabilities = { add: ["NET_ADMIN"] }; }, /drop lacks ALL|NET_ADMIN/],
  ["restricted", "seccomp", (o) => { delete ctr(o).securityContext.seccompProfile; delete pod(o).securityContext.seccompProfile; }, /seccompProfile/],
  ["restricted", "token", (o) => { delete pod(o).automountServiceAccountToken; }, /automountServiceAccountToken/],
  ["restricted", "redis too", (o) => { sts(o).spec.template.spec.containers[0].securityContext.runAsNonRoot = false; }, /StatefulSet\/redis.*runAsNonRoot/],
  ["probes", "probe port moved in the ConfigMap", (o) => { agentCm(o).data.CORRAL_PROBE_PORT = "9000"; }, /grpc.port 8081 != CORRAL_PROBE_PORT 9000/],
  ["probes", "liveness on readiness", (o) => { ctr(o).livenessProbe.grpc.service = "readiness"; }, /livenessProbe.grpc.service/],
  ["probes", "http probe", (o) => { ctr(o).readinessProbe = { httpGet: { path: "/readyz", port: 9090 } }; }, /readinessProbe is not a gRPC probe/],
  ["probes", "loopback probe address", (o) => { agentCm(o).data.CORRAL_PROBE_ADDRESS = "127.0.0.1"; }, /pod IP/],
  ["probes", "a flag in args beats the ConfigMap", (o) => { ctr(o).args = ["--probe-port=7000", ...ctr(o).args]; }, /CORRAL_PROBE_PORT 7000/],
  ["probes", "image left unset", (o) => { ctr(o).image = "corral"; }, /image 'corral'/],
  ["probes", "listen port", (o) => { agentCm(o).data.CORRAL_LISTEN = "tcp://0.0.0.0:3000"; }, /'http'/],
  ["probes", "command replaces the agent", (o) => { ctr(o).command = ["/usr/local/bin/corral-worker"]; }, /ENTRYPOINT/],
  ["termination", "grace too short", (o) => { pod(o).terminationGracePeriodSeconds = 25; }, /terminationGracePeriodSeconds 25/],
  ["termination", "longer stop timeout", (o) => { agentCm(o).data.CORRAL_STOP_TIMEOUT = "30s"; }, /stop-timeout 30/],
  ["termination", "default drain delay", (o) => { delete agentCm(o).data.CORRAL_DRAIN_DELAY; agentCm(o).data.CORRAL_STOP_TIMEOUT = "25s"; }, /drain-delay 5/],
  ["termination", "no preStop", (o) => { delete ctr(o).lifecycle; }, /preStop/],
  ["termination", "worker outlives stop timeout", (o) => { ctr(o).args = ["--", "/usr/local/bin/corral-worker", "--drain-timeout=25s"]; }, /drain-timeout 25s/],
  ["resources", "no cpu limit", (o) => { delete ctr(o).resources.limits.cpu; }, /no cpu limit/],
  ["resources", "resize restarts", (o) => { ctr(o).resizePolicy[0].restartPolicy = "RestartContainer"; }, /resizePolicy/],
  ["resources", "socket dir not writable", (o) => { ctr(o).volumeMounts = ctr(o).volumeMounts.filter((m) => m.mountPath !== "/run/corral"); }, /control socket dir/],
  ["resources", "socket corralctl cannot find", (o) => { agentCm(o).data.CORRAL_CONTROL_SOCKET = "/tmp/agent.sock"; }, /CORRAL_SOCKET/],
  ["resources", "service links", (o) => { delete pod(o).enableServiceLinks; }, /enableServiceLinks/],
  ["availability", "maxUnavailable", (o) => { dep(o).spec.strategy.rollingUpdate.maxUnavailable = 1; }, /maxUnavailable 0/],
  ["availability", "spread", (o) => { pod(o).topologySpreadConstraints = pod(o).topologySpreadConstraints.filter((t) => t.topologyKey !== "kubernetes.io/hostname"); }, /hostname/],
  ["availability", "replicas fight the HPA", (o) => { dep(o).spec.replicas = 3; }, /replicas/],
  ["availability", "hasty scale-down", (o) => { o.find((x) => x.kind === "HorizontalPodAutoscaler").spec.behavior.scaleDown.stabilizationWindowSeconds = 0; }, /stabilizationWindowSeconds/],
  ["availability", "PDB eviction policy", (o) => { delete o.find((x) => x.kind === "PodDisruptionBudget").spec.unhealthyPodEvictionPolicy; }, /AlwaysAllow/],
  ["redis", "no AOF", (o) => { const cm = o.find((x) => x.kind === "ConfigMap" && x.metadata.name.startsWith("redis-config")); cm.data["redis.conf"] = cm.data["redis.conf"].replace("appendonly yes", "appendonly no"); }, /appendonly/],
  ["redis", "open to all", (o) => { o.find((x) => x.kind === "NetworkPolicy").spec.ingress[0].from = [{ namespaceSelector: {} }]; }, /other than corral/],
  ["redis", "maxmemory at the limit", (o) => { sts(o).spec.template.spec.containers[0].args = ["/etc/redis/redis.conf", "--maxmemory", "2gb"]; }, /maxmemory/],
  ["redis", "URL to nowhere", (o) => { envEntry(o, "REDIS_URL").value = "redis://:$(REDIS_PASSWORD)@cache:6379/0"; }, /REDIS_URL .* does not name a Service/],
  ["redis", "no password", (o) => { editScript(o, (t) => t.replace(/^requirepass .*\n/m, "")); }, /no requirepass line/],
  // The password in an argv, each way it can get there.
  ["redis", "the old --requirepass $(VAR) args", (o) => { const c = redisCtr(o); c.command = ["redis-server"]; c.args.push("--requirepass", "$(REDIS_PASSWORD)"); }, /args expands \$\(REDIS_PASSWORD\).*argv/],
  ["redis", "a literal password in args", (o) => { redisCtr(o).args.push("--requirepass", "hunter2"); }, /args pass requirepass/],
  ["redis", "$(VAR) in the script", (o) => { editScript(o, (t) => t.replace('requirepass "$pw"', 'requirepass "$(REDIS_PASSWORD)"')); }, /command expands \$\(REDIS_PASSWORD\)/],
  ["redis", "the shell expands it into argv", (o) => { editScript(o, (t) => t.replace('"$@" -', '"$@" --requirepass "$pw" -')); }, /requirepass on redis-server's command line/],
  ["redis", "a literal password in the heredoc", (o) => { editScript(o, (t) => t.replace('requirepass "$pw"', "requirepass hunter2")); }, /a literal password is in the command/],
  ["redis", "the heredoc is not expanded", (o) => { editScript(o, (t) => t.replace("<<EOF", "<<'EOF'")); }, /delimiter 'EOF' is quoted/],
  ["redis", "the password not from a Secret", (o) => { redisCtr(o).env.find((e) => e.name === "REDIS_PASSWORD").valueFrom = undefined; }, /requirepass "\$pw" is not an env entry from a Secret/],
  ["redis", "sh stays PID 1", (o) => { editScript(o, (t) => t.replace("exec redis-server", "redis-server")); }, /without exec/],
  ["redis", "args dropped", (o) => { editScript(o, (t) => t.replace('"$@" -', "/etc/redis/redis.conf -")); }, /not 'exec redis-server "\$@" - <<EOF'/],
  ["redis", "config file not first", (o) => { redisCtr(o).args = ["--maxmemory", "1200mb", "/etc/redis/redis.conf"]; }, /not redis-server's first argument/],
  ["redis", "protected mode off", (o) => { redisCm(o).data["redis.conf"] += "protected-mode no\n"; }, /protected-mode no/],
  ["redis", "password in the ConfigMap", (o) => { redisCm(o).data["redis.conf"] += "requirepass hunter2\n"; }, /requirepass in a ConfigMap/],
  ["redis", "probe without the password", (o) => { const c = sts(o).spec.template.spec.containers[0]; c.env = c.env.filter((e) => e.name !== "REDISCLI_AUTH"); }, /REDISCLI_AUTH/],
  ["redis", "URL without the password", (o) => { envEntry(o, "REDIS_URL").value = "redis://redis:6379/0"; }, /REDIS_URL carries no password/],
  ["redis", "password from another Secret", (o) => { envEntry(o, "REDIS_PASSWORD").valueFrom.secretKeyRef.name = "other"; }, /REDIS_URL carries no password/],
  ["redis", "password defined after the URL", (o) => { ctr(o).env.reverse(); }, /must come before REDIS_URL/],
  ["redis", "no Redis PDB", (o) => { o.splice(o.findIndex((x) => x.kind === "PodDisruptionBudget" && x.metadata.name === "redis"), 1); }, /0 PodDisruptionBudgets select the Redis pods/],
  ["availability", "two hostname spread rules", (o) => { pod(o).topologySpreadConstraints.push({ ...pod(o).topologySpreadConstraints[1], whenUnsatisfiable: "ScheduleAnyway" }); }, /2 topology spread rules over kubernetes.io\/hostname/],
  ["resources", "HPA fires far below the limit", (o) => { ctr(o).resources.requests.cpu = "1"; }, /scales out at 0.700 CPU/],
  ["resources", "HPA fires above the limit", (o) => { ctr(o).resources.limits.cpu = "2"; }, /scales out at 2.800 CPU/],
  ["references", "missing ConfigMap", (o) => { ctr(o).envFrom[0].configMapRef.name = "nope"; }, /ConfigMap nope/],
];

for (const [check, what, edit, expect] of BREAKS) {
  test(`${check} rejects: ${what}`, () => {
    const problems = ALL_CHECKS[check](mutated(edit));
    assert.ok(problems.some((p) => expect.test(p)), `no problem matching ${expect} in ${JSON.stringify(problems)}`);
  });
}
