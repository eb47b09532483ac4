"""Kernels that read arrays passed by name, against hand-written C reading the same arrays through user_data.

Two workloads, each timed interleaved in one process (capsules, C,
capsules, C, ...) with the order of each pair alternated:

- quad of a linear interpolation over a 1,000-point table, told where the
  knots are (about 63,000 calls of the integrand per quad);
- generic_filter with a weighted 5x5 footprint over a 500x500 image.

The kernels are kernels/data.py.  The C (benchmarks/c/data.c) is compiled with capsules' own flags
(``capsules.build.build_flags()``) and reads a struct holding ``restrict``
pointers to the same NumPy arrays.  Prints min and median per SciPy call and
the ratio capsules / C of the medians, as a markdown table.

    python benchmarks/data.py [--repeats N] [--cache DIR]
"""

from __future__ import annotations

import argparse
import ctypes
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import LowLevelCallable, integrate, ndimage

import capsules
from capsules.build import build_flags

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from harness import pair_table  # noqa: E402


class _Interpolation(ctypes.Structure):
    _fields_ = [("table", ctypes.c_void_p), ("size", ctypes.c_int64), ("x0", ctypes.c_double),
                ("dx", ctypes.c_double)]


class _Weights(ctypes.Structure):
    _fields_ = [("weights", ctypes.c_void_p), ("rows", ctypes.c_int64), ("columns", ctypes.c_int64)]


def _c_library(tmp: Path) -> ctypes.CDLL:
    out = tmp / "data.so"
    command = ["gcc", *build_flags(), "-shared", "-fPIC", "-o", str(out), str(HERE / "c" / "data.c"), "-lm"]
    subprocess.run(command, check=True)
    return ctypes.CDLL(str(out))


def _c_callable(lib: ctypes.CDLL, name: str, data: ctypes.Structure, signature: str) -> LowLevelCallable:
    function = getattr(lib, name)
    return LowLevelCallable(function, ctypes.cast(ctypes.pointer(data), ctypes.c_void_p), signature)


def workloads(cache: str, tmp: Path) -> list[tuple[str, Callable[[], object], Callable[[], object]]]:
    mod = capsules.load(HERE.parent / "kernels" / "data.py", cache=cache)
    lib = _c_library(tmp)
    knots = np.linspace(0.0, 10.0, 1000)
    table = np.sin(knots) * np.exp(-0.1 * knots)
    points = knots[1:-1]
    interpolation = _Interpolation(table.ctypes.data, table.size, 0.0, 10.0 / 999)
    c_interpolated = _c_callable(lib, "interpolated", interpolation, "double (int, double *, void *)")
    ours_interpolated = mod.interpolated.lowlevel(table=table, x0=0.0, dx=10.0 / 999)
    image = np.random.default_rng(0).random((500, 500))
    weights = np.random.default_rng(1).random((5, 5))
    c_weights = _Weights(weights.ctypes.data, 5, 5)
    c_weighted = _c_callable(lib, "weighted", c_weights, "int (double *, intptr_t, double *, void *)")
    ours_weighted = mod.weighted.lowlevel(weights=weights)

    def quad(f: object) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", integrate.IntegrationWarning)
            return integrate.quad(f, 0.0, 10.0, points=points, limit=2000)[0]

    keep = (table, image, weights, interpolation, c_weights)  # what the C reads stays alive with the closures
    return [
        ("quad, linear interpolation over 1,000 points", lambda: (keep, quad(ours_interpolated))[1],
         lambda: quad(c_interpolated)),
        ("generic_filter, weighted 5x5, 500x500", lambda: ndimage.generic_filter(image, ours_weighted, size=5),
         lambda: ndimage.generic_filter(image, c_weighted, size=5)),
    ]


def measure(ours: Callable[[], object], c: Callable[[], object], repeats: int) -> tuple[list[float], list[float]]:
    """Interleaved timings, the order of each pair alternated; the two results must agree first."""
    if not np.allclose(np.asarray(ours()), np.asarray(c()), rtol=1e-12, atol=1e-12):
        raise SystemExit("capsules and C results differ")
    times: tuple[list[float], list[float]] = ([], [])
    for k in range(repeats):
        pairs = [(ours, times[0]), (c, times[1])]
        for function, out in pairs if k % 2 == 0 else pairs[::-1]:
            start = time.perf_counter()
            function()
            out.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=41)
    parser.add_argument("--cache", default=None)
    args = parser.parse_args()
    cache = args.cache or tempfile.mkdtemp(prefix="capsules-bench-")
    with tempfile.TemporaryDirectory() as tmp:
        rows = ((name, *measure(ours, c, args.repeats)) for name, ours, c in workloads(cache, Path(tmp)))
        for line in pair_table(("capsules", "C"), rows, 3):
            print(line)


if __name__ == "__main__":
    main()
