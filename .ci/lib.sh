# Shared helpers for the .ci/ scripts (sourced, not run).
# Everything here works as root (CI) or as a user with sudo (a developer machine).
set -euo pipefail

SAE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SAE_CI_DIR=${SAE_CI_DIR:-$SAE_ROOT/build-ci}
SAE_JOBS=${SAE_JOBS:-$(nproc 2>/dev/null || echo 2)}
# The python3 first on PATH may be a private interpreter without numpy; Debian's has it.
SAE_PYTHON=${SAE_PYTHON:-/usr/bin/python3}

# Debian 12 packages the build, the tests, the docs and the ABI check need (clang with
# its runtime libraries builds the libFuzzer harnesses that ctest sae.io_fuzz runs;
# valgrind is for .ci/memcheck.sh).
SAE_DEPS=(build-essential cmake pkg-config libblas-dev libopenblas-dev libcmocka-dev
          python3 python3-numpy python3-cffi python3-pytest doxygen abigail-tools
          clang libclang-rt-dev valgrind)

sae_log() { printf '\n==> %s\n' "$*"; }

sae_as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

sae_missing_deps() {
  local p
  for p in "${SAE_DEPS[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
  done
}

# sae_install_deps always|missing: apt-get update + install (always, or only when
# something is missing). Non-interactive: no prompts, no stdin needed.
sae_install_deps() {
  local missing
  missing=$(sae_missing_deps | tr '\n' ' ')
  if [ "$1" = missing ] && [ -z "${missing// /}" ]; then
    return 0
  fi
  sae_log "installing Debian packages: ${missing:-${SAE_DEPS[*]}}"
  sae_as_root env DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Retries=3 update -q </dev/null
  sae_as_root env DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Retries=3 install -y -q \
    --no-install-recommends \
    "${SAE_DEPS[@]}" </dev/null
}

# sae_configure <build dir> [cmake args...]
sae_configure() {
  local dir=$1; shift
  cmake -S "$SAE_ROOT" -B "$dir" -DSAE_WERROR=ON "$@"
}

sae_build() {
  cmake --build "$1" --parallel "$SAE_JOBS"
}

# A pkg-config module for Debian's reference BLAS (package libblas3). Its library has the
# same SONAME (libblas.so.3) as OpenBLAS's libblas, and the alternatives system usually
# points at OpenBLAS, so we link the reference copy by its own directory; CMake's build
# RUNPATH then makes the build tree load exactly that file. Nothing system-wide changes.
sae_refblas_module() {
  local ma refdir pcdir=$SAE_CI_DIR/pkgconfig
  ma=$(gcc -print-multiarch 2>/dev/null || dpkg-architecture -qDEB_HOST_MULTIARCH)
  refdir=/usr/lib/$ma/blas
  if [ ! -e "$refdir/libblas.so" ]; then
    echo "reference BLAS not found in $refdir (install libblas-dev)" >&2
    return 1
  fi
  mkdir -p "$pcdir"
  cat >"$pcdir/sae-refblas.pc" <<PC
Name: sae-refblas
Description: Debian reference BLAS with CBLAS (libblas3), chosen by directory
Version: 3
Libs: -L$refdir -lblas
Cflags:
PC
  echo "$pcdir"
}

# sae_build_info <libsae.so>: the library's own account of the BLAS it is running.
sae_build_info() {
  "$SAE_PYTHON" - "$1" <<'PY'
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
lib.sae_build_info.restype = ctypes.c_char_p
print(lib.sae_build_info().decode())
PY
}

# sae_pytest <libsae.so> [pytest args]: the Python binding's tests against one library.
# pytest exit 5 ("no tests collected") means the suite was not found: a failure here.
sae_pytest() {
  local lib=$1; shift
  local rc=0
  SAE_LIBRARY=$lib "$SAE_PYTHON" -m pytest -q -p no:cacheprovider \
    "$SAE_ROOT/bindings/python/tests" "$@" || rc=$?
  if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests: the Python test suite is missing" >&2
  fi
  return "$rc"
}
