#!/usr/bin/env bash
# Installs the Debian packages Fern builds with, skipping those already present.
# Usage: scripts/install-deps.sh [--peers] [--fuzz]
#   --peers adds RocksDB and LMDB for fernbench
#   --fuzz  adds Clang and its runtime libraries (libFuzzer, sanitizers) for scripts/fuzz.sh
set -euo pipefail

packages=(cmake ninja-build g++ pkg-config libzstd-dev zlib1g-dev liblzma-dev libsnappy-dev
          libxxhash-dev libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev)
for arg in "$@"; do
  case "$arg" in
    --peers) packages+=(librocksdb-dev liblmdb-dev) ;;
    --fuzz)
      # The runtime must match the clang++ that builds: Debian ships it per major version.
      if command -v clang++ >/dev/null; then
        major=$(clang++ -dumpversion | cut -d. -f1)
        packages+=("libclang-rt-${major}-dev")
      else
        packages+=(clang libclang-rt-dev)
      fi
      ;;
    *) echo "install-deps.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

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
