#!/usr/bin/env bash
# Runs the tests of the browser page: tests/web/run.sh <path-to-parley-binary> <repo-root>
# Installs the npm packages when missing and chromium (Debian's, via
# scripts/install-web-test-deps.sh) when missing, then runs every *.test.mjs with Node's test
# runner. The exit code is the test result.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 <path-to-parley-binary> <repo-root>" >&2
  exit 2
fi
if [ ! -x "$1" ] || [ ! -f "$2/config.ini" ]; then
  echo "run.sh: need an executable parley binary ($1) and the repository root ($2)" >&2
  exit 2
fi
binary=$(realpath "$1")
repo=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)

if [ ! -x /usr/bin/chromium ]; then
  "$repo/scripts/install-web-test-deps.sh"
fi

cd "$here"
if [ ! -d node_modules/playwright-core ]; then
  # The lock file pins exact versions; fall back to a plain install if it cannot be used.
  npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error
fi

mkdir -p artifacts
export PARLEY_BINARY="$binary" PARLEY_REPO="$repo"
# One file at a time: the browser tests start a server and chromium, and the machine is small.
exec node --test --test-concurrency=1 ./*.test.mjs
