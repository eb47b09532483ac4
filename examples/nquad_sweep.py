"""A table of integrals on every core: capsules.nquad from a ThreadPoolExecutor.

The Genz product peak f(x) = prod_i 1 / (a_i^-2 + (x_i - u_i)^2) over the
unit cube in 3-D, for a grid of difficulties a and peak positions u: one
integral per row of the table.  capsules.nquad releases the GIL for each
whole integral, so threads run them side by side; scipy.integrate.nquad
holds it (its outer levels are Python), so the same sweep would need
processes.  The first row is checked against scipy.integrate.nquad on the
same capsule (the same value, bit for bit) and every row against the
family's closed form.

    python examples/nquad_sweep.py [threads]
"""

from __future__ import annotations

import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from scipy import integrate

import capsules

KERNELS = Path(__file__).resolve().parent.parent / "kernels"
DIMENSIONS = 3
RANGES = [[0.0, 1.0]] * DIMENSIONS


def table() -> list[np.ndarray]:
    """The parameter sets, as the kernels' user_data: [a_1..a_n, u_1..u_n]."""
    rows = []
    for a in (2.0, 5.0, 10.0, 20.0):
        for u in np.linspace(0.1, 0.9, 8):
            rows.append(np.array([a, 0.8 * a, 1.2 * a, u, 1.0 - u, 0.5]))
    return rows


def closed_form(data: np.ndarray) -> float:
    """prod_i a_i (atan(a_i (1 - u_i)) + atan(a_i u_i))."""
    a, u = data[:DIMENSIONS], data[DIMENSIONS:]
    return float(np.prod(a * (np.arctan(a * (1.0 - u)) + np.arctan(a * u))))


def main(threads: int) -> None:
    peak = capsules.load(KERNELS / "genz.py").product_peak
    rows = table()
    integrands = [peak.lowlevel(data) for data in rows]

    def one(integrand: object) -> float:
        return capsules.nquad(integrand, RANGES)[0]

    assert one(integrands[0]) == integrate.nquad(integrands[0], RANGES)[0]
    for workers in sorted({1, threads}):
        start = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            values = list(pool.map(one, integrands))
        print(f"{len(rows)} integrals on {workers} thread(s): {time.perf_counter() - start:.2f} s")
    worst = max(abs(v - closed_form(d)) / abs(closed_form(d)) for v, d in zip(values, rows))
    print(f"largest relative difference from the closed forms: {worst:.1e}")
    for data, value in list(zip(rows, values))[:: len(rows) // 4]:
        print(f"  a = {data[0]:4.1f}, u_1 = {data[3]:.2f}: {value:.12g}")
    assert math.isfinite(worst) and worst < 1e-7


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else os.cpu_count() or 1)
