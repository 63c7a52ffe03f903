#!/usr/bin/env bash
# Installs the Debian packages Fern builds with, skipping those already present.
# Usage: scripts/install-deps.sh [--peers]   (--peers adds RocksDB and LMDB for fernbench)
set -euo pipefail

packages=(cmake ninja-build g++ pkg-config libzstd-dev zlib1g-dev liblzma-dev libsnappy-dev
          libxxhash-dev libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev)
if [[ "${1:-}" == "--peers" ]]; then
  packages+=(librocksdb-dev liblmdb-dev)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
