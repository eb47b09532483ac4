"""Integrands for scipy.integrate, written against SciPy's raw C callback form."""


# a function of three variables: nquad over three ranges
#capsules verify variables=3
#pythran export capsule f(int32, float64*, float64*)
def f(n, x, cp):
    """f(x, y, z) = c + x - y z, at the point x = (x, y, z).

    user_data: [c].

    SciPy's nquad example: over [[0, 10], [-10, 0], [-1, 1]] with c = 1 the
    integral is 1200.
    """
    c = cp[0]
    return c + x[0] - x[1] * x[2]
