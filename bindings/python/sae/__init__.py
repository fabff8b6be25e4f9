"""libsae for Python: sparse autoencoders on toy models with known features.

A thin ctypes + NumPy layer over the C library (no compiled extension):

>>> import sae
>>> toy = sae.Toy(n_features=32, d=64, fire_prob=0.05, seed=1)
>>> model = sae.Model(d_in=64, n_latents=64)
>>> trainer = sae.Trainer(model, lr=1e-3, l1_coefficient=3e-3)
>>> trainer.train_toy(toy, n_steps=3000)
>>> sae.Metrics().compute(model, toy)["mmcs_true"]

Classes: Config, Toy, Model, Trainer, Metrics (each owns one C handle, freed by a
finaliser, close() or a with block, in any order). Parameters go by keyword, with the
names of ``sae.params(kind)``. Arrays are NumPy float32, row-major; C-contiguous inputs
(and row slices of them) reach the library without a copy. Failures raise SaeError
carrying the library's message and status.

The shared library is found through, in order: the environment variable SAE_LIBRARY (a
file or a directory), the install prefix this package was installed into, the newest
build*/ tree of a source checkout, the dynamic loader (libsae.so.0).
"""
from . import _capi as capi
from ._lib import (BufferTooSmallError, CancelledError, DivergedError, SaeError,
                   RUNTIME_VERSION_NUMBER, HEADER_VERSION, lib as _lib, status_str)
from .config import KINDS, Config, ParamInfo, param_info, params
from .handles import Metrics, Model, Toy, Trainer, train_toy_many
from .io import inspect

__version__ = "%d.%d.%d" % HEADER_VERSION


def version():
    """Version string of the loaded C library ("MAJOR.MINOR.PATCH")."""
    return _lib.sae_version_string().decode()


def version_number():
    """Version of the loaded C library as major*10000 + minor*100 + patch."""
    return _lib.sae_version_number()


def build_info():
    """One line naming the BLAS in use, threading support and compiler."""
    return _lib.sae_build_info().decode()


def library_path():
    """Path of the loaded libsae shared library."""
    return _lib.path


__all__ = ["BufferTooSmallError", "CancelledError", "Config", "DivergedError", "KINDS",
           "Metrics", "Model", "ParamInfo", "SaeError", "Toy", "Trainer", "build_info",
           "capi", "inspect", "library_path", "train_toy_many", "param_info", "params", "status_str", "version", "version_number",
           "RUNTIME_VERSION_NUMBER", "HEADER_VERSION"]
