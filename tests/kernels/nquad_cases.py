"""Integrands and range bounds for capsules.nquad's tests, each called with (n, values)."""

import math


#pythran export capsule gauss(int32, float64*, float64*)
def gauss(n, x, c):
    """exp(-sum c_i x_i^2) * (1 + x_0 x_{n-1}): over infinite ranges."""
    s = 0.0
    for i in range(n):
        s += c[i] * x[i] * x[i]
    return math.exp(-s) * (1.0 + x[0] * x[n - 1])


#pythran export capsule decay(int32, float64*)
def decay(n, x):
    """exp(-x_0 - 2 x_1) / (1 + x_0^2): over [0, inf) x (-inf, 0] and with args appended (x_2.. scale it)."""
    s = 1.0
    for i in range(2, n):
        s *= x[i]
    return s * math.exp(-x[0] - 2.0 * abs(x[1])) / (1.0 + x[0] * x[0])


#pythran export capsule inverse(int32, float64*)
def inverse(n, x):
    """1 / x_0 times the others: divergent at 0."""
    p = 1.0 / x[0]
    for i in range(1, n):
        p *= x[i]
    return p


#pythran export capsule wavy(int32, float64*)
def wavy(n, x):
    """sin(50 x_0) exp(x_1) + x_0 x_1: a level that needs subdivisions."""
    return math.sin(50.0 * x[0]) * math.exp(x[1]) + x[0] * x[1]


#pythran export capsule below(int32, float64*)
def below(n, x):
    """A lower bound: -sqrt(1 - x_0^2) (the lower half of the unit circle)."""
    return -math.sqrt(max(0.0, 1.0 - x[0] * x[0]))


#pythran export capsule above(int32, float64*)
def above(n, x):
    """An upper bound: the sum of the values it is given, plus one."""
    s = 1.0
    for i in range(n):
        s += x[i]
    return s


#pythran export capsule parabola(int32, float64*, float64*)
def parabola(n, x, c):
    """An upper bound: c_0 x_0^2 + x_{n-1} (user_data in a bound)."""
    return c[0] * x[0] * x[0] + x[n - 1]


#pythran export capsule spike(int32, float64*)
def spike(n, x):
    """|x_0 - x_{n-2}| ** x_{n-1}: a power singularity where the arguments put it."""
    return abs(x[0] - x[n - 2]) ** x[n - 1]


#pythran export capsule raises(int32, float64*)
def raises(n, x):
    """x_0, raising ValueError where x_0 passes the last value (an argument)."""
    if x[0] > x[n - 1]:
        raise ValueError("x beyond the limit")
    return x[0]
