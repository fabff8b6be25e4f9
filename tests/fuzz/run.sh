#!/usr/bin/env bash
# Short fuzz run of every lib/io loader, for CI (skipped when clang is missing):
#   tests/fuzz/run.sh <seconds per target>     e.g. tests/fuzz/run.sh 5
#   tests/fuzz/run.sh --runs <executions>      e.g. tests/fuzz/run.sh --runs 1000000
# Builds the harnesses (build.sh) unless SAE_FUZZ_SKIP_BUILD=1, fuzzes each target from a
# scratch copy of its seed corpus (tests/fuzz/corpus/<target>), prints the execution count
# of each and exits non-zero when any harness finds a crash, leak, overread or UB.
# Crash inputs are left in $SAE_FUZZ_DIR/artifacts/.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${SAE_FUZZ_DIR:-$root/build-fuzz}
cc=${SAE_FUZZ_CC:-clang}
if [ "${1:-}" = "--runs" ]; then
  limit="-runs=${2:?executions}"
else
  limit="-max_total_time=${1:-5}"
fi
if ! command -v "$cc" >/dev/null; then
  echo "fuzz: $cc not found, skipped"
  exit 0
fi
if [ "${SAE_FUZZ_SKIP_BUILD:-0}" != 1 ]; then
  "$here/build.sh" >"$out.build.log" 2>&1 || { cat "$out.build.log"; echo "fuzz: build failed" >&2; exit 1; }
fi
mkdir -p "$out/artifacts"
rc=0
for t in ${SAE_FUZZ_TARGETS:-config toy model trainer safetensors}; do
  work=$(mktemp -d)
  dict=()
  [ -f "$here/$t.dict" ] && dict=(-dict="$here/$t.dict")
  log="$out/fuzz_$t.log"
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
    "$out/fuzz_$t" "$limit" -print_final_stats=1 -rss_limit_mb=2048 -timeout=20 "${dict[@]}" \
    -artifact_prefix="$out/artifacts/${t}-" "$work" "$here/corpus/$t" >"$log" 2>&1
  status=$?
  execs=$(grep -o 'number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
  if [ $status -eq 0 ]; then
    echo "fuzz_$t: ${execs:-?} executions, no findings"
  else
    echo "fuzz_$t: FAILED after ${execs:-?} executions (log: $log)"
    grep -E 'ERROR|SUMMARY|runtime error' "$log" | head -5
    rc=1
  fi
  rm -rf "$work"
done
exit $rc
