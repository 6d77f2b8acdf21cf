#!/usr/bin/env bash
# Builds the libFuzzer decoder target with clang (+ASan/UBSan) and runs it
# for a bounded time: ci/fuzz.sh [seconds]. A crash fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
out=build-fuzz
mkdir -p "$out/corpus"
sources=(src/core/*.cc src/codec/*.cc test/fuzz/decode_fuzz.cc)
clang++ -std=c++17 -O1 -g -ffp-contract=off -DQCCL_NO_TARGET_CLONES=1 \
  -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=all -Iinclude -Isrc "${sources[@]}" -lspdlog -lfmt -lpthread \
  -o "$out/decode_fuzz"
# Seeds: one input of each mode so the run starts from valid payloads.
printf '\x01\x00\x01\x00\x20\x00\x00\x80\x3f\x00\x00\x00\xc0' > "$out/corpus/seed-encode"
printf '\x03\x01\x03\x01\x40\x00\x00\x80\x3f\xcd\xcc\x4c\x3e\x05\x00\x01' > "$out/corpus/seed-corrupt"
"$out/decode_fuzz" -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 \
  -artifact_prefix="$out/" \
  "$out/corpus" 2>&1 | tail -n 25
