#!/usr/bin/env bash
# Installs the Debian 12 packages segnas builds, tests and benchmarks with,
# only when one is missing. Needs root (or sudo) the first time.
set -euo pipefail
packages=(build-essential cmake ninja-build pkg-config libdnnl-dev libpng-dev libjpeg62-turbo-dev
          libcjson-dev libomp-dev clang)
if [[ "${1:-}" == "--bench" ]]; then packages+=(python3-torch); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo_cmd=(); [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
fi
