#!/usr/bin/env bash
# Builds corral into ./build (or $BUILD_DIR). Installs dependencies first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
# CORRAL_SANITIZE=address,undefined or thread: a sanitized build (use its
# own BUILD_DIR; scripts/test.sh --sanitize does).
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="$BUILD_TYPE" \
  -DCORRAL_SANITIZE="${CORRAL_SANITIZE:-}" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
