#!/usr/bin/env bash
# Builds corral and runs every test (unit, os layer, black box as PID 1).
#
#   scripts/test.sh [--sanitize=address,undefined|thread] [CTEST ARGS...]
#
# Extra arguments go to ctest, e.g. scripts/test.sh -R blackbox.
# --sanitize builds with CORRAL_SANITIZE into its own folder (build-asan for
# address,undefined, build-tsan for thread; BUILD_DIR overrides) and runs the
# suite there. A sanitizer report fails the run: the process that met it
# exits non-zero, the Python tests fail on a report in an agent's or a
# worker's output (tests/pylib/agent.py), and the test logs are searched at
# the end. Tests that cannot run sanitized are skipped with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."
sanitize=""
if [[ "${1:-}" == --sanitize=* ]]; then
  sanitize=${1#--sanitize=}
  shift
fi
case "$sanitize" in
  "") default_dir=build ;;
  address | address,undefined | undefined,address) default_dir=build-asan ;;
  undefined) default_dir=build-ubsan ;;
  thread) default_dir=build-tsan ;;
  *)
    echo "scripts/test.sh: --sanitize='$sanitize': use address,undefined or thread" >&2
    exit 2
    ;;
esac
export BUILD_DIR=${BUILD_DIR:-$default_dir}
CORRAL_SANITIZE=$sanitize scripts/build.sh
cd "$BUILD_DIR"
if [ -z "$sanitize" ]; then
  exec ctest --output-on-failure --timeout 600 "$@"
fi

# Reports go to stderr (where ctest and tests/pylib look); every kind halts
# the process, so no report can scroll by unnoticed.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
started=$(date +%s)
stamp=$(mktemp)
trap 'rm -f "$stamp"' EXIT
status=0
ctest --output-on-failure --timeout 1200 "$@" || status=$?
echo "sanitized suite ($sanitize): $(($(date +%s) - started)) s" >&2
pattern='(ERROR|WARNING): (Address|Leak|Thread|UndefinedBehavior)Sanitizer|:[0-9]+:[0-9]+: runtime error: '
logs=(Testing/Temporary/LastTest.log)
mapfile -t -O 1 logs < <(find tests -path '*/logs/*.log' -newer "$stamp" 2>/dev/null)
if grep -lE "$pattern" "${logs[@]}" 2>/dev/null; then
  echo "scripts/test.sh: sanitizer reports in the logs above" >&2
  status=1
fi
exit "$status"
