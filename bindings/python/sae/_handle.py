"""Base class of the wrappers around libsae's opaque handles, and NumPy helpers."""
import ctypes
import weakref

import numpy as np

from . import _capi
from ._lib import SaeError, check, lib

_f32p = ctypes.POINTER(ctypes.c_float)


class Handle:
    """An owned pointer to a libsae object, freed by a finaliser (or ``close()`` / a
    ``with`` block). libsae reference-counts what handles share (a trainer keeps its
    model alive), so Python may free them in any order."""

    _kind = "handle"   # name used in messages
    _free = None       # name of the C free function
    _errmsg = None     # name of the C errmsg function

    _clone = None      # name of the C clone function, if any

    @classmethod
    def _from_ptr(cls, ptr):
        """Wrap (and own) a pointer a C function returned."""
        obj = cls.__new__(cls)
        obj._adopt(ptr)
        return obj

    def clone(self):
        """An independent copy of the C object (same state, same parameters)."""
        if self._clone is None:
            raise TypeError("a %s cannot be cloned" % self._kind)
        if self.closed:
            raise ValueError("%s is closed" % self._kind)
        out = ctypes.c_void_p()
        check(getattr(lib, self._clone)(ctypes.byref(out), self), getattr(lib, self._errmsg),
              self, self._clone)
        return type(self)._from_ptr(out.value)

    def _adopt(self, ptr):
        self._ptr = ptr
        self._finalizer = weakref.finalize(self, getattr(lib, self._free), ptr)

    def _create(self, create_name, *args):
        """Call sae_x_create(&out, *args) and adopt the result."""
        out = ctypes.c_void_p()
        status = getattr(lib, create_name)(ctypes.byref(out), *args)
        return status, out.value

    @property
    def _as_parameter_(self):
        if self.closed:
            raise ValueError("%s is closed" % self._kind)
        return ctypes.c_void_p(self._ptr)

    def close(self):
        """Free the C object now (later calls raise ValueError). Idempotent."""
        if getattr(self, "_finalizer", None) is not None:
            self._finalizer()

    @property
    def closed(self):
        """True once the C object has been freed (or the handle that owns it closed)."""
        owner = getattr(self, "_owner", None)
        if owner is not None and owner.closed:
            return True
        return getattr(self, "_finalizer", None) is None or not self._finalizer.alive

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, name, *args):
        """Call sae_<name>(self, *args); raise SaeError with this handle's message."""
        if self.closed:
            raise ValueError("%s is closed" % self._kind)
        status = getattr(lib, name)(self, *args)
        check(status, getattr(lib, self._errmsg), self, name)

    def errmsg(self):
        """The library's message for the last failed call on this handle ("" if none)."""
        raw = getattr(lib, self._errmsg)(self)
        return raw.decode(errors="replace") if raw else ""


# ---- enum names ------------------------------------------------------------------------
def _enum_names(enum_type):
    """{short lower-case name: value} for a C enum, e.g. sae_metric -> {"mmcs_true": 1}."""
    values = _capi.ENUMS[enum_type]
    names = list(values)
    if len(names) > 1:
        prefix = _common_prefix(names)
    else:
        prefix = "_".join(names[0].split("_")[:2]) + "_"
    return {n[len(prefix):].lower(): v for n, v in values.items()}


def _common_prefix(names):
    prefix = names[0]
    for n in names[1:]:
        while not n.startswith(prefix):
            prefix = prefix[:-1]
    return prefix[:prefix.rfind("_") + 1]


def enum_value(enum_type, which):
    """An enum value given as an int or by its short name ("w_dec", "loss", "mmcs_true")."""
    if isinstance(which, str):
        names = _enum_names(enum_type)
        try:
            return names[which.lower()]
        except KeyError:
            raise ValueError("unknown %s %r; known: %s"
                             % (enum_type, which, ", ".join(sorted(names)))) from None
    return int(which)


# ---- arrays ----------------------------------------------------------------------------
def in_matrix(x, cols, what):
    """(array, pointer, rows, ld) for a read-only float32 input with `cols` columns.
    Row-major float32 data with unit column stride (C-contiguous or row-sliced) is passed
    without a copy; anything else is converted once."""
    a = np.asarray(x)
    if a.ndim == 1 and a.shape[0] == cols:
        a = a.reshape(1, cols)
    if a.ndim != 2 or a.shape[1] != cols:
        raise ValueError("%s must have shape (n, %d), got %s" % (what, cols, a.shape))
    if not _passes_as_is(a):
        a = np.ascontiguousarray(a, dtype=np.float32)
    ld = a.strides[0] // 4 if a.shape[0] > 1 else cols
    return a, a.ctypes.data_as(_f32p), a.shape[0], ld


def _passes_as_is(a):
    return (a.dtype == np.float32 and a.strides[1] == 4 and a.strides[0] % 4 == 0
            and (a.shape[0] <= 1 or a.strides[0] >= 4 * a.shape[1]))


def out_matrix(out, rows, cols, what):
    """(array, pointer, ld) for an output buffer: a new array, or the caller's `out`,
    which must be a writable float32 (rows, cols) array with unit column stride."""
    if out is None:
        out = np.empty((rows, cols), dtype=np.float32)
    elif not (isinstance(out, np.ndarray) and out.shape == (rows, cols) and out.flags.writeable
              and _passes_as_is(out)):
        raise ValueError("%s must be a writable float32 array of shape (%d, %d) with unit "
                         "column stride" % (what, rows, cols))
    ld = out.strides[0] // 4 if rows > 1 else cols
    return out, out.ctypes.data_as(_f32p), ld


def out_scalar(ctype):
    v = ctype()
    return v, ctypes.byref(v)


__all__ = ["Handle", "SaeError", "enum_value", "in_matrix", "out_matrix", "out_scalar"]
