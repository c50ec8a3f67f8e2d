#!/usr/bin/env bash
# Installs what the deployment tests need from Debian 12: python3-yaml for
# tests/deploy/check_docker.py, and nginx, which tests/e2e/nginx_test.cpp runs in the foreground
# on loopback ports with deploy/nginx/parley.conf. The tests never use a
# system nginx, so this makes sure the package leaves none running: its postinst would start
# nginx on port 80 (and enable it at boot). Does nothing when nginx is already installed.
set -euo pipefail

# tests/deploy/check_docker.py reads compose.yaml with PyYAML.
"$(dirname "$0")/install-deps.sh" python3 python3-yaml

if dpkg-query -W -f='${Status}' nginx 2>/dev/null | grep -q "install ok installed"; then
  exit 0
fi

sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi

# invoke-rc.d asks policy-rc.d whether a package may start its service; exit code 101 says no.
# Container images often ship such a file already; otherwise one is put there for this install.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# left by parley scripts/install-deploy-test-deps.sh for one install\nexit 101\n' |
    $sudo_cmd tee "$policy" >/dev/null
  $sudo_cmd chmod 755 "$policy"
  trap '$sudo_cmd rm -f "$policy"' EXIT
fi

"$(dirname "$0")/install-deps.sh" nginx

# Not at boot either. systemctl disable edits the unit links, with or without a running systemd.
if command -v systemctl >/dev/null 2>&1; then
  $sudo_cmd systemctl disable nginx.service >/dev/null 2>&1 || true
fi
# Should a service manager have started it after all, stop it (its pid file is Debian's).
if [ -d /run/systemd/system ]; then
  $sudo_cmd systemctl stop nginx.service || true
elif [ -s /run/nginx.pid ]; then
  $sudo_cmd /usr/sbin/nginx -s quit || true
fi
