#!/usr/bin/env bash
# Runs corral locally: builds it, starts a private redis-server on loopback
# (unless REDIS_URL is set), then corral-agent with corral-worker on :8080
# (PORT to change it). Extra arguments go to corral-agent, e.g.
#   scripts/run.sh --workers=4 --log-format=json
# Ctrl-C drains the workers and stops everything this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >/dev/null
BUILD_DIR=${BUILD_DIR:-build}
PORT=${PORT:-8080}
state=$(mktemp -d /tmp/corral-run.XXXXXX)
redis_pid=""
cleanup() {
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
  rm -rf "$state"
}
trap cleanup EXIT

if [ -z "${REDIS_URL:-}" ]; then
  redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$state" \
    --save "" --appendonly no --daemonize no --loglevel warning \
    >"$state/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 100); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.05
  done
  export REDIS_URL="redis://127.0.0.1:$redis_port/0"
  echo "corral: started redis-server on 127.0.0.1:$redis_port (pid $redis_pid)"
fi

cat <<MSG
corral: serving on http://127.0.0.1:$PORT/  (sessions: $REDIS_URL)
  curl http://127.0.0.1:$PORT/            hello from a worker
  curl -c /tmp/c -b /tmp/c http://127.0.0.1:$PORT/session   a counter any worker continues
  kill -HUP <agent pid>                    rolling reload; Ctrl-C to drain and stop
MSG
"$BUILD_DIR/agent/corral-agent" --listen="http=tcp://0.0.0.0:$PORT" \
  --control-socket="$state/agent.sock" --drain-delay=1s "$@" \
  -- "$BUILD_DIR/worker/corral-worker" &
agent_pid=$!
trap 'kill -TERM $agent_pid 2>/dev/null || true' INT TERM
wait $agent_pid || true
wait $agent_pid 2>/dev/null || true
