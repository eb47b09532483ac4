"""Integrate the six Genz test families with scipy.integrate.nquad and compiled integrands.

Each family is integrated over the unit cube in 1, 2 and 3 dimensions and
compared with its closed form; the last column is the speed-up over nquad
with the same integrand as a Python function (in 1-D quadpack runs entirely
in C; in more dimensions nquad's outer levels are Python either way).

    python examples/genz_integrals.py
"""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path

import numpy as np
from scipy import integrate, special

import capsules

KERNELS = Path(__file__).parent.parent / "kernels"


def per_call(f, budget: float = 0.02) -> float:
    """Seconds per call of f(), repeated for about ``budget`` seconds."""
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < budget or calls == 0:
        f()
        calls += 1
    return elapsed / calls


def exact(name: str, a: np.ndarray, u: np.ndarray) -> float:
    """The integral over [0, 1]^n, in closed form (one variable at a time)."""
    if name == "oscillatory":
        return math.cos(2 * math.pi * u[0] + a.sum() / 2) * float(np.prod(2 * np.sin(a / 2) / a))
    if name == "product_peak":
        return float(np.prod(a * (np.arctan(a * (1 - u)) + np.arctan(a * u))))
    if name == "corner_peak":
        n = len(a)
        corners = sum((-1) ** sum(v) / (1 + float(a @ np.array(v))) for v in itertools.product((0, 1), repeat=n))
        return corners / (math.factorial(n) * float(np.prod(a)))
    if name == "gaussian":
        return float(np.prod(math.sqrt(math.pi) / (2 * a) * (special.erf(a * (1 - u)) + special.erf(a * u))))
    if name == "continuous":
        return float(np.prod((2 - np.exp(-a * u) - np.exp(-a * (1 - u))) / a))
    if name == "discontinuous":
        b = np.ones_like(a)
        b[:2] = u[:2]
        return float(np.prod(np.expm1(a * b) / a))
    raise ValueError(name)


def options(name: str, u: np.ndarray) -> list[dict]:
    """nquad options per variable: the kinks and jumps at x_i = u_i as break points."""
    kinked = {"continuous": len(u), "discontinuous": 2}.get(name, 0)
    return [{"points": [float(u[i])]} if i < kinked else {} for i in range(len(u))]


def main() -> None:
    genz = capsules.load(KERNELS / "genz.py")
    a_all = np.array([1.3, 0.6, 1.9])
    u_all = np.array([0.35, 0.7, 0.55])
    print(f"a = {a_all}, u = {u_all}  (user_data = [a_1..a_n, u_1..u_n])\n")
    print(f"{'family':<14} {'n':>2} {'nquad':>22} {'closed form':>22} {'|error|':>9} {'ms':>7} {'speed-up':>9}")
    worst = 0.0
    for kernel in genz:
        for n in (1, 2, 3):
            a, u = a_all[:n], u_all[:n]
            user_data = np.concatenate([a, u])
            llc = kernel.lowlevel(user_data)
            value, _ = integrate.nquad(llc, [[0, 1]] * n, opts=options(kernel.name, u))
            fast = per_call(lambda: integrate.nquad(llc, [[0, 1]] * n, opts=options(kernel.name, u)))
            speedup = ""
            if n < 3:  # the Python integrand in 3-D takes seconds
                py = kernel.py

                def func(*x, py=py, n=n, user_data=user_data):
                    return py(n, np.array(x), user_data)

                slow_value, _ = integrate.nquad(func, [[0, 1]] * n, opts=options(kernel.name, u))
                slow = per_call(lambda: integrate.nquad(func, [[0, 1]] * n, opts=options(kernel.name, u)))
                speedup = f"{slow / fast:8.0f}x"
                assert abs(slow_value - value) <= 1e-12 * max(1.0, abs(value))
            reference = exact(kernel.name, a, u)
            error = abs(value - reference)
            worst = max(worst, error / max(abs(reference), 1e-300))
            print(f"{kernel.name:<14} {n:>2} {value:22.16g} {reference:22.16g} {error:9.1e} "
                  f"{fast * 1e3:7.2f} {speedup:>9}")
    print(f"\nlargest relative error: {worst:.1e}")


if __name__ == "__main__":
    main()
