#!/usr/bin/env bash
# Installs what the browser tests in tests/web need from Debian: the chromium package, driven by
# playwright-core through executablePath=/usr/bin/chromium (playwright never downloads a browser
# here). Node 20 and npm are expected on the machine already; the npm packages are installed by
# tests/web/run.sh. Does nothing when chromium is already installed.
set -euo pipefail
exec "$(dirname "$0")/install-deps.sh" chromium
