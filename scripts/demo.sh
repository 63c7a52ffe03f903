#!/usr/bin/env bash
# Fern's main job for a newcomer: installs what the build needs (and the RocksDB and LMDB
# peers), builds fernbench and runs the WORKLOADS.md workloads on a small data set, side by
# side with the peers, printing the CSV lines and the ratio table. Extra arguments go to
# fernbench (e.g. --n 2000000 --cache_mb 64 for the full-size run).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${FERN_BUILD_DIR:-build}"

scripts/install-deps.sh --peers
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build" -j "$(nproc)" --target fernbench
exec "$build/bench/fernbench" --n 200000 --cache_mb 16 "$@"
