#!/usr/bin/env bash
# Builds Parley and the benchmarks (Release), runs them against a local server on a loopback port
# and prints a summary. Each benchmark gets a fresh server so that one run's rooms, history and
# heap do not distort the next. Loopback only.
#
#   bench/run.sh                    # everything (a few minutes including the build)
#   SKIP_BUILD=1 bench/run.sh       # reuse build-bench/
#   ONLY=fanout bench/run.sh        # or ONLY=idle
#   PROFILE=strace bench/run.sh     # also count the server's syscalls during one fan-out run
#
# Tunables (environment): MEMBERS (1000), MESSAGES (2000), SIZE (100), IDLE_CLIENTS (5000).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
build=$root/build-bench
out=$(mktemp -d /tmp/parley-bench.XXXXXX)
members=${MEMBERS:-1000}
messages=${MESSAGES:-2000}
size=${SIZE:-100}
idle_clients=${IDLE_CLIENTS:-5000}
server_pid=""

log() { printf '== %s\n' "$*" >&2; }

build_all() {
  log "building Release into $build"
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DPARLEY_TESTS=OFF >"$out/cmake.log"
  cmake --build "$build" -j2 --target parley fanout_bench idle_memory_bench >"$out/build.log" 2>&1 ||
    { tail -40 "$out/build.log"; exit 1; }
}

# start_server NAME [extra --section.key=value ...]: starts parley on a free loopback port and
# sets server_pid and server_port.
start_server() {
  local name=$1; shift
  local logf="$out/server-$name.log"
  "$build/parley" --config=config.ini --server.port=0 --server.address=127.0.0.1 \
    --connection.rate_per_second=1000000 --connection.rate_burst=1000000 \
    --rooms.capacity="$(( members > idle_clients ? members : idle_clients ))" \
    "$@" >"$logf" 2>&1 &
  server_pid=$!
  server_port=""
  for _ in $(seq 1 100); do
    server_port=$(grep -o 'parley listening on [0-9.]*:[0-9]*' "$logf" 2>/dev/null | sed 's/.*://' || true)
    [[ -n $server_port ]] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$logf"; log "server failed to start"; exit 1; }
    sleep 0.1
  done
  [[ -n $server_port ]] || { cat "$logf"; log "server did not report its port"; exit 1; }
  log "server $name: pid $server_pid, port $server_port"
}

stop_server() {
  [[ -n $server_pid ]] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  # shutdown_grace is 3 s; give it a little more, then insist.
  for _ in $(seq 1 60); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
trap stop_server EXIT

# run_fanout LABEL [fanout_bench options...]
run_fanout() {
  local label=$1; shift
  start_server "fanout-$label"
  local rc=0
  "$build/fanout_bench" --host 127.0.0.1 --port "$server_port" --members "$members" \
    --messages "$messages" --size "$size" --timeout 50 "$@" | tee "$out/fanout-$label.txt" || rc=$?
  stop_server
  echo "$label $(grep '^RESULT' "$out/fanout-$label.txt" || echo "RESULT missing") rc=$rc" >>"$out/summary"
}

run_idle() {
  local label=$1; shift
  start_server "idle-$label"
  local rc=0
  "$build/idle_memory_bench" --host 127.0.0.1 --port "$server_port" --pid "$server_pid" \
    --clients "$idle_clients" "$@" | tee "$out/idle-$label.txt" || rc=$?
  stop_server
  echo "$label $(grep '^RESULT' "$out/idle-$label.txt" || echo "RESULT missing") rc=$rc" >>"$out/summary"
}

# Counts the server's syscalls during one fan-out run: write/sendmsg calls per delivery tell
# whether gather writes batch frames or every frame costs its own syscall.
profile_strace() {
  start_server "strace"
  strace -c -f -p "$server_pid" -o "$out/strace.txt" &
  local strace_pid=$!
  sleep 1
  "$build/fanout_bench" --host 127.0.0.1 --port "$server_port" --members "$members" \
    --messages "$(( messages / 4 ))" --size "$size" --window 32 --timeout 50 | tee "$out/fanout-strace.txt" || true
  kill -INT "$strace_pid" 2>/dev/null || true
  wait "$strace_pid" 2>/dev/null || true
  stop_server
  log "server syscalls during the traced run (strace slows everything; look at counts, not times)"
  head -25 "$out/strace.txt"
}

main() {
  [[ -n ${SKIP_BUILD:-} ]] || build_all
  # One descriptor per client in the benchmark and one per connection in the server.
  ulimit -n 20000 || ulimit -n "$(ulimit -Hn)"
  log "results and logs in $out"
  : >"$out/summary"
  if [[ ${ONLY:-fanout} == fanout || -z ${ONLY:-} ]]; then
    run_fanout "w1-latency" --senders 1 --window 1
    run_fanout "w32" --senders 1 --window 32
    run_fanout "s4-w32" --senders 4 --window 32
  fi
  if [[ ${ONLY:-idle} == idle || -z ${ONLY:-} ]]; then
    run_idle "no-room" --room-size 0
    run_idle "rooms-of-100" --room-size 100
  fi
  [[ ${PROFILE:-} == strace ]] && profile_strace
  echo
  echo "summary ($(nproc) cores, commit $(git rev-parse --short HEAD), $(date -u +%Y-%m-%dT%H:%MZ))"
  sed 's/^/  /' "$out/summary"
}

main "$@"
