#!/usr/bin/env bash
# Build the libFuzzer harnesses of lib/io with clang, AddressSanitizer and UBSan:
#   tests/fuzz/build.sh [--seeds]
# The library is built from this tree as a static archive instrumented for coverage
# (-fsanitize=fuzzer-no-link), then each tests/fuzz/fuzz_<target>.c is linked with
# -fsanitize=fuzzer. --seeds also regenerates tests/fuzz/corpus/ with make_seeds.
# Output: $SAE_FUZZ_DIR (default build-fuzz/ at the repository root).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${SAE_FUZZ_DIR:-$root/build-fuzz}
cc=${SAE_FUZZ_CC:-clang}
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
command -v "$cc" >/dev/null || { echo "build.sh: $cc not found" >&2; exit 3; }

cmake -S "$root" -B "$out/lib" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link $san" \
  -DSAE_BUILD_TESTS=OFF -DSAE_BUILD_EXAMPLES=OFF -DSAE_OPENMP=OFF -DSAE_BLAS="${SAE_BLAS:-blas}" >/dev/null
cmake --build "$out/lib" --target sae_internal -j"$(nproc)" >/dev/null
lib="$out/lib/lib/libsae_internal.a"
blas=$(pkg-config --libs "${SAE_BLAS:-blas}" 2>/dev/null || echo -lblas)
for t in config toy model trainer safetensors; do
  "$cc" -g -O1 -fsanitize=fuzzer $san -I"$root/include" -I"$root/lib" \
    "$here/fuzz_$t.c" "$lib" $blas -lm -o "$out/fuzz_$t"
done
if [ "${1:-}" = "--seeds" ]; then
  "$cc" -g -O1 -fsanitize=fuzzer-no-link $san -I"$root/include" "$here/make_seeds.c" "$lib" $blas -lm \
    -o "$out/make_seeds"
  rm -rf "$here/corpus"
  mkdir -p "$here/corpus"
  "$out/make_seeds" "$here/corpus"
fi
echo "$out"
