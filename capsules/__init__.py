"""capsules: compile pure-Python numeric kernels ahead of time into SciPy LowLevelCallables.

Write a kernel in Python with a pythran export comment, build it once, and
pass ``kernel.lowlevel(...)`` to ``scipy.integrate`` or ``scipy.ndimage``::

    import capsules
    mod = capsules.load("kernels/integrands.py")
    integrate.nquad(mod.f.lowlevel(user_data=[1.0]), [[0, 10], [-10, 0], [-1, 1]])
"""

from __future__ import annotations

from ._version import __version__
from .build import BuildResult, build
from .cache import Cache
from .errors import (
    BuildError,
    CacheError,
    CapsulesError,
    IntegrationInputError,
    KernelError,
    PrebuiltError,
    SignatureError,
    SpecError,
    UserDataError,
)
from .load import ComplexParts, Kernel, KernelModule, load
from .decorators import InlineKernel, filter, filter1d, integrand, mapping, raw  # noqa: A004
from .quadpack import dblquad, inner, nquad, quad, tplquad
from .verify import verify  # the function hides the module here; "from capsules.verify import ..." reaches it


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext capsules``: registers the ``%%capsules`` cell magic (:mod:`capsules.notebook`)."""
    from .notebook import load_ipython_extension as register

    register(ipython)


__all__ = [
    "BuildError",
    "BuildResult",
    "Cache",
    "CacheError",
    "CapsulesError",
    "ComplexParts",
    "InlineKernel",
    "IntegrationInputError",
    "Kernel",
    "KernelError",
    "KernelModule",
    "PrebuiltError",
    "SignatureError",
    "SpecError",
    "UserDataError",
    "__version__",
    "build",
    "dblquad",
    "filter",
    "filter1d",
    "inner",
    "integrand",
    "load",
    "mapping",
    "nquad",
    "quad",
    "raw",
    "tplquad",
    "verify",
]
