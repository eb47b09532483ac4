"""quadfilt's kernels: two integrands and two filters, as natural capsules kernels."""

import math


#capsules integrand bump(x, y; a, cx, cy)
def bump(x, y, a, cx, cy):
    """A Gaussian bump exp(-a ((x - cx)^2 + (y - cy)^2))."""
    dx = x - cx
    dy = y - cy
    return math.exp(-a * (dx * dx + dy * dy))


#capsules integrand damped(x; k, w)
def damped(x, k, w):
    """A damped oscillation exp(-k x) cos(w x)."""
    return math.exp(-k * x) * math.cos(w * x)


#capsules filter local_range(window)
def local_range(window):
    """max(window) - min(window)."""
    lo = window[0]
    hi = window[0]
    for i in range(1, len(window)):
        v = window[i]
        if v < lo:
            lo = v
        if v > hi:
            hi = v
    return hi - lo


#capsules filter1d box(line_in, line_out; length)
def box(line_in, line_out, length):
    """Centred moving average of `length` values along each line."""
    m = int(length)
    for i in range(len(line_out)):
        s = 0.0
        for j in range(i, i + m):
            s += line_in[j]
        line_out[i] = s / m
