#!/usr/bin/env bash
# ThreadSanitizer run: the concurrency test (tests/test_threads.c: several threads doing
# const operations on one shared model and toy) and the rest of the unit tests, built
# with CMAKE_BUILD_TYPE=TSAN. OpenMP is off (libgomp is not instrumented and would
# report its own internals); the library's other threads are ours and are checked.
#   bash .ci/tsan.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
sae_install_deps missing
cd "$SAE_ROOT"
dir=$SAE_CI_DIR/tsan
pcdir=$(sae_refblas_module)
export PKG_CONFIG_PATH="$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"

sae_log "TSan: configure + build ($dir)"
sae_configure "$dir" -DCMAKE_BUILD_TYPE=TSAN -DSAE_BLAS=sae-refblas -DSAE_OPENMP=OFF \
  -DSAE_BUILD_EXAMPLES=OFF
sae_build "$dir"
sae_log "TSan: ctest -L unit (halt on the first race)"
# Some kernels refuse TSan's fixed memory layout with high ASLR entropy; rerun without ASLR.
runner=()
if ! "$dir/tests/test_core" >/dev/null 2>&1; then
  if command -v setarch >/dev/null; then runner=(setarch "$(uname -m)" -R); fi
fi
(cd "$dir" && TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1} \
   "${runner[@]}" ctest --output-on-failure -L unit)
sae_log "TSan: clean"
