#!/usr/bin/env bash
# Container test of corral's runtime image with real podman + runc
# (deploy/test/container_test.py says what it checks). Installs podman, runc
# and python3-grpcio from Debian when missing. Exits 77 (ctest: skipped)
# only when a container cannot run here at all: not root, or podman/runc
# cannot be installed or cannot start a container on this host.
#
#   deploy/test/container-test.sh             (binaries from build/)
#   CORRAL_AGENT=build/agent/corral-agent CORRAL_WORKER=build/worker/corral-worker \
#     deploy/test/container-test.sh -v
#   deploy/test/container-test.sh --bundle [-v] [Class]   the bundle in Debian, Node, Go, C++,
#                                             distroless and musl images (bundle_test.py)
#   deploy/test/container-test.sh --kube-play [-v]        podman kube play of the dev
#                                             overlay (kube_play_test.py)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export CORRAL_AGENT=${CORRAL_AGENT:-$repo/build/agent/corral-agent}
export CORRAL_WORKER=${CORRAL_WORKER:-$repo/build/tests/worker/corral-test-worker}
test_py=container_test.py
packages=(podman runc python3-grpcio)
case "${1:-}" in
  --bundle) test_py=bundle_test.py; shift
            packages+=(patchelf musl-tools gcc libc6-dev debootstrap nodejs golang-go) ;;
  --kube-play) test_py=kube_play_test.py; shift
               packages+=(catatonit python3-yaml) ;;
esac

skip() { echo "SKIP deploy.container: $*" >&2; exit 77; }

[ "$(id -u)" -eq 0 ] || skip "needs root for rootful podman with runc"
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deploy/test/container-test: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } ||
    skip "could not install ${missing[*]} with apt-get"
fi
# Can this host run a container at all? (runc; crun refuses hybrid cgroup hosts.)
podman --runtime runc info >/dev/null 2>&1 || skip "podman --runtime runc info fails on this host"

exec /usr/bin/python3 "$here/$test_py" "$@"
