#!/usr/bin/env bash
# The Debian 12 root filesystem the bundle tests build their images on, made
# from Debian's archive with debootstrap (no registry has debian:12 here):
# minbase plus ca-certificates (npm ci inside a build) and python3
# (the Python example). Cached as deploy/test/.cache/debian12-base.tar (a
# file, not an image: the tests import it and remove what they import), and
# remade when this script changes. Prints the tarball's path.
#
#   deploy/test/base-rootfs.sh          (root; installs debootstrap; ~4 min the first time)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=$here/.cache
tarball=$cache/debian12-base.tar
stamp=$tarball.sha256
want=$(sha256sum "$0" | cut -d' ' -f1)
if [ -f "$tarball" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "$tarball"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "base-rootfs: needs root (debootstrap)" >&2; exit 77; }
if ! command -v debootstrap >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; } ||
    { echo "base-rootfs: cannot install debootstrap" >&2; exit 77; }
fi
mkdir -p "$cache"
work=$(mktemp -d /var/tmp/corral-base-rootfs-XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "base-rootfs: debootstrap bookworm (minbase + ca-certificates python3)" >&2
# The mirror apt uses here (deb.debian.org unless sources say otherwise).
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
debootstrap --variant=minbase --include=ca-certificates,python3 bookworm \
  "$work/rootfs" "${mirror:-http://deb.debian.org/debian}" >"$work/log" 2>&1 ||
  { tail -20 "$work/log" >&2; exit 1; }
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
tar --numeric-owner -C "$work/rootfs" -cf "$tarball.tmp" .
mv "$tarball.tmp" "$tarball"
echo "$want" > "$stamp"
echo "base-rootfs: $tarball ($(du -h "$tarball" | cut -f1))" >&2
echo "$tarball"
