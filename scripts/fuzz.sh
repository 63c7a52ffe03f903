#!/usr/bin/env bash
# Builds the libFuzzer targets with Clang, ASan and UBSan in build-fuzz/ and runs each for
# the given number of seconds (default 60) on a corpus seeded by fuzz_seeds.
# Usage: scripts/fuzz.sh [seconds]
# FERN_FUZZ_BUILD_DIR picks the build directory (default build-fuzz), FERN_JOBS the build
# parallelism (default: all cores). The corpora grow in <build>/tests/fuzz/corpus/<target>/;
# a crash leaves its input in <build>/tests/fuzz/artifacts/ and makes the script fail.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
build="${FERN_FUZZ_BUILD_DIR:-build-fuzz}"
targets=(block_table_fuzzer log_record_fuzzer node_fuzzer)

scripts/install-deps.sh --fuzz
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DFERN_FUZZ=ON -DFERN_BUILD_BENCH=OFF -DFERN_WERROR=ON
cmake --build "$build" -j "${FERN_JOBS:-$(nproc)}" --target fuzz_seeds "${targets[@]}"

fuzz_dir="$build/tests/fuzz"
"$fuzz_dir/fuzz_seeds" "$fuzz_dir/corpus"
mkdir -p "$fuzz_dir/artifacts"
status=0
for target in "${targets[@]}"; do
  echo "== $target: ${seconds}s"
  if ! "$fuzz_dir/$target" -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="$fuzz_dir/artifacts/$target-" "$fuzz_dir/corpus/$target"; then
    echo "== $target FAILED: reproduce with $fuzz_dir/$target <artifact>" >&2
    status=1
  fi
done
exit "$status"
