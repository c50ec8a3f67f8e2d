#!/usr/bin/env bash
# Installs what the operations tests need from Debian: promtool, from the `prometheus` package
# (tests/metrics_catalogue_test.cpp runs `promtool check metrics` on Parley's /metrics output).
#
# The package also ships the Prometheus server, which Debian would start and enable at once,
# listening on :9090 (where Parley's admin listener lives by default). Nothing here needs that
# daemon: service starts are refused during the install (policy-rc.d, unless the machine already
# has one), and if systemd runs, the unit is stopped and disabled afterwards.
# Does nothing when prometheus is already installed.
set -euo pipefail

if dpkg-query -W -f='${Status}' prometheus 2>/dev/null | grep -q "install ok installed"; then
  exit 0
fi

sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi

policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# installed by parley scripts/install-ops-deps.sh for one apt-get run\nexit 101\n' |
    $sudo_cmd tee "$policy" >/dev/null
  $sudo_cmd chmod 755 "$policy"
  own_policy=1
fi
remove_policy() { [ "$own_policy" = 1 ] && $sudo_cmd rm -f "$policy"; return 0; }
trap remove_policy EXIT

"$(dirname "$0")/install-deps.sh" prometheus

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  $sudo_cmd systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi
command -v promtool >/dev/null || { echo "promtool is still missing after installing prometheus" >&2; exit 1; }
