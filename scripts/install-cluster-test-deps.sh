#!/usr/bin/env bash
# Installs what the cluster tests need from Debian 12: redis-server (7.0), which tests/e2e starts
# itself in the foreground on a free loopback port with a scratch directory
# (tests/e2e/redis_process.hpp). The tests never use a system Redis, so this makes sure the
# package leaves none running: its postinst would start redis-server on port 6379 and enable it
# at boot. Safe to run again: the install is skipped when the package is there, and the steps that
# keep the system Redis disabled and stopped run every time (they change nothing the second time).
set -euo pipefail

sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi

if ! dpkg-query -W -f='${Status}' redis-server 2>/dev/null | grep -q "install ok installed"; then
  # invoke-rc.d asks policy-rc.d whether a package may start its service; exit code 101 says no.
  # Container images often ship such a file already; otherwise one is put there for this install.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# left by parley scripts/install-cluster-test-deps.sh for one install\nexit 101\n' |
      $sudo_cmd tee "$policy" >/dev/null
    $sudo_cmd chmod 755 "$policy"
    trap '$sudo_cmd rm -f "$policy"' EXIT
  fi
  "$(dirname "$0")/install-deps.sh" redis-server
fi

# Not at boot either. systemctl disable edits the unit links (and the SysV rc links through
# systemd-sysv-install), with or without a running systemd.
if command -v systemctl >/dev/null 2>&1; then
  $sudo_cmd systemctl disable redis-server.service >/dev/null 2>&1 || true
fi
# Should a service manager (or an earlier install by hand) have started it after all, stop it.
# Debian's /etc/redis/redis.conf daemonizes and writes this pid file.
if [ -d /run/systemd/system ]; then
  $sudo_cmd systemctl stop redis-server.service || true
fi
pidfile=/run/redis/redis-server.pid
if [ -s "$pidfile" ]; then
  pid="$(cat "$pidfile")"
  # Only when that pid really is redis-server (a stale file may name another process). Debian's
  # /usr/bin/redis-server is a symlink (to redis-check-rdb), so compare the resolved paths.
  if [ "$(readlink "/proc/$pid/exe" 2>/dev/null || true)" = "$(readlink -f /usr/bin/redis-server)" ]; then
    echo "stopping the system redis-server (pid $pid): the tests start their own"
    $sudo_cmd kill -TERM "$pid" || true
  fi
fi

command -v redis-server >/dev/null || { echo "redis-server is still missing after installing it" >&2; exit 1; }
