#!/usr/bin/env bash
# Installs what the libFuzzer targets in tests/fuzz need from Debian 12: clang 14, its runtime
# libraries (libclang-rt-14-dev holds libFuzzer and the sanitizer runtimes; clang only recommends
# it, and the install is done without recommends), and llvm-14 for llvm-symbolizer, so that a crash
# found in CI prints a readable stack. Does nothing when they are installed already.
set -euo pipefail
exec "$(dirname "$0")/install-deps.sh" clang libclang-rt-14-dev llvm-14
