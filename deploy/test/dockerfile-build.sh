#!/usr/bin/env bash
# Builds deploy/docker/Dockerfile for real with podman and runs the container
# test on the result. Slow (Debian -dev packages + a full compile: ~15 min on
# 2 cores), so not part of ctest. With no registry, the debian:12 base is made
# with debootstrap from Debian's archive and imported. Everything it creates
# (base image, built image) is removed by id at the end.
#
#   deploy/test/dockerfile-build.sh [--keep]     (root; installs podman runc debootstrap)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
keep=0
[ "${1:-}" = --keep ] && keep=1

export DEBIAN_FRONTEND=noninteractive
for pkg in podman runc debootstrap python3-grpcio; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null; }
done

work=$(mktemp -d /var/tmp/corral-dockerfile-XXXXXX)
base_id=""
image_id=""
cleanup() {
  if [ "$keep" -eq 0 ]; then
    [ -z "$image_id" ] || podman rmi -f "$image_id" >/dev/null 2>&1 || true
  fi
  [ -z "$base_id" ] || podman rmi -f "$base_id" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

base=${DEBIAN_IMAGE:-}
if [ -z "$base" ]; then
  echo "dockerfile-build: debootstrap bookworm (minbase) for the debian:12 base" >&2
  debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  tar --numeric-owner -C "$work/rootfs" -cf "$work/rootfs.tar" .
  rm -rf "$work/rootfs"
  base_id=$(podman import --change 'CMD ["/bin/bash"]' "$work/rootfs.tar" "localhost/corral-debian12-base:$$" 2>/dev/null)
  base_id=${base_id##*:}
  base="localhost/corral-debian12-base:$$"
fi

echo "dockerfile-build: podman build -f deploy/docker/Dockerfile (base $base)" >&2
podman --runtime runc build --layers=false --network host \
  --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
  --ignorefile "$repo/deploy/docker/Dockerfile.dockerignore" \
  --build-arg DEBIAN_IMAGE="$base" --build-arg JOBS="${JOBS:-2}" \
  -f "$repo/deploy/docker/Dockerfile" -t "localhost/corral-dockerfile:$$" \
  --iidfile "$work/iid" "$repo" >"$work/build.log" 2>&1 ||
  { tail -40 "$work/build.log" >&2; exit 1; }
image_id=$(cat "$work/iid")
image_id=${image_id##*:}
grep 'assemble-rootfs:' "$work/build.log" >&2 || true
echo "dockerfile-build: built ${image_id:0:12} ($(podman image inspect --format '{{.Size}}' "$image_id") bytes)" >&2

CORRAL_IMAGE=$image_id /usr/bin/python3 "$here/container_test.py" -v
