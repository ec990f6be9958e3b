#!/usr/bin/env bash
# Installs what the Node package, its tests and examples/node need, from the
# lockfiles only (`npm ci`: exact versions and integrity hashes of each
# package-lock.json; skipped when a lockfile is unchanged since the last
# install). Node itself comes from scripts/deps.sh (Debian's nodejs); npm
# is installed from Debian when the machine has none.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

say() { echo "worker/node/setup: $*" >&2; }

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  say "installing nodejs and npm (Debian)"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

for dir in "$here" "$root/examples/node"; do
  cd "$dir"
  lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
  stamp=node_modules/.corral-lock-sha256
  if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
    say "npm ci in ${dir#"$root"/}"
    npm ci --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error
    echo "$lock_sum" > "$stamp"
  fi
done
