// Policy checks on rendered manifests. Each check takes the objects of one
// overlay and returns a list of problems (empty = passes), so the tests can
// run them on the real render and on deliberately broken copies.
import { containerEnv, cpuCores, durationSeconds, find, one } from "./lib.mjs";

// Seconds between the agent's exit and the kubelet's SIGKILL that we insist
// on: reaping, log flush, a slow node.
export const GRACE_MARGIN_S = 5;
// Agent flag defaults (agent/options.cc) for settings the manifests omit.
const AGENT_DEFAULTS = {
  CORRAL_DRAIN_DELAY: "5s",
  CORRAL_STOP_TIMEOUT: "20s",
  CORRAL_READY_TIMEOUT: "60s",
  CORRAL_PROBE_PORT: "0",
  CORRAL_HTTP_PORT: "0",
  CORRAL_PROBE_ADDRESS: "0.0.0.0",
  CORRAL_CONTROL_SOCKET: "/run/corral/agent.sock",
  CORRAL_WORKERS: "auto",
  CORRAL_MAX_WORKER_MEMORY: "off",
};
// Secrets the overlays expect the operator to create (not rendered).
const EXTERNAL_SECRETS = new Set(["corral-redis", "redis-auth"]);

const WORKLOAD_KINDS = ["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"];

function podTemplates(objects) {
  const out = [];
  for (const o of objects) {
    if (!WORKLOAD_KINDS.includes(o.kind)) continue;
    const tpl = o.kind === "CronJob" ? o.spec.jobTemplate.spec.template : o.spec.template;
    out.push({ owner: `${o.kind}/${o.metadata.name}`, obj: o, tpl });
  }
  return out;
}

function allContainers(spec) {
  return [...(spec.initContainers ?? []), ...(spec.containers ?? []),
    ...(spec.ephemeralContainers ?? [])];
}

function selectorMatches(selector, labels) {
  const want = selector?.matchLabels ?? {};
  if (!Object.keys(want).length && !(selector?.matchExpressions ?? []).length) return false;
  return Object.entries(want).every(([k, v]) => labels?.[k] === v);
}

// --- the restricted Pod Security Standard, for every pod template ----------
export function checkRestricted(objects) {
  const problems = [];
  const templates = podTemplates(objects);
  if (!templates.length) problems.push("no workloads rendered");
  for (const { owner, tpl } of templates) {
    const spec = tpl.spec;
    const psc = spec.securityContext ?? {};
    const p = (msg) => problems.push(`${owner}: ${msg}`);
    for (const host of ["hostNetwork", "hostPID", "hostIPC"]) {
      if (spec[host]) p(`${host} set`);
    }
    if (spec.automountServiceAccountToken !== false) p("automountServiceAccountToken is not false");
    for (const v of spec.volumes ?? []) {
      if (v.hostPath) p(`hostPath volume ${v.name}`);
    }
    if (!(psc.runAsUser > 0)) p("pod securityContext.runAsUser is not a non-zero UID");
    if (!(psc.runAsGroup > 0)) p("pod securityContext.runAsGroup is not a non-zero GID");
    for (const c of allContainers(spec)) {
      const sc = c.securityContext ?? {};
      const q = (msg) => p(`container ${c.name}: ${msg}`);
      if ((sc.runAsNonRoot ?? psc.runAsNonRoot) !== true) q("runAsNonRoot is not true");
      if ((sc.runAsUser ?? psc.runAsUser) === 0) q("runs as UID 0");
      if (sc.allowPrivilegeEscalation !== false) q("allowPrivilegeEscalation is not false");
      if (sc.privileged) q("privileged");
      if (sc.readOnlyRootFilesystem !== true) q("readOnlyRootFilesystem is not true");
      const drop = sc.capabilities?.drop ?? [];
      if (!drop.includes("ALL")) q("capabilities.drop lacks ALL");
      const add = sc.capabilities?.add ?? [];
      if (add.some((cap) => cap !== "NET_BIND_SERVICE")) q(`adds capabilities ${add}`);
      const seccomp = (sc.seccompProfile ?? psc.seccompProfile)?.type;
      if (!["RuntimeDefault", "Localhost"].includes(seccomp)) q(`seccompProfile is ${seccomp}`);
      for (const port of c.ports ?? []) {
        if (port.hostPort) q(`hostPort ${port.hostPort}`);
      }
    }
  }
  for (const ns of find(objects, "Namespace")) {
    const labels = ns.metadata.labels ?? {};
    if (labels["pod-security.kubernetes.io/enforce"] !== "restricted") {
      problems.push(`Namespace/${ns.metadata.name}: pod-security enforce label is not restricted`);
    }
  }
  return problems;
}

// --- the agent's settings as the corral container gets them ----------------

// Flags before "--" in args beat the environment (like the agent does).
function agentSettings(objects, container) {
  const env = { ...AGENT_DEFAULTS, ...containerEnv(objects, container) };
  const args = container.args ?? [];
  const dashdash = args.indexOf("--");
  const flags = dashdash < 0 ? args : args.slice(0, dashdash);
  for (const f of flags) {
    const m = /^--([a-z-]+)=(.*)$/.exec(f);
    if (m) env[`CORRAL_${m[1].toUpperCase().replace(/-/g, "_")}`] = m[2];
  }
  const command = dashdash < 0 ? [] : args.slice(dashdash + 1);
  return { env, command };
}

export function corralPod(objects) {
  const dep = one(objects, "Deployment", "corral");
  const spec = dep.spec.template.spec;
  const container = spec.containers.find((c) => c.name === "corral");
  if (!container) throw new Error("Deployment/corral has no container 'corral'");
  return { dep, spec, container, ...agentSettings(objects, container) };
}

function portNamed(container, name) {
  return (container.ports ?? []).find((p) => p.name === name);
}

function tcpPortOf(url) {
  const m = /^(?:\w+=)?tcp:\/\/(.*):(\d+)$/.exec(url);
  return m ? { host: m[1], port: Number(m[2]) } : null;
}

// Probes, ports and the agent's flags agree.
export function checkProbes(objects) {
  const problems = [];
  const { container, env } = corralPod(objects);
  const p = (msg) => problems.push(`Deployment/corral: ${msg}`);
  if (container.command) p("sets command: the image's ENTRYPOINT (corral-agent) must stay PID 1");
  if (!/^[^:@]+\/[^:@]+[:@].+/.test(container.image)) {
    p(`image '${container.image}' is not REGISTRY/NAME:TAG or @DIGEST (set it in the overlay's images:)`);
  }

  const probePort = Number(env.CORRAL_PROBE_PORT);
  if (!(probePort > 0)) p(`CORRAL_PROBE_PORT is ${env.CORRAL_PROBE_PORT}: the gRPC probes need it`);
  if (!["0.0.0.0", "::", ""].includes(env.CORRAL_PROBE_ADDRESS)) {
    p(`CORRAL_PROBE_ADDRESS=${env.CORRAL_PROBE_ADDRESS}: kubelet probes come to the pod IP`);
  }
  if (portNamed(container, "probe")?.containerPort !== probePort) {
    p(`containerPort 'probe' is not CORRAL_PROBE_PORT (${probePort})`);
  }
  const wantService = {
    startupProbe: ["readiness", "liveness"],
    livenessProbe: ["liveness"],
    readinessProbe: ["readiness"],
  };
  for (const [kind, services] of Object.entries(wantService)) {
    const probe = container[kind];
    if (!probe) { p(`no ${kind}`); continue; }
    if (!probe.grpc) { p(`${kind} is not a gRPC probe`); continue; }
    if (probe.grpc.port !== probePort) {
      p(`${kind}.grpc.port ${probe.grpc.port} != CORRAL_PROBE_PORT ${probePort}`);
    }
    if (!services.includes(probe.grpc.service)) {
      p(`${kind}.grpc.service is '${probe.grpc.service}', want ${services.join(" or ")}`);
    }
  }
  const startup = container.startupProbe;
  if (startup) {
    const budget = (startup.periodSeconds ?? 10) * (startup.failureThreshold ?? 3);
    const readyTimeout = durationSeconds(env.CORRAL_READY_TIMEOUT);
    if (startup.grpc?.service === "readiness" && budget <= readyTimeout) {
      p(`startupProbe allows ${budget}s, not more than CORRAL_READY_TIMEOUT ${readyTimeout}s`);
    }
  }

  const listen = tcpPortOf(String(env.CORRAL_LISTEN ?? "").split(",")[0]);
  if (!listen) p(`CORRAL_LISTEN '${env.CORRAL_LISTEN}' is not tcp://HOST:PORT`);
  else if (portNamed(container, "http")?.containerPort !== listen.port) {
    p(`containerPort 'http' is not CORRAL_LISTEN's port ${listen.port}`);
  }
  const httpPort = Number(env.CORRAL_HTTP_PORT);
  if (httpPort > 0) {
    if (portNamed(container, "metrics")?.containerPort !== httpPort) {
      p(`containerPort 'metrics' is not CORRAL_HTTP_PORT ${httpPort}`);
    }
    const ann = one(objects, "Deployment", "corral").spec.template.metadata.annotations ?? {};
    if (ann["prometheus.io/port"] !== undefined && Number(ann["prometheus.io/port"]) !== httpPort) {
      p(`prometheus.io/port ${ann["prometheus.io/port"]} != CORRAL_HTTP_PORT ${httpPort}`);
    }
  }
  const ports = (container.ports ?? []).map((x) => x.containerPort);
  if (new Set(ports).size !== ports.length) p(`container ports repeat: ${ports}`);
  return problems;
}

// terminationGracePeriodSeconds >= preStop sleep + drain delay + stop timeout + margin.
export function graceBudget(objects) {
  const { spec, container, env, command } = corralPod(objects);
  const preStop = container.lifecycle?.preStop?.sleep?.seconds ?? 0;
  const drain = durationSeconds(env.CORRAL_DRAIN_DELAY);
  const stop = durationSeconds(env.CORRAL_STOP_TIMEOUT);
  const grace = spec.terminationGracePeriodSeconds ?? 30;
  const workerDrainArg = command.find((a) => a.startsWith("--drain-timeout="));
  // corral-worker's --drain-timeout, else CORRAL_DRAIN_TIMEOUT (@corral/node).
  const workerDrainText = workerDrainArg ? workerDrainArg.split("=")[1] : env.CORRAL_DRAIN_TIMEOUT;
  const workerDrain = workerDrainText === undefined ? null : durationSeconds(workerDrainText);
  return { preStop, drain, stop, grace, margin: grace - preStop - drain - stop, workerDrain };
}

export function checkTermination(objects) {
  const problems = [];
  const { container } = corralPod(objects);
  const b = graceBudget(objects);
  const p = (msg) => problems.push(`Deployment/corral: ${msg}`);
  if (!container.lifecycle?.preStop?.sleep) p("no preStop sleep (endpoint removal needs time)");
  if (b.grace < b.preStop + b.drain + b.stop + GRACE_MARGIN_S) {
    p(`terminationGracePeriodSeconds ${b.grace} < preStop ${b.preStop} + drain-delay ${b.drain}` +
      ` + stop-timeout ${b.stop} + margin ${GRACE_MARGIN_S}`);
  }
  if (b.workerDrain !== null && b.workerDrain >= b.stop) {
    p(`worker --drain-timeout ${b.workerDrain}s is not below CORRAL_STOP_TIMEOUT ${b.stop}s`);
  }
  return problems;
}

export function checkResources(objects) {
  const problems = [];
  const { spec, container, env } = corralPod(objects);
  const p = (msg) => problems.push(`Deployment/corral: ${msg}`);
  const r = container.resources ?? {};
  for (const res of ["cpu", "memory"]) {
    if (!r.requests?.[res]) p(`no ${res} request`);
    if (!r.limits?.[res]) p(`no ${res} limit`);
  }
  if (r.requests?.cpu && r.limits?.cpu && cpuCores(r.requests.cpu) > cpuCores(r.limits.cpu)) {
    p("cpu request above its limit");
  }
  if (env.CORRAL_WORKERS === "auto" && !r.limits?.cpu) {
    p("CORRAL_WORKERS=auto without a CPU limit: one worker per node CPU");
  }
  // The HPA's CPU target is a share of the *request*: it must fire at a
  // load the pod's workers can reach (<= the limit) and not long before
  // they are busy (>= half the limit).
  for (const h of find(objects, "HorizontalPodAutoscaler")) {
    const target = (h.spec.metrics ?? []).find((m) => m.resource?.name === "cpu")?.resource?.target;
    if (target?.type !== "Utilization" || !r.requests?.cpu || !r.limits?.cpu) continue;
    const at = cpuCores(r.requests.cpu) * target.averageUtilization / 100;
    const limit = cpuCores(r.limits.cpu);
    if (at > limit || at < limit / 2) {
      p(`HPA ${h.metadata.name} scales out at ${at.toFixed(3)} CPU (${target.averageUtilization}% of the ` +
        `${r.requests.cpu} request), not between half the ${r.limits.cpu} limit and the limit`);
    }
  }
  const cpuPolicy = (container.resizePolicy ?? []).find((x) => x.resourceName === "cpu");
  if (cpuPolicy?.restartPolicy !== "NotRequired") p("resizePolicy cpu is not NotRequired");
  if (String(env.CORRAL_CONTROL_SOCKET).length) {
    const dir = String(env.CORRAL_CONTROL_SOCKET).replace(/\/[^/]*$/, "");
    const mount = (container.volumeMounts ?? []).find((m) => m.mountPath === dir);
    const vol = mount && (spec.volumes ?? []).find((v) => v.name === mount.name);
    if (!vol?.emptyDir) p(`control socket dir ${dir} is not an emptyDir mount`);
  }
  // corralctl (kubectl exec ... corralctl) dials /run/corral/agent.sock or $CORRAL_SOCKET.
  if (env.CORRAL_CONTROL_SOCKET && env.CORRAL_CONTROL_SOCKET !== "/run/corral/agent.sock" &&
      env.CORRAL_SOCKET !== env.CORRAL_CONTROL_SOCKET) {
    p(`CORRAL_CONTROL_SOCKET=${env.CORRAL_CONTROL_SOCKET} but corralctl would dial ` +
      `${env.CORRAL_SOCKET ?? "/run/corral/agent.sock"}: set CORRAL_SOCKET too`);
  }
  const tmp = (container.volumeMounts ?? []).find((m) => m.mountPath === "/tmp");
  if (!tmp || !(spec.volumes ?? []).find((v) => v.name === tmp.name)?.emptyDir) {
    p("/tmp is not an emptyDir mount");
  }
  if (spec.enableServiceLinks !== false) p("enableServiceLinks is not false (FOO_PORT variables reach workers)");
  return problems;
}

export function checkAvailability(objects) {
  const problems = [];
  const { dep } = corralPod(objects);
  const labels = dep.spec.template.metadata.labels;
  const p = (msg) => problems.push(msg);
  const ru = dep.spec.strategy?.rollingUpdate;
  if (dep.spec.strategy?.type !== "RollingUpdate" || ru?.maxUnavailable !== 0) {
    p("Deployment/corral: rolling update with maxUnavailable 0 expected");
  }
  if (!(ru?.maxSurge === undefined || ru.maxSurge === 1 || Number.parseInt(ru.maxSurge) > 0)) {
    p("Deployment/corral: maxSurge must be > 0 when maxUnavailable is 0");
  }
  const tsc = dep.spec.template.spec.topologySpreadConstraints ?? [];
  const keys = tsc.map((t) => t.topologyKey);
  for (const key of new Set(keys)) {
    // Two rules on one key: an overlay added one beside the base's instead of replacing it.
    if (keys.filter((k) => k === key).length > 1) p(`Deployment/corral: ${keys.filter((k) => k === key).length} topology spread rules over ${key}`);
  }
  for (const key of ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]) {
    const c = tsc.find((t) => t.topologyKey === key);
    if (!c) p(`Deployment/corral: no topology spread over ${key}`);
    else if (!selectorMatches(c.labelSelector, labels)) {
      p(`Deployment/corral: topology spread over ${key} does not select its pods`);
    }
  }
  const hpas = find(objects, "HorizontalPodAutoscaler")
    .filter((h) => h.spec.scaleTargetRef.kind === "Deployment" && h.spec.scaleTargetRef.name === "corral");
  if (hpas.length !== 1) p(`${hpas.length} HorizontalPodAutoscalers target Deployment/corral`);
  for (const h of hpas) {
    if (h.apiVersion !== "autoscaling/v2") p(`HPA ${h.metadata.name} is ${h.apiVersion}`);
    const win = h.spec.behavior?.scaleDown?.stabilizationWindowSeconds;
    if (!(win >= 60)) p(`HPA ${h.metadata.name}: scale-down stabilizationWindowSeconds ${win} < 60`);
    if (!(h.spec.minReplicas >= 1 && h.spec.minReplicas <= h.spec.maxReplicas)) {
      p(`HPA ${h.metadata.name}: minReplicas ${h.spec.minReplicas} / maxReplicas ${h.spec.maxReplicas}`);
    }
    if (!(h.spec.metrics ?? []).some((m) => m.resource?.name === "cpu")) {
      p(`HPA ${h.metadata.name}: no CPU metric`);
    }
    if (dep.spec.replicas !== undefined) {
      p("Deployment/corral sets replicas while an HPA owns the count");
    }
  }
  const pdbs = find(objects, "PodDisruptionBudget").filter((x) => selectorMatches(x.spec.selector, labels));
  if (pdbs.length !== 1) p(`${pdbs.length} PodDisruptionBudgets select corral's pods`);
  for (const pdb of pdbs) {
    if (pdb.spec.maxUnavailable === undefined && pdb.spec.minAvailable === undefined) {
      p(`PDB ${pdb.metadata.name}: neither maxUnavailable nor minAvailable`);
    }
    if (pdb.spec.unhealthyPodEvictionPolicy !== "AlwaysAllow") {
      p(`PDB ${pdb.metadata.name}: unhealthyPodEvictionPolicy is not AlwaysAllow`);
    }
  }
  const svc = find(objects, "Service", "corral")[0];
  if (!svc) p("no Service corral");
  else {
    if (!selectorMatches({ matchLabels: svc.spec.selector }, labels)) p("Service corral does not select corral's pods");
    const container = dep.spec.template.spec.containers.find((c) => c.name === "corral");
    for (const port of svc.spec.ports) {
      const t = port.targetPort;
      const ok = typeof t === "string"
        ? (container.ports ?? []).some((cp) => cp.name === t)
        : (container.ports ?? []).some((cp) => cp.containerPort === t);
      if (!ok) p(`Service corral port ${port.name}: targetPort ${t} is no container port`);
    }
  }
  return problems;
}

// How the Redis container starts (deploy/k8s/redis/statefulset.yaml): the
// password must reach redis-server in no process's argv. The kubelet expands
// $(VAR) in command and args into the argv it starts, so the only accepted
// form is `sh -c SCRIPT NAME [ARGS...]` whose SCRIPT ends in
//   exec redis-server "$@" - <<EOF
//   requirepass "$VAR"
//   EOF
// (the shell expands $VAR into redis-server's stdin; exec keeps redis-server
// PID 1, so SIGTERM reaches it), VAR an env entry from a Secret or a shell
// variable copied from one (VAR=$ENTRY). Returns redis-server's arguments
// after its name (ARGS, which "$@" passes on), the Secret key of the
// password, and the problems found.
export function redisLaunch(redis) {
  const problems = [];
  const p = (msg) => problems.push(`StatefulSet/redis: ${msg}`);
  const command = redis.command ?? [];
  const args = redis.args ?? [];
  const secretOf = (name) => (redis.env ?? []).find((e) => e.name === name)?.valueFrom?.secretKeyRef;
  // $(VAR) the kubelet expands ($$ escapes a $).
  for (const [where, list] of [["command", command], ["args", args]]) {
    for (const item of list) {
      for (const m of String(item).matchAll(/\$(\$|\((\w+)\))/g)) {
        if (m[2] && secretOf(m[2])) {
          p(`${where} expands $(${m[2]}) (a Secret) into a process's argv`);
        }
      }
    }
  }
  if (args.some((a) => /requirepass/.test(a))) p("args pass requirepass: the password would be in redis-server's argv");
  const isShell = ["sh", "/bin/sh"].includes(command[0]) && command[1] === "-c" && typeof command[2] === "string";
  if (!isShell) {
    p(`command is not sh -c SCRIPT: without a shell the password can reach redis-server only in its argv`);
    return { argv: [...command.slice(1), ...args], secret: undefined, problems };
  }
  const lines = command[2].split("\n");
  const execAt = lines.findIndex((l) => /^\s*exec\s+redis-server(\s|$)/.test(l));
  if (execAt < 0) {
    p(lines.some((l) => /^\s*redis-server(\s|$)/.test(l))
      ? "the script runs redis-server without exec: sh stays PID 1 and SIGTERM does not reach redis-server"
      : "the script does not exec redis-server");
    return { argv: args, secret: undefined, problems };
  }
  const rest = lines[execAt].replace(/^\s*exec\s+redis-server/, "");
  const form = /^\s+"\$@"\s+-\s+<<(-?)\s*(\S+)\s*$/.exec(rest);
  if (/requirepass/.test(rest)) {
    p("the script passes requirepass on redis-server's command line (its argv)");
  } else if (/\$(?!@)/.test(rest.replace(/<<.*/, ""))) {
    p(`the script expands a variable into redis-server's argv: '${lines[execAt].trim()}'`);
  }
  if (!form) {
    p(`the script's exec line is '${lines[execAt].trim()}', not 'exec redis-server "$@" - <<EOF'` +
      " (args via \"$@\", the password on stdin)");
    return { argv: args, secret: undefined, problems };
  }
  const [, dash, delim] = form;
  if (/^['"\\]|['"]$/.test(delim)) {
    p(`the heredoc delimiter ${delim} is quoted: the shell would not expand the password variable`);
  }
  const word = delim.replace(/^['"\\]+|['"]+$/g, "");
  const body = [];
  for (const line of lines.slice(execAt + 1)) {
    const l = dash ? line.replace(/^\t+/, "") : line;
    if (l === word) break;
    body.push(l);
  }
  const pass = body.map((l) => /^requirepass\s+(.*)$/.exec(l)?.[1]).filter((x) => x !== undefined);
  const varName = pass.length === 1 ? /^"\$\{?(\w+)\}?"$/.exec(pass[0].trim())?.[1] : undefined;
  if (!pass.length) {
    p("the heredoc has no requirepass line");
  } else if (!varName) {
    p(`the heredoc's requirepass is ${pass.map((x) => `'${x}'`).join(", ")}, not one "$VAR" (a literal password is in the command)`);
  }
  // VAR itself from a Secret, or a shell variable VAR=$ENTRY set before exec.
  const copied = varName && lines.slice(0, execAt)
    .map((l) => new RegExp(`^\\s*${varName}=("?)\\$\\{?(\\w+)\\}?\\1\\s*$`).exec(l)?.[2])
    .filter(Boolean).at(-1);
  const secret = varName && (secretOf(varName) ?? (copied && secretOf(copied)));
  if (varName && !secret) p(`requirepass "$${varName}" is not an env entry from a Secret`);
  return { argv: args, secret, problems };
}

// Redis: persistence, the NetworkPolicy fence, a password from a Secret that
// reaches redis-server in no argv (redisLaunch) and that corral's REDIS_URL
// carries, a PDB, and REDIS_URL pointing at it; or,
// without an in-cluster Redis, REDIS_URL from a Secret.
export function checkRedis(objects) {
  const problems = [];
  const p = (msg) => problems.push(msg);
  const { dep, env, container } = corralPod(objects);
  const corralLabels = dep.spec.template.metadata.labels;
  const sts = find(objects, "StatefulSet", "redis")[0];
  if (!sts) {
    const ref = (container.env ?? []).find((e) => e.name === "REDIS_URL")?.valueFrom?.secretKeyRef;
    if (!ref && !env.REDIS_SENTINELS) p("no in-cluster Redis and REDIS_URL does not come from a Secret");
    return problems;
  }
  const rspec = sts.spec.template.spec;
  const redis = rspec.containers.find((c) => c.name === "redis");
  // redis-server's arguments after its name, and how the password comes.
  const launch = redisLaunch(redis);
  problems.push(...launch.problems);
  const args = launch.argv;
  const confPath = args.find((a) => a.endsWith(".conf"));
  const confMount = (redis.volumeMounts ?? []).find((m) => confPath?.startsWith(m.mountPath + "/"));
  const confVol = confMount && rspec.volumes.find((v) => v.name === confMount.name);
  const cm = confVol?.configMap && find(objects, "ConfigMap", confVol.configMap.name)[0];
  const conf = cm?.data?.[confPath.slice(confMount.mountPath.length + 1)];
  if (!conf) {
    p(`StatefulSet/redis: config ${confPath} not found in a mounted ConfigMap`);
    return problems;
  }
  // redis-server takes a config file only as its first argument.
  if (args[0] !== confPath) p(`StatefulSet/redis: config ${confPath} is not redis-server's first argument`);
  const directive = (name) => {
    const m = new RegExp(`^${name}\\s+(.*)$`, "m").exec(conf);
    return m ? m[1].trim() : undefined;
  };
  if (directive("appendonly") !== "yes") p("redis.conf: appendonly is not yes");
  const dir = directive("dir");
  const dataMount = (redis.volumeMounts ?? []).find((m) => m.mountPath === dir);
  const claim = dataMount && (sts.spec.volumeClaimTemplates ?? []).find((t) => t.metadata.name === dataMount.name);
  if (!claim) p(`StatefulSet/redis: data dir ${dir} is not on a volumeClaimTemplate`);
  const maxmem = args[args.indexOf("--maxmemory") + 1];
  const limit = redis.resources?.limits?.memory;
  if (args.includes("--maxmemory") && limit) {
    const bytes = (q) => {
      const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|K|M|G|kb|mb|gb)?$/i.exec(String(q));
      const mult = { ki: 1024, mi: 1024 ** 2, gi: 1024 ** 3, k: 1e3, m: 1e6, g: 1e9, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };
      return Number(m[1]) * (m[2] ? mult[m[2].toLowerCase()] : 1);
    };
    // AOF rewrites fork: copy-on-write needs headroom above maxmemory.
    if (bytes(maxmem) > 0.75 * bytes(limit)) p(`Redis maxmemory ${maxmem} leaves too little of its ${limit} limit`);
  } else {
    p("StatefulSet/redis: no --maxmemory below its memory limit");
  }
  if (/^protected-mode\s+no/m.test(conf)) p("redis.conf: protected-mode no");
  if (directive("requirepass") !== undefined) p("redis.conf: requirepass in a ConfigMap (use the Secret)");
  // The password: on redis-server's stdin from a Secret (redisLaunch).
  const secretOf = (c, name) => (c.env ?? []).find((e) => e.name === name)?.valueFrom?.secretKeyRef;
  const redisSecret = launch.secret;
  if (!redisSecret) p("StatefulSet/redis: no password from a Secret on redis-server's stdin (see redisLaunch)");
  const sameSecret = (a, b) => a && b && a.name === b.name && a.key === b.key;
  const probeCmd = (redis.readinessProbe?.exec?.command ?? []).join(" ");
  if (probeCmd.includes("redis-cli") && !/\s-a\s/.test(probeCmd) &&
      !sameSecret(secretOf(redis, "REDISCLI_AUTH"), redisSecret)) {
    p("StatefulSet/redis: the redis-cli probe has no password (REDISCLI_AUTH from the Secret)");
  }
  // corral's REDIS_URL: an env entry redis://:$(VAR)@... with VAR from the same Secret key.
  const urlEntry = (container.env ?? []).find((e) => e.name === "REDIS_URL");
  const urlVar = /^redis:\/\/[^:@/]*:\$\((\w+)\)@/.exec(urlEntry?.value ?? "")?.[1];
  if (!urlVar || !sameSecret(secretOf(container, urlVar), redisSecret)) {
    p(`Deployment/corral: REDIS_URL carries no password from Redis's Secret ` +
      `(want an env entry redis://:$(VAR)@..., VAR from ${redisSecret ? `${redisSecret.name}/${redisSecret.key}` : "the Secret"})`);
  } else if ((container.env ?? []).findIndex((e) => e.name === urlVar) >
             (container.env ?? []).indexOf(urlEntry)) {
    p(`Deployment/corral: ${urlVar} must come before REDIS_URL in env (or $(${urlVar}) is not expanded)`);
  }
  const redisLabels = sts.spec.template.metadata.labels;
  const redisPdbs = find(objects, "PodDisruptionBudget").filter((x) => selectorMatches(x.spec.selector, redisLabels));
  if (redisPdbs.length !== 1) p(`${redisPdbs.length} PodDisruptionBudgets select the Redis pods`);
  for (const pdb of redisPdbs) {
    if (pdb.spec.unhealthyPodEvictionPolicy !== "AlwaysAllow") {
      p(`PDB ${pdb.metadata.name}: unhealthyPodEvictionPolicy is not AlwaysAllow (a broken Redis would block drains)`);
    }
  }
  const port = redis.ports.find((x) => x.name === "redis")?.containerPort;
  const policies = find(objects, "NetworkPolicy").filter((np) => selectorMatches(np.spec.podSelector, redisLabels));
  if (!policies.length) p("no NetworkPolicy selects the Redis pods");
  for (const np of policies) {
    if (!(np.spec.policyTypes ?? []).includes("Ingress")) p(`NetworkPolicy ${np.metadata.name}: no Ingress policy type`);
    for (const rule of np.spec.ingress ?? []) {
      for (const peer of rule.from ?? []) {
        if (!peer.podSelector || peer.namespaceSelector || peer.ipBlock ||
            !selectorMatches(peer.podSelector, corralLabels)) {
          p(`NetworkPolicy ${np.metadata.name}: admits peers other than corral's pods`);
        }
      }
      if (!(rule.from ?? []).length) p(`NetworkPolicy ${np.metadata.name}: a rule admits everyone`);
      if (!(rule.ports ?? []).every((x) => x.port === port || x.port === "redis")) {
        p(`NetworkPolicy ${np.metadata.name}: opens ports other than ${port}`);
      }
    }
  }
  const url = /^redis:\/\/(?:[^@]*@)?([^:/]+)(?::(\d+))?/.exec(String(env.REDIS_URL ?? ""));
  const svc = url && find(objects, "Service", url[1])[0];
  if (!svc || !selectorMatches({ matchLabels: svc.spec.selector }, redisLabels)) {
    p(`REDIS_URL ${env.REDIS_URL} does not name a Service of the Redis pods`);
  } else if (!svc.spec.ports.some((x) => x.port === Number(url[2] ?? 6379))) {
    p(`REDIS_URL port is not a port of Service ${url[1]}`);
  }
  return problems;
}

// Every ConfigMap, Secret, ServiceAccount and Service a workload names exists.
export function checkReferences(objects) {
  const problems = [];
  const has = (kind, name) => find(objects, kind, name).length > 0;
  for (const { owner, obj, tpl } of podTemplates(objects)) {
    const spec = tpl.spec;
    const p = (msg) => problems.push(`${owner}: ${msg}`);
    if (spec.serviceAccountName && !has("ServiceAccount", spec.serviceAccountName)) {
      p(`ServiceAccount ${spec.serviceAccountName} not rendered`);
    }
    if (obj.kind === "StatefulSet" && !has("Service", obj.spec.serviceName)) {
      p(`serviceName ${obj.spec.serviceName} not rendered`);
    }
    for (const v of spec.volumes ?? []) {
      if (v.configMap && !has("ConfigMap", v.configMap.name)) p(`ConfigMap ${v.configMap.name} not rendered`);
      if (v.secret && !has("Secret", v.secret.secretName) && !EXTERNAL_SECRETS.has(v.secret.secretName)) {
        p(`Secret ${v.secret.secretName} not rendered`);
      }
    }
    for (const c of allContainers(spec)) {
      for (const src of c.envFrom ?? []) {
        if (src.configMapRef && !has("ConfigMap", src.configMapRef.name)) p(`ConfigMap ${src.configMapRef.name} not rendered`);
      }
      for (const e of c.env ?? []) {
        const s = e.valueFrom?.secretKeyRef?.name;
        if (s && !has("Secret", s) && !EXTERNAL_SECRETS.has(s)) p(`Secret ${s} not rendered`);
      }
    }
  }
  return problems;
}

export const ALL_CHECKS = {
  restricted: checkRestricted,
  probes: checkProbes,
  termination: checkTermination,
  resources: checkResources,
  availability: checkAvailability,
  redis: checkRedis,
  references: checkReferences,
};
