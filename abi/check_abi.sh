#!/usr/bin/env bash
# ABI gate (ctest sae.abi): compare a freshly built libsae.so against the committed
# baseline abi/libsae.abi with libabigail's abidiff.
#   abi/check_abi.sh <path to libsae.so built with -g>
# Allowed: added functions (and changes inside the opaque handles' private structs, which
# abidiff filters because they are defined outside the public headers). Anything else
# fails: removed or changed functions or variables, removed symbols, and abidiff's own
# error/incompatible bits (exit status bit field: 1 error, 2 usage, 4 change, 8
# incompatible). Public types include the fixed-width integer typedefs of <stdint.h>,
# hence /usr/include among the public header directories.
# After a deliberate, documented change (docs/abi.md), refresh the baseline with
# abi/update_baseline.sh.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
lib=${1:?usage: check_abi.sh <libsae.so>}
baseline=$here/libsae.abi
[ -f "$baseline" ] || { echo "no baseline at $baseline" >&2; exit 1; }

report=$(abidiff --headers-dir2 "$root/include/sae" --headers-dir2 /usr/include \
                 --fail-no-debug-info --suppressions "$here/libsae.abignore" \
                 "$baseline" "$lib")
rc=$?
[ -n "$report" ] && echo "$report"
if (( rc & ~4 )); then
  (( rc & 1 )) && echo "ABI: abidiff failed (error)" >&2
  (( rc & 2 )) && echo "ABI: abidiff usage error" >&2
  (( rc & 8 )) && echo "ABI: INCOMPATIBLE change against abi/libsae.abi (see docs/abi.md)" >&2
  exit 1
fi
# "Functions changes summary: 0 Removed, 1 Changed (2 filtered out), 3 Added functions"
bad=$(grep -E '^(Functions|Variables|Function symbols|Variable symbols) changes summary' <<<"$report" |
      grep -Ev 'summary: 0 Removed, 0 Changed[^,]*, [0-9]+ Added|summary: 0 Removed, [0-9]+ Added' || true)
if [ -n "$bad" ]; then
  echo "ABI: removed or changed interfaces against abi/libsae.abi (see docs/abi.md):" >&2
  echo "$bad" >&2
  exit 1
fi
if (( rc == 0 )); then
  echo "ABI: identical to the baseline abi/libsae.abi"
else
  echo "ABI: compatible additions only; refresh abi/libsae.abi when releasing them"
fi
exit 0
