#!/usr/bin/env bash
# Installs what the build needs, builds Fern with warnings as errors, and runs the default
# test suite (everything but the "soak" and "fuzz" labels). Extra arguments go to ctest.
# FERN_BUILD_DIR picks the build directory (default: build).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${FERN_BUILD_DIR:-build}"

scripts/install-deps.sh
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERN_WERROR=ON
cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" -LE "soak|fuzz" --output-on-failure -j "$(nproc)" "$@"
