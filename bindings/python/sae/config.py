"""Configurations and the parameter registry."""
import collections
import ctypes

import numpy as np

from . import _capi
from ._handle import Handle, enum_value, out_scalar
from ._lib import SaeError, check, lib

#: Configuration kinds by name.
KINDS = {"toy": _capi.SAE_KIND_TOY, "model": _capi.SAE_KIND_MODEL,
         "trainer": _capi.SAE_KIND_TRAINER, "metrics": _capi.SAE_KIND_METRICS}
_KIND_NAMES = {v: k for k, v in KINDS.items()}
_TYPE_NAMES = {_capi.SAE_TYPE_I64: "int", _capi.SAE_TYPE_F64: "float",
               _capi.SAE_TYPE_F64_ARRAY: "float array", _capi.SAE_TYPE_I64_ARRAY: "int array"}

ParamInfo = collections.namedtuple("ParamInfo", "name key kind type lo hi default doc")
ParamInfo.__doc__ = """What the registry knows about one parameter: its name, enum key,
kind ("toy", ...), type ("int", "float", "float array", "int array"), inclusive bounds,
default and one-line documentation."""


def read_scalar(handle, getters, info):
    """A scalar parameter through getters = (i64 getter, f64 getter), by its type."""
    if info.type == "int":
        v, ref = out_scalar(ctypes.c_int64)
        handle._call(getters[0], info.key, ref)
    else:
        v, ref = out_scalar(ctypes.c_double)
        handle._call(getters[1], info.key, ref)
    return v.value


def _kind_value(kind):
    if isinstance(kind, str):
        try:
            return KINDS[kind]
        except KeyError:
            raise KeyError("unknown kind %r; known: %s" % (kind, ", ".join(KINDS)))
    return int(kind)


def param_key(name):
    """The enum key of a parameter name (KeyError if unknown)."""
    key, ref = out_scalar(ctypes.c_int32)
    if lib.sae_param_lookup(name.encode(), ref) != _capi.SAE_OK:
        raise KeyError("unknown libsae parameter %r" % name)
    return key.value


def param_info(name_or_key):
    """ParamInfo of a parameter given by name or key."""
    key = param_key(name_or_key) if isinstance(name_or_key, str) else int(name_or_key)
    kind, kref = out_scalar(ctypes.c_int32)
    typ, tref = out_scalar(ctypes.c_int32)
    lo, lref = out_scalar(ctypes.c_double)
    hi, href = out_scalar(ctypes.c_double)
    dflt, dref = out_scalar(ctypes.c_double)
    status = lib.sae_param_info(key, kref, tref, lref, href, dref)
    if status != _capi.SAE_OK:
        raise KeyError("unknown libsae parameter key %r" % name_or_key)
    doc = lib.sae_param_doc(key)
    return ParamInfo(lib.sae_param_name(key).decode(), key, _KIND_NAMES.get(kind.value, kind.value),
                     _TYPE_NAMES.get(typ.value, typ.value), lo.value, hi.value, dflt.value,
                     doc.decode() if doc else "")


def params(kind):
    """ParamInfo of every parameter of a kind ("toy", "model", "trainer", "metrics")."""
    k = _kind_value(kind)
    count, cref = out_scalar(ctypes.c_int32)
    check(lib.sae_param_count(k, cref), function="sae_param_count")
    out = []
    for i in range(count.value):
        key, ref = out_scalar(ctypes.c_int32)
        check(lib.sae_param_key_at(k, i, ref), function="sae_param_key_at")
        out.append(param_info(key.value))
    return out


#: Integer parameters whose values are constants of a C enum: they also take the
#: constant's short name (arch="topk"), and "metrics_compute" a list of names to OR.
PARAM_ENUMS = {
    "arch": "sae_arch", "fire_profile": "sae_toy_fire_profile", "dict": "sae_toy_dict",
    "siblings": "sae_toy_exclusive", "set_mode": "sae_toy_exclusive",
    "mag_model": "sae_toy_mag_model", "lr_schedule": "sae_lr_schedule",
    "b_dec_init": "sae_b_dec_init", "ortho_shape": "sae_ortho_shape",
    "ortho_aggregate": "sae_ortho_aggregate", "ortho_mode": "sae_ortho_mode",
    "metrics_compute": "sae_metrics_group",
}


def _enum_constant(name, value):
    """The integer a parameter value given by name stands for: arch="topk",
    fire_profile="zipf", metrics_compute=["recovery", "matching"] (OR of bits), or a full
    constant name such as "SAE_ARCH_TOPK"."""
    if not isinstance(value, str):
        bits = 0
        for v in value:
            bits |= _enum_constant(name, v)
        return bits
    if value.upper().startswith("SAE_") and hasattr(_capi, value.upper()):
        return getattr(_capi, value.upper())
    enum = PARAM_ENUMS.get(name)
    if enum is None:
        raise ValueError("parameter %s takes a number, not %r" % (name, value))
    return enum_value(enum, value)


class Config(Handle):
    """A libsae configuration: every parameter of one kind, validated as a whole.

    >>> cfg = Config("toy", n_features=32, d=64, fire_prob=0.05)
    >>> cfg["seed"] = 7
    >>> cfg.validate()

    Values are set by parameter name; integer parameters take Python ints (or enum
    constant names such as ``arch="relu"``), real ones floats, array ones sequences or
    NumPy arrays. Handle creators copy the configuration.
    """

    _kind = "config"
    _free = "sae_config_free"
    _errmsg = "sae_config_errmsg"
    _clone = "sae_config_clone"

    def __init__(self, kind, **params):
        status, ptr = self._create("sae_config_create", _kind_value(kind), None)
        check(status, function="sae_config_create")
        self._adopt(ptr)
        self.set(**params)

    @property
    def kind(self):
        """"toy", "model", "trainer" or "metrics"."""
        k = lib.sae_config_kind(self)
        return _KIND_NAMES.get(k, k)

    def to_bytes(self):
        """Every parameter, bit-exact, with its set/default state, as native bytes (io.h)."""
        from .io import serialize
        return serialize(self, "sae_config_serialize")

    @classmethod
    def from_bytes(cls, data):
        """A configuration from to_bytes() output."""
        from .io import deserialize
        return cls._from_ptr(deserialize("sae_config_deserialize", data))

    def keys(self):
        """Names of this kind's parameters."""
        return [p.name for p in params(self.kind)]

    def set(self, **values):
        """Set parameters by name; returns self."""
        for name, value in values.items():
            self[name] = value
        return self

    def __setitem__(self, name, value):
        """Set a parameter (validated at once by the library; see the class doc)."""
        info = param_info(name)
        if info.type == "int":
            if isinstance(value, str) or (isinstance(value, (list, tuple)) and value
                                          and all(isinstance(v, str) for v in value)):
                value = _enum_constant(name, value)
            if isinstance(value, (bool, np.bool_)):
                value = int(value)
            if int(value) != value:
                raise TypeError("parameter %s takes an integer, got %r" % (name, value))
            self._call("sae_config_set_i64", info.key, int(value))
        elif info.type == "float":
            self._call("sae_config_set_f64", info.key, float(value))
        elif info.type == "float array":
            a = np.ascontiguousarray(value, dtype=np.float64).ravel()
            self._call("sae_config_set_f64_array", info.key,
                       a.ctypes.data_as(ctypes.POINTER(ctypes.c_double)), a.size)
        elif info.type == "int array":
            a = np.asarray(value)
            if a.size and not np.all(a == np.round(a)):
                raise TypeError("parameter %s takes integers" % name)
            a = np.ascontiguousarray(a, dtype=np.int64).ravel()
            self._call("sae_config_set_i64_array", info.key,
                       a.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)), a.size)
        else:
            raise TypeError("parameter %s has an unknown type %r" % (name, info.type))

    def __getitem__(self, name):
        """The value of a parameter: int, float, or a NumPy array for array parameters."""
        info = param_info(name)
        if info.type in ("int", "float"):
            return read_scalar(self, ("sae_config_get_i64", "sae_config_get_f64"), info)
        return self._get_array(info)

    def _get_array(self, info):
        ctype, dtype, fn = ((ctypes.c_double, np.float64, "sae_config_get_f64_array")
                            if info.type == "float array" else
                            (ctypes.c_int64, np.int64, "sae_config_get_i64_array"))
        n, nref = out_scalar(ctypes.c_int64)
        status = getattr(lib, fn)(self, info.key, None, 0, nref)
        if status not in (_capi.SAE_OK, _capi.SAE_E_BUFFER_TOO_SMALL):
            check(status, lib.sae_config_errmsg, self, fn)
        out = np.zeros(n.value, dtype=dtype)
        if n.value:
            self._call(fn, info.key, out.ctypes.data_as(ctypes.POINTER(ctype)), n.value, nref)
        return out

    get = __getitem__

    def set_by_name(self, name, value):
        """Set a scalar parameter from a number through the C by-name setter (integer
        parameters need whole numbers). Equivalent to cfg[name] = value for scalars."""
        self._call("sae_config_set_by_name", name.encode(), float(value))

    def reset(self, name):
        """Put one parameter back to its default."""
        self._call("sae_config_reset", param_key(name))

    def check(self):
        """(True, "") if the configuration is consistent, else (False, reason)."""
        buf = ctypes.create_string_buffer(512)
        status = lib.sae_config_validate(self, buf, len(buf))
        return status == _capi.SAE_OK, buf.value.decode(errors="replace")

    def validate(self):
        """Raise SaeError(SAE_E_CONFIG) with the library's reason if inconsistent."""
        ok, reason = self.check()
        if not ok:
            raise SaeError(_capi.SAE_E_CONFIG, reason, "sae_config_validate")

    def to_dict(self):
        """Every parameter of this kind with its current value."""
        return {name: self[name] for name in self.keys()}

    def __repr__(self):
        if self.closed:
            return "<sae.Config closed>"
        return "sae.Config(%r, %s)" % (self.kind, ", ".join(
            "%s=%r" % (k, v.tolist() if isinstance(v, np.ndarray) else v)
            for k, v in self.to_dict().items()))


def make_config(kind, config, params):
    """A private copy of `config` (or a default one) of `kind` with `params` applied."""
    if config is None:
        return Config(kind, **params)
    if not isinstance(config, Config) or config.kind != kind:
        raise TypeError("expected a sae.Config of kind %r" % kind)
    return config.clone().set(**params)
