"""Integrands of workloads W1 (quad) and W2 (nquad), in SciPy's raw C forms."""

from math import cos, exp, pi, sin


#pythran export capsule osc(float64)
def osc(x):
    """W1: exp(-x**2) * sin(50 x)**2."""
    s = sin(50.0 * x)
    return exp(-x * x) * s * s


#pythran export capsule genz(int32, float64*, float64*)
def genz(n, x, c):
    """W2: Genz oscillatory cos(2 pi u1 + sum a_i x_i); c = (u1, a_1, ..., a_n)."""
    t = 2.0 * pi * c[0]
    for i in range(n):
        t += c[i + 1] * x[i]
    return cos(t)
