#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (ASan + UBSan) into
# build-fuzz/ (or $BUILD_DIR) and runs each for SECONDS (default 60).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      e.g. scripts/fuzz.sh 300 json
#
# Each target starts from its checked-in seed corpus (tests/fuzz/corpus/
# NAME, never written to) plus what earlier runs found (BUILD_DIR/corpus/
# NAME, kept between runs). A crash or a broken invariant stops that target;
# its input is saved as BUILD_DIR/crashes/NAME/crash-*, and the script goes
# on with the others and exits 1 at the end. To keep a finding as a
# regression test, fix the bug and copy the input into the seed corpus:
# `ctest -L fuzz` in every build replays it.
#
# Environment: JOBS (parallel fuzzing processes per target, default 1),
# FUZZ_ARGS (more libFuzzer flags, e.g. "-max_len=65536").
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
  echo "scripts/fuzz.sh: SECONDS='$seconds': a whole number of seconds > 0" >&2
  exit 2
fi
shift || true
if ! command -v clang++ >/dev/null; then
  echo "scripts/fuzz.sh: clang++ not found (apt-get install clang)" >&2
  exit 2
fi
BUILD_DIR=${BUILD_DIR:-build-fuzz}
root=$(pwd)
CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCORRAL_FUZZ=ON >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target corral_fuzzers

mapfile -t all < <(sed -n '/^set(CORRAL_FUZZ_TARGETS/,/)/p' tests/fuzz/CMakeLists.txt |
  sed '1d;s/)//;s/^ *//' | grep -v '^$')
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for name in "${targets[@]}"; do
  fuzzer="$BUILD_DIR/tests/fuzz/${name}_fuzzer"
  if [ ! -x "$fuzzer" ]; then
    echo "scripts/fuzz.sh: no fuzz target '$name' (targets: ${all[*]})" >&2
    exit 2
  fi
  corpus="$BUILD_DIR/corpus/$name"
  crashes="$BUILD_DIR/crashes/$name"
  mkdir -p "$corpus" "$crashes"
  log="$BUILD_DIR/fuzz-$name.log"
  echo "== $name: ${seconds}s (log $log)"
  status=0
  # shellcheck disable=SC2086
  "$fuzzer" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
    -print_final_stats=1 -jobs="${JOBS:-1}" -workers="${JOBS:-1}" \
    -artifact_prefix="$crashes/" ${FUZZ_ARGS:-} \
    "$corpus" "$root/tests/fuzz/corpus/$name" >"$log" 2>&1 || status=$?
  grep -E '^(stat::number_of_executed_units|stat::new_units_added|#[0-9]+ *DONE)' "$log" | tr '\n' ' ' || true
  echo
  if [ "$status" -ne 0 ]; then
    echo "   FAILED (exit $status): $(grep -m1 -E 'ERROR|FUZZ_CHECK|runtime error' "$log" || true)"
    ls "$crashes"
    failed+=("$name")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "scripts/fuzz.sh: findings in: ${failed[*]} (inputs under $BUILD_DIR/crashes/)" >&2
  exit 1
fi
echo "scripts/fuzz.sh: ${#targets[@]} targets, ${seconds}s each, no finding"
