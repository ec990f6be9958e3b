#!/usr/bin/env bash
# Installs corral's Debian 12 build and test dependencies when any is missing.
# Quiet and fast (one dpkg query) when everything is already there.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libhiredis-dev libboost1.81-dev libcli11-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  redis-server redis-sentinel
  python3 python3-grpcio nodejs
  util-linux procps iproute2 curl wrk
  podman runc
  zsh fish  # the completion tests load corralctl's scripts in them
  # deploy tests: the bundle (patchelf), its musl and static workers, the
  # Debian base image (debootstrap), podman kube play (catatonit, python3-yaml)
  patchelf musl-tools debootstrap catatonit python3-yaml
  # deploy.bundle's Go image: deploy/your-app/go/main.go built on the host
  # (CGO_ENABLED=0, stdlib only, offline), as its Dockerfile's golang stage would
  golang-go
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
