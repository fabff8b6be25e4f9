#!/usr/bin/env bash
# Valgrind memcheck of the test suite: every ctest test whose command is a test executable
# runs under valgrind; any memory error or leak (definite, indirect or possible) fails.
#   bash .ci/memcheck.sh                 # every test executable (labels unit, slow, repro)
#   SAE_MEMCHECK_LABEL=unit bash .ci/memcheck.sh
# The long training tests run their reduced version (SAE_TEST_SCALE=small: fewer steps and
# seeds, the same code paths) so the whole suite fits under valgrind.
# SAE_JOBS tests run at once; SAE_MEMCHECK_ORIGINS=1 adds --track-origins; a test running
# longer than SAE_MEMCHECK_TIMEOUT seconds (default 7200) fails.
# Build tree: $SAE_CI_DIR/memcheck (RelWithDebInfo, reference BLAS, no OpenMP: the
# runtime's thread pool is not what we check). Logs: <build>/memcheck-logs/<test>.log
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
SAE_DEPS+=(valgrind)
sae_install_deps missing
cd "$SAE_ROOT"
label=${SAE_MEMCHECK_LABEL:-unit|slow|repro}
export SAE_TEST_SCALE=${SAE_TEST_SCALE:-small}
dir=$SAE_CI_DIR/memcheck
pcdir=$(sae_refblas_module)
export PKG_CONFIG_PATH="$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"

sae_log "memcheck: configure + build ($dir)"
sae_configure "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSAE_BLAS=sae-refblas \
  -DSAE_OPENMP=OFF -DSAE_BUILD_EXAMPLES=OFF
sae_build "$dir"

sae_log "memcheck: tests labelled '$label' under valgrind"
logs=$dir/memcheck-logs
rm -rf "$logs" && mkdir -p "$logs"
(cd "$dir" && ctest -L "$label" --show-only=json-v1) >"$logs/tests.json"
"$SAE_PYTHON" - "$logs" <<'PY'
import concurrent.futures as cf, json, os, subprocess, sys, time
logs = sys.argv[1]
jobs = int(os.environ.get("SAE_JOBS", "2"))
limit = float(os.environ.get("SAE_MEMCHECK_TIMEOUT", "7200"))
tests = json.load(open(os.path.join(logs, "tests.json")))["tests"]
vg = ["valgrind", "--tool=memcheck", "--error-exitcode=99", "--leak-check=full",
      "--show-leak-kinds=definite,indirect,possible",
      "--errors-for-leak-kinds=definite,indirect,possible", "--num-callers=30"]
if os.environ.get("SAE_MEMCHECK_ORIGINS", "0") == "1":
    vg.append("--track-origins=yes")  # where uninitialised values come from (about 2x slower)

def prop(t, name, default=None):
    return next((p["value"] for p in t.get("properties", []) if p["name"] == name), default)

def run(t):
    cmd = t["command"]
    env = dict(os.environ)
    for kv in prop(t, "ENVIRONMENT", []):
        k, _, v = kv.partition("=")
        env[k] = v
    log = os.path.join(logs, t["name"] + ".log")
    t0 = time.time()
    try:
        rc = subprocess.call(vg + ["--log-file=" + log] + cmd, cwd=prop(t, "WORKING_DIRECTORY"),
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             timeout=limit)
    except subprocess.TimeoutExpired:
        rc = "timeout"
    lines = open(log).readlines() if os.path.exists(log) else []
    summary = [l.split("== ", 1)[-1].strip() for l in lines if "ERROR SUMMARY" in l]
    return t["name"], rc, time.time() - t0, summary[-1] if summary else ""

runnable = []
for t in tests:
    cmd = t.get("command") or []
    if not cmd or os.path.basename(cmd[0]).startswith(("cmake", "ctest", "python", "sh", "bash")):
        print(f"  skip   {t['name']} (not a test executable)")
    else:
        runnable.append(t)
failed = []
with cf.ThreadPoolExecutor(max_workers=jobs) as pool:
    for name, rc, secs, summary in pool.map(run, runnable):
        status = "ok" if rc == 0 else f"FAIL rc={rc}"
        print(f"  {status:6s} {name:28s} {secs:7.1f}s  {summary}", flush=True)
        if rc != 0:
            failed.append(name)
print(f"memcheck: {len(runnable)} test executables, {len(failed)} failed {failed if failed else ''}")
sys.exit(1 if failed else 0)
PY
