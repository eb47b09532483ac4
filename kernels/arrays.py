"""Array kernels, called directly on numpy arrays (plain pythran exports, no capsules).

Pythran hands a compiled function the caller's own buffer when the array
has the exported dtype and is contiguous (for 2-D arrays, C or Fortran
order: a transposed array arrives as a transposed view), so the kernels that
write into an argument (``magnitude``, ``iadd``, ``evolve``) change the
caller's array in place, with no copy.  An array of another dtype, or a
strided view such as ``x[::2]``, matches no export and is refused with a
TypeError rather than silently copied.

Every kernel checks the sizes it relies on and raises ValueError, since a
compiled loop does not check its indices.
"""

import math

import numpy as np


#pythran export magnitude(float64[:], float64[:], float64[:], float64[:])
def magnitude(p, px, py, pz):
    """p[i] = sqrt(px[i]^2 + py[i]^2 + pz[i]^2), written into p (the C runs_in_c(N, p, px, py, pz)).

    All four arrays must have the same length.  Returns None.
    """
    n = p.shape[0]
    if px.shape[0] != n or py.shape[0] != n or pz.shape[0] != n:
        raise ValueError("magnitude: p, px, py and pz must have the same length")
    for i in range(n):
        p[i] = math.sqrt(px[i] * px[i] + py[i] * py[i] + pz[i] * pz[i])


#pythran export mean32(float32[:])
def mean32(a):
    """Mean of a float32 array, accumulated in float32 like the C compute_mean: (sum_i a_i) / n.

    The sum runs left to right in single precision (float s = 0; s += a[i];
    return s / n), so for long arrays it drifts from numpy's pairwise mean;
    the value is exactly that float32 result, which pythran returns as a
    Python float (numpy.float32(mean32(a)) is lossless).  An empty array
    raises ValueError.
    """
    n = a.shape[0]
    if n == 0:
        raise ValueError("mean32: mean of an empty array")
    s = np.float32(0.0)
    for i in range(n):
        s += a[i]
    # rounded to float32 explicitly: with NumPy 1.x, pythran divides float32
    # in double precision (a float32 quotient computed in double and rounded
    # is still the correctly rounded float32 quotient)
    return np.float32(s / np.float32(n))


#pythran export iadd(float64[:], float64[:])
#pythran export iadd(float64[:, :], float64[:, :])
#pythran export iadd(float32[:], float32[:])
def iadd(a, b):
    """a += b, in place in the caller's array a (1-D or 2-D float64, 1-D float32).

    a and b must have the same shape (no broadcasting).  Returns None.
    """
    if a.shape != b.shape:
        raise ValueError("iadd: a and b must have the same shape")
    # a[:] += b, not a += b: for a transposed (Fortran-order) 2-D argument a
    # bare a += b is compiled into a new local array, and the caller's array
    # would not change
    a[:] += b


#pythran export evolve(float64[:, :], float64[:, :], float64, float64, float64, float64)
def evolve(u, u_previous, a, dt, dx2, dy2):
    """One explicit Euler step of the heat equation du/dt = a (d2u/dx2 + d2u/dy2).

    On the interior points (the border is a fixed boundary condition):

        u[i, j] = p[i, j] + a dt ((p[i+1, j] - 2 p[i, j] + p[i-1, j]) / dx2
                                  + (p[i, j+1] - 2 p[i, j] + p[i, j-1]) / dy2)

    with p = u_previous, dx2 = dx^2 and dy2 = dy^2; then u_previous[:] = u,
    so calling evolve(u, u_previous, ...) again takes the next step.  Stable
    for dt <= dx2 dy2 / (2 a (dx2 + dy2)).  Both arrays must have the same
    shape.  Returns None.
    """
    if u.shape[0] != u_previous.shape[0] or u.shape[1] != u_previous.shape[1]:
        raise ValueError("evolve: u and u_previous must have the same shape")
    n = u.shape[0]
    m = u.shape[1]
    for i in range(1, n - 1):
        for j in range(1, m - 1):
            u[i, j] = u_previous[i, j] + a * dt * (
                (u_previous[i + 1, j] - 2.0 * u_previous[i, j] + u_previous[i - 1, j]) / dx2
                + (u_previous[i, j + 1] - 2.0 * u_previous[i, j] + u_previous[i, j - 1]) / dy2
            )
    u_previous[:] = u


#pythran export fib(int)
def fib(n):
    """The n-th Fibonacci number F(n): F(0) = 0, F(1) = 1, F(n) = F(n-1) + F(n-2).

    0 <= n <= 92 (F(93) does not fit in a signed 64-bit integer); outside
    that range ValueError.
    """
    if n < 0 or n > 92:
        raise ValueError("fib: n must be in 0..92")
    a = 0
    b = 1
    for _ in range(n):
        a, b = b, a + b
    return a


#pythran export fib_sequence(int)
def fib_sequence(n):
    """The first n Fibonacci numbers [F(0), ..., F(n-1)] as an int64 array; 0 <= n <= 93."""
    if n < 0 or n > 93:
        raise ValueError("fib_sequence: n must be in 0..93")
    out = np.zeros(n, dtype=np.int64)
    if n > 1:
        out[1] = 1
    for i in range(2, n):
        out[i] = out[i - 1] + out[i - 2]
    return out
