#!/usr/bin/env bash
# Installs libcorral_worker into a temp prefix, builds a separate project
# against it with find_package(corral_worker), and runs the result once.
set -euo pipefail
build_dir=$1
source_dir=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/corral-sdk-install-XXXXXX)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$tmp"' EXIT
cmake --install "$build_dir" --prefix "$tmp/prefix" --component worker_sdk >/dev/null
test -f "$tmp/prefix/lib/cmake/corral_worker/corral_workerConfig.cmake"
test -f "$tmp/prefix/include/corral/worker/sdk/worker.h"
test -f "$tmp/prefix/include/corral/common/duration.h"
cmake -S "$source_dir/install_consumer" -B "$tmp/build" \
  -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/build" -j2 >/dev/null
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PORT=$port REDIS_URL=redis://127.0.0.1:1 "$tmp/build/consumer" 2>/dev/null &
pid=$!
for _ in $(seq 100); do
  if body=$(curl -sf "http://127.0.0.1:$port/"); then break; fi
  sleep 0.05
done
test "$body" = consumer
kill -TERM $pid
wait $pid
echo "installed SDK: find_package(corral_worker) build and run OK"
