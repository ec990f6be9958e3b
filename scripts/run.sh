#!/usr/bin/env bash
# Runs corral locally: builds it, starts a private redis-server on loopback
# (unless REDIS_URL is set), then corral-agent with corral-worker on :8080
# (PORT to change it). Extra arguments go to corral-agent and override this
# script's own flags, e.g.
#   scripts/run.sh --workers=4 --drain-delay=4s --log-format=json
#   scripts/run.sh --ready=delay -- python3 -m http.server   # your own worker
# Ctrl-C drains the workers once (a second Ctrl-C hurries them), then stops
# the Redis this script started. The script exits with the agent's code.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
# CORRAL_RUN_NO_BUILD=1 runs what BUILD_DIR holds (the tests do).
[ -n "${CORRAL_RUN_NO_BUILD:-}" ] || scripts/build.sh >/dev/null
PORT=${PORT:-8080}
state=$(mktemp -d /tmp/corral-run.XXXXXX)
redis_pid=""
agent_pid=""
cleanup() {
  if [ -n "$agent_pid" ] && kill -0 "$agent_pid" 2>/dev/null; then
    kill -TERM "$agent_pid" 2>/dev/null || true
    wait "$agent_pid" 2>/dev/null || true
  fi
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
  rm -rf "$state"
}
trap cleanup EXIT

# The user's flags win: ours are added only for flags the user did not give,
# and a user `-- COMMAND` replaces the reference worker.
user_flags=()
user_command=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; user_command=("$@"); break; fi
  user_flags+=("$1"); shift
done
has_flag() {
  local f
  for f in "${user_flags[@]+"${user_flags[@]}"}"; do
    case "$f" in "$1" | "$1"=*) return 0 ;; esac
  done
  return 1
}
agent_flags=()
has_flag --listen || agent_flags+=("--listen=http=tcp://0.0.0.0:$PORT")
has_flag --control-socket || agent_flags+=("--control-socket=$state/agent.sock")
has_flag --drain-delay || agent_flags+=("--drain-delay=1s")
agent_flags+=("${user_flags[@]+"${user_flags[@]}"}")
if [ ${#user_command[@]} -eq 0 ]; then user_command=("$BUILD_DIR/worker/corral-worker"); fi
socket="$state/agent.sock"
for f in "${agent_flags[@]}"; do
  case "$f" in --control-socket=*) socket="${f#--control-socket=}" ;; esac
done

if [ -z "${REDIS_URL:-}" ]; then
  redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  # Its own session: a terminal Ctrl-C reaches this script only, so Redis
  # outlives the agent's drain instead of dying first.
  setsid redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$state" \
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

# Its own session too: the terminal's SIGINT is forwarded once, as SIGTERM,
# by the trap below (a second Ctrl-C forwards a second one: hurry).
setsid "$BUILD_DIR/agent/corral-agent" "${agent_flags[@]}" -- "${user_command[@]}" &
agent_pid=$!
trap 'kill -TERM "$agent_pid" 2>/dev/null || true' INT TERM
cat <<MSG
corral: agent pid $agent_pid, serving on http://127.0.0.1:$PORT/  (sessions: $REDIS_URL)
  export CORRAL_SOCKET=$socket
  $BUILD_DIR/ctl/corralctl status          workers, states, restarts
  curl http://127.0.0.1:$PORT/            hello from a worker
  curl -c /tmp/c -b /tmp/c http://127.0.0.1:$PORT/session   a counter any worker continues
  kill -HUP $agent_pid                     rolling reload; Ctrl-C to drain and stop
MSG
set +e
while :; do
  # `wait` returns early when a trapped signal arrives; wait again until
  # the agent itself has exited.
  wait "$agent_pid"
  status=$?
  kill -0 "$agent_pid" 2>/dev/null || break
done
if [ "$status" -gt 128 ]; then
  # Cut short by a signal just as the agent exited: its own code is still
  # there to collect.
  wait "$agent_pid" 2>/dev/null
  code=$?
  [ "$code" -ne 127 ] && status=$code
fi
agent_pid=""
exit "$status"
