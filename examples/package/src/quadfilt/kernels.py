"""quadfilt's kernels: two integrands and two filters, as natural capsules kernels."""

import math


# the unit square, a bump (a >= 0) centred in it
#capsules verify x=0:1 y=0:1 a=0:1000 cx=0:1 cy=0:1
#capsules integrand bump(x, y; a, cx, cy)
def bump(x, y, a, cx, cy):
    """A Gaussian bump exp(-a ((x - cx)^2 + (y - cy)^2))."""
    dx = x - cx
    dy = y - cy
    return math.exp(-a * (dx * dx + dy * dy))


# x >= 0 and k >= 0, w x finite (cos of an infinite argument raises in Python)
#capsules verify x=0:1e6 k=0:100 w=-100:100
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


# length is the filter size: a longer box would read past the line
#capsules verify length=3 filter_size=3
#capsules filter1d box(line_in, line_out; length)
def box(line_in, line_out, length):
    """Centred moving average of `length` values along each line."""
    m = int(length)
    for i in range(len(line_out)):
        s = 0.0
        for j in range(i, i + m):
            s += line_in[j]
        line_out[i] = s / m
