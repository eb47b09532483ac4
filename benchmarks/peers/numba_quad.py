"""numba @cfunc versions of the W1 and W2 integrands."""

from math import cos, exp, pi, sin

from numba import cfunc

from ._numba_common import CACHE, f64, f64p, intc


@cfunc(f64(f64), cache=CACHE)
def osc(x):
    s = sin(50.0 * x)
    return exp(-x * x) * s * s


@cfunc(f64(intc, f64p, f64p), cache=CACHE)
def genz(n, x, c):
    t = 2.0 * pi * c[0]
    for i in range(n):
        t += c[i + 1] * x[i]
    return cos(t)
