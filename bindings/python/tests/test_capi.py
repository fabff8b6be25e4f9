"""The C header is FFI-clean and the binding's prototypes match it."""
import os
import re
import subprocess
import sys

import cffi

import saeheader
import sae
from sae import _capi

PKG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sae")


def test_preprocessed_header_parses_with_cffi():
    ffi = cffi.FFI()
    ffi.cdef(saeheader.preprocess())   # raises CDefError on anything cffi cannot take
    functions, enums, _ = saeheader.parse()
    declared = ffi._parser._declarations  # what cdef understood
    for fn in functions:
        assert "function " + fn.name in declared, fn.name
    # cffi computes the same enum values as the generated module
    lib = ffi.dlopen(sae.library_path())
    for enum, values in enums.items():
        for name, value in values:
            assert getattr(lib, name) == value == getattr(_capi, name), name


def test_cffi_can_call_through_the_header():
    ffi = cffi.FFI()
    ffi.cdef(saeheader.preprocess())
    lib = ffi.dlopen(sae.library_path())
    assert lib.sae_version_number() == sae.RUNTIME_VERSION_NUMBER
    assert ffi.string(lib.sae_status_str(lib.SAE_E_RANGE)) == sae.status_str(-4).encode()


def test_generated_capi_is_up_to_date():
    gen = os.path.join(PKG, "..", "tools", "gen_capi.py")
    rc = subprocess.run([sys.executable, gen, "--check"]).returncode
    assert rc == 0, "bindings/python/sae/_capi.py is stale: run %s" % gen


def test_header_avoids_ffi_hostile_types():
    functions, _, callbacks = saeheader.parse()
    for fn in list(functions) + list(callbacks.values()):
        for t in [fn.restype] + [p.ctype for p in fn.params]:
            assert not re.search(r"\b(long|bool|_Bool|short)\b", t), (fn.name, t)
            assert not t.startswith("struct ") or t.endswith("*"), (fn.name, t)


def test_every_function_is_wrapped():
    """Each C function is called by the Pythonic layer (or listed here with a reason)."""
    not_wrapped = {}
    source = ""
    for fn in sorted(os.listdir(PKG)):
        if fn.endswith(".py") and fn != "_capi.py":
            with open(os.path.join(PKG, fn)) as fh:
                source += fh.read()
    missing = [name for name in _capi.FUNCTIONS
               if name not in not_wrapped and '"%s"' % name not in source
               and "lib.%s" % name not in source]
    assert not missing, "C functions without a Python wrapper: %s" % ", ".join(missing)


def test_all_exports_resolve():
    assert sae._lib.missing == [], "symbols missing from %s" % sae.library_path()


def test_version_matches_header():
    major, minor, patch = saeheader.version_macros()
    assert sae.HEADER_VERSION == (major, minor, patch)
    assert sae.version() == "%d.%d.%d" % (major, minor, patch)
    assert sae.RUNTIME_VERSION_NUMBER == major * 10000 + minor * 100 + patch


def test_status_strings_are_distinct():
    texts = [sae.status_str(v) for v in _capi.ENUMS["sae_status"].values()]
    assert all(texts) and len(set(texts)) == len(texts)
    assert sae.status_str(-12345)  # unknown codes still get text


def test_generated_julia_module_is_up_to_date():
    gen = os.path.join(PKG, "..", "..", "julia", "gen_julia.py")
    rc = subprocess.run([sys.executable, gen, "--check"]).returncode
    assert rc == 0, "bindings/julia/LibSae.jl is stale: run %s" % gen


def test_julia_module_wraps_every_function_with_matching_arity():
    functions, _, _ = saeheader.parse()
    with open(os.path.join(PKG, "..", "..", "julia", "LibSae.jl")) as fh:
        text = fh.read()
    for fn in functions:
        m = re.search(r"^%s\(([^)]*)\) = @ccall libsae\.%s\(" % (fn.name, fn.name), text, re.M)
        assert m, fn.name
        arity = len([a for a in m.group(1).split(",") if a.strip()])
        assert arity == len(fn.params), fn.name
