// Every overlay renders offline with `kubectl kustomize`, and every rendered
// object validates against the Kubernetes schemas of the pinned
// kubernetes-models package, with no field those schemas do not declare.
import assert from "node:assert/strict";
import { test } from "node:test";
import { join } from "node:path";
import { K8S, OVERLAYS, kubectl, modelFor, render, unknownFields } from "./lib.mjs";
import { execFileSync } from "node:child_process";

test("kubectl can render kustomizations offline", () => {
  const version = execFileSync(kubectl(), ["version", "--client"], { encoding: "utf8" });
  console.log(`${kubectl()}: ${version.trim().replace(/\n/g, "; ")}`);
  for (const o of ["dev", "prod"]) assert.ok(OVERLAYS.includes(o), `overlay ${o} missing`);
});

const DIRS = [...OVERLAYS, join(K8S, "base"), join(K8S, "redis")];

for (const dir of DIRS) {
  const label = dir.startsWith("/") ? dir.slice(K8S.length + 1) : `overlays/${dir}`;

  test(`${label}: renders`, () => {
    const { objects } = render(dir);
    assert.ok(objects.length > 0, "nothing rendered");
    const seen = new Set();
    for (const o of objects) {
      assert.ok(o.apiVersion && o.kind && o.metadata?.name, `incomplete object ${JSON.stringify(o).slice(0, 80)}`);
      const key = `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;
      assert.ok(!seen.has(key), `${key} rendered twice`);
      seen.add(key);
    }
    console.log(`${label}: ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(" ")}`);
  });

  test(`${label}: every object validates against the Kubernetes schemas`, async () => {
    const { objects } = render(dir);
    for (const o of objects) {
      const Model = await modelFor(o.apiVersion, o.kind);
      assert.ok(Model, `no model for ${o.apiVersion} ${o.kind}`);
      assert.doesNotThrow(() => new Model(o).validate(), `${o.kind}/${o.metadata.name}`);
      assert.deepEqual(unknownFields(o), [], `${o.kind}/${o.metadata.name}`);
    }
  });

  if (!dir.startsWith("/")) {
    test(`${label}: every namespaced object is in one namespace`, () => {
      const { objects } = render(dir);
      const namespaces = new Set(objects.filter((o) => o.kind !== "Namespace").map((o) => o.metadata.namespace));
      assert.equal(namespaces.size, 1, [...namespaces].join(","));
      assert.ok([...namespaces][0], "objects without a namespace");
    });
  }
}

// The checks above must be able to fail.
test("the validators catch a wrong type and a misspelt field", async () => {
  const dep = structuredClone(render("prod").objects.find((o) => o.kind === "Deployment"));
  const Model = await modelFor(dep.apiVersion, dep.kind);
  const wrongType = structuredClone(dep);
  wrongType.spec.template.spec.terminationGracePeriodSeconds = "35";
  assert.throws(() => new Model(wrongType).validate(), /terminationGracePeriodSeconds/);
  const missing = structuredClone(dep);
  delete missing.spec.selector;
  assert.throws(() => new Model(missing).validate(), /selector/);
  const typo = structuredClone(dep);
  typo.spec.template.spec.containers[0].readinessProbe.grpc.sevice = "readiness";
  typo.spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem = true;
  assert.deepEqual(unknownFields(typo), [
    "Deployment/corral.spec.template.spec.containers[0].readinessProbe.grpc: unknown field 'sevice'",
    "Deployment/corral.spec.template.spec.containers[0].securityContext: unknown field 'readOnlyRootFileSystem'",
  ]);
});
