"""Capsules for C libraries other than SciPy: the GNU Scientific Library.

A capsule is a plain C function pointer (``Kernel.address``), so any C
library that takes callbacks can call it.  GSL's integration, differentiation
and root-finding routines take a ``gsl_function``, a function pointer with a
``params`` pointer handed back on every call::

    struct gsl_function { double (*function)(double x, void *params); void *params; };

which is the capsule signature ``double (double, void *)``, pythran export
``(float64, float64*)``.  :func:`gsl_function` builds that struct from a
kernel, with user_data converted and kept alive exactly as
``Kernel.lowlevel`` does; :func:`load_library` finds GSL through ctypes::

    gsl = capsules.gsl.load_library()
    f = capsules.gsl.gsl_function(mod.log_over_sqrt, [1.0])
    gsl.gsl_integration_qags(ctypes.byref(f), 0.0, 1.0, 0.0, 1e-10, 1000, work, byref(result), byref(abserr))
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

from .errors import CapsulesError, SignatureError
from .load import Kernel
from .userdata import convert

SIGNATURE = "double (double, void *)"
FUNCTION = ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_double, ctypes.c_void_p)


class GslFunction(ctypes.Structure):
    """GSL's ``gsl_function``; pass ``ctypes.byref(f)`` where GSL wants a ``gsl_function *``.

    Made by :func:`gsl_function`, it keeps its kernel and user_data alive as
    long as it lives itself.
    """

    _fields_ = [("function", FUNCTION), ("params", ctypes.c_void_p)]


_F = ctypes.POINTER(GslFunction)  # const gsl_function *
_D = ctypes.c_double
_PD = ctypes.POINTER(ctypes.c_double)
_PROTOTYPES: dict[str, tuple[Any, tuple[Any, ...]]] = {
    "gsl_integration_workspace_alloc": (ctypes.c_void_p, (ctypes.c_size_t,)),
    "gsl_integration_workspace_free": (None, (ctypes.c_void_p,)),
    # f, a, b, epsabs, epsrel, limit, workspace, result, abserr
    "gsl_integration_qags": (ctypes.c_int, (_F, _D, _D, _D, _D, ctypes.c_size_t, ctypes.c_void_p, _PD, _PD)),
    # f, a, epsabs, epsrel, limit, workspace, result, abserr: the integral over [a, +inf)
    "gsl_integration_qagiu": (ctypes.c_int, (_F, _D, _D, _D, ctypes.c_size_t, ctypes.c_void_p, _PD, _PD)),
    # f, x, h, result, abserr
    "gsl_deriv_central": (ctypes.c_int, (_F, _D, _D, _PD, _PD)),
    "gsl_strerror": (ctypes.c_char_p, (ctypes.c_int,)),
    "gsl_set_error_handler_off": (ctypes.c_void_p, ()),
}


def gsl_function(kernel: Kernel, user_data: Any = None) -> GslFunction:
    """A ``gsl_function`` that calls ``kernel`` with ``user_data`` as its params.

    Parameters
    ----------
    kernel
        A capsule with the signature ``double (double, void *)``.
    user_data
        As for ``Kernel.lowlevel``: None, a float, a sequence of numbers or
        a 1-D array, copied into the dtype the kernel reads.

    Raises
    ------
    SignatureError
        The kernel does not have the signature GSL calls.
    UserDataError
        user_data does not fit what the kernel reads.
    """
    if kernel.signature != SIGNATURE:
        raise SignatureError(
            f"'{kernel.name}' is {kernel.signature!r}, but GSL calls {SIGNATURE!r}: "
            "export it as (float64, float64*)",
            **kernel.spec.where(),
        )
    data = convert(kernel.spec, kernel.matched, user_data, checked=kernel.module.checked)
    function = GslFunction(FUNCTION(kernel.address), None if data is None else data.ctypes.data)
    function.keepalive = (kernel, data)  # the struct holds raw addresses only
    return function


@functools.lru_cache(maxsize=None)
def load_library() -> ctypes.CDLL:
    """GSL as a ctypes library, with the prototypes of the routines capsules' examples use.

    libgslcblas is loaded first, with RTLD_GLOBAL, since libgsl leaves its
    BLAS symbols to it.  GSL's default error handler calls abort(), which
    would end the Python process; it is turned off, so every routine
    returns its status instead (0 is success, ``gsl_strerror`` explains the others).

    Raises
    ------
    CapsulesError
        GSL is not installed.
    """
    gsl, cblas = ctypes.util.find_library("gsl"), ctypes.util.find_library("gslcblas")
    if gsl is None or cblas is None:
        raise CapsulesError(
            "GSL not found (ctypes.util.find_library('gsl') finds no libgsl): install it, "
            "e.g. 'apt-get install libgsl-dev' on Debian and Ubuntu"
        )
    try:
        ctypes.CDLL(cblas, mode=ctypes.RTLD_GLOBAL)
        lib = ctypes.CDLL(gsl)
    except OSError as err:
        raise CapsulesError(f"GSL found but not loadable: {err}") from None
    for name, (restype, argtypes) in _PROTOTYPES.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes
    lib.gsl_set_error_handler_off()
    return lib
