"""What a build includes of the headers pythran's C++ names: of xsimd, only its scalar functions (the vector types
are compiled only with -DUSE_XSIMD); the assembly is the same as with all of xsimd."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy import ndimage

import capsules

pytestmark = pytest.mark.compile

# numpy functions whose pythran headers include xsimd (floor_divide through
# `//`, floor, sqrt, exp, ...), on a view and on scalars
UFUNCS = """
import numpy as np


#capsules filter mixed(window)
def mixed(window):
    half = len(window) // 2
    w = np.floor(window * 3.0) // 2.0 + np.ceil(window) % 3.0
    v = np.sqrt(np.abs(window)) + np.exp(-window * window) + np.log1p(np.abs(window))
    u = np.tanh(window) + np.arctan2(window, 1.5) + np.hypot(window, 0.5)
    t = np.minimum(window, 0.3) + np.maximum(window, -0.3) + np.fmod(window, 0.7) + np.trunc(window * 2.0)
    return np.sum(w) + np.max(v) + np.min(u) + np.sum(t) + window[half] // 0.25 + np.sign(window[0])
"""

# a header only the whole of xsimd includes (by a relative path): the registers of every instruction set
XSIMD_ARCH = "/xsimd_arch.hpp"


def _assembly(assemble, module: capsules.KernelModule, name: str, *flags: str) -> tuple[str, str]:
    """The module's assembly by its build's own command (plus ``flags``), local labels renumbered; the headers read."""
    listing, headers = assemble(module, name, "-H", *flags)
    return _numbered_in_order(listing), headers


def _numbered_in_order(assembly: str) -> str:
    """The assembly with its local labels renumbered in order of appearance.

    gcc numbers them by declaration, and fewer headers declare less.
    """
    names: dict[str, str] = {}
    return re.sub(r"\.L\w+", lambda label: names.setdefault(label.group(0), f".L{len(names)}"), assembly)


def test_xsimd_is_included_for_its_scalar_functions_only_and_the_assembly_is_the_same(write_kernel, cache_dir, assemble):
    module = capsules.load(write_kernel(UFUNCS, "ufuncs.py"), cache=cache_dir)
    image = np.random.default_rng(11).standard_normal((24, 30)) * 2.0
    expected = ndimage.generic_filter(image, module.mixed.py, size=5)
    # numpy's own exp, tanh, ... may round differently from the C library's in the last place
    np.testing.assert_allclose(ndimage.generic_filter(image, module.mixed.lowlevel(), size=5), expected, rtol=1e-13)
    scalar, scalar_headers = _assembly(assemble, module, "scalar")
    whole, whole_headers = _assembly(assemble, module, "whole", "-DCAPSULES_FULL_XSIMD")
    assert XSIMD_ARCH not in scalar_headers and XSIMD_ARCH in whole_headers
    assert scalar == whole
