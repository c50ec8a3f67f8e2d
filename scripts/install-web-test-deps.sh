#!/usr/bin/env bash
# Installs what the browser tests in tests/web need from Debian: the chromium package, driven by
# playwright-core through executablePath=/usr/bin/chromium (playwright never downloads a browser
# here). Node 20 and npm are expected on the machine already; the npm packages are installed by
# tests/web/run.sh. Does nothing when chromium is already installed.
set -euo pipefail

if dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed" \
   && [ -x /usr/bin/chromium ]; then
  exit 0
fi

echo "installing: chromium"
sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo_cmd apt-get update -qq
$sudo_cmd apt-get install -y -qq --no-install-recommends chromium
