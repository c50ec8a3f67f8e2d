#!/usr/bin/env bash
# Builds Parley and the benchmarks (Release), runs them against a local server on a loopback port
# and prints a summary. Each benchmark gets a fresh server so that one run's rooms, history and
# heap do not distort the next. Loopback only.
#
#   bench/run.sh                    # everything (a few minutes including the build)
#   SKIP_BUILD=1 bench/run.sh       # reuse build-bench/
#   ONLY=fanout bench/run.sh        # or ONLY=idle, ONLY=store
#   PROFILE=perf bench/run.sh       # also count the server's syscalls during one fan-out run
#   PROFILE=strace bench/run.sh     # the same with strace -c (when perf is unavailable; slower)
#   ONLY=none PROFILE=perf bench/run.sh   # just that
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
  cmake --build "$build" -j2 --target parley fanout_bench idle_memory_bench store_bench >"$out/build.log" 2>&1 ||
    { tail -40 "$out/build.log"; exit 1; }
}

# start_server NAME [extra --section.key=value ...]: starts parley on a free loopback port and
# sets server_pid and server_port.
start_server() {
  local name=$1; shift
  local logf="$out/server-$name.log"
  "$build/parley" --config=config.ini --server.port=0 --server.address=127.0.0.1 \
    --store.path="$out/parley-$name.db" \
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

# run_fanout LABEL [fanout_bench options...]; SERVER_EXTRA (a string of --section.key=value words)
# is passed to that server only.
run_fanout() {
  local label=$1; shift
  # shellcheck disable=SC2086 # SERVER_EXTRA is a list of words on purpose
  start_server "fanout-$label" ${SERVER_EXTRA:-}
  local rc=0
  "$build/fanout_bench" --host 127.0.0.1 --port "$server_port" --pid "$server_pid" \
    --members "$members" --messages "$messages" --size "$size" --timeout 50 "$@" | tee "$out/fanout-$label.txt" || rc=$?
  stop_server
  echo "$label $(grep '^RESULT' "$out/fanout-$label.txt" || echo "RESULT missing") rc=$rc" >>"$out/summary"
}

run_store() {
  local label=$1; shift
  local rc=0
  log "store $label"
  "$build/store_bench" --messages 100000 "$@" >"$out/store-$label.txt" 2>&1 || rc=$?
  echo "$label $(grep '^RESULT' "$out/store-$label.txt" || echo "RESULT missing") rc=$rc" >>"$out/summary"
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

# Counts the server's syscalls during the sending phase of one fan-out run (attached only after
# every member joined: under strace the N^2 join-time presence frames alone take minutes).
# sendmsg calls per delivery tell whether gather writes really batch frames.
# PROFILE=strace uses strace -c (slows the server a lot: read counts, not times);
# PROFILE=perf uses perf stat on syscall tracepoints (cheap, needs perf and root).
profile_syscalls() {
  local tool=$1
  start_server "$tool"
  local bench_err="$out/fanout-$tool.err"
  "$build/fanout_bench" --host 127.0.0.1 --port "$server_port" --pid "$server_pid" \
    --members "$members" --messages "$(( messages / 2 ))" --size "$size" --window 32 \
    --settle-ms 1000 --timeout 50 >"$out/fanout-$tool.txt" 2>"$bench_err" &
  local bench_pid=$!
  until grep -q "joined in" "$bench_err" 2>/dev/null; do
    kill -0 "$bench_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ $tool == strace ]]; then
    strace -c -f -p "$server_pid" -o "$out/syscalls.txt" 2>/dev/null &
  else
    perf stat -e 'syscalls:sys_enter_sendmsg,syscalls:sys_enter_writev,syscalls:sys_enter_recvmsg,syscalls:sys_enter_futex,syscalls:sys_enter_clock_nanosleep,syscalls:sys_enter_epoll_wait,context-switches,task-clock' \
      -p "$server_pid" -o "$out/syscalls.txt" &
  fi
  local tracer_pid=$!
  wait "$bench_pid" || true
  kill -INT "$tracer_pid" 2>/dev/null || true
  wait "$tracer_pid" 2>/dev/null || true
  stop_server
  cat "$out/fanout-$tool.txt"
  log "server syscalls during the sending phase ($tool)"
  grep -v '^$' "$out/syscalls.txt" | head -25
  echo "profile-$tool $(grep '^RESULT' "$out/fanout-$tool.txt" || echo "RESULT missing")" >>"$out/summary"
}

main() {
  [[ -n ${SKIP_BUILD:-} ]] || build_all
  # One descriptor per client in the benchmark and one per connection in the server.
  ulimit -n 20000 || ulimit -n "$(ulimit -Hn)"
  log "results and logs in $out"
  : >"$out/summary"
  if [[ ${ONLY:-fanout} == fanout || -z ${ONLY:-} ]]; then
    run_fanout "w1-latency" --senders 1 --window 1 --messages 200
    run_fanout "w32" --senders 1 --window 32
    run_fanout "s4-w32" --senders 4 --window 32
    # Same load, with the thread layout that measured best on 2 cores: one CAF worker instead of
    # two work-stealing pollers, and two Asio threads for the sockets.
    SERVER_EXTRA="--scheduler.max-threads=1 --server.io_threads=2" run_fanout "w32-1caf-2io" --senders 1 --window 32
  fi
  if [[ ${ONLY:-idle} == idle || -z ${ONLY:-} ]]; then
    run_idle "no-room" --room-size 0
    run_idle "rooms-of-100" --room-size 100
  fi
  if [[ ${ONLY:-store} == store || -z ${ONLY:-} ]]; then
    # The store alone: persisted messages/s and the latency a commit adds, one busy room vs many.
    run_store "1-room" --rooms 1 --inflight 256
    run_store "100-rooms" --rooms 100 --inflight 256
    run_store "100-rooms-normal" --rooms 100 --inflight 256 --sync normal
    # The whole server at its message rate: two members, so fan-out costs little and every
    # message is a commit.
    run_fanout "m2-s2-w256" --members 2 --senders 2 --window 256 --messages 60000
  fi
  [[ -z ${PROFILE:-} ]] || profile_syscalls "$PROFILE"
  echo
  echo "summary ($(nproc) cores, commit $(git rev-parse --short HEAD), $(date -u +%Y-%m-%dT%H:%MZ))"
  sed 's/^/  /' "$out/summary"
}

main "$@"
