#!/bin/bash
# Docker HEALTHCHECK for Parley: GET /healthz on 127.0.0.1 and succeed only on a 200 answer.
# Plain bash (/dev/tcp), since the runtime image carries no curl. PARLEY_HEALTH_PORT picks the
# port (8080 by default); Parley must serve plain HTTP there ([tls] off, e.g. behind nginx).
set -euo pipefail
port="${PARLEY_HEALTH_PORT:-8080}"
if ! exec 3<>"/dev/tcp/127.0.0.1/${port}"; then
  echo "unhealthy: nothing listens on 127.0.0.1:${port}"
  exit 1
fi
printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
status=""
IFS= read -r -t 3 status <&3 || true
case "${status}" in
  "HTTP/1.1 200 "*) exit 0 ;;
  *) echo "unhealthy: /healthz answered '${status%$'\r'}'"; exit 1 ;;
esac
