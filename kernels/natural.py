"""Natural kernels: each SciPy role written as a plain function, with a raw-pointer twin elsewhere.

A '#capsules ROLE name(provided; parameters)' comment says which SciPy role
the function plays, which arguments SciPy provides and which are parameters,
passed by name: mod.oscillatory3.lowlevel(a1=..., a2=..., a3=..., u1=...).
Each kernel computes exactly what its twin does (same operations, same
order), so the results are equal bit for bit.
"""

import math


# the unit cube, a_i up to 10, u1 in [0, 1]: cos's argument stays finite
#capsules verify x=0:1 y=0:1 z=0:1 a1=0:10 a2=0:10 a3=0:10 u1=0:1
#capsules integrand oscillatory3(x, y, z; a1, a2, a3, u1)
def oscillatory3(x, y, z, a1, a2, a3, u1):
    """Genz oscillatory in 3-D: cos(2 pi u1 + a1 x + a2 y + a3 z).

    parameters: a1, a2, a3, u1 (twin: genz.oscillatory with user_data [a1, a2, a3, u1, u2, u3]).
    """
    s = 2.0 * math.pi * u1
    s += a1 * x
    s += a2 * y
    s += a3 * z
    return math.cos(s)


#capsules filter local_range(window)
def local_range(window):
    """Local range: max(window) - min(window).

    parameters: none (twin: filters.local_range).
    """
    lo = window[0]
    hi = window[0]
    for i in range(1, len(window)):
        v = window[i]
        if v < lo:
            lo = v
        if v > hi:
            hi = v
    return hi - lo


#capsules filter1d ewma(line_in, line_out; alpha)
def ewma(line_in, line_out, alpha):
    """Exponentially weighted moving average: y_j = alpha x_j + (1 - alpha) y_{j-1} along the line.

    parameters: alpha, 0 < alpha <= 1 (twin: filters.ewma with user_data [alpha]).
    """
    size = len(line_in) - len(line_out) + 1
    y = line_in[0]
    for j in range(1, size):
        y = alpha * line_in[j] + (1.0 - alpha) * y
    line_out[0] = y
    for i in range(1, len(line_out)):
        y = alpha * line_in[i + size - 1] + (1.0 - alpha) * y
        line_out[i] = y


# a 2-D image: two coordinates in, two out
#capsules verify rank=2
#capsules mapping shift2d(out_coords; dy, dx)
def shift2d(out_coords, dy, dx):
    """Shift a 2-D image: input = output - (dy, dx), what ndimage.shift(image, (dy, dx)) computes.

    parameters: dy, dx (twin: transforms.shift with user_data [2, dy, dx]).
    """
    return (out_coords[0] - dy, out_coords[1] - dx)


# length is the filter size (the kernel raises otherwise, on both sides)
#capsules verify length=3 filter_size=3
#capsules filter1d moving_average(line_in, line_out; length)
def moving_average(line_in, line_out, length):
    """Centred box average: output[i] = (1/m) sum of the m values of window i, m = length = filter_size.

    parameters: length (twin: filters.moving_average with user_data [m]). Fix it at build time,
    load(..., constants={"moving_average": {"length": 9}}), and the compiler unrolls the sum.
    """
    m = int(length)
    if m != len(line_in) - len(line_out) + 1:
        raise ValueError("length must equal the filter size")
    for i in range(len(line_out)):
        s = 0.0
        for k in range(m):
            s += line_in[i + k]
        line_out[i] = s / m
