#!/usr/bin/env bash
# Installs the Debian 12 packages Parley needs to build and test, skipping what is already there.
# With arguments, installs just those packages the same way (scripts/install-web-test-deps.sh).
set -euo pipefail

packages=(
  cmake g++ make pkg-config
  libcaf-dev
  libboost1.81-dev
  nlohmann-json3-dev
  doctest-dev
  libssl-dev
  openssl
  libspdlog-dev
  libsqlite3-dev
  sqlite3
  libhiredis-dev
)
if [ $# -gt 0 ]; then
  packages=("$@")
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "installing: ${missing[*]}"
sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo_cmd apt-get update -qq
$sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
