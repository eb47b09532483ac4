"""Compiled generic_filter and generic_filter1d kernels, checked against scipy.ndimage and numpy.

    python examples/filters.py
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path

import numpy as np
from scipy import ndimage, signal

import capsules

KERNELS = Path(__file__).parent.parent / "kernels"


def timed(f):
    start = time.perf_counter()
    result = f()
    return result, time.perf_counter() - start


def report(name: str, got: np.ndarray, reference: np.ndarray, what: str, seconds: float, python: float | None = None):
    diff = np.nanmax(np.abs(got - reference)) if got.size else 0.0
    same_nans = np.array_equal(np.isnan(got), np.isnan(reference))
    speed = f"  ({python / seconds:5.0f}x faster than a Python callback)" if python else ""
    print(f"{name:<22} vs {what:<46} max |diff| {diff:8.1e}{'' if same_nans else '  NaN MISMATCH'}"
          f"  {seconds * 1e3:6.1f} ms{speed}")


def percentile(values: np.ndarray, q: float, weights: np.ndarray) -> float:
    """np.percentile(values, q, weights=weights, method="inverted_cdf"), which NumPy has from 2.0 on.

    The first sorted value whose cumulative weight reaches q / 100 of the total.
    """
    if NUMPY_WEIGHTS:
        return np.percentile(values, q, weights=weights, method="inverted_cdf")
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return values[order[np.argmax((cumulative > 0) & (cumulative / cumulative[-1] >= q / 100))]]


NUMPY_WEIGHTS = "weights" in inspect.signature(np.percentile).parameters


def main() -> None:
    filters = capsules.load(KERNELS / "filters.py")
    rng = np.random.default_rng(0)
    img = rng.standard_normal((201, 157))
    print(f"image {img.shape}, 5x5 windows, mode='reflect'\n")
    ndimage.generic_filter(img[:8, :8], filters.local_range.lowlevel(), size=3)  # the first call pays the loading

    got, t = timed(lambda: ndimage.generic_filter(img, filters.local_range.lowlevel(), size=5))
    report("local_range", got, ndimage.maximum_filter(img, 5) - ndimage.minimum_filter(img, 5),
           "maximum_filter - minimum_filter", t)

    got, t = timed(lambda: ndimage.generic_filter(img, filters.local_variance.lowlevel(), size=5))
    reference, slow = timed(lambda: ndimage.generic_filter(img, np.var, size=5))
    report("local_variance", got, reference, "generic_filter(np.var)", t, slow)

    got, t = timed(lambda: ndimage.generic_filter(img, filters.local_std.lowlevel(), size=5))
    mean = ndimage.uniform_filter(img, 5)
    reference = np.sqrt(ndimage.uniform_filter(img**2, 5) - mean**2)
    report("local_std", got, reference, "sqrt(E[x^2] - E[x]^2), uniform_filter", t)

    holes = img.copy()
    holes[rng.random(img.shape) < 0.1] = np.nan
    got, t = timed(lambda: ndimage.generic_filter(holes, filters.local_finite_mean.lowlevel(), size=5))
    finite = np.isfinite(holes)
    with np.errstate(invalid="ignore"):
        reference = ndimage.uniform_filter(np.where(finite, holes, 0.0), 5) / ndimage.uniform_filter(finite * 1.0, 5)
    report("local_finite_mean", got, reference, "uniform_filter(values) / uniform_filter(mask)", t)

    got, t = timed(lambda: ndimage.generic_filter(img, filters.local_median.lowlevel(), size=5))
    reference, builtin = timed(lambda: ndimage.median_filter(img, 5))
    report("local_median", got, reference, f"median_filter ({builtin * 1e3:.1f} ms)", t)

    weights = np.outer([1, 2, 3, 2, 1], [1, 2, 3, 2, 1]).astype(float)
    user_data = np.r_[75.0, weights.ravel()]
    got, t = timed(lambda: ndimage.generic_filter(img, filters.weighted_percentile.lowlevel(user_data), size=5))
    reference, slow = timed(lambda: ndimage.generic_filter(
        img, lambda v: percentile(v, 75.0, weights.ravel()), size=5))
    report("weighted_percentile", got, reference, "weighted percentile, q=75, weights=pyramid", t, slow)

    print("\ngeneric_filter1d along axis 1")
    got, t = timed(lambda: ndimage.generic_filter1d(img, filters.moving_average.lowlevel([9]), 9))
    report("moving_average (9)", got, ndimage.uniform_filter1d(img, 9), "uniform_filter1d(size=9)", t)

    got, t = timed(lambda: ndimage.generic_filter1d(img, filters.ewma.lowlevel([0.2]), 1))
    reference, _ = signal.lfilter([0.2], [1.0, -0.8], img, axis=1, zi=0.8 * img[:, :1])
    report("ewma (alpha 0.2)", got, reference, "lfilter([a], [1, a - 1])", t)

    got, t = timed(lambda: ndimage.generic_filter1d(img, filters.cumulative_max.lowlevel(), 1))
    report("cumulative_max", got, np.maximum.accumulate(img, axis=1), "np.maximum.accumulate", t)


if __name__ == "__main__":
    main()
