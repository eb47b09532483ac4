"""Integrals with every level compiled: QUADPACK's QAGS and QAGI in C++, called with the GIL released.

``nquad``, ``quad``, ``dblquad`` and ``tplquad`` take SciPy's arguments and
give SciPy's answers; ``inner`` makes the inner levels of an integral into a
capsule for SciPy's own outer levels.  See :mod:`capsules.quadpack.integrals`.
"""

from __future__ import annotations

from .integrals import dblquad, inner, nquad, quad, tplquad

__all__ = ["dblquad", "inner", "nquad", "quad", "tplquad"]
