"""Loading libsae, checking its version, declaring prototypes, turning statuses into
exceptions. Internal: use the classes exported by the `sae` package."""
import ctypes
import ctypes.util
import glob
import os

from . import _capi

#: Version of the C header this binding was generated from.
HEADER_VERSION = _capi.HEADER_VERSION

_SONAME = "libsae.so.0"


class SaeError(Exception):
    """A libsae call failed.

    Attributes: ``status`` (negative ``SAE_E_*`` code), ``status_name`` (e.g.
    ``"SAE_E_RANGE"``), ``message`` (the library's detailed message for the handle, or
    the status text when there is none).
    """

    def __init__(self, status, message, function=None):
        self.status = status
        self.status_name = _STATUS_NAMES.get(status, str(status))
        self.message = message
        self.function = function
        where = "%s: " % function if function else ""
        super().__init__("%s%s (%s)" % (where, message, self.status_name))


class CancelledError(SaeError):
    """A progress callback asked the running call to stop (SAE_E_CANCELLED)."""


class DivergedError(SaeError):
    """Training produced NaN/Inf; the model keeps its last good state (SAE_E_DIVERGED)."""


class BufferTooSmallError(SaeError):
    """An output buffer was too small (SAE_E_BUFFER_TOO_SMALL)."""


_STATUS_NAMES = {v: k for k, v in _capi.ENUMS["sae_status"].items()}
_STATUS_CLASSES = {
    _capi.SAE_E_CANCELLED: CancelledError,
    _capi.SAE_E_DIVERGED: DivergedError,
    _capi.SAE_E_BUFFER_TOO_SMALL: BufferTooSmallError,
}


def _candidates():
    """Where to look for the shared library, most specific first."""
    env = os.environ.get("SAE_LIBRARY")
    if env:
        # An explicit choice: never fall back to another copy silently.
        return [os.path.join(env, _SONAME) if os.path.isdir(env) else env]
    here = os.path.dirname(os.path.abspath(__file__))
    found = []
    try:  # written by `cmake --install` (SAE_INSTALL_PYTHON=ON)
        from ._install_location import LIBDIR_RELATIVE
        found.append(os.path.normpath(os.path.join(here, LIBDIR_RELATIVE, _SONAME)))
    except ImportError:
        pass
    root = os.path.normpath(os.path.join(here, "..", "..", ".."))
    if os.path.exists(os.path.join(root, "include", "sae", "sae.h")):
        # Source checkout: the most recently built library of any build*/ tree.
        libs = glob.glob(os.path.join(root, "build*", "lib", _SONAME))
        libs += glob.glob(os.path.join(root, "build*", "*", "lib", _SONAME))
        found += sorted(libs, key=_mtime, reverse=True)
    system = ctypes.util.find_library("sae")
    found += [system] if system else []
    found.append(_SONAME)  # whatever the dynamic loader finds
    return found


def _mtime(path):
    try:
        return os.path.getmtime(path)
    except OSError:  # vanished meanwhile (a build relinking it)
        return 0.0


def _load():
    errors = []
    for path in _candidates():
        if os.path.isabs(path) and not os.path.exists(path):
            errors.append("%s: not found" % path)
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as exc:
            errors.append(str(exc))
    raise ImportError("libsae not found; build it (cmake --build build) or set SAE_LIBRARY "
                      "to the path of libsae.so.0. Tried:\n  " + "\n  ".join(errors))


class _Api:
    """The loaded library with typed prototypes. Functions the loaded library lacks (an
    older libsae) raise SaeError(SAE_E_NOT_SUPPORTED) when called."""

    def __init__(self, cdll, path):
        self.cdll = cdll
        self.path = path
        self.missing = []
        for name, (restype, argtypes, _header) in _capi.FUNCTIONS.items():
            try:
                fn = getattr(cdll, name)
            except AttributeError:
                self.missing.append(name)
                setattr(self, name, _missing(name))
                continue
            fn.restype = restype
            fn.argtypes = list(argtypes)
            setattr(self, name, fn)


def _missing(name):
    def call(*_args):
        raise SaeError(_capi.SAE_E_NOT_SUPPORTED,
                       "the loaded libsae has no %s (older than the binding)" % name, name)
    return call


def _check_version(api):
    api.sae_version_number.restype = ctypes.c_uint32
    number = api.sae_version_number()
    major, minor = number // 10000, number // 100 % 100
    want_major, want_minor = HEADER_VERSION[0], HEADER_VERSION[1]
    if major != want_major or minor < want_minor:
        raise ImportError("libsae at %s is version %d.%d, this binding needs %d.%d or a newer "
                          "%d.x" % (api.path, major, minor, want_major, want_minor, want_major))
    return number


lib = _Api(*_load())
RUNTIME_VERSION_NUMBER = _check_version(lib)


def status_str(status):
    """Static English text of a status code."""
    return lib.sae_status_str(int(status)).decode()


def check(status, errmsg=None, handle=None, function=None):
    """Raise the SaeError matching status (no-op for SAE_OK). errmsg(handle) supplies the
    library's detailed message when a handle is given."""
    if status == _capi.SAE_OK:
        return
    message = ""
    if errmsg is not None and handle is not None:
        raw = errmsg(handle)
        message = raw.decode(errors="replace") if raw else ""
    if not message:
        message = status_str(status)
    raise _STATUS_CLASSES.get(status, SaeError)(status, message, function)
