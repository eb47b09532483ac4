"""Scale-out benchmark: a Genz sweep on 1 and 2 worker processes, and the cost of shipping a callable.

SciPy holds the GIL while it calls a LowLevelCallable, so a sweep scales
with processes.  This measures, on warm pools (workers started and their
kernel module received before the clock starts):

* the sweep: 400 three-dimensional nquad integrals of the Genz product peak
  over a 20 x 20 grid of (a, u), serially in this process, then with a
  spawn ProcessPoolExecutor of 1 and of 2 workers (and a Dask LocalCluster
  of 2 worker processes when dask is installed); results must equal the
  serial loop's;
* the overhead per task of shipping a callable: many trivial tasks whose
  argument is a ``lowlevel()`` callable, against the same tasks with a plain
  tuple of the same values; plus the pickle's size and the one-time cost of
  the first unpickling in a fresh process with an empty cache.

    python benchmarks/scaleout.py          # about a minute on 2 cores
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
from scipy import integrate

import capsules

KERNELS = Path(__file__).resolve().parent.parent / "kernels"
RANGES = [[0, 1]] * 3
TRIVIAL_TASKS = 2000


def grid() -> list[list[float]]:
    """400 coefficient vectors [a, a, a, u, 1 - u, 0.5]: sharper peaks (larger a) cost more."""
    return [[a, a, a, u, 1 - u, 0.5] for a in np.linspace(2, 8, 20) for u in np.linspace(0.1, 0.9, 20)]


def timed(f):
    start = time.perf_counter()
    result = f()
    return result, time.perf_counter() - start


def pool_sweep(workers: int, callables: list) -> tuple[list, float]:
    integrate_3d = partial(integrate.nquad, ranges=RANGES)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(len, callables[:workers] * 4))  # start the workers and receive the module
        return timed(lambda: list(pool.map(integrate_3d, callables)))


def dask_sweep(callables: list) -> tuple[list, float] | None:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        return None
    integrate_3d = partial(integrate.nquad, ranges=RANGES)
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0") as cluster:
        with Client(cluster) as client:
            client.gather(client.map(len, callables[:8], pure=False))
            return timed(lambda: client.gather(client.map(integrate_3d, callables, pure=False)))


def overhead(llc) -> tuple[float, float]:
    """Seconds per trivial task with a callable as its argument, and with a plain tuple."""
    plain = tuple(llc.user_data_array)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(len, [llc] * 8))
        _, with_callable = timed(lambda: list(pool.map(len, [llc] * TRIVIAL_TASKS)))
        _, with_tuple = timed(lambda: list(pool.map(len, [plain] * TRIVIAL_TASKS)))
    return with_callable / TRIVIAL_TASKS, with_tuple / TRIVIAL_TASKS


def first_unpickle(payload: bytes) -> float:
    """Seconds to unpickle in a fresh process with an empty cache (the carried binary is published)."""
    code = (
        "import pickle, sys, time; import capsules, scipy.integrate; data = sys.stdin.buffer.read(); "
        "t = time.perf_counter(); pickle.loads(data); print(time.perf_counter() - t)"
    )
    with tempfile.TemporaryDirectory() as cache:
        os.chmod(cache, 0o700)
        done = subprocess.run(
            [sys.executable, "-c", code], input=payload, capture_output=True, check=True,
            env={**os.environ, "CAPSULES_CACHE": cache},
        )
    return float(done.stdout)


def main() -> None:
    genz = capsules.load(KERNELS / "genz.py")
    callables = [genz.product_peak.lowlevel(p) for p in grid()]
    serial, t_serial = timed(lambda: [integrate.nquad(llc, RANGES) for llc in callables])
    one, t_one = pool_sweep(1, callables)
    two, t_two = pool_sweep(2, callables)
    assert one == serial and two == serial, "a pool's results differ from the serial loop's"
    print(f"cores: {os.cpu_count()}, tasks: {len(callables)} (3-D nquad, Genz product peak)")
    print("| run | seconds | speed-up over 1 worker |")
    print("|---|---:|---:|")
    print(f"| serial, in this process | {t_serial:.2f} | {t_one / t_serial:.2f}x |")
    print(f"| ProcessPoolExecutor, 1 worker | {t_one:.2f} | 1.00x |")
    print(f"| ProcessPoolExecutor, 2 workers | {t_two:.2f} | {t_one / t_two:.2f}x |")
    dask = dask_sweep(callables)
    if dask is not None:
        assert dask[0] == serial, "Dask's results differ from the serial loop's"
        print(f"| Dask LocalCluster, 2 worker processes | {dask[1]:.2f} | {t_one / dask[1]:.2f}x |")

    llc = callables[0]
    payload = pickle.dumps(llc)
    _, t_dumps = timed(lambda: [pickle.dumps(llc) for _ in range(1000)])
    _, t_loads = timed(lambda: [pickle.loads(payload) for _ in range(1000)])
    per_callable, per_tuple = overhead(llc)
    print()
    print("| shipping one lowlevel() callable | |")
    print("|---|---:|")
    print(f"| pickle size | {len(payload) / 1024:.1f} kB (binary {genz.entry.binary.stat().st_size / 1024:.1f} kB) |")
    print(f"| pickle.dumps | {t_dumps * 1e3:.0f} us |")
    print(f"| pickle.loads, module already received | {t_loads * 1e3:.0f} us |")
    print(f"| first pickle.loads in a fresh process, empty cache | {first_unpickle(payload) * 1e3:.0f} ms |")
    print(f"| trivial task, callable argument (2 workers) | {per_callable * 1e6:.0f} us |")
    print(f"| trivial task, tuple argument (2 workers) | {per_tuple * 1e6:.0f} us |")
    print(f"| overhead of shipping the callable, per task | {(per_callable - per_tuple) * 1e6:.0f} us |")


if __name__ == "__main__":
    main()
