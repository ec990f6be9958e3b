#!/usr/bin/env bash
# Builds corral and runs every test (unit, os layer, black box as PID 1).
# Extra arguments go to ctest, e.g. scripts/test.sh -R blackbox
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}
cd "$BUILD_DIR"
ctest --output-on-failure --timeout 600 "$@"
