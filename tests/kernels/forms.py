"""One capsule per SciPy calling convention capsules supports."""

from math import exp


#pythran export capsule gauss(float64)
def gauss(x):
    return exp(-x * x)


#pythran export capsule scaled_gauss(float64, float64*)
def scaled_gauss(x, p):
    return p[0] * exp(-p[1] * x * x)


#pythran export capsule product(int32, float64*)
def product(n, x):
    r = 1.0
    for i in range(n):
        r *= x[i]
    return r


#pythran export capsule weighted_sum(int32, float64*, float64*)
def weighted_sum(n, x, w):
    r = 0.0
    for i in range(n):
        r += w[i] * x[i]
    return r


#pythran export capsule window_range(float64*, int64, float64*, float64*)
def window_range(buffer, size, out, unused):
    lo = buffer[0]
    hi = buffer[0]
    for i in range(1, size):
        lo = min(lo, buffer[i])
        hi = max(hi, buffer[i])
    out[0] = hi - lo
    return 1


#pythran export capsule running_sum(float64*, int64, float64*, int64, float64*)
def running_sum(line_in, n_in, line_out, n_out, width):
    w = int(width[0])
    for i in range(n_out):
        s = 0.0
        for j in range(w):
            s += line_in[i + j]
        line_out[i] = s
    return 1


#pythran export capsule scale_coords(int64*, float64*, int32, int32, float64*)
def scale_coords(out_coords, in_coords, out_rank, in_rank, factor):
    for i in range(in_rank):
        in_coords[i] = out_coords[i] * factor[0]
    return 1
