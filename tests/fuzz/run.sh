#!/usr/bin/env bash
# Runs every libFuzzer target (or those named) for SECONDS each, one after the other, and fails if
# any of them finds a crash, a sanitizer report, a timeout or an out-of-memory input.
#
#   tests/fuzz/run.sh SECONDS [TARGET...]      e.g. tests/fuzz/run.sh 60 fuzz_codec
#
# Expects the targets built in $FUZZ_BUILD_DIR (default build-fuzz; `make build-fuzz`). The seed
# corpus tests/fuzz/corpus/<target>/ is copied to a scratch directory first, so the repository is
# never written; new inputs end up in $FUZZ_BUILD_DIR/fuzz-corpus/<target>/, crash inputs in
# $FUZZ_BUILD_DIR/fuzz-results/<target>/ and each run's log next to them.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="${FUZZ_BUILD_DIR:-build-fuzz}"
case "$build" in /*) ;; *) build="$repo/$build" ;; esac

if [ $# -lt 1 ] || ! [[ "$1" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 SECONDS [TARGET...]" >&2
  exit 2
fi
seconds="$1"
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(fuzz_codec fuzz_frame_parser fuzz_http_request fuzz_config fuzz_jwt)
fi

# Longest input per target: enough to cross every limit the server enforces there, short enough
# that libFuzzer stays fast. codec: 4 KiB of text plus JSON; frames: the parser is tested with a
# small message limit for "too big" (see fuzz_frame_parser.cpp); HTTP: past the 8 KiB header
# limit; config: config.ini itself is about 5 KiB.
max_len() {
  case "$1" in
    fuzz_codec) echo 8192 ;;
    fuzz_frame_parser) echo 8192 ;;
    fuzz_http_request) echo 12288 ;;
    fuzz_config) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# llvm-14 (scripts/install-fuzz-deps.sh) symbolizes sanitizer stacks; without it they are addresses.
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && [ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]; then
  export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
fi

failed=()
for target in "${targets[@]}"; do
  binary="$build/tests/fuzz/$target"
  if [ ! -x "$binary" ]; then
    echo "fuzz: $binary is missing; build it with 'make build-fuzz'" >&2
    exit 2
  fi
  corpus="$build/fuzz-corpus/$target"
  results="$build/fuzz-results/$target"
  rm -rf "$corpus"
  mkdir -p "$corpus" "$results"
  cp "$here/corpus/$target/"* "$corpus/"
  dict=()
  if [ -f "$here/$target.dict" ]; then
    dict=(-dict="$here/$target.dict")
  fi
  log="$results/run.log"
  start=$(date +%s)
  status=0
  # nice: the fuzzers share the machine with builds and other tests. Seeds first, then mutations.
  nice "$binary" -max_total_time="$seconds" -max_len="$(max_len "$target")" -rss_limit_mb=1024 \
    -timeout=10 -print_final_stats=1 -artifact_prefix="$results/" "${dict[@]}" "$corpus" \
    >"$log" 2>&1 || status=$?
  took=$(( $(date +%s) - start ))
  stats=$(grep -E '^#[0-9]+[[:space:]]+(DONE|INITED)' "$log" | tail -1 || true)
  if [ "$status" -ne 0 ]; then
    echo "fuzz: $target FAILED after ${took}s (exit $status); log: $log"
    tail -n 60 "$log"
    ls "$results"/crash-* "$results"/timeout-* "$results"/oom-* "$results"/leak-* 2>/dev/null || true
    failed+=("$target")
  else
    echo "fuzz: $target ok in ${took}s: $stats"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: found problems in: ${failed[*]}. Fix the bug, then keep the input as a regression" >&2
  echo "seed: cp <artifact> tests/fuzz/corpus/<target>/crash-<what> (tests/fuzz/README.md)." >&2
  exit 1
fi
