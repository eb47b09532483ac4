"""Kernels written inline, next to the code that calls them.

The wheel carries them prebuilt, like kernels.py: the build hook lists this
module, and ``__capsules__/inline.<kernel>/`` holds each one's binaries.
"""

from __future__ import annotations

import math

import capsules

WIDTH = 1.0


def weight(x):
    return math.exp(-(x / WIDTH) ** 2)


# x squared stays finite (Python's ** raises OverflowError where C gives inf)
#capsules verify x=-1e100:1e100 w=-100:100
@capsules.integrand("x; w")
def gauss_cos(x, w):
    """exp(-x^2) cos(w x); over the real line its integral is sqrt(pi) exp(-w^2 / 4)."""
    return weight(x) * math.cos(w * x)
