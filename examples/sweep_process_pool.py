"""A parameter sweep on a process pool: 400 Genz integrals, the same numbers as the serial loop.

SciPy holds the GIL while it calls a LowLevelCallable, so threads do not
help; processes do.  ``lowlevel()`` callables pickle: each worker receives
the kernel module once (from its cache, or the binary the pickle carries,
or a build of the carried source) and then only the user_data per task.

These integrals take well under a millisecond each, so the pool's start-up
dominates here; benchmarks/scaleout.py times a sweep where processes pay off.

    python examples/sweep_process_pool.py
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
from scipy import integrate

import capsules

KERNELS = Path(__file__).parent.parent / "kernels"


def main() -> None:
    genz = capsules.load(KERNELS / "genz.py")
    # user_data = [a_1, a_2, u_1, u_2]
    grid = [[a, 2.0 * a, u, 1.0 - u] for a in np.linspace(1, 10, 20) for u in np.linspace(0.05, 0.95, 20)]
    callables = [genz.gaussian.lowlevel(p) for p in grid]
    integrate_2d = partial(integrate.nquad, ranges=[[0, 1]] * 2)  # a picklable task

    start = time.perf_counter()
    serial = [integrate_2d(llc) for llc in callables]
    print(f"serial loop:      {time.perf_counter() - start:6.2f} s")

    start = time.perf_counter()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        parallel = list(pool.map(integrate_2d, callables, chunksize=10))
    print(f"2 processes:      {time.perf_counter() - start:6.2f} s (pool start-up included)")
    assert parallel == serial
    print(f"{len(parallel)} integrals, identical to the serial loop; first: {parallel[0][0]:.15g}")


if __name__ == "__main__":
    main()
