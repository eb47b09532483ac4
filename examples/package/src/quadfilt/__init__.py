"""quadfilt: a small library whose kernels ship compiled in its wheel.

Its functions call SciPy with capsules kernels; the prebuilt binaries in
quadfilt/__capsules__/ are found by ``capsules.load`` without Pythran or a
compiler.  ``python -m quadfilt`` runs :func:`selfcheck`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy import integrate, ndimage

import capsules

from . import inline

# build left at True: the wheel's prebuilt binaries are taken without a compiler, and an editable
# install (which has none) builds from the file
KERNELS = capsules.load(Path(__file__).with_name("kernels.py"))


def bump_integral(a: float, cx: float = 0.5, cy: float = 0.5) -> float:
    """The integral of the Gaussian bump over the unit square."""
    value, _ = integrate.dblquad(KERNELS.bump.lowlevel(a=a, cx=cx, cy=cy), 0, 1, 0, 1, epsabs=1e-13, epsrel=1e-13)
    return value


def damped_integral(k: float, w: float, upper: float = math.inf) -> float:
    """The integral of exp(-k x) cos(w x) from 0 to ``upper``."""
    value, _ = integrate.quad(KERNELS.damped.lowlevel(k=k, w=w), 0, upper, epsabs=1e-13, epsrel=1e-13, limit=200)
    return value


def gauss_cos_integral(w: float) -> float:
    """The integral of exp(-x^2) cos(w x) over the real line (an inline kernel)."""
    value, _ = integrate.quad(inline.gauss_cos.lowlevel(w=w), -math.inf, math.inf, epsabs=1e-13, epsrel=1e-13)
    return value


def smooth_edges(image: np.ndarray, size: int = 5) -> np.ndarray:
    """Local range (an edge map) of a box-smoothed image."""
    smooth = ndimage.generic_filter1d(image, KERNELS.box.lowlevel(length=size), size, axis=1)
    return ndimage.generic_filter(smooth, KERNELS.local_range.lowlevel(), size=3)


def selfcheck() -> dict[str, float]:
    """Every function against an independent reference; returns the largest errors (raises if too large)."""
    errors = {
        # closed form: int_0^inf exp(-k x) cos(w x) dx = k / (k^2 + w^2)
        "damped_integral": abs(damped_integral(0.5, 3.0) - 0.5 / (0.25 + 9.0)),
        # closed form: separable, each factor sqrt(pi/a)/2 (erf(sqrt(a)/2) * 2) about the centre
        "bump_integral": abs(bump_integral(4.0) - (math.sqrt(math.pi / 4.0) * math.erf(1.0)) ** 2),
        # closed form: int exp(-x^2) cos(w x) dx = sqrt(pi) exp(-w^2 / 4)
        "gauss_cos_integral": abs(gauss_cos_integral(1.5) - math.sqrt(math.pi) * math.exp(-1.5**2 / 4)),
    }
    rng = np.random.default_rng(0)
    image = rng.random((64, 48))
    smooth = ndimage.uniform_filter1d(image, 5, axis=1, mode="reflect")
    reference = ndimage.maximum_filter(smooth, size=3) - ndimage.minimum_filter(smooth, size=3)
    errors["smooth_edges"] = float(np.max(np.abs(smooth_edges(image) - reference)))
    bad = {name: err for name, err in errors.items() if not err < 1e-10}
    if bad:
        raise AssertionError(f"quadfilt self-check failed: {bad}")
    return errors
