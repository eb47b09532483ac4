"""What a natural kernel costs over the same kernel written against raw pointers.

Times the natural kernels of kernels/natural.py and their raw twins in
kernels/genz.py, kernels/filters.py and kernels/transforms.py, interleaved
(natural, raw, natural, raw, ...) in one process; prints min and median per
SciPy call and the ratio natural / raw of the medians.

    python benchmarks/natural_overhead.py [--repeats N] [--cache DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import integrate, ndimage

import capsules

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import pair_table  # noqa: E402

KERNELS = Path(__file__).resolve().parent.parent / "kernels"


def workloads(cache: str) -> list[tuple[str, object, object]]:
    nat = capsules.load(KERNELS / "natural.py", cache=cache)
    genz = capsules.load(KERNELS / "genz.py", cache=cache)
    filters = capsules.load(KERNELS / "filters.py", cache=cache)
    transforms = capsules.load(KERNELS / "transforms.py", cache=cache)
    image = np.random.default_rng(0).random((1000, 1000))
    lines = np.random.default_rng(1).random((2000, 2000))
    box = [[0, 1]] * 3
    params = dict(a1=5.0, a2=7.0, a3=9.0, u1=0.3)
    return [
        ("nquad oscillatory 3-D",
         lambda: integrate.nquad(nat.oscillatory3.lowlevel(**params), box),
         lambda: integrate.nquad(genz.oscillatory.lowlevel([5.0, 7.0, 9.0, 0.3, 0.0, 0.0]), box)),
        ("generic_filter local range 1000x1000, size 5",
         lambda: ndimage.generic_filter(image, nat.local_range.lowlevel(), size=5),
         lambda: ndimage.generic_filter(image, filters.local_range.lowlevel(), size=5)),
        ("generic_filter1d ewma 2000x2000",
         lambda: ndimage.generic_filter1d(lines, nat.ewma.lowlevel(alpha=0.3), filter_size=1),
         lambda: ndimage.generic_filter1d(lines, filters.ewma.lowlevel([0.3]), filter_size=1)),
        ("generic_filter1d moving average of 9, 2000x2000",
         lambda: ndimage.generic_filter1d(lines, nat.moving_average.lowlevel(length=9), filter_size=9),
         lambda: ndimage.generic_filter1d(lines, filters.moving_average.lowlevel([9]), filter_size=9)),
        ("geometric_transform shift 1000x1000, order 1",
         lambda: ndimage.geometric_transform(image, nat.shift2d.lowlevel(dy=0.5, dx=-1.5), order=1),
         lambda: ndimage.geometric_transform(image, transforms.shift.lowlevel([2, 0.5, -1.5]), order=1)),
    ]


def measure(natural, raw, repeats: int) -> tuple[list[float], list[float]]:
    a = natural()
    b = raw()
    same = np.array_equal(np.asarray(a[0] if isinstance(a, tuple) else a), np.asarray(b[0] if isinstance(b, tuple) else b))
    if not same:
        raise SystemExit("natural and raw results differ")
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in ((natural, times[0]), (raw, times[1])):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--cache", default=None)
    args = parser.parse_args()
    cache = args.cache or tempfile.mkdtemp(prefix="capsules-bench-")
    rows = ((name, *measure(natural, raw, args.repeats)) for name, natural, raw in workloads(cache))
    for line in pair_table(("natural", "raw"), rows, 2):
        print(line)


if __name__ == "__main__":
    main()
