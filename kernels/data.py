"""Natural kernels that read arrays passed by name: a tabulated integrand and a weighted filter.

Their hand-written C twins, reading the same arrays through user_data, are
benchmarks/c/data.c (timed by benchmarks/data.py).
"""

from math import floor


# a grid of positive steps, and points near it: (x - x0) / dx stays an int64 (a huge one is no index)
#capsules verify x=-1e3:1e3 x0=-1e3:1e3 dx=1e-3:1e3
#capsules integrand interpolated(x; table: float64[:], x0, dx)
def interpolated(x, table, x0, dx):
    """The piecewise-linear function through table[i] at x0 + i dx, constant past its ends."""
    t = (x - x0) / dx
    i = int(floor(t))
    if i < 0:
        return table[0]
    if i >= len(table) - 1:
        return table[len(table) - 1]
    f = t - i
    return table[i] * (1.0 - f) + table[i + 1] * f


# a 3 x 3 footprint: the window holds as many values as the weights
#capsules verify filter_size=9 len(weights)=3
#capsules filter weighted(window; weights: float64[:, :])
def weighted(window, weights):
    """generic_filter's footprint, in C order, weighted: ndimage.correlate."""
    total = 0.0
    rows, columns = weights.shape
    for i in range(rows):
        for j in range(columns):
            total += window[i * columns + j] * weights[i, j]
    return total
