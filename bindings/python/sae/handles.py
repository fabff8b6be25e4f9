"""Toy generators, models, trainers and metrics: Pythonic wrappers of libsae handles."""
import ctypes
import weakref

import numpy as np

from . import _capi
from ._handle import Handle, enum_value, in_matrix, out_matrix, out_scalar
from ._lib import SaeError, check, lib
from .config import Config, make_config, param_info, read_scalar
from .io import deserialize, serialize

_f32p = ctypes.POINTER(ctypes.c_float)
_f64p = ctypes.POINTER(ctypes.c_double)
_i64p = ctypes.POINTER(ctypes.c_int64)
_i32p = ctypes.POINTER(ctypes.c_int32)


def _create_into(self, create_name, cfg, *extra):
    """sae_x_create(&out, *extra, cfg, NULL) adopted by self; on failure raise with the
    best reason available (the validator's, else the configuration's message)."""
    status, ptr = self._create(create_name, *extra, cfg, None)
    if status != _capi.SAE_OK:
        ok, reason = cfg.check()
        if ok:
            reason = cfg.errmsg()
        raise (SaeError(status, reason, create_name) if reason else
               _status_error(status, create_name))
    self._adopt(ptr)


def _status_error(status, function):
    try:
        check(status, function=function)
    except SaeError as exc:
        return exc
    return SaeError(status, "failed", function)


def _dims(handle, name):
    a, aref = out_scalar(ctypes.c_int64)
    b, bref = out_scalar(ctypes.c_int64)
    handle._call(name, aref, bref)
    return a.value, b.value


def _shape_then_copy(handle, shape_name, copy_name, which, matrices):
    """Query the shape of an array result, copy it out; 1-D unless `which` is one of
    the enum values in `matrices`."""
    rows, rref = out_scalar(ctypes.c_int64)
    cols, cref = out_scalar(ctypes.c_int64)
    handle._call(shape_name, which, rref, cref)
    out = np.empty((rows.value, cols.value), dtype=np.float32)
    if out.size:  # an empty result has nothing to copy (and no valid ld)
        handle._call(copy_name, which, out.ctypes.data_as(_f32p), cols.value)
    return out if which in matrices or rows.value != 1 else out[0]


class Toy(Handle):
    """A toy-model generator: N true unit feature directions in d dimensions, each firing
    with its own probability and a random magnitude. Sample i depends only on (seed, i).

    >>> toy = Toy(n_features=32, d=64, fire_prob=0.05, seed=1)
    >>> x = toy.sample(1024)                 # float32 array (1024, 64)
    >>> x2, codes = toy.sample_codes(8)      # with the true sparse codes

    Parameters are those of ``sae.params("toy")``, by keyword, or a ``Config("toy")``.
    """

    _kind = "toy"
    _free = "sae_toy_free"
    _errmsg = "sae_toy_errmsg"
    _clone = "sae_toy_clone"

    def __init__(self, config=None, **params):
        cfg = make_config("toy", config, params)
        _create_into(self, "sae_toy_create", cfg)

    @property
    def shape(self):
        """(n_features, d)."""
        return _dims(self, "sae_toy_dims")

    @property
    def n_features(self):
        """Number of true features N."""
        return self.shape[0]

    @property
    def d(self):
        """Dimension of the samples."""
        return self.shape[1]

    @property
    def config(self):
        """A copy of the configuration the generator was built from."""
        out = ctypes.c_void_p()
        self._call("sae_toy_get_config", ctypes.byref(out))
        return Config._from_ptr(out.value)

    def sample(self, n, first=0, out=None):
        """Samples first .. first+n-1 as a float32 array (n, d); writes into `out` if given."""
        x, ptr, ld = out_matrix(out, int(n), self.d, "out")
        self._call("sae_toy_sample", int(first), int(n), ptr, ld)
        return x

    def sample_codes(self, n, first=0, out=None):
        """(x, codes): samples and their ground truth. codes is a dict of compressed sparse
        rows: row_ptr (n+1), feature (int32) and magnitude (float32) of each active feature."""
        n = int(n)
        x, ptr, ld = out_matrix(out, n, self.d, "out")
        row_ptr = np.zeros(n + 1, dtype=np.int64)
        needed, nref = out_scalar(ctypes.c_int64)
        cap = max(16, n * 4)
        while True:
            feature = np.zeros(cap, dtype=np.int32)
            magnitude = np.zeros(cap, dtype=np.float32)
            status = lib.sae_toy_sample_codes(self, int(first), n, ptr, ld,
                                              row_ptr.ctypes.data_as(_i64p),
                                              feature.ctypes.data_as(_i32p),
                                              magnitude.ctypes.data_as(_f32p), cap, nref)
            if status != _capi.SAE_E_BUFFER_TOO_SMALL:
                break
            cap = max(needed.value, cap + 1)
        check(status, lib.sae_toy_errmsg, self, "sae_toy_sample_codes")
        nnz = int(row_ptr[n])
        return x, {"row_ptr": row_ptr, "feature": feature[:nnz], "magnitude": magnitude[:nnz]}

    def codes_dense(self, n, first=0):
        """(x, c): samples and their true codes as a dense float32 array (n, n_features)."""
        x, codes = self.sample_codes(n, first)
        dense = np.zeros((int(n), self.n_features), dtype=np.float32)
        rows = np.repeat(np.arange(int(n)), np.diff(codes["row_ptr"]))
        dense[rows, codes["feature"]] = codes["magnitude"]
        return x, dense

    def dictionary(self):
        """The true feature directions, float32 array (n_features, d) with unit rows."""
        nf, d = self.shape
        out = np.empty((nf, d), dtype=np.float32)
        self._call("sae_toy_dictionary", out.ctypes.data_as(_f32p), d)
        return out

    def fire_probs(self):
        """Marginal firing probability of each feature, float64 array (n_features,)."""
        nf = self.n_features
        out = np.empty(nf, dtype=np.float64)
        self._call("sae_toy_fire_probs", out.ctypes.data_as(_f64p), nf)
        return out

    def info(self, which):
        """A scalar fact: "scale", "mean_active", "p_empty", "tms_loss" (or an int key)."""
        v, ref = out_scalar(ctypes.c_double)
        self._call("sae_toy_info", enum_value("sae_toy_info_key", which), ref)
        return v.value

    def to_bytes(self):
        """The generator's full specification as native bytes (io.h)."""
        return serialize(self, "sae_toy_serialize")

    @classmethod
    def from_bytes(cls, data):
        """A generator from to_bytes() output; it produces identical samples."""
        return cls._from_ptr(deserialize("sae_toy_deserialize", data))

    def __repr__(self):
        return "<sae.Toy closed>" if self.closed else "<sae.Toy n_features=%d d=%d>" % self.shape


class Model(Handle):
    """A sparse autoencoder: encoder, activation, decoder (SAELens tensor layout).

    >>> model = Model(d_in=64, n_latents=64, arch="relu")
    >>> z = model.encode(x)          # (n, n_latents)
    >>> xhat = model.decode(z)       # (n, d_in)
    >>> model.W_dec                  # copy of the decoder, (n_latents, d_in)
    """

    _kind = "model"
    _free = "sae_model_free"
    _errmsg = "sae_model_errmsg"
    _clone = "sae_model_clone"

    def __init__(self, config=None, **params):
        cfg = make_config("model", config, params)
        _create_into(self, "sae_model_create", cfg)

    @classmethod
    def _borrowed(cls, ptr, owner):
        """A Model for a pointer owned by `owner` (a trainer from a checkpoint): it is not
        freed by this object, and keeps `owner` alive."""
        m = cls.__new__(cls)
        m._ptr = ptr
        m._owner = owner
        m._finalizer = weakref.finalize(m, lambda: None)
        return m

    @property
    def shape(self):
        """(d_in, n_latents)."""
        return _dims(self, "sae_model_dims")

    @property
    def d_in(self):
        """Input dimension."""
        return self.shape[0]

    @property
    def n_latents(self):
        """Number of latents (dictionary size)."""
        return self.shape[1]

    def get(self, name):
        """A model parameter as the model holds it (e.g. "arch", "k")."""
        return read_scalar(self, ("sae_model_get_i64", "sae_model_get_f64"), param_info(name))

    def encode(self, x, out=None):
        """Latent codes of x (n, d_in) as float32 (n, n_latents)."""
        d_in, n_lat = self.shape
        xa, xp, n, ldx = in_matrix(x, d_in, "x")
        z, zp, ldz = out_matrix(out, n, n_lat, "out")
        self._call("sae_model_encode", xp, n, ldx, zp, ldz)
        return z

    def decode(self, z, out=None):
        """Reconstructions of codes z (n, n_latents) as float32 (n, d_in)."""
        d_in, n_lat = self.shape
        za, zp, n, ldz = in_matrix(z, n_lat, "z")
        xh, xp, ldx = out_matrix(out, n, d_in, "out")
        self._call("sae_model_decode", zp, n, ldz, xp, ldx)
        return xh

    def tensor(self, which):
        """A copy of a parameter tensor: "w_enc", "b_enc", "w_dec", "b_dec", ... Vectors
        come back 1-D."""
        return _shape_then_copy(self, "sae_model_tensor_shape", "sae_model_get_tensor",
                                enum_value("sae_tensor", which),
                                (_capi.SAE_TENSOR_W_ENC, _capi.SAE_TENSOR_W_DEC))

    def set_tensor(self, which, values):
        """Overwrite a parameter tensor (shape must match; finite values only)."""
        key = enum_value("sae_tensor", which)
        rows, rref = out_scalar(ctypes.c_int64)
        cols, cref = out_scalar(ctypes.c_int64)
        self._call("sae_model_tensor_shape", key, rref, cref)
        a = np.asarray(values)
        if a.ndim == 1:
            a = a.reshape(1, -1)
        if a.shape != (rows.value, cols.value):
            raise ValueError("tensor %r has shape (%d, %d), got %s" % (which, rows.value, cols.value,
                                                                        np.shape(values)))
        a, ptr, _, ld = in_matrix(a, cols.value, "values")
        self._call("sae_model_set_tensor", key, ptr, ld)

    W_enc = property(lambda self: self.tensor("w_enc"), doc="Encoder weights (d_in, n_latents), a copy.")
    b_enc = property(lambda self: self.tensor("b_enc"), doc="Encoder bias (n_latents,), a copy.")
    W_dec = property(lambda self: self.tensor("w_dec"), doc="Decoder weights (n_latents, d_in), a copy.")
    b_dec = property(lambda self: self.tensor("b_dec"), doc="Decoder bias (d_in,), a copy.")

    def to_bytes(self):
        """Architecture, parameters and every tensor as native bytes, bit-exact (io.h)."""
        return serialize(self, "sae_model_serialize")

    @classmethod
    def from_bytes(cls, data):
        """A model from to_bytes() output."""
        return cls._from_ptr(deserialize("sae_model_deserialize", data))

    def to_safetensors(self):
        """The model as a safetensors file in the SAELens layout (bytes)."""
        return serialize(self, "sae_model_export_safetensors")

    def saelens_cfg(self):
        """The SAELens cfg.json text for this model."""
        return serialize(self, "sae_model_export_saelens_cfg").decode()

    @classmethod
    def from_safetensors(cls, data, cfg_json=None):
        """A model from safetensors bytes; cfg_json (SAELens cfg.json text) is optional."""
        cfg = cfg_json.encode() if isinstance(cfg_json, str) else cfg_json
        return cls._from_ptr(deserialize("sae_model_import_safetensors", data, cfg,
                                         len(cfg) if cfg is not None else 0))

    def __repr__(self):
        return "<sae.Model closed>" if self.closed else "<sae.Model d_in=%d n_latents=%d>" % self.shape


class Trainer(Handle):
    """Trains a Model in place (Adam; loss, penalties and schedules from its parameters).

    >>> trainer = Trainer(model, lr=1e-3, l1_coefficient=3e-3, batch_size=256)
    >>> trainer.train_toy(toy, n_steps=2000)
    >>> trainer.stats()["mse"]

    The trainer keeps its model alive (in C and in Python).
    """

    _kind = "trainer"
    _free = "sae_trainer_free"
    _errmsg = "sae_trainer_errmsg"

    def __init__(self, model, config=None, **params):
        if not isinstance(model, Model):
            raise TypeError("Trainer needs a sae.Model")
        cfg = make_config("trainer", config, params)
        _create_into(self, "sae_trainer_create", cfg, model)
        if lib.sae_trainer_model(self) != model._ptr:
            raise SaeError(_capi.SAE_E_INTERNAL, "trainer holds another model", "sae_trainer_model")
        self.model = model
        self._d_in = model.d_in  # the trainer may outlive the Python model's close()
        self._callbacks = None
        self._callback_error = None

    def set_callbacks(self, log=None, progress=None):
        """log(level, message) receives the trainer's log lines; progress(step, total, loss)
        runs after each step and may return True to stop (the call then raises
        CancelledError and training can continue later). Exceptions raised inside a
        callback stop the call and are re-raised."""
        log_c = _capi.sae_log_fn(self._log_adapter(log)) if log else _capi.sae_log_fn()
        prog_c = _capi.sae_progress_fn(self._progress_adapter(progress)) if progress \
            else _capi.sae_progress_fn()
        self._call("sae_trainer_set_callbacks", log_c, prog_c, None)
        self._callbacks = (log_c, prog_c)  # keep the C thunks alive

    def _log_adapter(self, fn):
        def thunk(_user, level, message):
            try:
                fn(level, message.decode(errors="replace") if message else "")
            except BaseException as exc:  # noqa: BLE001 - re-raised after the C call
                self._callback_error = self._callback_error or exc
        return thunk

    def _progress_adapter(self, fn):
        def thunk(_user, step, total, value):
            try:
                return 1 if fn(step, total, value) else 0
            except BaseException as exc:  # noqa: BLE001 - re-raised after the C call
                self._callback_error = self._callback_error or exc
                return 1
        return thunk

    def _run(self, name, *args):
        self._callback_error = None
        try:
            self._call(name, *args)
        finally:
            err, self._callback_error = self._callback_error, None
            if err is not None:
                raise err

    def step(self, x):
        """One optimisation step on the batch x (n, d_in)."""
        xa, xp, n, ldx = in_matrix(x, self._d_in, "x")
        self._run("sae_trainer_step", xp, n, ldx)
        return self

    def train_data(self, x, n_steps):
        """n_steps steps on batches of batch_size rows cycling through x (n_rows, d_in)."""
        xa, xp, n, ldx = in_matrix(x, self._d_in, "x")
        self._run("sae_trainer_train_data", xp, n, ldx, int(n_steps))
        return self

    def train_toy(self, toy, n_steps):
        """n_steps steps on fresh samples of toy, continuing from the trainer's position."""
        if not isinstance(toy, Toy):
            raise TypeError("train_toy needs a sae.Toy")
        self._run("sae_trainer_train_toy", toy, int(n_steps))
        return self

    def stat(self, which):
        """A statistic of the last step: "step", "loss", "mse", "sparsity", "l0", "dead", "lr"."""
        v, ref = out_scalar(ctypes.c_double)
        self._call("sae_trainer_stat", enum_value("sae_stat", which), ref)
        return v.value

    def stats(self):
        """Every statistic of the last step as a dict."""
        from ._handle import _enum_names
        return {name: self.stat(value) for name, value in _enum_names("sae_stat").items()}

    def to_bytes(self):
        """A checkpoint: configuration, model, optimiser state, step and sample position.
        Resuming from it gives the same bits as never having stopped (same BLAS/threads)."""
        return serialize(self, "sae_trainer_serialize")

    @classmethod
    def from_bytes(cls, data):
        """A trainer and a new model from a checkpoint; the model is trainer.model."""
        t = cls._from_ptr(deserialize("sae_trainer_deserialize", data))
        t.model = Model._borrowed(lib.sae_trainer_model(t), t)
        t._d_in = t.model.d_in
        t._callbacks = None
        t._callback_error = None
        return t

    def __repr__(self):
        return "<sae.Trainer closed>" if self.closed else "<sae.Trainer of %r>" % (self.model,)


def train_toy_many(trainers, toy, n_steps):
    """Train several trainers on ONE stream of toy batches (an L1 or k sweep): each step
    generates a batch once and feeds it to every trainer. They need the same d_in,
    batch_size and next sample index."""
    trainers = list(trainers)
    if not trainers or not all(isinstance(t, Trainer) for t in trainers):
        raise TypeError("train_toy_many needs a non-empty sequence of sae.Trainer")
    if not isinstance(toy, Toy):
        raise TypeError("train_toy_many needs a sae.Toy")
    ptrs = (ctypes.c_void_p * len(trainers))(*[t._as_parameter_.value for t in trainers])
    for t in trainers:
        t._callback_error = None
    status = lib.sae_trainer_train_toy_many(ptrs, len(trainers), toy, int(n_steps))
    for t in trainers:
        err, t._callback_error = t._callback_error, None
        if err is not None:
            raise err
    if status != _capi.SAE_OK:
        # the failing trainer recorded the message; report the first non-empty one
        failing = next((t for t in trainers if t.errmsg()), trainers[0])
        check(status, lib.sae_trainer_errmsg, failing, "sae_trainer_train_toy_many")


# Array results that are matrices even with one row (the others come back 1-D).
_METRIC_MATRICES = (_capi.SAE_ARRAY_COSINE, _capi.SAE_ARRAY_ENC_COSINE, _capi.SAE_ARRAY_ACT_HIST,
                    _capi.SAE_ARRAY_JOINT_FIRE)


class Metrics(Handle):
    """Compares a model's decoder directions with a toy's true features.

    >>> m = Metrics(recovery_threshold=0.9)
    >>> m.compute(model, toy)
    {'mmcs_true': 0.97, 'mmcs_learned': 0.81, 'frac_recovered': 0.94}
    >>> m.array("cosine")            # (n_features, n_latents)
    """

    _kind = "metrics"
    _free = "sae_metrics_free"
    _errmsg = "sae_metrics_errmsg"

    def __init__(self, config=None, **params):
        cfg = make_config("metrics", config, params)
        _create_into(self, "sae_metrics_create", cfg)

    def compute(self, model, toy):
        """Compute every metric of model against toy; returns results()."""
        if not isinstance(model, Model) or not isinstance(toy, Toy):
            raise TypeError("compute(model, toy) needs a sae.Model and a sae.Toy")
        self._call("sae_metrics_compute", model, toy)
        return self.results()

    def get(self, which):
        """A scalar result: "mmcs_true", "mmcs_learned", "frac_recovered", ..."""
        v, ref = out_scalar(ctypes.c_double)
        self._call("sae_metrics_get", enum_value("sae_metric", which), ref)
        return v.value

    def results(self):
        """Every scalar result the last compute() produced, as a dict (metrics of groups
        left out of "metrics_compute" are absent; NaN = not applicable)."""
        from ._handle import _enum_names
        out = {}
        for name, value in _enum_names("sae_metric").items():
            v, ref = out_scalar(ctypes.c_double)
            status = lib.sae_metrics_get(self, value, ref)
            if status == _capi.SAE_OK:
                out[name] = v.value
            elif status != _capi.SAE_E_STATE:
                check(status, lib.sae_metrics_errmsg, self, "sae_metrics_get")
        return out

    def list(self, which):
        """An integer list result as int64: "dead", "multi_peak", "unmatched_features",
        "composed" (records latent, k, f_1..f_k), ..."""
        key = enum_value("sae_metric_list", which)
        n, nref = out_scalar(ctypes.c_int64)
        self._call("sae_metrics_list_size", key, nref)
        out = np.zeros(n.value, dtype=np.int64)
        self._call("sae_metrics_copy_list", key, out.ctypes.data_as(_i64p), n.value, nref)
        return out

    def array(self, which):
        """An array result as float32: "cosine" (n_features, n_latents), "max_cos_true"
        (n_features,), "max_cos_learned" (n_latents,), "act_hist", "fire_freq", ... (the
        names of sae_metric_array in metrics.h, lower case, without SAE_ARRAY_)."""
        return _shape_then_copy(self, "sae_metrics_array_shape", "sae_metrics_copy_array",
                                enum_value("sae_metric_array", which), _METRIC_MATRICES)

    def __repr__(self):
        return "<sae.Metrics closed>" if self.closed else "<sae.Metrics>"
