#!/usr/bin/env bash
# Write abi/libsae.abi from a libsae.so built with debug info, e.g.
#   cmake -S . -B build-abi -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build-abi
#   abi/update_baseline.sh build-abi/lib/libsae.so.0
# Only types reachable from the public headers are recorded; no build paths are stored.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
lib=${1:?usage: update_baseline.sh <libsae.so>}
abidw --headers-dir "$root/include/sae" --no-corpus-path --no-comp-dir-path --short-locs \
      --drop-undefined-syms --out-file "$here/libsae.abi" "$lib"
abidiff --headers-dir2 "$root/include/sae" "$here/libsae.abi" "$lib" >/dev/null
echo "wrote $here/libsae.abi ($(grep -c '<elf-symbol' "$here/libsae.abi") ELF symbols)"
