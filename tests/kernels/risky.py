"""Kernels that fail on purpose, for the no-abort tests."""

import math


#pythran export capsule raises(int32, float64*, float64*)
def raises(n, x, cp):
    if x[0] > cp[0]:
        raise ValueError("x beyond the limit")
    return x[0]


#pythran export capsule raising_filter(float64*, int64, float64*, float64*)
def raising_filter(buffer, size, out, unused):
    if buffer[0] > 0.5:
        raise IndexError("explicit index error")
    out[0] = buffer[0]
    return 1


#capsules filter far_reach(window)
def far_reach(window):
    return window[len(window) + 3]


#capsules integrand divides(x; k)
def divides(x, k):
    return x + 1 // int(k)


#capsules filter asserts(window)
def asserts(window):
    assert window[0] < 0.5, "window starts too high"
    return window[0]


#capsules filter blows_up(window)
def blows_up(window):
    return math.exp(1000.0 * window[0])


#capsules mapping identity(out_coords)
def identity(out_coords):
    return (out_coords[0] * 1.0, out_coords[1] * 1.0)


#pythran export capsule int32_division(int32, float64*)
def int32_division(n, x):
    return float(n // (n - n))
