#!/usr/bin/env bash
# Staging-install test (ctest sae.install).
#   test_install.sh <source dir> <work dir> <BLAS pkg-config module> [cmake] [C compiler]
# 1. builds libsae twice, in two different build directories, the way a distribution does
#    (CMAKE_BUILD_TYPE=None, the caller's CFLAGS/LDFLAGS only) and installs each into the
#    same staging prefix: the installed files must be byte-identical (no timestamps, no
#    build paths), carry no RPATH, and show that CFLAGS (-g) and LDFLAGS (-z now) were used;
# 2. builds examples/consumer against the staging prefix with `pkg-config --cflags --libs
#    sae` and with find_package(sae CONFIG), and runs both;
# 3. imports the installed Python package from the prefix (when python3-numpy is present);
# 4. repeats the consumer builds against a static libsae.
set -euo pipefail
src=$(cd "$1" && pwd)
work=$2
blas=${3:-blas}
cmake=${4:-cmake}
cc=${5:-cc}
python=${SAE_PYTHON:-/usr/bin/python3}
jobs=$(nproc 2>/dev/null || echo 2)

rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
prefix=$work/prefix
fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "-- $*"; }

# Distribution-style flags: debug info with the paths mapped away, hardening, BIND_NOW.
build_lib() { # <build dir> <shared ON|OFF> [extra cmake args]
  local b=$1 shared=$2; shift 2
  CFLAGS="-g -O2 -ffile-prefix-map=$src=. -ffile-prefix-map=$b=. -fstack-protector-strong -D_FORTIFY_SOURCE=2" \
  LDFLAGS="-Wl,-z,relro -Wl,-z,now" \
    "$cmake" -S "$src" -B "$b" -DCMAKE_BUILD_TYPE=None -DCMAKE_C_COMPILER="$cc" \
      -DCMAKE_INSTALL_PREFIX="$prefix" -DBUILD_SHARED_LIBS="$shared" -DSAE_BLAS="$blas" \
      -DSAE_BUILD_TESTS=OFF -DSAE_BUILD_EXAMPLES=OFF -DSAE_INSTALL_PYTHON=ON "$@" >"$b.configure.log" \
    || { cat "$b.configure.log"; fail "configure $b"; }
  "$cmake" --build "$b" --parallel "$jobs" >"$b.build.log" 2>&1 \
    || { cat "$b.build.log"; fail "build $b"; }
}
install_lib() { # <build dir>
  rm -rf "$prefix"
  "$cmake" --install "$1" >"$1.install.log" || { cat "$1.install.log"; fail "install $1"; }
}

# ---- 1. reproducible shared install --------------------------------------------------
build_lib "$work/build-a" ON
build_lib "$work/build-b" ON
install_lib "$work/build-a"
cp -a "$prefix" "$work/prefix-a"
install_lib "$work/build-b"
diff -r "$work/prefix-a" "$prefix" >/dev/null || { diff -r "$work/prefix-a" "$prefix" | head; \
  fail "installing from two build directories gave different files"; }
note "two builds in different directories install identical files ($(find "$prefix" -type f | wc -l) files)"

lib=$(find "$prefix" -name 'libsae.so.*.*' -type f | head -n1)
[ -n "$lib" ] || fail "no libsae.so.X.Y installed"
# (read whole outputs first: `readelf | grep -q` can die of SIGPIPE under pipefail)
dynamic=$(readelf -d "$lib")
sections=$(readelf -S "$lib")
grep -Eq 'SONAME.*\[libsae\.so\.0\]' <<<"$dynamic" || fail "SONAME is not libsae.so.0"
! grep -Eq '\((RPATH|RUNPATH)\)' <<<"$dynamic" || fail "installed library has an RPATH"
grep -Eq '\(BIND_NOW\)|FLAGS.*NOW' <<<"$dynamic" || fail "LDFLAGS (-z now) not honoured"
grep -q '\.debug_info' <<<"$sections" || fail "CFLAGS (-g) not honoured under CMAKE_BUILD_TYPE=None"
# sae.pc names the (staging) prefix on purpose; nothing else may name a build path.
for path in "$src" "$work"; do
  hits=$(grep -rlF "$path" "$prefix" | grep -v '/sae\.pc$' || true)
  [ -z "$hits" ] || fail "build path $path found in: $hits"
done
note "no RPATH, no build paths; CFLAGS and LDFLAGS honoured"

pcdir=$(dirname "$(find "$prefix" -name sae.pc | head -n1)")
cfgdir=$(dirname "$(find "$prefix" -name saeConfig.cmake | head -n1)")
libdir=$(dirname "$lib")

consumers() { # <label> <pkg-config flags...>
  local label=$1; shift
  local out=$work/consumer-$label
  mkdir -p "$out"
  # pkg-config, exactly as the README shows it
  local flags
  flags=$(PKG_CONFIG_PATH="$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" pkg-config "$@" --cflags --libs sae) \
    || fail "pkg-config $* sae"
  # shellcheck disable=SC2086
  "$cc" -std=c11 -Wall -Wextra -Werror -o "$out/consumer-pc" "$src/examples/consumer/consumer.c" $flags \
    || fail "consumer ($label) with pkg-config: $flags"
  LD_LIBRARY_PATH="$libdir" "$out/consumer-pc" || fail "consumer ($label, pkg-config) failed"
  # find_package(sae CONFIG)
  "$cmake" -S "$src/examples/consumer" -B "$out/cmake" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >"$out/cmake.log" \
    || { cat "$out/cmake.log"; fail "consumer ($label) find_package configure"; }
  "$cmake" --build "$out/cmake" >>"$out/cmake.log" 2>&1 \
    || { cat "$out/cmake.log"; fail "consumer ($label) find_package build"; }
  grep -q "$cfgdir" "$out/cmake/CMakeCache.txt" || fail "find_package did not use the staging prefix"
  LD_LIBRARY_PATH="$libdir" "$out/cmake/consumer" || fail "consumer ($label, find_package) failed"
  note "consumer ($label) built and ran with pkg-config and with find_package"
}

# ---- 2. consumers of the shared install ----------------------------------------------
consumers shared
if grep -q "$libdir/libsae.so.0" <<<"$(LD_LIBRARY_PATH="$libdir" ldd "$work/consumer-shared/consumer-pc")"; then
  note "the pkg-config consumer loads the staged libsae"
else
  fail "the pkg-config consumer does not load $libdir/libsae.so.0"
fi

# ---- 3. the Python package from the prefix -------------------------------------------
if "$python" -c 'import numpy' 2>/dev/null; then
  pydir=$(find "$prefix" -type d -name sae -path '*python*' | head -n1)
  [ -n "$pydir" ] || fail "Python package not installed"
  (cd "$work" && env -u SAE_LIBRARY PYTHONPATH="$(dirname "$pydir")" "$python" -c \
    "import sae, sys; p = sae.library_path(); print('python: sae', sae.__version__, 'from', p); sys.exit(0 if p.startswith('$prefix') else 1)") \
    || fail "the installed Python package did not find the installed library"
fi

# ---- 4. static library ---------------------------------------------------------------
build_lib "$work/build-static" OFF -DSAE_INSTALL_PYTHON=OFF
install_lib "$work/build-static"
[ -n "$(find "$prefix" -name libsae.a)" ] || fail "no libsae.a installed"
consumers static --static
echo "sae.install: all checks passed"
