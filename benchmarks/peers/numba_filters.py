"""numba @cfunc versions of the W3 and W4 filter kernels."""

from numba import cfunc

from ._numba_common import CACHE, f64p, intc, intp, types


@cfunc(intc(f64p, intp, f64p, types.voidptr), cache=CACHE)
def local_range(buffer, filter_size, return_value, user_data):
    lo = buffer[0]
    hi = buffer[0]
    for i in range(1, filter_size):
        v = buffer[i]
        if v < lo:
            lo = v
        if v > hi:
            hi = v
    return_value[0] = hi - lo
    return 1


@cfunc(intc(f64p, intp, f64p, types.voidptr), cache=CACHE)
def local_variance(buffer, filter_size, return_value, user_data):
    s = 0.0
    for i in range(filter_size):
        s += buffer[i]
    mean = s / filter_size
    q = 0.0
    for i in range(filter_size):
        d = buffer[i] - mean
        q += d * d
    return_value[0] = q / filter_size
    return 1


@cfunc(intc(f64p, intp, f64p, intp, types.voidptr), cache=CACHE)
def moving_average(input_line, input_length, output_line, output_length, user_data):
    width = input_length - output_length + 1
    for i in range(output_length):
        s = 0.0
        for k in range(width):
            s += input_line[i + k]
        output_line[i] = s / width
    return 1
