"""kernels/genz.py: each Genz family integrated by SciPy against its closed form.

The closed forms below are derived here, one variable at a time, and do not
share code with the kernels:

* oscillatory: int_0^1 exp(i a x) dx = exp(i a / 2) * 2 sin(a / 2) / a, so the
  integral is cos(2 pi u_1 + sum a_i / 2) * prod 2 sin(a_i / 2) / a_i;
* product peak: int_0^1 dx / (a^-2 + (x - u)^2) = a (atan(a (1 - u)) + atan(a u));
* corner peak: integrating (c + a x)^-k over [0, 1] gives
  ((c)^-(k-1) - (c + a)^-(k-1)) / (a (k - 1)); n times from k = n + 1 gives
  1 / (n! prod a_i) * sum over the 2^n corners v of (-1)^|v| / (1 + a . v);
* Gaussian: int_0^1 exp(-a^2 (x - u)^2) dx = sqrt(pi) / (2 a) (erf(a (1 - u)) + erf(a u));
* continuous: int_0^1 exp(-a |x - u|) dx = (2 - exp(-a u) - exp(-a (1 - u))) / a;
* discontinuous: prod_i (exp(a_i b_i) - 1) / a_i with b_i = u_i for the first
  two variables and b_i = 1 for the others.
"""

from __future__ import annotations

import ctypes
import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import integrate, special

FAMILIES = ("oscillatory", "product_peak", "corner_peak", "gaussian", "continuous", "discontinuous")


def exact_oscillatory(a: np.ndarray, u: np.ndarray) -> float:
    return math.cos(2 * math.pi * u[0] + a.sum() / 2) * float(np.prod(2 * np.sin(a / 2) / a))


def exact_product_peak(a: np.ndarray, u: np.ndarray) -> float:
    return float(np.prod(a * (np.arctan(a * (1 - u)) + np.arctan(a * u))))


def exact_corner_peak(a: np.ndarray, u: np.ndarray) -> float:
    n = len(a)
    total = 0.0
    for corner in itertools.product((0, 1), repeat=n):
        v = np.array(corner)
        total += (-1) ** int(v.sum()) / (1 + float(a @ v))
    return total / (math.factorial(n) * float(np.prod(a)))


def exact_gaussian(a: np.ndarray, u: np.ndarray) -> float:
    return float(np.prod(math.sqrt(math.pi) / (2 * a) * (special.erf(a * (1 - u)) + special.erf(a * u))))


def exact_continuous(a: np.ndarray, u: np.ndarray) -> float:
    return float(np.prod((2 - np.exp(-a * u) - np.exp(-a * (1 - u))) / a))


def exact_discontinuous(a: np.ndarray, u: np.ndarray) -> float:
    b = np.ones_like(a)
    b[:2] = u[:2]
    return float(np.prod(np.expm1(a * b) / a))


EXACT = {name: globals()[f"exact_{name}"] for name in FAMILIES}

# nquad's per-level tolerances: tight, with a tiny absolute floor so that the
# small integrals (product peak with a ~ 0.1 is ~1e-6 in 3-D) are resolved.
TOL = {"epsabs": 1e-14, "epsrel": 1e-11, "limit": 100}


def nquad_opts(name: str, u: np.ndarray) -> list[dict]:
    """Per-variable quad options; the kinks and jumps at x_i = u_i are given as break points."""
    opts = []
    for i in range(len(u)):
        level = dict(TOL)
        kinked = name == "continuous" or (name == "discontinuous" and i < 2)
        if kinked and 0 < u[i] < 1:
            level["points"] = [float(u[i])]
        opts.append(level)
    return opts


@st.composite
def coefficients(draw: st.DrawFn, n: int) -> tuple[np.ndarray, np.ndarray]:
    """a_i in [0.1, 2] and u_i in [0, 1], the ranges where every family is well-behaved."""
    unit = st.floats(0.0, 1.0, allow_nan=False)
    a = np.array(draw(st.lists(st.floats(0.1, 2.0), min_size=n, max_size=n)))
    u = np.array(draw(st.lists(unit, min_size=n, max_size=n)))
    return a, u


@pytest.fixture(scope="module")
def genz(load_kernel):
    return load_kernel("genz")


@pytest.mark.compile
@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("name", FAMILIES)
@settings(max_examples=10, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_nquad_matches_closed_form(genz, name, n, data):
    a, u = data.draw(coefficients(n))
    kernel = genz[name]
    value, error = integrate.nquad(kernel.lowlevel(np.concatenate([a, u])), [[0, 1]] * n, opts=nquad_opts(name, u))
    exact = EXACT[name](a, u)
    assert value == pytest.approx(exact, rel=1e-9, abs=1e-13), (a, u, error)


@pytest.mark.compile
@pytest.mark.parametrize("name", FAMILIES)
def test_quad_dblquad_tplquad_accept_the_same_capsule(genz, name):
    kernel = genz[name]
    kinked = name in ("continuous", "discontinuous")
    a = np.array([0.7, 1.3, 0.4])
    # dblquad and tplquad take no break points; with the kinks on dyadic
    # points QUADPACK's bisection lands on them (elsewhere a kinked 3-D
    # integral takes seconds), and the tolerance is SciPy's default
    u = np.array([0.25, 0.5, 0.75]) if kinked else np.array([0.3, 0.6, 0.8])
    tol = {} if kinked else {"epsabs": 1e-13, "epsrel": 1e-10}
    rel = 1e-7 if kinked else 1e-9
    one = integrate.quad(kernel.lowlevel(np.r_[a[:1], u[:1]]), 0, 1, points=[u[0]], epsabs=1e-14, epsrel=1e-11)[0]
    assert one == pytest.approx(EXACT[name](a[:1], u[:1]), rel=1e-9)
    # dblquad and tplquad pass the variables innermost first (x[0] is the
    # innermost); over the unit cube the order does not change the integral
    two = integrate.dblquad(kernel.lowlevel(np.r_[a[:2], u[:2]]), 0, 1, 0, 1, **tol)[0]
    three = integrate.tplquad(kernel.lowlevel(np.r_[a, u]), 0, 1, 0, 1, 0, 1, **tol)[0]
    assert two == pytest.approx(EXACT[name](a[:2], u[:2]), rel=rel)
    assert three == pytest.approx(EXACT[name](a, u), rel=rel)


@pytest.mark.compile
@pytest.mark.parametrize("name", FAMILIES)
def test_compiled_equals_python_at_random_points(genz, name):
    kernel = genz[name]
    fn = kernel.as_ctypes()
    rng = np.random.default_rng(20240611)
    double_p = ctypes.POINTER(ctypes.c_double)
    for n in (1, 2, 3, 5):
        for _ in range(40):
            data = np.concatenate([rng.uniform(0.1, 3.0, n), rng.uniform(0.0, 1.0, n)])
            x = rng.uniform(0.0, 1.0, n)
            if rng.random() < 0.2:
                x[: min(n, 2)] = data[n : n + min(n, 2)]  # exactly on the kinks and jumps
            got = fn(n, x.ctypes.data_as(double_p), data.ctypes.data)
            want = kernel.py(n, x, data)
            assert isinstance(want, float)
            assert got == pytest.approx(want, rel=1e-13, abs=1e-300), (n, x, data)


@pytest.mark.compile
@pytest.mark.parametrize("name", FAMILIES)
def test_lowlevel_quad_equals_python_callback_quad(genz, name):
    kernel = genz[name]
    data = np.array([1.7, 0.35])
    fast = integrate.quad(kernel.lowlevel(data), 0, 1, points=[0.35])
    slow = integrate.quad(lambda t: kernel.py(1, np.array([t]), data), 0, 1, points=[0.35])
    assert fast[0] == pytest.approx(slow[0], rel=1e-13)


def test_closed_forms_agree_with_a_plain_riemann_sum():
    # an independent sanity check of the closed forms themselves, in 2-D on a
    # fine midpoint grid (no compiled code, no quadpack)
    a = np.array([1.1, 0.6])
    u = np.array([0.4, 0.7])
    m = 1200
    t = (np.arange(m) + 0.5) / m
    x1, x2 = np.meshgrid(t, t, indexing="ij")
    d1, d2 = x1 - u[0], x2 - u[1]
    values = {
        "oscillatory": np.cos(2 * np.pi * u[0] + a[0] * x1 + a[1] * x2),
        "product_peak": 1 / ((a[0] ** -2 + d1**2) * (a[1] ** -2 + d2**2)),
        "corner_peak": (1 + a[0] * x1 + a[1] * x2) ** -3.0,
        "gaussian": np.exp(-(a[0] ** 2) * d1**2 - a[1] ** 2 * d2**2),
        "continuous": np.exp(-a[0] * abs(d1) - a[1] * abs(d2)),
        "discontinuous": np.where((x1 > u[0]) | (x2 > u[1]), 0.0, np.exp(a[0] * x1 + a[1] * x2)),
    }
    for name, grid in values.items():
        # the midpoint rule on a grid that is not aligned with the jumps is only first order
        rel = 2e-3 if name == "discontinuous" else 1e-5
        assert grid.mean() == pytest.approx(EXACT[name](a, u), rel=rel), name
