"""libsae's safetensors files read by a reader written here from the public format
description (https://github.com/huggingface/safetensors, "Format"), and files written
here loaded by libsae. Needs only the standard library and numpy; the library is found
through SAE_LIBRARY (path of libsae.so), as in the Python binding's tests.

Format recap: 8-byte little-endian unsigned header size N; N bytes of UTF-8 JSON mapping
each tensor name to {"dtype", "shape", "data_offsets": [begin, end)} (offsets relative to
the byte buffer that follows the header) plus an optional "__metadata__" map of strings;
then the byte buffer, little-endian, row-major, entirely covered by the tensors.
"""
import ctypes
import json
import os
import struct

import numpy as np
import pytest

MODEL_KIND = 2
D_IN, N_LATENTS, ARCH, K = 2000, 2001, 2002, 2005
RELU, TOPK, BATCHTOPK, JUMPRELU, GATED, MATRYOSHKA = 1, 2, 3, 4, 5, 6
W_ENC, B_ENC, W_DEC, B_DEC, THRESHOLD, R_MAG, B_MAG = 1, 2, 3, 4, 5, 6, 7
BUFFER_TOO_SMALL = -8


# ---- a reader from the format description -------------------------------------------

def bf16_to_f32(raw):
    u16 = np.frombuffer(raw, dtype="<u2").astype(np.uint32)
    return (u16 << 16).view(np.float32)


DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I32": "<i4", "I64": "<i8"}
SIZES = {"F32": 4, "F64": 8, "F16": 2, "BF16": 2, "I32": 4, "I64": 8}


def read_safetensors(blob):
    assert len(blob) >= 8
    (n,) = struct.unpack("<Q", blob[:8])
    assert 8 + n <= len(blob)
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    metadata = header.pop("__metadata__", {})
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    tensors, spans = {}, []
    for name, info in header.items():
        begin, end = info["data_offsets"]
        shape = info["shape"]
        count = int(np.prod(shape)) if shape else 1
        assert end - begin == count * SIZES[info["dtype"]], name
        assert 0 <= begin <= end <= len(data), name
        raw = data[begin:end]
        if info["dtype"] == "BF16":
            arr = bf16_to_f32(raw)
        else:
            arr = np.frombuffer(raw, dtype=DTYPES[info["dtype"]])
        tensors[name] = arr.reshape(shape)
        spans.append((begin, end))
    spans.sort()
    at = 0
    for begin, end in spans:  # no holes, no overlaps
        assert begin == at
        at = end
    assert at == len(data)
    return n, metadata, tensors


def write_safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype string, numpy array already in that dtype)."""
    header, chunks, at = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, arr in tensors:
        raw = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [at, at + len(raw)]}
        chunks.append(raw)
        at += len(raw)
    text = json.dumps(header).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


# ---- libsae through ctypes ------------------------------------------------------------

@pytest.fixture(scope="module")
def lib():
    path = os.environ.get("SAE_LIBRARY")
    if not path:
        pytest.fail("set SAE_LIBRARY to the path of libsae.so")
    L = ctypes.CDLL(path)
    vp, i32, i64, sz = ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64, ctypes.c_size_t
    fp = ctypes.POINTER(ctypes.c_float)
    sigs = {
        "sae_config_create": ([ctypes.POINTER(vp), i32, vp], i32),
        "sae_config_set_i64": ([vp, i32, i64], i32),
        "sae_config_free": ([vp], None),
        "sae_model_create": ([ctypes.POINTER(vp), vp, vp], i32),
        "sae_model_free": ([vp], None),
        "sae_model_tensor_shape": ([vp, i32, ctypes.POINTER(i64), ctypes.POINTER(i64)], i32),
        "sae_model_get_tensor": ([vp, i32, fp, i64], i32),
        "sae_model_set_tensor": ([vp, i32, fp, i64], i32),
        "sae_model_get_i64": ([vp, i32, ctypes.POINTER(i64)], i32),
        "sae_model_encode": ([vp, fp, i64, i64, fp, i64], i32),
        "sae_model_export_safetensors": ([vp, vp, sz, ctypes.POINTER(sz)], i32),
        "sae_model_export_saelens_cfg": ([vp, vp, sz, ctypes.POINTER(sz)], i32),
        "sae_model_import_safetensors": ([ctypes.POINTER(vp), vp, sz, ctypes.c_char_p, sz, vp,
                                          ctypes.c_char_p, sz], i32),
    }
    for name, (args, res) in sigs.items():
        fn = getattr(L, name)
        fn.argtypes, fn.restype = args, res
    return L


def fptr(a):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_float))


def make_model(lib, arch, d, n, k=2):
    cfg = ctypes.c_void_p()
    assert lib.sae_config_create(ctypes.byref(cfg), MODEL_KIND, None) == 0
    for key, val in ((D_IN, d), (N_LATENTS, n), (ARCH, arch), (K, k)):
        assert lib.sae_config_set_i64(cfg, key, val) == 0
    model = ctypes.c_void_p()
    assert lib.sae_model_create(ctypes.byref(model), cfg, None) == 0
    lib.sae_config_free(cfg)
    return model


def tensor(lib, model, which):
    rows, cols = ctypes.c_int64(), ctypes.c_int64()
    if lib.sae_model_tensor_shape(model, which, ctypes.byref(rows), ctypes.byref(cols)) != 0:
        return None
    out = np.zeros((rows.value, cols.value), dtype=np.float32)
    assert lib.sae_model_get_tensor(model, which, fptr(out), cols.value) == 0
    return out


def two_call(fn, model):
    need = ctypes.c_size_t()
    assert fn(model, None, 0, ctypes.byref(need)) == 0
    short = ctypes.create_string_buffer(max(need.value - 1, 1))
    got = ctypes.c_size_t()
    assert fn(model, short, need.value - 1, ctypes.byref(got)) == BUFFER_TOO_SMALL
    assert got.value == need.value
    buf = ctypes.create_string_buffer(need.value)
    assert fn(model, buf, need.value, ctypes.byref(got)) == 0
    return buf.raw[:got.value]


def import_model(lib, blob, cfg_json=None):
    model, msg = ctypes.c_void_p(), ctypes.create_string_buffer(256)
    cfg = cfg_json.encode() if cfg_json is not None else None
    st = lib.sae_model_import_safetensors(ctypes.byref(model), blob, len(blob), cfg,
                                          len(cfg) if cfg else 0, None, msg, 256)
    return st, model, msg.value.decode()


# ---- tests ---------------------------------------------------------------------------------

EXPECTED = {
    RELU: ("standard", {"W_enc", "b_enc", "W_dec", "b_dec"}),
    TOPK: ("topk", {"W_enc", "b_enc", "W_dec", "b_dec"}),
    JUMPRELU: ("jumprelu", {"W_enc", "b_enc", "W_dec", "b_dec", "threshold"}),
    GATED: ("gated", {"W_enc", "b_gate", "W_dec", "b_dec", "r_mag", "b_mag"}),
    BATCHTOPK: ("jumprelu", {"W_enc", "b_enc", "W_dec", "b_dec", "threshold"}),
}
LIBSAE_NAME = {"b_enc": B_ENC, "b_gate": B_ENC, "W_enc": W_ENC, "W_dec": W_DEC, "b_dec": B_DEC,
               "threshold": THRESHOLD, "r_mag": R_MAG, "b_mag": B_MAG}


@pytest.mark.parametrize("arch", sorted(EXPECTED))
def test_export_matches_spec_reader(lib, tmp_path, arch):
    d, n = 5, 7
    model = make_model(lib, arch, d, n)
    rng = np.random.default_rng(arch)
    for which in (W_ENC, B_ENC, W_DEC, B_DEC, THRESHOLD, R_MAG, B_MAG):
        cur = tensor(lib, model, which)
        if cur is None:
            continue
        new = rng.standard_normal(cur.shape).astype(np.float32)
        if which == THRESHOLD:
            new = np.abs(new)
        lib.sae_model_set_tensor(model, which, fptr(new), new.shape[1])  # BatchTopK: read-only
    blob = two_call(lib.sae_model_export_safetensors, model)
    # the SAELens directory layout, written and read back as files
    (tmp_path / "sae_weights.safetensors").write_bytes(blob)
    (tmp_path / "cfg.json").write_bytes(two_call(lib.sae_model_export_saelens_cfg, model))
    n_header, metadata, tensors = read_safetensors((tmp_path / "sae_weights.safetensors").read_bytes())
    assert (8 + n_header) % 8 == 0
    arch_name, names = EXPECTED[arch]
    assert set(tensors) == names
    assert tensors["W_enc"].shape == (d, n) and tensors["W_dec"].shape == (n, d)
    assert tensors["b_dec"].shape == (d,)
    for name, arr in tensors.items():
        assert arr.dtype == np.float32
        want = tensor(lib, model, LIBSAE_NAME[name])
        assert np.array_equal(arr.reshape(want.shape), want), name
    cfg = json.loads(metadata["cfg"])
    assert cfg == json.loads((tmp_path / "cfg.json").read_text())
    assert cfg["architecture"] == arch_name
    assert (cfg["d_in"], cfg["d_sae"]) == (d, n)
    assert cfg["apply_b_dec_to_input"] is True and cfg["normalize_activations"] == "none"
    if arch == TOPK:
        assert cfg["k"] == 2
    assert bytes.fromhex(metadata["libsae_config"])[:4] == b"SAE\0"
    lib.sae_model_free(model)


def jumprelu_forward(x, w_enc, b_enc, b_dec, thr):
    """SAELens JumpReLU encode: pre = (x - b_dec) W_enc + b_enc; z = relu(pre) * (pre > relu(thr))."""
    pre = (x.astype(np.float64) - b_dec) @ w_enc + b_enc
    return np.maximum(pre, 0) * (pre > np.maximum(thr, 0))


def test_foreign_file_in_mixed_dtypes(lib, tmp_path):
    """A JumpReLU SAE as a Python SAELens workflow might save it (bf16 weights, f16 and f64
    vectors, cfg in the metadata) is loaded and evaluated by libsae."""
    d, n = 6, 9
    rng = np.random.default_rng(7)
    w_enc = rng.standard_normal((d, n)).astype(np.float32)
    w_dec = rng.standard_normal((n, d)).astype(np.float32)
    w_dec_bf16 = (w_dec.view(np.uint32) >> 16).astype("<u2")  # truncation to bf16
    b_enc = rng.standard_normal(n)
    b_dec = rng.standard_normal(d).astype("<f2")
    thr = np.abs(rng.standard_normal(n)).astype(np.float32) * 0.5
    cfg = {"architecture": "jumprelu", "d_in": d, "d_sae": n, "dtype": "bfloat16", "device": "cpu",
           "apply_b_dec_to_input": True, "normalize_activations": "none",
           "metadata": {"hook_name": "blocks.0.hook_resid_post", "model_name": "toy"}}
    blob = write_safetensors([("W_enc", "F32", w_enc), ("W_dec", "BF16", w_dec_bf16),
                              ("b_enc", "F64", b_enc.astype("<f8")), ("b_dec", "F16", b_dec),
                              ("threshold", "F32", thr)], {"format": "pt", "cfg": json.dumps(cfg)})
    (tmp_path / "sae_weights.safetensors").write_bytes(blob)
    st, model, msg = import_model(lib, (tmp_path / "sae_weights.safetensors").read_bytes())
    assert st == 0, msg
    arch = ctypes.c_int64()
    assert lib.sae_model_get_i64(model, ARCH, ctypes.byref(arch)) == 0 and arch.value == JUMPRELU
    assert np.array_equal(tensor(lib, model, W_DEC), bf16_to_f32(w_dec_bf16.tobytes()).reshape(n, d))
    assert np.array_equal(tensor(lib, model, B_DEC)[0], b_dec.astype(np.float32))
    assert np.array_equal(tensor(lib, model, B_ENC)[0], b_enc.astype(np.float32))
    x = rng.standard_normal((16, d)).astype(np.float32)
    z = np.zeros((16, n), dtype=np.float32)
    assert lib.sae_model_encode(model, fptr(x), 16, d, fptr(z), n) == 0
    ref = jumprelu_forward(x, w_enc, b_enc.astype(np.float32), b_dec.astype(np.float32), thr)
    assert np.allclose(z, ref, rtol=1e-5, atol=1e-5)
    assert ((z != 0) == (ref != 0)).mean() > 0.99
    lib.sae_model_free(model)
    # the same weights with the configuration given separately as cfg.json
    st, model, msg = import_model(lib, write_safetensors(
        [("W_enc", "F32", w_enc), ("W_dec", "F32", w_dec), ("b_enc", "F32", b_enc.astype("<f4")),
         ("b_dec", "F32", b_dec.astype("<f4")), ("threshold", "F32", thr)]), json.dumps(cfg))
    assert st == 0, msg
    lib.sae_model_free(model)


def test_foreign_file_refusals(lib):
    w = np.zeros((2, 3), dtype=np.float32)
    base = [("W_enc", "F32", w), ("W_dec", "F32", w.T.copy()), ("b_enc", "F32", np.zeros(3, np.float32)),
            ("b_dec", "F32", np.zeros(2, np.float32))]
    st, _, msg = import_model(lib, write_safetensors(base + [("scale", "F32", np.ones(3, np.float32))]))
    assert st == -16 and "scale" in msg  # SAE_E_NOT_SUPPORTED, named
    st, _, msg = import_model(lib, write_safetensors(base), json.dumps(
        {"architecture": "standard", "d_in": 2, "d_sae": 3, "normalize_activations": "layer_norm"}))
    assert st == -16 and "layer_norm" in msg
    blob = write_safetensors(base)
    st, _, msg = import_model(lib, blob[:-1])
    assert st == -14  # SAE_E_CORRUPT: truncated data
