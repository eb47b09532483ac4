# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Cython versions of the benchmark kernels, exported through __pyx_capi__ for
scipy.LowLevelCallable.from_cython.  Same algorithms as benchmarks/kernels."""

from libc.math cimport cos, exp, sin, M_PI
from libc.stdint cimport intptr_t


cdef api double osc(double x) noexcept nogil:
    cdef double s = sin(50.0 * x)
    return exp(-x * x) * s * s


cdef api double genz(int n, double *x, void *user_data) noexcept nogil:
    cdef const double *c = <const double *>user_data
    cdef double t = 2.0 * M_PI * c[0]
    cdef int i
    for i in range(n):
        t += c[i + 1] * x[i]
    return cos(t)


cdef api int local_range(double *buffer, intptr_t filter_size, double *return_value,
                         void *user_data) noexcept nogil:
    cdef double lo = buffer[0]
    cdef double hi = buffer[0]
    cdef double v
    cdef intptr_t i
    for i in range(1, filter_size):
        v = buffer[i]
        if v < lo:
            lo = v
        if v > hi:
            hi = v
    return_value[0] = hi - lo
    return 1


cdef api int local_variance(double *buffer, intptr_t filter_size, double *return_value,
                            void *user_data) noexcept nogil:
    cdef double s = 0.0
    cdef double q = 0.0
    cdef double mean, d
    cdef intptr_t i
    for i in range(filter_size):
        s += buffer[i]
    mean = s / <double>filter_size
    for i in range(filter_size):
        d = buffer[i] - mean
        q += d * d
    return_value[0] = q / <double>filter_size
    return 1


cdef api int moving_average(double *input_line, intptr_t input_length, double *output_line,
                            intptr_t output_length, void *user_data) noexcept nogil:
    cdef intptr_t width = input_length - output_length + 1
    cdef intptr_t i, k
    cdef double s
    for i in range(output_length):
        s = 0.0
        for k in range(width):
            s += input_line[i + k]
        output_line[i] = s / <double>width
    return 1


cdef api int rotate(intptr_t *output_coordinates, double *input_coordinates, int output_rank,
                    int input_rank, void *user_data) noexcept nogil:
    cdef const double *p = <const double *>user_data
    cdef double c = p[0]
    cdef double s = p[1]
    cdef double dy = <double>output_coordinates[0] - p[2]
    cdef double dx = <double>output_coordinates[1] - p[3]
    input_coordinates[0] = c * dy - s * dx + p[2]
    input_coordinates[1] = s * dy + c * dx + p[3]
    return 1
