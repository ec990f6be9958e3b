// Shared helpers of the manifest tests: render the kustomize overlays with
// `kubectl kustomize` (offline), parse the YAML, find the model and strict
// field list of each object in the pinned `kubernetes-models` package.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

export const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO = join(HERE, "..", "..");
export const K8S = join(REPO, "deploy", "k8s");
export const OVERLAYS_DIR = join(K8S, "overlays");

// Every overlay: each directory under deploy/k8s/overlays with a kustomization.
export const OVERLAYS = readdirSync(OVERLAYS_DIR)
  .filter((d) => existsSync(join(OVERLAYS_DIR, d, "kustomization.yaml")))
  .sort();

// kubectl from $KUBECTL, else the PATH's, else deploy/test/.cache/kubectl
// (setup.sh unpacks one there when the machine has none).
export function kubectl() {
  if (process.env.KUBECTL) return process.env.KUBECTL;
  const onPath = (process.env.PATH ?? "").split(":").filter(Boolean)
    .map((d) => join(d, "kubectl")).find((p) => existsSync(p));
  if (onPath) return onPath;
  const cached = join(HERE, ".cache", "kubectl");
  if (existsSync(cached)) return cached;
  throw new Error("no kubectl: run deploy/test/setup.sh (it unpacks one when the machine has none)");
}

const renders = new Map();

// The rendered objects of one overlay (or any kustomization directory).
export function render(dir) {
  const path = dir.startsWith("/") ? dir : join(OVERLAYS_DIR, dir);
  if (!renders.has(path)) {
    const text = execFileSync(kubectl(), ["kustomize", path], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    const objects = [];
    for (const doc of parseAllDocuments(text, { uniqueKeys: true })) {
      if (doc.errors.length) throw new Error(`${path}: ${doc.errors[0].message}`);
      const obj = doc.toJS();
      if (obj) objects.push(obj);
    }
    renders.set(path, { text, objects });
  }
  return renders.get(path);
}

export function find(objects, kind, name) {
  return objects.filter(
    (o) => o.kind === kind && (name === undefined || o.metadata?.name === name),
  );
}

export function one(objects, kind, name) {
  const found = find(objects, kind, name);
  if (found.length !== 1) {
    throw new Error(`expected one ${kind}${name ? " " + name : ""}, found ${found.length}`);
  }
  return found[0];
}

// The model class of kubernetes-models for apiVersion + kind
// ("apps/v1" + "Deployment" -> kubernetes-models/apps/v1/Deployment).
export async function modelFor(apiVersion, kind) {
  const mod = await import(`kubernetes-models/${apiVersion}/${kind}`);
  return mod[kind];
}

// --- strict fields --------------------------------------------------------
// kubernetes-models' JSON-schema validators accept unknown fields (as the
// OpenAPI schemas do). A misspelt field would be silently ignored by the API
// server too, so we also check every field name against the models' type
// declarations, the way `kubeconform -strict` does.

const MODELS = join(HERE, "node_modules", "kubernetes-models");
const APIMACHINERY = join(HERE, "node_modules", "@kubernetes-models", "apimachinery");
let interfaces = null;  // global type name -> {prop: typeText}

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== "_schemas" && name !== "node_modules") walk(p, out);
    } else if (name.endsWith(".d.ts")) {
      out.push(p);
    }
  }
  return out;
}

// { "prop": "type text" } of each `export interface X { ... }` in a .d.ts.
function parseInterfaces(text) {
  const result = {};
  const re = /^export interface (\w+)(?: extends [\w, ]+)? \{\n([\s\S]*?)^\}/gm;
  let m;
  while ((m = re.exec(text))) {
    const props = {};
    const body = m[2].replace(/\/\*\*[\s\S]*?\*\//g, "").replace(/^\s*\n/gm, "");
    // Properties are at 4 spaces; a type may span lines until its ';' at depth 0.
    const propRe = /^ {4}"([^"]+)"\??: ([\s\S]*?);\n(?= {4}"|$)/gm;
    let p;
    while ((p = propRe.exec(body))) props[p[1]] = p[2].replace(/\s+/g, " ").trim();
    result[m[1]] = props;
  }
  return result;
}

function loadInterfaces() {
  if (interfaces) return interfaces;
  interfaces = {};
  for (const file of [...walk(MODELS, []), ...walk(APIMACHINERY, [])]) {
    const text = readFileSync(file, "utf8");
    const local = parseInterfaces(text);
    // export type { IFoo as IIoK8sApiCoreV1Foo, Foo as IoK8sApiCoreV1Foo };
    const alias = /export type \{([^}]*)\}/.exec(text);
    const names = {};
    if (alias) {
      for (const part of alias[1].split(",")) {
        const [from, to] = part.trim().split(/\s+as\s+/);
        if (from && to) names[from] = to;
      }
    }
    for (const [name, props] of Object.entries(local)) {
      interfaces[names[name] ?? name] = props;
      // The kind's own file also answers to its path (for the root lookup).
      interfaces[`file:${relative(MODELS, file)}:${name}`] = props;
    }
  }
  return interfaces;
}

function rootInterface(apiVersion, kind) {
  const all = loadInterfaces();
  const key = Object.keys(all).find(
    (k) => k === `file:${apiVersion}/${kind}.d.ts:I${kind}`,
  );
  return key ? all[key] : null;
}

// Lists "path: unknown field 'x'" for every field no declared type has.
export function unknownFields(obj) {
  const all = loadInterfaces();
  const root = rootInterface(obj.apiVersion, obj.kind);
  if (!root) return [`${obj.kind}: no type declarations found for ${obj.apiVersion}`];
  const problems = [];
  const visit = (value, props, path) => {
    if (value === null || typeof value !== "object" || Array.isArray(value)) return;
    for (const [key, child] of Object.entries(value)) {
      if (!(key in props)) {
        problems.push(`${path}: unknown field '${key}'`);
        continue;
      }
      const type = props[key];
      let m = /^(I\w+)$/.exec(type);
      if (m && all[m[1]]) {
        visit(child, all[m[1]], `${path}.${key}`);
        continue;
      }
      m = /^Array<(I\w+)>$/.exec(type);
      if (m && all[m[1]] && Array.isArray(child)) {
        child.forEach((item, i) => visit(item, all[m[1]], `${path}.${key}[${i}]`));
      }
    }
  };
  visit(obj, root, `${obj.kind}/${obj.metadata?.name}`);
  return problems;
}

// --- small parsers ----------------------------------------------------------

// Go/Abseil durations as the agent takes them ("500ms", "2s", "1m30s", "1.5s",
// or a bare number of seconds) -> seconds.
export function durationSeconds(text) {
  const s = String(text).trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  const units = { ns: 1e-9, us: 1e-6, "µs": 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  let m;
  while ((m = re.exec(s))) {
    total += Number(m[1]) * units[m[2]];
    consumed = re.lastIndex;
  }
  if (consumed !== s.length || consumed === 0) throw new Error(`not a duration: '${text}'`);
  return total;
}

// Kubernetes CPU quantity ("2", "1500m", "0.5") -> cores.
export function cpuCores(q) {
  const s = String(q);
  if (s.endsWith("m")) return Number(s.slice(0, -1)) / 1000;
  return Number(s);
}

// The agent's environment as the container sees it: envFrom ConfigMaps, then
// env entries (which win). Values from Secrets or fieldRefs show as
// {from: ...}.
export function containerEnv(objects, container) {
  const env = {};
  for (const src of container.envFrom ?? []) {
    if (src.configMapRef) {
      const cm = one(objects, "ConfigMap", src.configMapRef.name);
      Object.assign(env, cm.data ?? {});
    }
  }
  for (const e of container.env ?? []) {
    env[e.name] = "value" in e ? e.value : { from: e.valueFrom };
  }
  return env;
}
