"""Serialisation to and from bytes (io.h): configurations, generators, models, trainer
checkpoints, and SAELens-style safetensors. libsae never touches files; these functions
return or take `bytes` (any buffer-protocol object works as input)."""
import ctypes

from . import _capi
from ._lib import SaeError, check, lib

_MSG_CAP = 512


def serialize(handle, function):
    """Bytes from a two-call writer sae_x_serialize(handle, buf, cap, &written)."""
    written = ctypes.c_size_t(0)
    check(getattr(lib, function)(handle, None, 0, ctypes.byref(written)),
          getattr(lib, handle._errmsg), handle, function)
    buf = ctypes.create_string_buffer(max(1, written.value))
    check(getattr(lib, function)(handle, buf, written.value, ctypes.byref(written)),
          getattr(lib, handle._errmsg), handle, function)
    return buf.raw[:written.value]


def _buffer(data):
    data = bytes(data)
    return data, len(data)


def deserialize(function, data, *extra):
    """Pointer from a reader sae_x_deserialize(&out, buf, len, *extra, alloc, msg, cap);
    failures raise SaeError with the reader's reason."""
    data, n = _buffer(data)
    out = ctypes.c_void_p()
    msg = ctypes.create_string_buffer(_MSG_CAP)
    status = getattr(lib, function)(ctypes.byref(out), data, n, *extra, None, msg, _MSG_CAP)
    if status != _capi.SAE_OK:
        raise SaeError(status, msg.value.decode(errors="replace") or "failed", function)
    return out.value


#: Object kinds stored in a native buffer's header.
OBJECTS = {_capi.SAE_OBJECT_CONFIG: "config", _capi.SAE_OBJECT_TOY: "toy",
           _capi.SAE_OBJECT_MODEL: "model", _capi.SAE_OBJECT_TRAINER: "trainer"}


def inspect(data):
    """(object kind, format major, format minor) of a native buffer, after checking its
    envelope (magic, sizes, checksums); SaeError with the reason if it is damaged."""
    data, n = _buffer(data)
    obj, major, minor = ctypes.c_int32(), ctypes.c_int32(), ctypes.c_int32()
    msg = ctypes.create_string_buffer(_MSG_CAP)
    status = lib.sae_io_inspect(data, n, ctypes.byref(obj), ctypes.byref(major),
                                ctypes.byref(minor), msg, _MSG_CAP)
    if status != _capi.SAE_OK:
        raise SaeError(status, msg.value.decode(errors="replace") or "failed", "sae_io_inspect")
    return OBJECTS.get(obj.value, obj.value), major.value, minor.value
