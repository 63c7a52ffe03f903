#!/usr/bin/env bash
# Installs a built Fern into a scratch prefix, then builds examples/basic.cc against it the
# two ways API.md promises (pkg-config and find_package) and runs both programs.
# Usage: scripts/check-install.sh BUILD_DIR
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "$1" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/prefix" >/dev/null
for f in include/fern/fern.h lib/libfern.a lib/cmake/fern/fernConfig.cmake \
         lib/pkgconfig/fern.pc bin/ftdump bin/ftverify bin/fern; do
  [[ -e "$work/prefix/$f" ]] || { echo "missing after install: $f"; exit 1; }
done

export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
# The user picks the standard (API.md: -std=c++20 or later); flags that set one would
# override theirs.
if pkg-config --cflags fern | grep -q -- '-std='; then
  echo "fern.pc sets a C++ standard: $(pkg-config --cflags fern)"; exit 1
fi
g++ -std=c++20 "$root/examples/basic.cc" -o "$work/basic-pkgconfig" \
    $(pkg-config --cflags --libs --static fern)
"$work/basic-pkgconfig" "$work/env-pkgconfig"

cmake -S "$root/examples/consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/consumer" >/dev/null
"$work/consumer/basic" "$work/env-cmake"

"$work/prefix/bin/ftverify" "$work/env-cmake/table-1.ft"
echo "install check passed"
