#!/usr/bin/env bash
# Builds Parley and the benchmarks (Release, build-bench/), runs them against a local server on a
# loopback port and prints one summary table against the targets of "Rooms that scale". Each
# benchmark gets a fresh server so that one run's rooms, history and heap do not distort the next.
# The whole run takes about 4 minutes after the build (about 7 against the old server, whose join storm
# runs into its 100 s timeout).
#
#   bench/run.sh                    # everything
#   SKIP_BUILD=1 bench/run.sh       # reuse build-bench/
#   ONLY=churn bench/run.sh         # or storm, fanout, inbound, idle, store, cluster; several: ONLY=churn,idle
#   PARLEY_BIN=/work/base/build-bench/parley PARLEY_CONFIG=/work/base/config.ini bench/run.sh
#                                   # measure another build of the server (e.g. the baseline)
#   PROFILE=perf bench/run.sh       # also count the server's syscalls during one fan-out run
#   PROFILE=strace bench/run.sh     # the same with strace -c (when perf is unavailable; slower)
#   ONLY=none PROFILE=perf bench/run.sh   # just that
#
# Sizes (environment): MEMBERS (1000, fan-out room), MESSAGES (2000, window runs), SIZE (100 bytes),
# STORM_CLIENTS (10000), SETUP_CLIENTS (5000), IDLE_CLIENTS (10000, in rooms of IDLE_ROOM_SIZE 1000),
# MAX_CLIENTS (19900), CHURN_SECONDS (10), STORM_TIMEOUT (100).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
build=$root/build-bench
server_bin=${PARLEY_BIN:-$build/parley}
server_config=${PARLEY_CONFIG:-$root/config.ini}
out=$(mktemp -d /tmp/parley-bench.XXXXXX)
members=${MEMBERS:-1000}
messages=${MESSAGES:-2000}
size=${SIZE:-100}
storm_clients=${STORM_CLIENTS:-10000}
setup_clients=${SETUP_CLIENTS:-5000}
idle_clients=${IDLE_CLIENTS:-10000}
idle_room_size=${IDLE_ROOM_SIZE:-1000}
max_clients=${MAX_CLIENTS:-19900}
churn_seconds=${CHURN_SECONDS:-10}
storm_timeout=${STORM_TIMEOUT:-100}
server_pid=""

log() { printf '== %s\n' "$*" >&2; }

selected() { # selected NAME: is this group in ONLY (all groups when ONLY is unset or empty)?
  [[ -z ${ONLY:-} ]] || [[ ",$ONLY," == *",$1,"* ]]
}

build_all() {
  log "building Release into $build"
  local launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DPARLEY_TESTS=OFF "${launcher[@]}" >"$out/cmake.log"
  cmake --build "$build" -j2 --target parley fanout_bench idle_memory_bench store_bench churn_bench \
    join_storm_bench inbound_flood_bench >"$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
}

# start_server NAME [extra --section.key=value ...]: starts the server on a free loopback port and
# sets server_pid and server_port. Its rate limit is lifted (the default 20 frames/s per connection
# would throttle every sender), so are the limits per client address (every client connects from
# 127.0.0.x; 0 means no limit), a room may hold every client of any benchmark here, and the cap on
# rooms is lifted (churn with --unique-rooms makes a room per session, tens of thousands per run; the
# per-connection new-room rate is no limit there, each session makes one).
start_server() {
  local name=$1; shift
  # Builds from before the room cap and the address limits refuse those options: pass each only to
  # a server that knows it, so that baselines still run.
  local help lifted=()
  # CAF's --long-help (older builds) and Parley's own --help (since Operations) name them differently.
  help=$("$server_bin" --long-help 2>&1 || true; "$server_bin" --help 2>&1 || true)
  [[ $help == *rooms.max_rooms* ]] && lifted+=(--rooms.max_rooms=100000000)
  # A free port for the admin listener: nothing here reads it, and 9090 may be taken.
  [[ $help == *admin.port* ]] && lifted+=(--admin.port=0)
  [[ $help == *limits.max_connections_per_address* ]] &&
    lifted+=(--limits.max_connections_per_address=0 --limits.handshakes_per_second=0)
  local logf="$out/server-$name.log"
  "$server_bin" --config="$server_config" --server.port=0 --server.address=127.0.0.1 \
    --store.path="$out/parley-$name.db" \
    --connection.rate_per_second=1000000 --connection.rate_burst=1000000 \
    --rooms.capacity=20000 "${lifted[@]}" "$@" >"$logf" 2>&1 &
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
  stop_process "$server_pid"
  server_pid=""
}

# stop_process PID: SIGTERM, then SIGKILL if it is still there after 6 s.
stop_process() {
  kill -TERM "$1" 2>/dev/null || true
  # shutdown_grace is 3 s; give it a little more, then insist.
  for _ in $(seq 1 60); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# -- the cluster group: its own redis-server and several nodes ------------------------------------

redis_pid=""
redis_port=""
node_pids=()

# start_redis NAME: a redis-server of our own on a free loopback port, in a directory under $out,
# with the persistence cluster mode's strict durability requires (AOF, fsync before every answer)
# and no RDB snapshots. Sets redis_pid and redis_port.
start_redis() {
  local name=$1 dir="$out/redis-$1" port
  mkdir -p "$dir"
  for _ in $(seq 1 20); do
    port=$(( 20000 + RANDOM % 30000 ))
    # A port something listens on already is not free.
    ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && continue
    redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save "" --appendonly yes \
      --appendfsync always --daemonize no --logfile "$dir/redis.log" >/dev/null 2>&1 &
    redis_pid=$!
    for _ in $(seq 1 50); do
      redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG && { redis_port=$port; break 2; }
      kill -0 "$redis_pid" 2>/dev/null || break
      sleep 0.1
    done
    stop_process "$redis_pid"
    redis_pid=""
  done
  [[ -n $redis_port ]] || { log "redis-server did not start (see $dir/redis.log)"; exit 1; }
  log "redis $name: pid $redis_pid, port $redis_port, dir $dir"
}

stop_redis() {
  [[ -n $redis_pid ]] || return 0
  stop_process "$redis_pid"
  redis_pid=""
  redis_port=""
}

stop_nodes() {
  local pid
  for pid in "${node_pids[@]}"; do stop_process "$pid"; done
  node_pids=()
}

stop_everything() {
  stop_server
  stop_nodes
  stop_redis
}
trap stop_everything EXIT

# bench_on_fresh_cluster LABEL MODE NODES BENCH [options...]: like bench_on_fresh_server, but with
# MODE "single" one node in the default single mode (SQLite), with MODE "redis" a fresh redis-server
# and NODES nodes in cluster mode on it (node ids a, b, ...). The benchmark gets every node's port
# (--ports, its clients spread round-robin) and pid (--pid: their CPU together).
bench_on_fresh_cluster() {
  local label=$1 mode=$2 nodes=$3 bench=$4; shift 4
  local cluster_args=() ports=() pids=() k node node_ids=(a b c d)
  if [[ $mode == redis ]]; then
    start_redis "$label"
    cluster_args=(--cluster.mode=redis --cluster.redis="127.0.0.1:$redis_port")
  fi
  for (( k = 0; k < nodes; ++k )); do
    node=${node_ids[k]}
    if [[ $mode == redis ]]; then
      # shellcheck disable=SC2086 # SERVER_EXTRA is a list of words on purpose
      start_server "$label-$node" ${SERVER_EXTRA:-} "${cluster_args[@]}" --cluster.node_id="$node"
    else
      # shellcheck disable=SC2086
      start_server "$label-$node" ${SERVER_EXTRA:-}
    fi
    node_pids+=("$server_pid")
    pids+=("$server_pid")
    ports+=("$server_port")
    server_pid=""  # owned by node_pids now
  done
  local rc=0 joined_ports joined_pids
  joined_ports=$(IFS=,; echo "${ports[*]}")
  joined_pids=$(IFS=,; echo "${pids[*]}")
  log "$label: $bench --ports $joined_ports $*"
  "$build/$bench" --host 127.0.0.1 --ports "$joined_ports" --pid "$joined_pids" "$@" 2>&1 |
    tee "$out/$label.txt" || rc=$?
  if [[ -n $redis_pid ]]; then
    # What Redis did meanwhile, for the README: its CPU (user+sys seconds) and commands.
    { echo "redis CPU seconds (user+sys, whole run): $(awk -v hz="$(getconf CLK_TCK)" '{print ($14+$15)/hz}' "/proc/$redis_pid/stat")"
      redis-cli -h 127.0.0.1 -p "$redis_port" info commandstats | grep -E 'evalsha|xread|xadd' || true
    } | tee -a "$out/$label.txt"
  fi
  stop_nodes
  stop_redis
  record "$label" "$rc" "$out/$label.txt"
}

# bench_on_fresh_server LABEL BENCH [options...]: one benchmark against its own server; its output
# goes to $out/LABEL.txt and its RESULT lines to the summary. SERVER_EXTRA (a string of
# --section.key=value words) is passed to that server only.
bench_on_fresh_server() {
  local label=$1 bench=$2; shift 2
  # shellcheck disable=SC2086 # SERVER_EXTRA is a list of words on purpose
  start_server "$label" ${SERVER_EXTRA:-}
  local rc=0
  log "$label: $bench $*"
  "$build/$bench" --host 127.0.0.1 --port "$server_port" --pid "$server_pid" "$@" 2>&1 | tee "$out/$label.txt" || rc=$?
  stop_server
  record "$label" "$rc" "$out/$label.txt"
}

# record LABEL RC FILE: appends "LABEL rc=RC RESULT ..." per RESULT line (or a note that none came).
record() {
  local label=$1 rc=$2 file=$3
  if grep -q '^RESULT' "$file"; then
    grep '^RESULT' "$file" | sed "s/^/$label rc=$rc /" >>"$out/summary"
  else
    echo "$label rc=$rc RESULT missing" >>"$out/summary"
  fi
}

run_store() {
  local label=$1; shift
  local rc=0
  log "$label: store_bench $*"
  "$build/store_bench" --messages 100000 "$@" >"$out/$label.txt" 2>&1 || rc=$?
  record "$label" "$rc" "$out/$label.txt"
}

# Counts the server's syscalls during the sending phase of one fan-out run (attached only after
# every member joined: under strace the old server's N^2 join-time presence frames take minutes).
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
  record "profile-$tool" 0 "$out/fanout-$tool.txt"
}

# -- the summary table ----------------------------------------------------------------------------

# field KEY LINE: the value of KEY=value in a RESULT line ("?" if absent).
field() {
  local v
  v=$(grep -o " $1=[^ ]*" <<<"$2" | head -1 | cut -d= -f2-)
  echo "${v:-?}"
}

row() { printf '  %-30s %-96s %s\n' "$1" "$2" "$3"; }

summarize() {
  echo
  echo "summary: server $server_bin ($(git rev-parse --short HEAD 2>/dev/null) bench tree), $(nproc) cores," \
    "$(date -u +%Y-%m-%dT%H:%MZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  row "benchmark" "measured" "target"
  row "---------" "--------" "------"
  local line label rc status
  while IFS= read -r line; do
    label=${line%% *}
    rc=$(field rc "$line")
    status=""
    [[ $rc == 0 ]] || status="  (exit $rc)"
    if [[ $line == *"RESULT missing"* ]]; then
      row "$label" "no result (see $out/$label.txt)$status" ""
      continue
    fi
    case $line in
      *"RESULT churn "*)
        row "$label" "$(field sessions_per_s "$line") sessions/s, failed $(field failed "$line"), p99 $(field p99_ms "$line") ms, $(field server_cpu_us_per_session "$line") us CPU/session$status" \
          "$([[ $label == churn-one-room ]] && echo '>= 5,000 sessions/s')" ;;
      *"RESULT storm "*)
        if [[ $(field complete "$line") == 1 ]]; then
          if [[ $(field rooms "$line") == distinct ]]; then
            row "$label" "$(field joins_per_s "$line") setups/s ($(field clients "$line") in $(field all_joined_s "$line") s)$status" ">= 3,000/s"
          else
            row "$label" "all joined $(field all_joined_s "$line") s, all counts = N $(field all_counted_s "$line") s$status" "<= 10 s"
          fi
        elif [[ $(field rooms "$line") == distinct && $(field all_answered_s "$line") != -1.00 ]]; then
          row "$label" "$(field joins_per_s "$line") setups/s, but $(field failed_joins "$line") of $(field clients "$line") joins FAILED$status" ">= 3,000/s"
        else
          row "$label" "DID NOT FINISH: joined $(field joined "$line")/$(field clients "$line"), $(field failed_joins "$line") failed, $(field views_at_target "$line") see N (median view $(field view_median "$line"))" \
            "$([[ $(field rooms "$line") == distinct ]] && echo '>= 3,000/s' || echo '<= 10 s')" ;
        fi ;;
      *"RESULT storm_churn "*)
        if [[ $(field skipped "$line") == 1 ]]; then
          row "$label-churn" "not run (the room never reached N)" "p99 <= 50 ms"
        else
          row "$label-churn" "p50 $(field p50_ms "$line") ms, p99 $(field p99_ms "$line") ms, lost $(field lost "$line")/$(field expected "$line")$status" "p99 <= 50 ms, none lost"
        fi ;;
      *"RESULT fanout_sweep "*)
        if [[ $(field passed_steps "$line") == 0 ]]; then
          row "$label" "NO STEP PASSED, not even at 1 msg/s$status" "$([[ $label == fanout-sweep ]] && echo '>= 2.5x baseline')"
        else
          row "$label" "max $(field max_deliveries_per_s "$line") deliveries/s at p99 <= 50 ms, nothing lost ($(field max_msgs_per_s "$line") msg/s, p99 $(field p99_ms_at_max "$line") ms$([[ $(field stepped_down "$line") == 1 ]] && echo ', below the start rate'))$status" "$([[ $label == fanout-sweep ]] && echo '>= 2.5x baseline')"
        fi ;;
      *"RESULT fanout "*)
        row "$label" "$(field deliveries_per_s "$line") deliveries/s, p50 $(awk -v us="$(field p50_us "$line")" 'BEGIN { printf "%.1f", us / 1000 }') ms, p99 $(awk -v us="$(field p99_us "$line")" 'BEGIN { printf "%.1f", us / 1000 }') ms, $(field server_cpu_us_per_delivery "$line") us CPU/delivery$status" "" ;;
      *"RESULT idle "*)
        if [[ $(field room_size "$line") == 0 ]]; then
          row "$label" "ready $(field ready "$line")/$(field clients "$line"), RSS $(field rss_after_mb "$line") MB, $(field kib_per_conn "$line") KiB/conn, idle CPU $(field idle_cpu_pct "$line") %$status" "RSS <= 100 MB"
        else
          row "$label" "$(field kib_per_conn "$line") KiB/conn, idle CPU $(field idle_cpu_pct "$line") % of a core (ready $(field ready "$line")/$(field clients "$line"))$status" "<= 4 KiB/conn, <= 2 %"
        fi ;;
      *"RESULT inbound_flood "*)
        row "$label-$(field kind "$line")" "server RSS +$(field max_rss_growth_mib "$line") MiB at most while $(field mib_written "$line") MiB were written$([[ $(field closed_by_server "$line") == 1 ]] && echo ', then closed by the server')$status" "a few MiB" ;;
      *"RESULT inbound_flood_worst "*) ;;
      *"RESULT store "*)
        row "$label" "$(field messages_per_s "$line") messages/s, added p99 $(field p99_us "$line") us (this tree's store)$status" "" ;;
      *) row "$label" "${line#* RESULT }" "" ;;
    esac
  done <"$out/summary"
  echo "  (logs and full outputs: $out)"
}

main() {
  [[ -n ${SKIP_BUILD:-} ]] || build_all
  [[ -x $server_bin ]] || { log "no server binary at $server_bin"; exit 1; }
  # One descriptor per client in the benchmark and one per connection in the server.
  ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  log "server $server_bin, config $server_config; results and logs in $out"
  log "ports: ip_local_port_range $(tr '\t' ' ' </proc/sys/net/ipv4/ip_local_port_range), tcp_tw_reuse $(cat /proc/sys/net/ipv4/tcp_tw_reuse), fd limit $(ulimit -n)"
  : >"$out/summary"
  local started=$SECONDS
  if selected churn; then
    # 50 sessions at a time, each connect/join/send/own echo/close, all in one room.
    bench_on_fresh_server churn-one-room churn_bench --concurrency 50 --rooms 1 --seconds "$churn_seconds" --warmup 2
    # The same spread over 100 rooms (the load the thread defaults were chosen on as well).
    bench_on_fresh_server churn-100-rooms churn_bench --concurrency 50 --rooms 100 --seconds "$churn_seconds" --warmup 2
    # Connection setup and teardown: a new room per session, no message.
    bench_on_fresh_server churn-unique-rooms churn_bench --concurrency 50 --unique-rooms --no-send --seconds "$churn_seconds" --warmup 2
  fi
  if selected storm; then
    # Connection setup alone: clients that stay, each joining a room of its own.
    bench_on_fresh_server setup-distinct-rooms join_storm_bench --clients "$setup_clients" --distinct-rooms --timeout 60
    # 10,000 into one room, then 100 joins + 100 leaves per second while one member sends 10/s.
    bench_on_fresh_server storm join_storm_bench --clients "$storm_clients" --timeout "$storm_timeout" \
      --churn-per-second 100 --message-rate 10 --seconds 20
    # The reference for the line above: the same room and messages without churn, so the difference
    # is what joins and leaves cost the messages.
    bench_on_fresh_server storm-still join_storm_bench --clients "$storm_clients" --timeout "$storm_timeout" \
      --churn-per-second 0 --message-rate 10 --seconds 20
  fi
  if selected fanout; then
    bench_on_fresh_server fanout-sweep fanout_bench --members "$members" --senders 1 --size "$size" --sweep \
      --rate 10 --step-seconds 3 --timeout 50
    bench_on_fresh_server fanout-w1-latency fanout_bench --members "$members" --messages 200 --size "$size" --senders 1 --window 1 --timeout 50
    bench_on_fresh_server fanout-w32 fanout_bench --members "$members" --messages "$messages" --size "$size" --senders 1 --window 32 --timeout 50
  fi
  if selected inbound; then
    # One client writing each kind of frame as fast as it can; the abuse limit is lifted too, or the
    # server would close it after a few bad frames (which is the defence, but not the measurement).
    SERVER_EXTRA="--connection.abuse_limit=1000000000 ${SERVER_EXTRA:-}" \
      bench_on_fresh_server inbound-flood inbound_flood_bench --seconds 5
  fi
  if selected idle; then
    bench_on_fresh_server "idle-${idle_clients}-rooms-of-${idle_room_size}" idle_memory_bench --clients "$idle_clients" \
      --room-size "$idle_room_size" --idle-seconds 10 --timeout 90
    bench_on_fresh_server "idle-${max_clients}-no-room" idle_memory_bench --clients "$max_clients" --room-size 0 \
      --idle-seconds 10 --timeout 90
  fi
  if selected store; then
    # The store alone (this tree's code, linked in; PARLEY_BIN does not change it): persisted
    # messages/s and the latency a commit adds, one busy room vs many.
    run_store "store-1-room" --rooms 1 --inflight 256
    run_store "store-100-rooms" --rooms 100 --inflight 256
    # The whole server at its message rate: two members, so fan-out costs little and every
    # message is a commit.
    bench_on_fresh_server fanout-m2-s2-w256 fanout_bench --members 2 --senders 2 --window 256 --messages 60000 --size "$size" --timeout 50
  fi
  if selected cluster; then
    # One room of 1,000 members: on one node in single mode (SQLite, the baseline), on one node in
    # cluster mode (every message through Redis: the append script, then the feed's XREAD), and
    # spread over two cluster nodes (each fans out to its half). Redis: AOF, fsync always.
    local layout mode nodes
    for layout in single:single:1 redis1:redis:1 redis2:redis:2; do
      IFS=: read -r layout mode nodes <<<"$layout"
      bench_on_fresh_cluster "cluster-$layout-sweep" "$mode" "$nodes" fanout_bench --members "$members" \
        --senders 1 --size "$size" --sweep --rate 10 --step-seconds 3 --timeout 50
      bench_on_fresh_cluster "cluster-$layout-w1-latency" "$mode" "$nodes" fanout_bench --members "$members" \
        --messages 200 --size "$size" --senders 1 --window 1 --timeout 50
      # The same path without the fan-out: two members (on two nodes, one each), one message at a
      # time, so the latency is the store's (or Redis's) round trips and the hops, not 1,000 writes.
      bench_on_fresh_cluster "cluster-$layout-m2-w1" "$mode" "$nodes" fanout_bench --members 2 \
        --messages 1000 --size "$size" --senders 1 --window 1 --timeout 50
      # And the message rate when every message is an append (two senders, 256 in flight each, as
      # fanout-m2-s2-w256 in the store group): SQLite groups commits, Redis takes one append (and
      # one fsync) per round trip of each node's store.
      bench_on_fresh_cluster "cluster-$layout-m2-w256" "$mode" "$nodes" fanout_bench --members 2 \
        --senders 2 --window 256 --messages 10000 --size "$size" --timeout 50
    done
  fi
  [[ -z ${PROFILE:-} ]] || profile_syscalls "$PROFILE"
  log "benchmarks took $(( SECONDS - started )) s"
  summarize
}

main "$@"
