"""capsules.nquad against scipy.integrate.nquad on the same capsule, and a threaded sweep.

The W2 integrand (Genz oscillatory, benchmarks/kernels/quad_integrands.py)
in 3-D (W2 itself) and in 4-D, integrated by:

* scipy.integrate.nquad with the capsule (its outer levels in Python);
* capsules.nquad with the same capsule (every level compiled);
* capsules.nquad with the hand-written C of benchmarks/c/kernels.c through ctypes (a foreign pointer);
* capsules.nquad in a driver compiled with that C integrand inside (CAPSULES_NQUAD_INTEGRAND in
  capsules/quadpack/driver.cpp), where the compiler inlines it: what compiling the integrand
  together with the driver would gain;
* scipy.integrate.nquad with the plain-Python integrand;
* scipy.integrate.cubature with a vectorised NumPy integrand (another algorithm: its own
  evaluation count and result, shown for scale).

Times are interleaved (each repeat runs every implementation once, in a
shuffled order) and reported as medians and minima.  Then a sweep: a table
of 3-D integrals over parameter sets, run by capsules.nquad from a
ThreadPoolExecutor of 1 and of 2 threads (the GIL is released for each whole
integral), interleaved the same way; the threaded results must equal the
serial ones.

    python benchmarks/nquad.py                  # about a minute on 2 cores
    python benchmarks/nquad.py --quick          # a smoke run
    python benchmarks/nquad.py --markdown r.md  # also write the report
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import scipy
from scipy import integrate

import capsules
from capsules.quadpack import driver as engines
from capsules.quadpack.driver import driver
from capsules.quadpack.integrals import FORMS, callee_of, level_specs, run

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from harness import C_DIR, CAPSULES_CACHE, GENZ, KERNELS, CProvider, build_c  # noqa: E402

# W2, and a 4-D case whose every level needs one 21-point rule (21^4 evaluations):
# where SciPy's Python between the inner quad calls weighs most
WORKLOADS = {
    "W2, 3-D": GENZ,
    "4-D": (0.3, 3.0, 5.0, 7.0, 9.0),
}
REFERENCE = "scipy.nquad, capsule"


def genz_python(*values: float) -> float:
    """The plain-Python integrand: nquad passes the variables, then args = (u1, a_1, ..., a_n)."""
    n = (len(values) - 1) // 2
    t = 2.0 * math.pi * values[n]
    for i in range(n):
        t += values[n + 1 + i] * values[i]
    return math.cos(t)


def genz_vectorised(coefficients: tuple[float, ...]) -> Callable[[np.ndarray], np.ndarray]:
    """The integrand of scipy.integrate.cubature: points of shape (npoints, n) to values (npoints,)."""
    u, a = coefficients[0], np.array(coefficients[1:])
    return lambda x: np.cos(2.0 * math.pi * u + x @ a)


def inlined_engine(folder: Path) -> engines.Driver:
    """capsules.nquad's driver compiled with W2's C integrand (``genz`` of benchmarks/c/kernels.c) inside.

    The same sources and flags as the driver capsules builds, plus
    -fno-semantic-interposition, without which gcc may not inline a
    function of a shared library that another library could replace.
    """
    engines.compile_into(folder, extra=("-fno-semantic-interposition", "-include", str(C_DIR / "kernels.c"),
                                        "-DCAPSULES_NQUAD_INTEGRAND=genz"))
    return engines.load(folder / engines.BINARY)


def implementations(
    capsule: Any, foreign: Any, noop: Any, coefficients: tuple[float, ...], inlined: engines.Driver,
) -> dict[str, Callable[[], Any]]:
    n = len(coefficients) - 1
    ranges = [[0, 1]] * n
    # the inlined driver ignores the pointer and reads the coefficients from user_data
    callee, levels = callee_of(foreign, "func", FORMS), level_specs(ranges, None)
    table = {
        REFERENCE: lambda: integrate.nquad(capsule, ranges, full_output=True),
        "capsules.nquad, capsule": lambda: capsules.nquad(capsule, ranges, full_output=True),
        "capsules.nquad, C through ctypes": lambda: capsules.nquad(foreign, ranges, full_output=True),
        "capsules.nquad, C inlined into the driver":
            lambda: run(callee, levels, [], True, 2, caller="nquad", engine=inlined),
        # a C function that returns 0 at once (each quad call then stops after one 21-point rule):
        # the integrators' own cost per evaluation
        "floor: scipy.nquad, no-op C": lambda: integrate.nquad(noop, ranges, full_output=True),
        "floor: capsules.nquad, no-op C": lambda: capsules.nquad(noop, ranges, full_output=True),
        "scipy.nquad, plain Python": lambda: integrate.nquad(genz_python, ranges, args=coefficients,
                                                             full_output=True),
    }
    if hasattr(integrate, "cubature"):
        f = genz_vectorised(coefficients)
        table["scipy.cubature, NumPy"] = lambda: integrate.cubature(f, [0.0] * n, [1.0] * n, rtol=1.49e-8,
                                                                    atol=1.49e-8)
    return table


def interleaved(table: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds per call of each implementation; each repeat runs them all once, shuffled.

    CPU time (of this thread, which runs the integral) leaves out the time other processes took the
    cores: on a loaded machine it is the fairer measure of one thread's work.
    """
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in table}
    order = list(table)
    for _ in range(repeats):
        random.shuffle(order)
        for name in order:
            wall, cpu = time.perf_counter(), time.thread_time()
            table[name]()
            times[name].append((time.perf_counter() - wall, time.thread_time() - cpu))
    return times


def medians(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def result_of(name: str, outcome: Any) -> tuple[float, int | None]:
    if name.startswith("scipy.cubature"):
        return float(outcome.estimate), None
    return outcome[0], outcome[2]["neval"]


def workload_rows(
    name: str, coefficients: tuple[float, ...], capsule: Any, foreign: Any, noop: Any, repeats: int,
    inlined: engines.Driver,
) -> list[str]:
    table = implementations(capsule, foreign, noop, coefficients, inlined)
    results = {impl: result_of(impl, call()) for impl, call in table.items()}
    reference = results[REFERENCE][0]
    times = interleaved(table, repeats)
    base_wall, base_cpu = medians(times[REFERENCE])
    rows = []
    for impl, samples in times.items():
        value, neval = results[impl]
        same = "-" if impl.startswith("floor") else "identical" if value == reference else (
            f"{abs(value - reference):.1e} off")
        wall, cpu = medians(samples)
        per_eval = f"{cpu / neval * 1e9:.3g}" if neval else "-"
        speed = "-" if impl.startswith("floor") else f"{base_wall / wall:.3g} | {base_cpu / cpu:.3g}"
        speed = "- | -" if speed == "-" else speed
        rows.append(
            f"| {name} | {impl} | {wall * 1e3:.3g} | {cpu * 1e3:.3g} | {per_eval} | {speed} | {neval or '-'} | {same} |"
        )
    return rows


def sweep_table(count: int) -> list[tuple[float, ...]]:
    """Parameter sets of the 3-D W2 integrand: u1 and the a_i over a grid."""
    return [(0.1 + 0.8 * k / count, 10.0 + k % 7, 20.0 - k % 5, 30.0 + k % 3) for k in range(count)]


def sweep_rows(capsule_for: Callable[[tuple[float, ...]], Any], count: int, repeats: int) -> list[str]:
    callables = [capsule_for(c) for c in sweep_table(count)]
    one = lambda f: capsules.nquad(f, [[0, 1]] * 3)  # noqa: E731
    serial = [one(f) for f in callables]
    pools = {threads: ThreadPoolExecutor(threads) for threads in (1, 2)}
    try:
        table = {f"{threads} thread(s)": (lambda p=pool: list(p.map(one, callables)))
                 for threads, pool in pools.items()}
        for threads, pool in pools.items():
            assert list(pool.map(one, callables)) == serial, f"{threads} threads changed the results"
        times = interleaved(table, repeats)
    finally:
        for pool in pools.values():
            pool.shutdown()
    one_thread = medians(times["1 thread(s)"])[0]
    return [
        f"| {name} | {min(w for w, _ in s) * 1e3:.3g} | {medians(s)[0] * 1e3:.3g} | {one_thread / medians(s)[0]:.3g} |"
        for name, s in times.items()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two repeats and a short sweep: checks that it runs")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--markdown", type=Path, help="also write the report here")
    parser.add_argument("--cache", type=Path, default=CAPSULES_CACHE, help="the capsules cache to build into")
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 11)
    load = os.getloadavg()
    driver(args.cache)
    genz = capsules.load(KERNELS / "quad_integrands.py", cache=args.cache).genz
    with tempfile.TemporaryDirectory() as tmp:
        library = build_c(Path(tmp))[0]
        c = CProvider(library)
        lines = header(load)
        noop = CProvider(library, noop=True)
        inlined = inlined_engine(Path(tmp))
        lines += ["Medians of wall and CPU time per integral; speed-ups over scipy.nquad with the same capsule.", "",
                  "| workload | implementation | wall, ms | CPU, ms | CPU, ns per evaluation | speed-up (wall) | "
                  "speed-up (CPU) | neval | result vs scipy.nquad |", "|---|---|---|---|---|---|---|---|---|"]
        for name, coefficients in WORKLOADS.items():
            lines += workload_rows(name, coefficients, genz.lowlevel(coefficients), c.callback("genz", coefficients),
                                   noop.callback("genz", coefficients), repeats, inlined)
        count = 16 if args.quick else 200
        lines += ["", f"Sweep: {count} integrals of the 3-D W2 integrand over parameter sets, capsules.nquad "
                  "from a ThreadPoolExecutor (results equal the serial loop's); wall time of the whole sweep.", "",
                  "| threads | min, ms | median, ms | speed-up over 1 thread (medians) |", "|---|---|---|---|"]
        lines += sweep_rows(lambda c: genz.lowlevel(c), count, repeats)
    lines += ["", f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"]
    report = "\n".join(lines) + "\n"
    print(report, end="")
    if args.markdown:
        args.markdown.write_text(report)
    return 0


def header(load: tuple[float, float, float]) -> list[str]:
    return [
        "# capsules.nquad benchmark",
        "",
        f"- {platform.machine()}, {os.cpu_count()} CPU(s); Python {platform.python_version()}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}, capsules {capsules.__version__}",
        f"- load average at the start: {' '.join(f'{x:.2f}' for x in load)}; the machine may be shared: "
        "interleaving spreads interference over every implementation alike",
        "",
    ]


if __name__ == "__main__":
    sys.exit(main())
