"""SciPy's nquad example with a compiled integrand: c + x - y*z over a box, c = 1.

Prints the integral (1200) computed through the capsule, and through the same
function called as plain Python, with the time each takes.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from scipy import integrate

import capsules

KERNELS = Path(__file__).resolve().parent.parent / "kernels"
RANGES = [[0, 10], [-10, 0], [-1, 1]]


def timed(fn, repeat: int = 5):
    """The value of fn() and its best time over a few calls (the first call warms caches up)."""
    value, best = fn(), float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return value, best


def main() -> None:
    f = capsules.load(KERNELS / "integrands.py").f
    print(f"kernel: {f.name}, C signature {f.signature!r}, accepted by {', '.join(f.targets)}")
    (native, _), t_native = timed(lambda: integrate.nquad(f.lowlevel(user_data=[1.0]), RANGES))
    cp = np.array([1.0])
    (python, _), t_python = timed(lambda: integrate.nquad(lambda x, y, z: f.py(3, (x, y, z), cp), RANGES))
    print(f"nquad with the capsule:        {native!r}  ({t_native * 1e3:.1f} ms)")
    print(f"nquad with the Python function: {python!r}  ({t_python * 1e3:.1f} ms)")
    print(f"speedup: {t_python / t_native:.1f}x (nquad's outer levels stay in Python); exact value 1200.0")


if __name__ == "__main__":
    main()
