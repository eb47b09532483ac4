"""Integrals with closed forms in scipy.special; some kernels call scipy.special themselves.

Pythran compiles part of scipy.special (the Bessel functions, gamma, the
normal distribution; docs/special-functions.md lists what and how closely it
agrees with SciPy) into the kernel, so nothing calls back into Python.  Each
docstring gives the integral and its closed form, which tests/test_special.py
checks with scipy.integrate.quad.  Parameters are passed by name:
mod.bessel_integrand.lowlevel(v=2.0, x=1.5).
"""

import math

from scipy import special


# t over [0, pi], as in the integral; v and x of moderate size
#capsules verify t=0:3.2 v=-100:100 x=-100:100
#capsules integrand bessel_integrand(t; v, x)
def bessel_integrand(t, v, x):
    """Bessel's integral: int_0^pi cos(v t - x sin t) dt = pi J_v(x) for an integer order v.

    parameters: v, x. For a non-integer v (x > 0), pi J_v(x) is this integral minus
    sin(v pi) times the integral of bessel_tail over [0, inf) (Schlaefli).
    """
    return math.cos(v * t - x * math.sin(t))


# t >= 0 below sinh's overflow, v and x > 0
#capsules verify t=0:700 v=0:100 x=0:100
#capsules integrand bessel_tail(t; v, x)
def bessel_tail(t, v, x):
    """Schlaefli's correction for a non-integer order: exp(-x sinh t - v t), integrated over [0, inf).

    parameters: v, x > 0.
    """
    return math.exp(-x * math.sinh(t) - v * t)


# SciPy's jv and the Boost function Pythran compiles agree within 1e-13, 512 ulp
# (docs/special-functions.md), 1e-13 of the amplitude near the zeros of jv, but where SciPy's is
# infinite or tiny: for a negative order at 0 SciPy's gives inf and Boost's nan, and below about
# 1e-300 SciPy's gives 0. So n >= 0 and b t not tiny (a > 0 and b > 0, as the docstring asks)
#capsules verify t=0.001:100 n=0:5 a=0:10 b=0.001:10 ulp=512 atol=1e-13
#capsules integrand damped_bessel(t; n, a, b)
def damped_bessel(t, n, a, b):
    """e^(-a t) J_n(b t): int_0^inf = (sqrt(a^2 + b^2) - a)^n / (b^n sqrt(a^2 + b^2)).

    parameters: n > -1, a > 0, b > 0. Calls scipy.special.jv inside the kernel.
    """
    return math.exp(-a * t) * special.jv(n, b * t)


# a >= 1 and t >= 0, as the docstring asks; SciPy's gamma and the Boost function Pythran compiles
# differ by a few ulp (docs/special-functions.md)
#capsules verify t=0:700 a=1:100 ulp=16
#capsules integrand gamma_density(t; a)
def gamma_density(t, a):
    """The Gamma(a) density t^(a-1) e^(-t) / Gamma(a): int_0^x = gammainc(a, x), int_0^inf = 1.

    parameters: a >= 1 (finite at t = 0). Calls scipy.special.gamma inside the kernel.
    """
    return t ** (a - 1.0) * math.exp(-t) / special.gamma(a)


# SciPy's ndtr and the one Pythran compiles agree within 2e-14, 128 ulp (docs/special-functions.md)
#capsules verify ulp=128
#capsules integrand probit_normal(t; a, b)
def probit_normal(t, a, b):
    """Phi(a + b t) phi(t), Phi = ndtr and phi its density: int_-inf^inf = Phi(a / sqrt(1 + b^2)).

    parameters: a, b. Calls scipy.special.ndtr inside the kernel.
    """
    return special.ndtr(a + b * t) * math.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi)


#capsules integrand erf_integrand(t)
def erf_integrand(t):
    """erf(t): int_0^x = x erf(x) + (exp(-x^2) - 1) / sqrt(pi).

    parameters: none. Calls math.erf (scipy.special.erf does not compile).
    """
    return math.erf(t)
