"""scipy.special, math and numpy functions inside natural kernels, against the same calls in Python.

CASES lists every function Pythran compiles that we vouch for.  One kernel
module, generated from it and built once, holds one natural integrand per
case (``#capsules integrand special_jv(v, x)``, whose body is the call).  Each
kernel is called through its C entry point at every point of its grid (signed
zeros, poles, tiny and huge arguments, infinities and NaN where they are
cheap) and compared with the same function called from Python (``Kernel.py``,
the plain source).  Where the two differ on purpose, a ``Difference`` says
where, why, and what each side returns there, and the test asserts exactly
that; everywhere else they must agree within the case's tolerance, which is
4 ulp unless the case says why not.

The same comparison writes the tables of docs/special-functions.md:
``python tests/test_special.py`` prints them, and a test checks that the
committed page shows the cases, tolerances and differences tested here.
"""

from __future__ import annotations

import ast
import ctypes
import ctypes.util
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, special

import capsules

pytestmark = pytest.mark.compile

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "special-functions.md"
EPS = float(np.finfo(float).eps)
ULPS = 4 * EPS  # the default tolerance: a few units in the last place
CLOSED_FORM_RTOL = 1e-14  # a documented value given as a formula, against the kernel's
INF, NAN = math.inf, math.nan

_rng = np.random.default_rng(20240521)
# a float argument: signed zeros, tiny and huge magnitudes, the non-finite values, and random points
REAL = (-1e5, -50.0, -3.7, -1.0, -0.5, -1e-8, -0.0, 0.0, 1e-300, 1e-8, 0.1, 0.5, 1.0, 1.5, 2.5, 7.3, 10.0,
        33.3, 100.0, 1e3, 1e5, INF, -INF, NAN, *_rng.uniform(-20.0, 20.0, 12).round(6).tolist())
# Boost's Bessel functions run for minutes on a NaN argument, and the I and K families for
# up to seconds on an infinite one before raising (docs/special-functions.md): those points are left
# out of their grids, and test_bessel_at_infinity_raises checks one of them
NOT_NAN = tuple(x for x in REAL if x == x)
FINITE = tuple(x for x in REAL if math.isfinite(x))
# the second argument of two-argument math functions (the product with PAIR is the grid)
PAIR = (-INF, -7.5, -1.0, -0.0, 0.0, 0.5, 1.0, 3.0, 1e300, INF, NAN)
# probabilities, and what lies just outside them
PROB = (-0.5, 0.0, 1e-300, 1e-20, 1e-5, 0.01, 0.3, 0.5, 0.7, 0.99, 1 - 1e-10, 1.0, 1.5, NAN)
INT_ORDER = (-3.0, -1.0, 0.0, 1.0, 2.0, 5.0, 10.0, 30.0)
REAL_ORDER = INT_ORDER + (-2.5, -0.5, 0.25, 1.5, 3.7, 12.25, 40.5)
SHAPE = (1e-3, 0.5, 1.0, 2.5, 10.0, 150.0)  # gammaincinv's a > 0
FACTORIAL = (-1.0, 0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 21.0, 25.0, 170.0, 171.0)
EXPONENT = (-1080.0, -1074.0, -3.0, 0.0, 1.0, 10.0, 1024.0)


# ---- what each side returns where they differ ----

_LIBM = ctypes.CDLL(ctypes.util.find_library("m"))


def libm(name: str, *argtypes: type) -> Callable[..., float]:
    """C's own ``name`` from the math library (one double argument unless told), what Pythran calls."""
    argtypes = argtypes or (ctypes.c_double,)
    fn = getattr(_LIBM, name)
    fn.restype, fn.argtypes = ctypes.c_double, list(argtypes)

    def c_value(*args: float) -> float:
        return fn(*(int(a) if t is ctypes.c_int else a for a, t in zip(args, argtypes)))

    c_value.__doc__ = f"C's {name}"
    return c_value


def libm2(name: str) -> Callable[..., float]:
    return libm(name, ctypes.c_double, ctypes.c_double)


_C_LOG = libm("log")


def negated_scipy(function: Callable[..., float]) -> Callable[..., float]:
    def negated(*args: float) -> float:
        return -function(*args)

    negated.__doc__ = "minus SciPy's value"
    return negated


# leading terms of the series at x -> 0, exact to far better than 1e-14 at x = 1e-300
def small_x_bessel_i(v: float, x: float) -> float:
    """(x/2)^|v| / Γ(|v|+1), the leading term at x -> 0"""
    return (x / 2) ** abs(v) / math.gamma(abs(v) + 1)


def small_x_bessel_i_prime(v: float, x: float) -> float:
    """(x/2)^(v-1) / (2 Γ(v)) (x/2 for v = 0), the leading term at x -> 0"""
    return x / 2 if v == 0 else (x / 2) ** (v - 1) / (2 * math.gamma(v))


def small_x_bessel_j_prime(v: float, x: float) -> float:
    """(x/2)^(v-1) / (2 Γ(v)), the leading term at x -> 0 (±inf when it overflows)"""
    with np.errstate(over="ignore"):
        return float(np.float64(x / 2) ** (v - 1) / (2 * math.gamma(v)))


def small_x_bessel_y_half_prime(v: float, x: float) -> float:
    """1 / sqrt(2 π x), the leading term of Y'_{-1/2}(x) = d/dx sqrt(2/(π x)) sin x"""
    return 1 / math.sqrt(2 * math.pi * x)


def small_x_spherical_j(n: float, x: float) -> float:
    """x^n / (2n+1)!!, the leading term at x -> 0"""
    return x ** int(n) / math.prod(range(1, 2 * int(n) + 2, 2))


def small_x_spherical_j_prime(n: float, x: float) -> float:
    """n x^(n-1) / (2n+1)!! (-x/3 for n = 0), the leading term at x -> 0"""
    return -x / 3 if n == 0 else n * x ** (int(n) - 1) / math.prod(range(1, 2 * int(n) + 2, 2))


def spacing_towards_one(x: float) -> float:
    """nextafter(x, 1) - x"""
    return float(np.nextafter(x, 1.0) - x)


def numpy_spacing(x: float) -> float:
    """the gap to the next float away from 0 (NaN at ±inf)"""
    with np.errstate(invalid="ignore"):
        return float(np.spacing(x))


def int64_conversion(x: float) -> float:
    """(int64) x as this CPU converts it (-2^63 on x86-64)"""
    with np.errstate(invalid="ignore"):
        return float(np.array([x]).astype(np.int64)[0])


def wrapped_factorial(n: float) -> float:
    """n! modulo 2^64, as a signed int64"""
    value = math.factorial(int(n)) % 2**64
    return float(value - 2**64 if value >= 2**63 else value)


def python_factorial(n: float) -> float:
    """float(n!)"""
    return float(math.factorial(int(n)))


def unsigned_binomial(n: float, k: float) -> float:
    """C(n mod 2^32, k mod 2^32), NaN where k > n"""
    n, k = int(n) % 2**32, int(k) % 2**32
    return NAN if k > n else float(math.comb(n, k))


def log_ratio(x: float, y: float) -> float:
    """C's log(x) / log(y)"""
    with np.errstate(all="ignore"):
        return float(np.float64(_C_LOG(x)) / np.float64(_C_LOG(y)))


def python_modulo(x: float, y: float) -> float:
    """Python's x % y"""
    return x % y


def larger(x: float, y: float) -> float:
    """max(x, y)"""
    return max(x, y)


def first_argument(x: float, y: float) -> float:
    """x"""
    return x


def second_argument(x: float, y: float) -> float:
    """y"""
    return y


Expected = float | str | Callable[..., float]


@dataclass(frozen=True)
class Difference:
    """Points where the compiled function and Python's differ on purpose, and what each gives there.

    ``compiled`` and ``python`` are each a number (NaN equals NaN), a formula
    of the arguments (its docstring says which, for the docs), the name of
    the exception raised (``"ValueError or OverflowError"``), ``"±inf"``, or
    ``"not NaN"`` (a number or ±inf).
    ``where`` selects the points; None selects those where Python raises.
    ``varies`` says which SciPy or NumPy versions give ``python``, when
    others give what the kernel gives (then either is accepted).
    """

    at: str  # where, in words, for the docs
    compiled: Expected
    python: Expected
    why: str
    where: Callable[..., bool] | None = None
    varies: str = ""


def python_raises(at: str, compiled: Expected, errors: str, why: str) -> Difference:
    """Where Python raises ``errors`` (``at`` says where, in words), the kernel returns ``compiled``."""
    return Difference(at, compiled, errors, why)


@dataclass(frozen=True)
class Case:
    """One function compiled inside a natural integrand whose body is ``return call``.

    The integrand's variables are the call's one-letter names, in order of
    appearance; the points are the product of ``grid``, one tuple of values
    per variable.
    """

    call: str
    grid: tuple[tuple[float, ...], ...]
    name: str = ""  # the kernel's name; by default the function's, e.g. special_jv
    types: str = "float64"  # the argument types the function sees, for the docs
    rtol: float = ULPS
    wider: str = ""  # why rtol is wider than ULPS
    differences: tuple[Difference, ...] = ()
    # measure differences relative to this instead of |Python's value| (a complex function's parts)
    scale: Callable[..., float] | None = None
    module: str = "main"  # the kernel module it is built in ("main" unless it cannot share it)

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.function.replace(".", "_"))
        if len(self.grid) != len(self.args):
            raise ValueError(f"{self.call}: {len(self.args)} variable(s), {len(self.grid)} grid(s)")
        if self.rtol != ULPS and not self.wider:
            raise ValueError(f"{self.call}: a tolerance wider than 4 ulp needs its reason")

    @property
    def args(self) -> tuple[str, ...]:
        names = [n for n in ast.walk(ast.parse(self.call)) if isinstance(n, ast.Name) and len(n.id) == 1]
        return tuple(dict.fromkeys(n.id for n in sorted(names, key=lambda n: n.col_offset)))

    @property
    def function(self) -> str:
        """The function called, as the kernel writes it: ``special.jv``."""
        found = [n for n in ast.walk(ast.parse(self.call)) if isinstance(n, ast.Attribute)
                 and isinstance(n.value, ast.Name) and n.value.id in ("special", "math", "np")]
        return ast.unparse(min(found, key=lambda n: n.col_offset))

    @property
    def public_name(self) -> str:
        """``scipy.special.jv``, ``math.exp``, ``numpy.exp``."""
        module, _, name = self.function.partition(".")
        return {"special": "scipy.special", "np": "numpy"}.get(module, module) + "." + name

    def points(self) -> np.ndarray:
        return np.array(list(product(*self.grid)), dtype=float).reshape(-1, len(self.args))


def _non_integer(v: float) -> bool:
    return v != math.floor(v)


# Where Boost.Math and SciPy (AMOS, Cephes) disagree by more than a few ulp, the error is SciPy's:
# at the two worst points of every Bessel case below (checked once with mpmath at 40 digits), the
# kernel's value is the correctly rounded one, while SciPy's is off by up to the case's tolerance.
BOOST = ("Boost.Math and SciPy (AMOS, Cephes) use different algorithms; at the worst points Boost's value is "
         "the correctly rounded one")
BOOST_POLE = ("Boost reports a pole or a domain error, which Pythran's error policy turns into NaN; "
              "SciPy returns the limit")
TINY = ("SciPy underflows to 0 (or returns NaN where the value overflows); Boost returns the leading term "
        "of the series, the right value")
UNSIGNED_ORDER = ("Boost takes the order as an unsigned integer: n < 0 becomes 2^32 - |n|, an order so large "
                  "that the result underflows to 0 or the series gives up (RuntimeError); SciPy returns NaN")
NEGATIVE_X = "Boost's spherical Bessel functions refuse x < 0 (NaN); SciPy returns (-1)^n f(|x|)"
NEGATIVE_ODD_ORDER = ("for a negative odd order and x < 2^-63 (1.1e-19), Boost drops the sign (-1)^n of "
                      "Y_{-n} = (-1)^n Y_n; SciPy is right")


def pole(scipy_function: Callable[..., float], orders: str = "", order: Callable[[float], bool] = bool) -> Difference:
    """At x = ±0, where SciPy returns ±inf (a pole), the kernel returns NaN (``order``: for these orders only)."""
    return Difference(f"x = ±0{', ' + orders if orders else ''}, where SciPy returns ±inf", NAN, "±inf",
                      BOOST_POLE, lambda v, x: x == 0 and (not orders or order(v)) and math.isinf(scipy_function(v, x)))


def negative_odd_order(scipy_function: Callable[..., float]) -> Difference:
    """Y_v at a negative odd order and a tiny x (where SciPy gives a number): the kernel has the wrong sign."""
    return Difference("v < 0 odd, x = 1e-300", negated_scipy(scipy_function), "not NaN", NEGATIVE_ODD_ORDER,
                      lambda v, x: v < 0 and v % 2 == 1 and 0 < x < 2**-63 and not math.isnan(scipy_function(v, x)))


def hankel(scipy_function: Callable[..., complex], part: str) -> Case:
    """One part of a Hankel function, compared relative to the complex value's modulus."""
    kind = scipy_function.__name__
    differences = (Difference(
        "x finite where SciPy returns NaN (x = ±0, 1e-300; v = 40.5: |x| = 1e-8)", "not NaN", NAN,
        "SciPy returns NaN + NaN j where Y_v overflows; Boost returns J_v(x) and ±inf (at x = ±0: ±inf in both)",
        lambda v, x: math.isfinite(x) and math.isnan(getattr(scipy_function(v, x), part))),)
    if part == "imag":
        differences += (negative_odd_order(lambda v, x: scipy_function(v, x).imag),)
    return Case(f"special.{kind}(v, x).{part}", (REAL_ORDER, NOT_NAN), name=f"special_{kind}_{part}", rtol=1e-13,
                wider=f"relative to |{kind}(v, x)|, as one part of a complex value can be tiny beside the other; "
                + BOOST, scale=lambda v, x: abs(scipy_function(v, x)), differences=differences)


def spherical(scipy_function: Callable[..., float], small: tuple[Difference, ...], derivative: bool = False,
              negative_x: str = "") -> Case:
    """spherical_jn or spherical_yn (``negative_x``: which SciPy versions refuse x < 0 too)."""
    kind = scipy_function.__name__
    call, name = (f"special.{kind}(int(n), x, True)", f"special_{kind}_derivative") if derivative else \
        (f"special.{kind}(int(n), x)", "")
    # the derivative's recurrence on a wrapped (unsigned) order gives meaningless numbers: n ≥ 0 only
    orders = tuple(n for n in INT_ORDER if n >= 0) if derivative else INT_ORDER
    return Case(call, (orders, NOT_NAN), name=name, types="int64, float64, bool" if derivative else "int64, float64",
                rtol=1e-13, wider=BOOST, differences=small + (
                    Difference("n ≥ 0, x < 0", NAN, "not NaN", NEGATIVE_X, lambda n, x: n >= 0 and x < 0,
                               varies=negative_x),
                    Difference("n ≥ 0, x = ±inf", NAN, 0.0, "Boost: a domain error (NaN); SciPy: the limit 0",
                               lambda n, x: n >= 0 and math.isinf(x)),
                ))


OLD_SCIPY_NEGATIVE_X = "SciPy 1.17; SciPy 1.10 to 1.14 return NaN for n ≥ 1, as the kernel"


def _gamma_pole(x: float) -> bool:
    """-0.0, a negative integer or -inf."""
    return x == -INF or (x <= 0 and x == math.floor(x) and math.copysign(1.0, x) < 0)


SPECIAL = (
    Case("special.gamma(x)", (REAL,), differences=(
        Difference("x = -0.0, a negative integer or -inf", libm("tgamma"), "±inf",
                   "the kernel calls C's tgamma: -inf at -0.0, NaN at the poles and at -inf",
                   _gamma_pole, varies="SciPy 1.10 to 1.14; SciPy 1.17 returns the kernel's value"),)),
    Case("special.gammaln(x)", (REAL,), rtol=2e-14, wider="near its zero at x = 2 (x = 1.95) " + BOOST,
         differences=(Difference("x = -inf", INF, -INF, "C's lgamma(-inf) is +inf; SciPy returns -inf",
                                 lambda x: x == -INF),)),
    Case("special.gammaincinv(a, p)", (SHAPE, PROB), rtol=1e-12,
         wider="for a = 0.001 the result is about 1e-300: SciPy's inversion is off by 6e-13, Boost's by 2e-14"),
    Case("special.binom(int(n), int(k))", (INT_ORDER, INT_ORDER), types="int64, int64", differences=(
        Difference("n < 0", unsigned_binomial, NAN, "Boost's binomial_coefficient takes unsigned integers: "
                   "a negative n or k wraps around to 2^32 - |n|",
                   lambda n, k: n < 0 and unsigned_binomial(n, k) == unsigned_binomial(n, k)),
        Difference("n ≥ 0 and (k < 0 or k > n)", NAN, 0.0, "Boost reports a domain error (NaN); SciPy returns 0",
                   lambda n, k: n >= 0 and (k < 0 or k > n)),
    )),
    Case("special.i0(x)", (REAL,)),
    Case("special.i0e(x)", (REAL,), module="i0e"),
    Case("special.ndtr(x)", (REAL,), rtol=2e-14,
         wider="in the far tail (x = -11, ndtr = 7e-29) SciPy's value is off by 1.3e-14, Boost's by 3e-15"),
    Case("special.ndtri(p)", (PROB,)),
    Case("special.jv(v, x)", (REAL_ORDER, NOT_NAN), rtol=1e-13, wider=BOOST, differences=(pole(special.jv),)),
    Case("special.jv(int(n), x)", (INT_ORDER, NOT_NAN), name="special_jv_int", types="int64, float64",
         rtol=1e-13, wider=BOOST),
    Case("special.yv(v, x)", (REAL_ORDER, NOT_NAN), rtol=1e-13, wider=BOOST, differences=(
        pole(special.yv, "v ≠ 0", lambda v: v != 0), negative_odd_order(special.yv),
        Difference("v = -2.5, x = 1e-300", 0.0, -INF, "Y_{-5/2}(x) = J_{5/2}(x) underflows to 0; SciPy "
                   "overflows", lambda v, x: v == -2.5 and x == 1e-300),
        Difference("x = +inf, v not an integer", -INF, NAN, "the limit is 0; Boost returns -inf, SciPy NaN",
                   lambda v, x: x == INF and _non_integer(v)),
    )),
    Case("special.yv(int(n), x)", (INT_ORDER, NOT_NAN), name="special_yv_int", types="int64, float64",
         rtol=1e-13, wider=BOOST,
         differences=(pole(special.yv, "n ≠ 0", lambda v: v != 0), negative_odd_order(special.yv))),
    Case("special.iv(v, x)", (REAL_ORDER, FINITE), rtol=1e-13, wider=BOOST, differences=(
        Difference("x = 1e-300 where SciPy returns 0", small_x_bessel_i, 0.0, TINY,
                   lambda v, x: x == 1e-300 and special.iv(v, x) == 0 and small_x_bessel_i(v, x) > 0),
        Difference("x = ±0, v < 0 not an integer", 0.0, INF, "I_v has a pole at 0 for a negative non-integer "
                   "order (its K_v term); Boost returns 0, which is wrong",
                   lambda v, x: x == 0 and v < 0 and _non_integer(v)),
    )),
    Case("special.iv(int(n), x)", (INT_ORDER, FINITE), name="special_iv_int", types="int64, float64",
         rtol=1e-13, wider=BOOST, differences=(
             Difference("x = 1e-300 where SciPy returns 0", small_x_bessel_i, 0.0, TINY,
                        lambda v, x: x == 1e-300 and special.iv(v, x) == 0 and small_x_bessel_i(v, x) > 0),)),
    Case("special.kv(v, x)", (REAL_ORDER, FINITE), rtol=1e-13, wider=BOOST, differences=(
        pole(special.kv, "v not an integer", _non_integer),)),
    Case("special.kv(int(n), x)", (INT_ORDER, FINITE), name="special_kv_int", types="int64, float64",
         rtol=1e-13, wider=BOOST),
    Case("special.jvp(v, x)", (REAL_ORDER, NOT_NAN), rtol=1e-12,
         wider="J'_40.5(100) is small (0.0046) and SciPy's value is off by 9e-13; " + BOOST, differences=(
             pole(special.jvp),
             Difference("x = 1e-300 where SciPy returns NaN", small_x_bessel_j_prime, NAN, TINY,
                        lambda v, x: x == 1e-300 and math.isnan(special.jvp(v, x))),
         )),
    Case("special.yvp(v, x)", (REAL_ORDER, NOT_NAN), rtol=1e-13, wider=BOOST, differences=(
        pole(special.yvp),
        Difference("x = 1e-300 (v = 40.5: 1e-8 too), v ≠ 30, where SciPy returns NaN", "not NaN", NAN,
                   TINY + " (at v = 30 both return NaN)",
                   lambda v, x: 0 < x <= 1e-8 and v != 30 and math.isnan(special.yvp(v, x))),
        Difference("v = -0.5, x = 1e-300", small_x_bessel_y_half_prime, INF, TINY,
                   lambda v, x: v == -0.5 and x == 1e-300),
    )),
    Case("special.ivp(v, x)", (REAL_ORDER, FINITE), rtol=1e-13, wider=BOOST, differences=(
        pole(special.ivp),
        Difference("x = 1e-300 where SciPy returns 0", small_x_bessel_i_prime, 0.0, TINY,
                   lambda v, x: x == 1e-300 and v >= 0 and special.ivp(v, x) == 0 < small_x_bessel_i_prime(v, x)),
    )),
    Case("special.kvp(v, x)", (REAL_ORDER, FINITE), rtol=1e-13, wider=BOOST, differences=(pole(special.kvp),)),
    hankel(special.hankel1, "real"), hankel(special.hankel1, "imag"),
    hankel(special.hankel2, "real"), hankel(special.hankel2, "imag"),
    spherical(special.spherical_jn, (
        Difference("n < 0, 0 ≤ x < 1", 0.0, NAN, UNSIGNED_ORDER, lambda n, x: n < 0 and 0 <= x < 1),
        Difference("n < 0, x ≥ 1", "RuntimeError", NAN, UNSIGNED_ORDER, lambda n, x: n < 0 and x >= 1),
        Difference("x = 1e-300 where SciPy returns 0", small_x_spherical_j, 0.0, TINY,
                   lambda n, x: x == 1e-300 and special.spherical_jn(int(n), x) == 0 and n >= 0
                   and small_x_spherical_j(n, x) > 0),
    ), negative_x=OLD_SCIPY_NEGATIVE_X),
    spherical(special.spherical_yn, (
        Difference("n < 0, x = ±0", -INF, NAN, UNSIGNED_ORDER, lambda n, x: n < 0 and x == 0),
        Difference("n < 0, x > 0", "RuntimeError", NAN, UNSIGNED_ORDER, lambda n, x: n < 0 and x > 0),
    )),
    spherical(special.spherical_jn, (
        Difference("n = 0, x = ±0", INF, 0.0, "j_0'(0) = 0; Boost returns +inf", lambda n, x: n == 0 and x == 0),
        Difference("n ≥ 1, x = ±0", NAN, "not NaN", "Boost: 0/0 in its recurrence (NaN); SciPy: the limit",
                   lambda n, x: n >= 1 and x == 0),
        Difference("n ≤ 2, x = 1e-300", small_x_spherical_j_prime, "not NaN", TINY,
                   lambda n, x: n <= 2 and x == 1e-300),
    ), derivative=True, negative_x=OLD_SCIPY_NEGATIVE_X),
    spherical(special.spherical_yn, (
        Difference("x = -0.0 (n = 0: ±0), where SciPy returns ±inf", NAN, "±inf", BOOST_POLE,
                   lambda n, x: x == 0 and (n == 0 or math.copysign(1, x) < 0)),
        Difference("x = 1e-300, n ≠ 30, where SciPy returns NaN", "±inf", NAN, TINY + " (at n = 30 both return NaN)",
                   lambda n, x: x == 1e-300 and n != 30 and math.isnan(special.spherical_yn(int(n), x, True))),
    ), derivative=True),
)

C_VALUE = "math raises where C returns NaN or ±inf; the kernel returns C's value"
TO_INT = ("Pythran converts the result to an int64, as Python converts it to an int; NaN and ±inf have no "
          "int64 value, and the CPU's conversion returns its 'invalid' value")


def _math(name: str, c_name: str = "", at: str = "", errors: str = "ValueError") -> Case:
    differences = (python_raises(at, libm(c_name or name), errors, C_VALUE),) if at else ()
    return Case(f"math.{name}(x)", (REAL,), differences=differences)


def _math2(name: str, at: str = "", errors: str = "ValueError") -> Case:
    differences = (python_raises(at, libm2(name), errors, C_VALUE),) if at else ()
    return Case(f"math.{name}(x, y)", (PAIR, PAIR), differences=differences)


def _to_int(name: str) -> Case:
    return Case(f"math.{name}(x)", (REAL,), differences=(
        python_raises("x = NaN or ±inf", int64_conversion, "ValueError or OverflowError", TO_INT),))


MATH = (
    _math("acos", at="|x| > 1"), _math("acosh", at="x < 1"), _math("asin", at="|x| > 1"), _math("asinh"),
    _math("atan"), _math("atanh", at="|x| ≥ 1"), _to_int("ceil"), _math("cos", at="x = ±inf"),
    _math("cosh", at="|x| > 710.5", errors="OverflowError"), _math("degrees"), _math("erf"), _math("erfc"),
    _math("exp", at="x > 709.8", errors="OverflowError"), _math("expm1", at="x > 709.8", errors="OverflowError"),
    _math("fabs"), _to_int("floor"),
    _math("gamma", "tgamma", at="x = 0, a negative integer, -inf, or x > 171.6", errors="ValueError or OverflowError"),
    Case("math.lgamma(x)", (REAL,), rtol=5e-14,
         wider="near its zero at x = 2 (x = 1.95) Python's own lgamma is off by 3e-14; C's is correctly rounded",
         differences=(python_raises("x = 0 or a negative integer", libm("lgamma"), "ValueError", C_VALUE),)),
    _math("log", at="x ≤ 0"),
    Case("math.log(x, y)", (PAIR, PAIR), name="math_log_base", differences=(
        python_raises("x ≤ 0, y ≤ 0 or y = 1", log_ratio, "ValueError or ZeroDivisionError", C_VALUE),)),
    _math("log10", at="x ≤ 0"), _math("log1p", at="x ≤ -1"), _math("radians"),
    _math("sin", at="x = ±inf"), _math("sinh", at="|x| > 710.5", errors="OverflowError"), _math("sqrt", at="x < 0"),
    _math("tan", at="x = ±inf"), _math("tanh"), _to_int("trunc"),
    _math2("atan2"), _math2("copysign"), _math2("fmod", at="x = ±inf or y = ±0 (and neither is NaN)"),
    _math2("hypot"), _math2("pow", at="x < 0 with y not an integer, x = ±0 with y < 0, or an overflow",
                            errors="ValueError or OverflowError"),
    Case("float(math.isinf(x))", (REAL,), name="math_isinf", types="float64 (bool result)"),
    Case("float(math.isnan(x))", (REAL,), name="math_isnan", types="float64 (bool result)"),
    Case("math.modf(x)[0]", (REAL,), name="math_modf_fraction"),
    Case("math.modf(x)[1]", (REAL,), name="math_modf_integer"),
    Case("math.frexp(x)[0]", (REAL,), name="math_frexp_mantissa"),
    Case("float(math.frexp(x)[1])", (REAL,), name="math_frexp_exponent", types="float64 (int result)"),
    Case("math.ldexp(x, int(n))", (PAIR, EXPONENT), types="float64, int64", differences=(
        python_raises("an overflow", libm("ldexp", ctypes.c_double, ctypes.c_int), "OverflowError", C_VALUE),)),
    Case("float(math.factorial(int(n)))", (FACTORIAL,), name="math_factorial", types="int64", differences=(
        Difference("21 ≤ n ≤ 170", wrapped_factorial, python_factorial,
                   "Pythran computes n! in int64, which overflows (wraps) from 21! on", lambda n: 21 <= n <= 170),
        Difference("n ≥ 171", wrapped_factorial, "OverflowError",
                   "int64 overflow as above; float(n!) overflows in Python", lambda n: n >= 171),
        Difference("n < 0", 1.0, "ValueError", "Pythran returns the empty product; Python raises",
                   lambda n: n < 0),
    )),
    Case("math.pi * x", ((1.0,),), name="math_pi"),
    Case("math.e * x", ((1.0,),), name="math_e"),
)


def _np(name: str, grid: tuple[tuple[float, ...], ...] = (REAL,), **kw) -> Case:
    args = ", ".join("xy"[: len(grid)])
    return Case(f"np.{name}({args})", grid, **kw)


def _largest_is_1e300(x: float, y: float) -> bool:
    return max(x, y) == 1e300 and not (math.isnan(x) or math.isnan(y))


def _nan_first(x: float, y: float) -> bool:
    return math.isnan(x) and not math.isnan(y)


def _nan_second(x: float, y: float) -> bool:
    return math.isnan(y) and not math.isnan(x)


NAN_IN_Y = "y = NaN (x not NaN)"
NAN_IN_X = "x = NaN (y not NaN)"

NUMPY = (
    *(_np(f) for f in ("exp", "expm1", "log", "log2", "log10", "log1p", "sqrt", "cbrt", "square", "reciprocal",
                       "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "arcsinh",
                       "arccosh", "arctanh", "deg2rad", "rad2deg", "floor", "ceil", "trunc", "rint", "fabs",
                       "abs")),
    _np("sign", differences=(Difference("x = NaN", 1.0, NAN, "Pythran's sign (xsimd::sign) returns 1 for NaN",
                                        lambda x: x != x),)),
    _np("spacing", differences=(Difference("x < 0 or x ≥ 1", spacing_towards_one, numpy_spacing,
                                           "Pythran computes nextafter(x, 1) - x, which is NumPy's spacing only "
                                           "for 0 ≤ x < 1", lambda x: x < 0 or x >= 1),)),
    Case("float(np.isfinite(x))", (REAL,), name="np_isfinite", types="float64 (bool result)"),
    Case("float(np.signbit(x))", (REAL,), name="np_signbit", types="float64 (bool result)"),
    *(_np(f, (PAIR, PAIR)) for f in ("arctan2", "hypot", "fmod", "copysign", "nextafter", "heaviside")),
    _np("logaddexp", (PAIR, PAIR), rtol=1e-13,
        wider="Pythran computes log(exp(x) + exp(y)) directly: 1e-13 off where the result is small (x = 0, y = -7.5)",
        differences=(Difference("max(x, y) = 1e300", INF, larger, "exp overflows in Pythran's direct formula; NumPy "
                                "returns max(x, y) + log1p(exp(-|x - y|))", _largest_is_1e300),)),
    _np("logaddexp2", (PAIR, PAIR), rtol=1e-14, wider="as logaddexp: Pythran's direct formula",
        differences=(Difference("max(x, y) = 1e300", INF, larger, "as logaddexp", _largest_is_1e300),)),
    _np("power", (PAIR, PAIR), differences=(Difference(
        "x = -inf, y = 0.5", INF, NAN, "C's pow(-inf, y) is +inf for y > 0 not an odd integer",
        lambda x, y: x == -INF and y == 0.5, varies="NumPy 2.4 on this machine; NumPy 1.24 to 2.1 return +inf"),)),
    _np("remainder", (PAIR, PAIR), differences=(Difference(
        "y = ±inf, x finite", NAN, python_modulo, "Pythran computes x - y floor(x / y), which is NaN there",
        lambda x, y: math.isinf(y) and math.isfinite(x)),)),
    _np("fmax", (PAIR, PAIR), differences=(Difference(
        NAN_IN_X, NAN, second_argument, "Pythran's fmax is its maximum (xsimd::max), where a NaN in first place "
        "wins (and one in second place is dropped)", _nan_first),)),
    _np("fmin", (PAIR, PAIR), differences=(Difference(
        NAN_IN_X, NAN, second_argument, "Pythran's fmin is its minimum: as fmax", _nan_first),)),
    _np("maximum", (PAIR, PAIR), differences=(Difference(
        NAN_IN_Y, first_argument, NAN, "Pythran's maximum (xsimd::max) drops a NaN in second place", _nan_second),)),
    _np("minimum", (PAIR, PAIR), differences=(Difference(
        NAN_IN_Y, first_argument, NAN, "as maximum", _nan_second),)),
)

CASES = SPECIAL + MATH + NUMPY


def kernel_source(cases: tuple[Case, ...]) -> str:
    """A kernel module with one natural integrand per case."""
    parts = ['"""Every function of tests/test_special.py, each in a natural integrand."""\n\n'
             "import math\n\nimport numpy as np\nfrom scipy import special\n"]
    for c in cases:
        args = ", ".join(c.args)
        parts.append(f'\n\n#capsules integrand {c.name}({args})\ndef {c.name}({args}):\n'
                     f'    """{c.call}"""\n    return {c.call}\n')
    return "".join(parts)


# ---- calling the kernels and comparing ----

# PYFUNCTYPE keeps the GIL and raises the Python exception a failing kernel sets (a KernelError)
_RAW = ctypes.PYFUNCTYPE(ctypes.c_double, ctypes.c_int, ctypes.c_void_p)


@dataclass
class Outcome:
    """A function at every point: values (NaN where it raised) and the exceptions raised, by index."""

    values: np.ndarray
    raised: dict[int, str] = field(default_factory=dict)

    def describe(self, i: int) -> str:
        return f"raises {self.raised[i]}" if i in self.raised else repr(float(self.values[i]))


def run_compiled(kernel: capsules.Kernel, points: np.ndarray) -> Outcome:
    """The kernel at every point, through its C entry point ``double (int n, double *xx)``."""
    fn = _RAW(kernel.address)
    points = np.ascontiguousarray(points)
    n, stride = points.shape[1], points.strides[0]
    out = Outcome(np.empty(len(points)))
    for i in range(len(points)):
        try:
            out.values[i] = fn(n, points.ctypes.data + i * stride)
        except capsules.KernelError as err:
            out.values[i] = NAN
            out.raised[i] = type(err.__cause__).__name__
    return out


def run_python(function: Callable[..., float], points: np.ndarray) -> Outcome:
    out = Outcome(np.empty(len(points)))
    with np.errstate(all="ignore"):  # NumPy warns where C is silent
        for i, p in enumerate(points.tolist()):
            try:
                out.values[i] = float(function(*p))
            except (ValueError, OverflowError, ZeroDivisionError) as err:
                out.values[i] = NAN
                out.raised[i] = type(err).__name__
    return out


def _same(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)


def _matches(expected: Expected, outcome: Outcome, i: int, args: list[float]) -> bool:
    if isinstance(expected, str):
        if expected == "±inf":
            return i not in outcome.raised and math.isinf(outcome.values[i])
        if expected == "not NaN":
            return i not in outcome.raised and not math.isnan(outcome.values[i])
        return outcome.raised.get(i) in expected.split(" or ")
    if i in outcome.raised:
        return False
    want, got = float(expected(*args) if callable(expected) else expected), float(outcome.values[i])
    return _same(got, want) or abs(got - want) <= CLOSED_FORM_RTOL * abs(want)


@dataclass
class Comparison:
    """One case at every point of its grid: both outcomes, and the points each Difference covers."""

    case: Case
    points: np.ndarray
    compiled: Outcome
    python: Outcome
    covered: dict[int, list[int]]  # index of a Difference -> the points it covers

    @property
    def agreeing(self) -> np.ndarray:
        """The points no Difference covers, where both sides must agree."""
        keep = np.ones(len(self.points), dtype=bool)
        for at in self.covered.values():
            keep[at] = False
        return keep

    def scaled(self) -> tuple[np.ndarray, np.ndarray]:
        """Both sides at the agreeing points, divided by the case's scale (if any)."""
        keep = self.agreeing
        compiled, python = self.compiled.values[keep], self.python.values[keep]
        if self.case.scale is None:
            return compiled, python
        with np.errstate(all="ignore"):
            scale = np.array([self.case.scale(*p) for p in self.points[keep].tolist()])
            scale = np.where((scale > 0) & np.isfinite(scale), scale, 1.0)
            return compiled / scale, python / scale

    def differences(self) -> np.ndarray:
        """At each agreeing point, the relative difference (absolute, after scaling); inf where one is not finite."""
        compiled, python = self.scaled()
        with np.errstate(all="ignore"):
            ref = np.ones_like(python) if self.case.scale is not None else np.abs(python)
            rel = np.abs(compiled - python) / ref  # inf where Python gives 0 and the kernel does not
        same = (compiled == python) | (np.isnan(compiled) & np.isnan(python))
        finite = np.isfinite(compiled) & np.isfinite(python)
        return np.where(same, 0.0, np.where(finite, rel, INF))

    def max_relative(self) -> float:
        """The largest relative difference where both sides agree (within the tolerance)."""
        return float(self.differences().max(initial=0.0))

    def problems(self) -> list[str]:
        """Every way the comparison contradicts the case: undocumented raises, wrong documented values."""
        found = []
        for d_index, d in enumerate(self.case.differences):
            at = self.covered[d_index]
            if not at:
                found.append(f"the difference at {d.at!r} covers no point of the grid")
            for i in at:
                p = self.points[i].tolist()
                if not _matches(d.compiled, self.compiled, i, p):
                    found.append(f"{p}: compiled {self.compiled.describe(i)}, documented {render(d.compiled)}")
                if self.compiled.describe(i) == self.python.describe(i):
                    if not d.varies:
                        found.append(f"{p}: documented as a difference, but both give {self.python.describe(i)}")
                elif not _matches(d.python, self.python, i, p):
                    found.append(f"{p}: Python {self.python.describe(i)}, documented {render(d.python)}")
        for i, rel in zip(np.flatnonzero(self.agreeing), self.differences()):
            raised = [f"{side} {o.describe(i)}" for side, o in (("compiled", self.compiled), ("Python", self.python))
                      if i in o.raised]
            if raised or rel > self.case.rtol:
                found.append(f"{self.points[i].tolist()}: compiled {self.compiled.describe(i)}, "
                             f"Python {self.python.describe(i)}, undocumented")
        return found


def compare(c: Case, kernel: capsules.Kernel) -> Comparison:
    points = c.points()
    python = run_python(kernel.py, points)
    with np.errstate(all="ignore"):  # the predicates call SciPy too
        covered = {
            d_index: [i for i, p in enumerate(points.tolist()) if (d.where(*p) if d.where else i in python.raised)]
            for d_index, d in enumerate(c.differences)
        }
    return Comparison(c, points, run_compiled(kernel, points), python, covered)


def render(expected: Expected) -> str:
    """An expected value as the docs show it."""
    if isinstance(expected, str):
        return expected if expected in ("±inf", "not NaN") else f"raises {expected}"
    if callable(expected):
        return (expected.__doc__ or expected.__name__).strip()
    if expected != expected:
        return "NaN"
    return {INF: "+inf", -INF: "-inf"}.get(expected, repr(expected))


# ---- the tables of docs/special-functions.md ----

TABLE_BEGIN = "% begin table generated by tests/test_special.py: {name}"
TABLE_END = "% end table"
MEASURED = 4  # the column of the agreement table that holds measured values (machine and versions dependent)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _tolerance(c: Case) -> str:
    text = "4 ulp" if c.rtol == ULPS else f"{c.rtol:.0e}".replace("e-0", "e-")
    return text + (" of the modulus" if c.scale is not None else "")


def _measured(value: float) -> str:
    return "0" if value == 0 else f"{value:.1e}".replace("e-0", "e-")


def agreement_rows(comparisons: dict[str, Comparison]) -> list[list[str]]:
    """One row per case: where the kernel and Python agree, and how closely."""
    return [[f"`{c.public_name}`", f"`{c.call}`", c.types, str(len(comparisons[c.name].points)),
             _measured(comparisons[c.name].max_relative()), _tolerance(c), str(len(c.differences)) or "0"]
            for c in CASES]


def difference_rows() -> list[list[str]]:
    """One row per documented difference."""
    return [[f"`{c.call}`", _cell(d.at), _cell(render(d.compiled)),
             _cell(render(d.python) + (f" ({d.varies})" if d.varies else "")), _cell(d.why)]
            for c in CASES for d in c.differences]


AGREEMENT_HEADER = ["function", "call in the kernel", "argument types", "points", "largest relative difference",
                    "tolerance", "differences"]
DIFFERENCE_HEADER = ["call in the kernel", "where", "the kernel returns", "Python returns", "why"]


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def generated_tables(comparisons: dict[str, Comparison]) -> dict[str, str]:
    return {"agreement": markdown_table(AGREEMENT_HEADER, agreement_rows(comparisons)),
            "differences": markdown_table(DIFFERENCE_HEADER, difference_rows())}


def documented_tables(text: str) -> dict[str, list[list[str]]]:
    """The generated tables as the page shows them, as rows of cells."""
    found = {}
    for name in ("agreement", "differences"):
        begin = text.index(TABLE_BEGIN.format(name=name)) + len(TABLE_BEGIN.format(name=name))
        found[name] = table_cells(text[begin:text.index(TABLE_END, begin)])
    return found


def table_cells(table: str) -> list[list[str]]:
    """A markdown table's rows, as lists of cells (an escaped ``\\|`` stays inside its cell)."""
    return [re.split(r"(?<!\\)\|", line.strip())[1:-1] for line in table.strip().splitlines()]


# ---- the kernel modules, built once ----

# Pythran's scipy/special/i0e.hpp reuses i0.hpp's include guard: a module that calls both
# compiles only the first, and fails to link (test_unsupported_call_fails_at_its_line)
MODULES = {"main": "special_functions.py", "i0e": "special_i0e.py"}


def build_modules(folder: Path, load: Callable[[Path], capsules.KernelModule]) -> dict[str, capsules.KernelModule]:
    loaded = {}
    for module, filename in MODULES.items():
        path = folder / filename
        path.write_text(kernel_source(tuple(c for c in CASES if c.module == module)))
        loaded[module] = load(path)
    return loaded


def compare_all(modules: dict[str, capsules.KernelModule]) -> dict[str, Comparison]:
    return {c.name: compare(c, modules[c.module][c.name]) for c in CASES}


@pytest.fixture(scope="session")
def special_modules(tmp_path_factory, load_kernel_file) -> dict[str, capsules.KernelModule]:
    """The generated kernel modules, each built once for the whole session."""
    return build_modules(tmp_path_factory.mktemp("special"), load_kernel_file)


@pytest.fixture(scope="session")
def comparisons(special_modules) -> dict[str, Comparison]:
    """Every case at every point of its grid."""
    return compare_all(special_modules)



@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_compiled_function_matches_python(case, comparisons):
    result = comparisons[case.name]
    problems = result.problems()
    assert not problems, f"{case.call}: {len(problems)} problem(s):\n" + "\n".join(problems[:40])
    compiled, python = result.scaled()
    if case.scale is None:
        np.testing.assert_allclose(compiled, python, rtol=case.rtol, atol=0, equal_nan=True, err_msg=case.call)
    else:  # both divided by the complex value's modulus: an absolute difference, relative to it
        np.testing.assert_allclose(compiled, python, rtol=0, atol=case.rtol, equal_nan=True, err_msg=case.call)


@pytest.mark.parametrize("case", [c for c in CASES if c.rtol != ULPS], ids=lambda c: c.name)
def test_a_wider_tolerance_is_needed(case, comparisons):
    assert comparisons[case.name].max_relative() > ULPS, f"{case.call} agrees within 4 ulp: tighten its tolerance"


@pytest.mark.parametrize("module", ["scipy.special", "math"])
def test_every_function_pythran_knows_is_tested(module):
    """Pythran's own tables of scipy.special and math: each entry has a case here."""
    from pythran.tables import MODULES as PYTHRAN

    table = PYTHRAN["scipy"]["special"] if module == "scipy.special" else PYTHRAN["math"]
    cases = SPECIAL if module == "scipy.special" else MATH
    assert {c.function.partition(".")[2] for c in cases} == set(table)


def test_the_documented_tables_are_the_tested_cases(comparisons):
    """The page shows these cases, tolerances and differences; the measured column depends on versions and CPU."""
    documented = documented_tables(DOC.read_text(encoding="utf-8"))
    generated = {name: table_cells(table) for name, table in generated_tables(comparisons).items()}
    assert documented["differences"] == generated["differences"]

    def unmeasured(rows: list[list[str]]) -> list[list[str]]:
        return [row[:MEASURED] + row[MEASURED + 1:] for row in rows]

    assert unmeasured(documented["agreement"]) == unmeasured(generated["agreement"])


def test_bessel_at_infinity_raises(special_modules):
    """Boost's I and K functions iterate to their series limit at x = inf, then give up (hence FINITE grids).

    Boost's own message reaches the KernelError (a std::exception's what()).  The
    iterations take from milliseconds to seconds, depending on how the CPU
    handles arithmetic on infinities: not asserted.
    """
    kernel = special_modules["main"].special_kv
    with pytest.raises(capsules.KernelError, match=r"raised RuntimeError: .*bessel_ik.*Series evaluation exceeded"):
        run_compiled_once(kernel, 0.25, INF)
    assert special.kv(0.25, INF) == 0.0


def run_compiled_once(kernel: capsules.Kernel, *args: float) -> float:
    point = np.array(args)
    return _RAW(kernel.address)(len(args), point.ctypes.data)


# ---- functions that do not compile ----

CALL_LINE, DEF_LINE = 10, 8  # the lines of ``return ...`` and ``def f`` in the file unsupported_kernel writes
# the call, what the build error says, and the line it names (None: no line)
UNSUPPORTED = {
    "hyp2f1": ("special.hyp2f1(x, x, 1.5, x)", "pythran: Attribute 'hyp2f1' unknown", CALL_LINE),
    "erfinv": ("special.erfinv(x)", "pythran: Attribute 'erfinv' unknown", CALL_LINE),
    "sinc": ("np.sinc(x)", "pythran: Attribute 'sinc' unknown", CALL_LINE),
    "log2": ("math.log2(x)", "pythran: `log2' is not a member of math or Pythran does not support it", CALL_LINE),
    # pythran gives no line for scipy.special.erf (math.erf compiles): capsules finds the attribute's
    "special_erf": ("special.erf(x)", "cannot compile '.erf' here (Unsupported attribute 'erf' for this object)",
                    CALL_LINE),
    # a C++ static_assert: capsules names the kernel's def line, not the call's
    "binom_of_floats": ("special.binom(x, 2.5)", "only support integer case of scipy.special.binom", DEF_LINE),
    # a link error (see MODULES): no line, a mangled symbol
    "i0_and_i0e": ("special.i0(x) + special.i0e(x)", "undefined symbol: ", None),
}


def unsupported_kernel(folder: Path, key: str) -> Path:
    path = folder / f"unsupported_{key}.py"
    header = '"""One call Pythran cannot compile."""\nimport math\n\nimport numpy as np\nfrom scipy import special\n\n'
    path.write_text(header + f'#capsules integrand f(x)\ndef f(x):\n    """f"""\n    return {UNSUPPORTED[key][0]}\n')
    lines = path.read_text().splitlines()
    assert lines[CALL_LINE - 1].startswith("    return ") and lines[DEF_LINE - 1].startswith("def f")
    return path


@pytest.fixture(scope="module")
def build_errors(tmp_path_factory, cache_dir) -> dict[str, tuple[Path, capsules.BuildError]]:
    """Each unsupported call's build error (a failed build is not cached: one build each)."""
    folder = tmp_path_factory.mktemp("unsupported")
    errors = {}
    for key in UNSUPPORTED:
        path = unsupported_kernel(folder, key)
        with pytest.raises(capsules.BuildError) as info:
            capsules.load(path, cache=cache_dir)
        errors[key] = (path, info.value)
    return errors


@pytest.mark.parametrize("key", UNSUPPORTED)
def test_unsupported_call_is_a_build_error_naming_the_file(key, build_errors):
    path, err = build_errors[key]
    _, message, line = UNSUPPORTED[key]
    assert err.path == str(path) and err.line == line
    assert str(err).startswith(f"{path}:{line}: " if line else f"{path}: ")
    assert message in str(err)
    assert err.log_path and Path(err.log_path).is_file()


# ---- kernels/special.py: integrals with closed forms in scipy.special ----


@pytest.fixture(scope="module")
def special_kernels(load_kernel) -> capsules.KernelModule:
    return load_kernel("special")


@pytest.mark.parametrize(("n", "x"), [(0, 1.0), (1, 2.5), (2, 0.3), (5, 7.0), (10, 30.0), (-3, 4.2)])
def test_bessel_integral_at_integer_orders(special_kernels, n, x):
    value, _ = integrate.quad(special_kernels.bessel_integrand.lowlevel(v=float(n), x=x), 0, math.pi)
    assert value == pytest.approx(math.pi * special.jv(n, x), rel=1e-12, abs=1e-13)
    assert value == pytest.approx(math.pi * special.jv(float(n), x), rel=1e-12, abs=1e-13)


@pytest.mark.parametrize(("v", "x"), [(0.5, 1.0), (2.25, 3.0), (-1.5, 0.7), (7.5, 12.0)])
def test_bessel_integral_at_real_orders_needs_schlaeflis_tail(special_kernels, v, x):
    main, _ = integrate.quad(special_kernels.bessel_integrand.lowlevel(v=v, x=x), 0, math.pi)
    tail, _ = integrate.quad(special_kernels.bessel_tail.lowlevel(v=v, x=x), 0, math.inf)
    assert main - math.sin(v * math.pi) * tail == pytest.approx(math.pi * special.jv(v, x), rel=1e-10, abs=1e-12)
    assert abs(main - math.pi * special.jv(v, x)) > 1e-3  # the tail is needed


@pytest.mark.parametrize(("n", "a", "b"), [(0, 1.0, 1.0), (1, 0.5, 2.0), (2, 2.0, 0.5), (3.5, 1.0, 3.0)])
def test_damped_bessel_calls_jv_inside_the_kernel(special_kernels, n, a, b):
    value, _ = integrate.quad(special_kernels.damped_bessel.lowlevel(n=n, a=a, b=b), 0, math.inf, limit=200)
    r = math.hypot(a, b)
    assert value == pytest.approx((r - a) ** n / (b**n * r), rel=1e-8)


@pytest.mark.parametrize(("a", "x"), [(1.0, 0.5), (2.5, 2.0), (7.0, 10.0), (30.0, 25.0)])
def test_gamma_density_integrates_to_the_incomplete_gamma(special_kernels, a, x):
    density = special_kernels.gamma_density.lowlevel(a=a)
    # t^(a-1) is not smooth at 0 for a non-integer a: ask quad for more than its default 1.5e-8
    assert integrate.quad(density, 0, x, epsabs=0, epsrel=1e-13)[0] == pytest.approx(special.gammainc(a, x), rel=1e-12)
    assert integrate.quad(density, 0, math.inf, epsabs=0, epsrel=1e-13)[0] == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize(("a", "b"), [(0.0, 1.0), (1.0, 2.0), (-2.0, 0.5), (0.3, -4.0)])
def test_probit_normal_integral(special_kernels, a, b):
    value, _ = integrate.quad(special_kernels.probit_normal.lowlevel(a=a, b=b), -math.inf, math.inf)
    assert value == pytest.approx(special.ndtr(a / math.sqrt(1 + b * b)), rel=1e-10)


@pytest.mark.parametrize("x", [0.1, 1.0, 2.5, -3.0])
def test_erf_integral(special_kernels, x):
    value, _ = integrate.quad(special_kernels.erf_integrand.lowlevel(), 0, x)
    assert value == pytest.approx(x * math.erf(x) + (math.exp(-x * x) - 1) / math.sqrt(math.pi), rel=1e-12)


def test_special_kernels_run_as_plain_python_too(special_kernels):
    k = special_kernels
    assert k.damped_bessel.py(2.0, 1.0, 0.5, 1.5) == math.exp(-1.0) * special.jv(1.0, 3.0)
    assert k.gamma_density.py(2.0, 3.0) == pytest.approx(2.0**2 * math.exp(-2.0) / 2.0, rel=1e-15)


# ---- the tables, printed ----


def main() -> int:
    """Build the kernel modules (into the default cache), compare, and print the tables of the docs page."""
    import tempfile

    import pythran
    import scipy

    with tempfile.TemporaryDirectory() as folder:
        result = compare_all(build_modules(Path(folder), capsules.load))
    print(f"% measured with SciPy {scipy.__version__}, NumPy {np.__version__}, Pythran {pythran.__version__}, "
          f"Python {sys.version.split()[0]}")
    for name, table in generated_tables(result).items():
        print(f"\n{TABLE_BEGIN.format(name=name)}\n{table}\n{TABLE_END}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def test_a_function_imported_from_scipy_special_that_pythran_lacks_points_to_math(write_kernel, cache_dir):
    path = write_kernel("import math\nfrom scipy.special import erf\n\n\n#capsules integrand f(x)\ndef f(x):\n"
                        "    return erf(x)\n")
    with pytest.raises(capsules.BuildError) as info:
        capsules.load(path, cache=cache_dir)
    assert str(info.value).startswith(f"{path}:2: pythran does not compile 'scipy.special.erf': use math.erf "
                                      "instead; docs/special-functions.md lists what it compiles")
