"""Pure-Python SciPy callbacks: what one writes without any compiled callback.

Each is the natural Python callback for the SciPy function (SciPy passes
numpy arrays to the ndimage callbacks, so those use numpy on them); the
arithmetic is the one the compiled kernels do.
"""

from math import cos, exp, pi, sin


def osc(x):
    """W1, for quad: exp(-x**2) sin(50 x)**2."""
    s = sin(50.0 * x)
    return exp(-x * x) * s * s


def genz(x0, x1, x2, u, a1, a2, a3):
    """W2, for nquad(..., args=(u, a1, a2, a3))."""
    return cos(2.0 * pi * u + a1 * x0 + a2 * x1 + a3 * x2)


def local_range(buffer):
    """W3a, for generic_filter."""
    return buffer.max() - buffer.min()


def local_variance(buffer):
    """W3b, for generic_filter (numpy's two-pass variance)."""
    return buffer.var()


def moving_average(input_line, output_line):
    """W4, for generic_filter1d: the window sum built up one shifted slice at a time, as the kernels add."""
    n = output_line.shape[0]
    width = input_line.shape[0] - n + 1
    s = input_line[0:n].copy()
    for k in range(1, width):
        s += input_line[k : k + n]
    output_line[...] = s / width


def make_rotate(c, s, cy, cx):
    """W5, for geometric_transform: the mapping for a rotation about (cy, cx)."""

    def rotate(output_coordinates):
        dy = output_coordinates[0] - cy
        dx = output_coordinates[1] - cx
        return (c * dy - s * dx + cy, s * dy + c * dx + cx)

    return rotate
