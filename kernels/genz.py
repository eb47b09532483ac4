"""The six Genz test integrand families, for quad, dblquad, tplquad and nquad.

Alan Genz's families ("Testing multidimensional integration routines", 1984)
are the standard benchmark of cubature codes: each has a known integral over
the unit cube [0, 1]^n and a parameter that makes it harder.  Every kernel
here works in any dimension n (SciPy passes n, the number of variables) and
reads its parameters from user_data, laid out as

    user_data = [a_1, ..., a_n, u_1, ..., u_n]      (2 n values)

``a`` (the difficulty, a_i > 0) and ``u`` (the shift, each u_i in [0, 1]).
The oscillatory family reads only u_1, the corner peak family no u at all,
but the layout is the same for all six, so one coefficient vector serves
every family.  Pass the 2 n values for the dimension you integrate in: the
kernels read user_data[n + i], which capsules cannot check for you.
"""

import math


# the unit cube, a_i > 0, u_i in [0, 1] (a_i up to 10: the sum stays finite, and so cos's argument)
#capsules verify x=0:1 user_data=0:10 len(user_data)=6
#pythran export capsule oscillatory(int32, float64*, float64*)
def oscillatory(n, x, user_data):
    """Oscillatory: f(x) = cos(2 pi u_1 + sum_i a_i x_i).

    user_data: [a_1..a_n, u_1..u_n] (2 n values); only u_1 is used.
    """
    s = 2.0 * math.pi * user_data[n]
    for i in range(n):
        s += user_data[i] * x[i]
    return math.cos(s)


#pythran export capsule product_peak(int32, float64*, float64*)
def product_peak(n, x, user_data):
    """Product peak: f(x) = prod_i 1 / (a_i^-2 + (x_i - u_i)^2).

    user_data: [a_1..a_n, u_1..u_n] (2 n values).

    Computed as prod_i a_i^2 / (1 + a_i^2 (x_i - u_i)^2), the same value,
    which has no division by a_i.
    """
    p = 1.0
    for i in range(n):
        a = user_data[i]
        d = x[i] - user_data[n + i]
        p *= a * a / (1.0 + a * a * d * d)
    return p


#pythran export capsule corner_peak(int32, float64*, float64*)
def corner_peak(n, x, user_data):
    """Corner peak: f(x) = (1 + sum_i a_i x_i)^-(n + 1).

    user_data: [a_1..a_n, u_1..u_n] (2 n values); u is not used.
    """
    s = 1.0
    for i in range(n):
        s += user_data[i] * x[i]
    return 1.0 / s ** (n + 1)


#pythran export capsule gaussian(int32, float64*, float64*)
def gaussian(n, x, user_data):
    """Gaussian: f(x) = exp(-sum_i a_i^2 (x_i - u_i)^2).

    user_data: [a_1..a_n, u_1..u_n] (2 n values).
    """
    s = 0.0
    for i in range(n):
        d = user_data[i] * (x[i] - user_data[n + i])
        s += d * d
    return math.exp(-s)


# the unit cube, a_i > 0, u_i in [0, 1]: exp's argument stays <= 0
#capsules verify x=0:1 user_data=0:10 len(user_data)=6
#pythran export capsule continuous(int32, float64*, float64*)
def continuous(n, x, user_data):
    """Continuous (C0, with a kink at x = u): f(x) = exp(-sum_i a_i |x_i - u_i|).

    user_data: [a_1..a_n, u_1..u_n] (2 n values).
    """
    s = 0.0
    for i in range(n):
        s += user_data[i] * abs(x[i] - user_data[n + i])
    return math.exp(-s)


# the unit cube, a_i > 0: exp's argument stays small
#capsules verify x=0:1 user_data=0:10 len(user_data)=6
#pythran export capsule discontinuous(int32, float64*, float64*)
def discontinuous(n, x, user_data):
    """Discontinuous: f(x) = 0 if x_1 > u_1 or x_2 > u_2, else exp(sum_i a_i x_i).

    user_data: [a_1..a_n, u_1..u_n] (2 n values); only u_1 and u_2 are used (only u_1 when n = 1).

    The jumps lie on the planes x_1 = u_1 and x_2 = u_2: tell
    the integrator (for example nquad's ``points``) where they are.
    """
    for i in range(min(n, 2)):
        if x[i] > user_data[n + i]:
            return 0.0
    s = 0.0
    for i in range(n):
        s += user_data[i] * x[i]
    return math.exp(s)
