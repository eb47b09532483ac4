"""kernels/filters.py against scipy.ndimage's built-in filters and Python callbacks."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import ndimage, signal

import capsules

pytestmark = pytest.mark.compile

MODES = ("reflect", "nearest", "mirror", "wrap", "constant")
RTOL = 1e-12
ATOL = 1e-14

# (footprint, or size) choices: odd and even windows, a non-box footprint
CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)
RING = np.array([[1, 1, 1, 1], [1, 0, 0, 1], [1, 1, 1, 1]], dtype=bool)
WINDOWS = {"3x3": {"size": 3}, "3x5": {"size": (3, 5)}, "4x2": {"size": (4, 2)}, "cross": {"footprint": CROSS},
           "ring": {"footprint": RING}}


@pytest.fixture(scope="module")
def filters(load_kernel):
    return load_kernel("filters")


def image(shape=(17, 23), seed=0, integers=False):
    rng = np.random.default_rng(seed)
    if integers:  # many ties, for order statistics
        return rng.integers(0, 5, shape).astype(float)
    return rng.standard_normal(shape) * 3.0 + 1.0


def python_filter(kernel, user_data=None):
    """kernel.py as a generic_filter callback (numpy arrays in place of the pointers)."""
    data = None if user_data is None else np.asarray(user_data, dtype=float)

    def call(window):
        out = np.empty(1)
        assert kernel.py(window, len(window), out, data) == 1
        return out[0]

    return call


def python_filter1d(kernel, user_data, dtype=float):
    """kernel.py as a generic_filter1d callback."""
    data = np.asarray(user_data, dtype=dtype)

    def call(input_line, output_line):
        assert kernel.py(input_line, len(input_line), output_line, len(output_line), data) == 1

    return call


NP_PAD = {"reflect": "symmetric", "mirror": "reflect", "nearest": "edge", "wrap": "wrap", "constant": "constant"}


def extended_lines(img, size, mode, cval=0.0):
    """What generic_filter1d hands a kernel along the last axis (origin 0), built with numpy.pad."""
    pad = [(0, 0)] * (img.ndim - 1) + [(size // 2, size - 1 - size // 2)]
    extra = {"constant_values": cval} if mode == "constant" else {}
    return np.pad(img, pad, mode=NP_PAD[mode], **extra)


def window_size(window, ndim=2):
    """How many values a window hands the kernel (a scalar size applies to every axis)."""
    if "footprint" in window:
        return int(np.count_nonzero(window["footprint"]))
    return int(np.prod(np.broadcast_to(window["size"], (ndim,))))


# ---------------------------------------------------------------- generic_filter


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("window", WINDOWS)
def test_local_range_is_maximum_minus_minimum(filters, mode, window):
    img = image()
    kw = dict(WINDOWS[window], mode=mode, cval=0.5)
    got = ndimage.generic_filter(img, filters.local_range.lowlevel(), **kw)
    assert_array_equal(got, ndimage.maximum_filter(img, **kw) - ndimage.minimum_filter(img, **kw))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("window", WINDOWS)
def test_local_variance_and_std_match_numpy_callbacks(filters, mode, window):
    img = image(seed=1)
    kw = dict(WINDOWS[window], mode=mode, cval=-2.0)
    var = ndimage.generic_filter(img, filters.local_variance.lowlevel(), **kw)
    std = ndimage.generic_filter(img, filters.local_std.lowlevel(), **kw)
    assert_allclose(var, ndimage.generic_filter(img, np.var, **kw), rtol=RTOL, atol=ATOL)
    assert_allclose(std, ndimage.generic_filter(img, np.std, **kw), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("mode", MODES)
def test_local_variance_matches_uniform_filter_moments(filters, mode):
    # E[x^2] - E[x]^2 from built-in box filters: an independent route, less
    # accurate (cancellation), hence the absolute tolerance
    img = image((19, 13), seed=2)
    var = ndimage.generic_filter(img, filters.local_variance.lowlevel(), size=(3, 5), mode=mode)
    mean = ndimage.uniform_filter(img, size=(3, 5), mode=mode)
    expected = ndimage.uniform_filter(img * img, size=(3, 5), mode=mode) - mean * mean
    assert_allclose(var, expected, rtol=1e-10, atol=1e-12)


def test_constant_window_variance_is_zero_or_rounding_and_never_negative(filters):
    # 0.75 * 9 / 9 is exact, 0.1 * 9 / 9 is not: the two-pass variance is then
    # a rounding-size square, never a negative number that would make std NaN
    exact = ndimage.generic_filter(np.full((7, 9), 0.75), filters.local_variance.lowlevel(), size=3)
    assert_array_equal(exact, 0.0)
    rounded = ndimage.generic_filter(np.full((7, 9), 0.1), filters.local_variance.lowlevel(), size=3)
    assert np.all(rounded >= 0.0) and rounded.max() < 1e-30
    std = ndimage.generic_filter(np.full((7, 9), 0.1), filters.local_std.lowlevel(), size=3)
    assert not np.isnan(std).any()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", [3, (3, 4), (5, 1)])
def test_finite_mean_of_a_finite_image_is_uniform_filter(filters, mode, size):
    img = image((15, 21), seed=3)
    got = ndimage.generic_filter(img, filters.local_finite_mean.lowlevel(), size=size, mode=mode, cval=4.0)
    assert_allclose(got, ndimage.uniform_filter(img, size=size, mode=mode, cval=4.0), rtol=RTOL, atol=ATOL)


def finite_mean(window):
    finite = window[np.isfinite(window)]
    return finite.mean() if finite.size else np.nan


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("window", WINDOWS)
def test_finite_mean_skips_nan_and_inf(filters, mode, window):
    img = image((13, 11), seed=4)
    rng = np.random.default_rng(5)
    holes = rng.random(img.shape)
    img[holes < 0.2] = np.nan
    img[(holes >= 0.2) & (holes < 0.25)] = np.inf
    img[(holes >= 0.25) & (holes < 0.3)] = -np.inf
    img[:6, :6] = np.nan  # some windows with no finite value at all
    kw = dict(WINDOWS[window], mode=mode, cval=1.5)
    got = ndimage.generic_filter(img, filters.local_finite_mean.lowlevel(), **kw)
    expected = ndimage.generic_filter(img, finite_mean, **kw)
    assert np.isnan(got).any()
    assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
    # the same through built-ins: sum and count of the finite values, box windows only
    if "size" in WINDOWS[window] and mode != "constant":
        finite = np.isfinite(img)
        total = ndimage.uniform_filter(np.where(finite, img, 0.0), mode=mode, **WINDOWS[window])
        count = ndimage.uniform_filter(finite.astype(float), mode=mode, **WINDOWS[window])
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(count > 0.5 / window_size(WINDOWS[window]), total / count, np.nan)
        assert_allclose(got, ratio, rtol=1e-10, atol=1e-12)


def test_finite_mean_with_nan_border_ignores_the_border(filters):
    img = image((9, 14), seed=6)
    got = ndimage.generic_filter(img, filters.local_finite_mean.lowlevel(), size=3, mode="constant", cval=np.nan)
    # a corner averages only the 2x2 pixels inside the image
    assert got[0, 0] == pytest.approx(img[:2, :2].mean(), rel=RTOL)
    assert got[-1, 5] == pytest.approx(img[-2:, 4:7].mean(), rel=RTOL)
    assert_allclose(got[1:-1, 1:-1], ndimage.uniform_filter(img, size=3)[1:-1, 1:-1], rtol=RTOL)


@pytest.mark.parametrize("integers", [False, True])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("window", WINDOWS)
def test_local_median(filters, mode, window, integers):
    img = image((16, 19), seed=7, integers=integers)
    kw = dict(WINDOWS[window], mode=mode, cval=2.0)
    got = ndimage.generic_filter(img, filters.local_median.lowlevel(), **kw)
    if window_size(WINDOWS[window]) % 2 == 1:
        # ndimage's median_filter picks the middle rank: the median for odd windows
        assert_array_equal(got, ndimage.median_filter(img, **kw))
    assert_allclose(got, ndimage.generic_filter(img, np.median, **kw), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("q", [0.0, 10.0, 37.0, 50.0, 83.0, 100.0])
@pytest.mark.parametrize("mode", ["reflect", "nearest", "constant"])
@pytest.mark.parametrize("window", ["3x3", "cross", "ring"])
def test_percentile_with_unit_weights_matches_percentile_filter(filters, q, mode, window):
    img = image((14, 17), seed=8, integers=q == 50.0)
    kw = dict(WINDOWS[window], mode=mode, cval=0.25)
    n = window_size(WINDOWS[window])
    got = ndimage.generic_filter(img, filters.weighted_percentile.lowlevel([q] + [1.0] * n), **kw)
    # the inverted CDF picks the value of rank ceil(n q / 100) - 1 (0-based)
    rank = min(max(math.ceil(n * q / 100) - 1, 0), n - 1)
    assert_array_equal(got, ndimage.rank_filter(img, rank, **kw))
    if not (n * q / 100).is_integer():  # where ndimage's floor(n q / 100) is the same rank
        assert_array_equal(got, ndimage.percentile_filter(img, q, **kw))


# numpy's weighted percentile arrived in numpy 2.0; before it, the plain-Python run is the reference
NUMPY_WEIGHTED_PERCENTILE = "weights" in inspect.signature(np.percentile).parameters


@pytest.mark.parametrize("q", [0.0, 25.0, 50.0, 64.5, 100.0])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("window", ["3x5", "cross", "ring"])
def test_weighted_percentile_matches_numpy_weighted_percentile(filters, q, mode, window):
    spec = WINDOWS[window]
    footprint = spec["footprint"] if "footprint" in spec else np.ones(spec["size"], dtype=bool)
    rng = np.random.default_rng(9)
    weights = rng.uniform(0.0, 2.0, footprint.shape)
    weights.flat[0] = 0.0  # a zero weight: that element never counts
    w = weights[footprint]  # C order, as generic_filter fills its buffer
    img = image((12, 15), seed=10, integers=q == 50.0)
    got = ndimage.generic_filter(img, filters.weighted_percentile.lowlevel(np.r_[q, w]), footprint=footprint,
                                 mode=mode, cval=-1.0)
    if NUMPY_WEIGHTED_PERCENTILE:
        expected = ndimage.generic_filter(
            img, lambda v: np.percentile(v, q, weights=w, method="inverted_cdf"), footprint=footprint, mode=mode,
            cval=-1.0,
        )
        assert_array_equal(got, expected)
    python = ndimage.generic_filter(img, python_filter(filters.weighted_percentile, np.r_[q, w]),
                                    footprint=footprint, mode=mode, cval=-1.0)
    assert_array_equal(got, python)


def test_weighted_percentile_uses_the_weights_in_footprint_order(filters):
    # all the weight on one footprint element: the filter becomes a shift
    img = image((10, 12), seed=11)
    weights = np.zeros((3, 3))
    weights[0, 2] = 1.0  # the element up-right of the centre
    got = ndimage.generic_filter(img, filters.weighted_percentile.lowlevel(np.r_[50.0, weights.ravel()]), size=3,
                                 mode="nearest")
    assert_array_equal(got[1:, :-1], img[:-1, 1:])


def test_weighted_percentile_refuses_zero_total_weight(filters):
    # the kernel returns 0 (failure): a located error, not SciPy's "unknown error in filter function"
    with pytest.raises(capsules.KernelError, match=r"filters.py:\d+: 'weighted_percentile' returned 0"):
        ndimage.generic_filter(image((5, 5)), filters.weighted_percentile.lowlevel([50.0] + [0.0] * 9), size=3)


@pytest.mark.parametrize(
    "name", ["local_range", "local_variance", "local_std", "local_finite_mean", "local_median"]
)
@pytest.mark.parametrize("shape", [(11, 8), (5, 6, 7)])
def test_generic_filter_kernels_equal_their_python_original(filters, name, shape):
    img = image(shape, seed=12)
    kernel = filters[name]
    got = ndimage.generic_filter(img, kernel.lowlevel(), size=3, mode="mirror")
    assert_allclose(got, ndimage.generic_filter(img, python_filter(kernel), size=3, mode="mirror"), rtol=RTOL,
                    atol=ATOL)


# -------------------------------------------------------------- generic_filter1d


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("size", [1, 2, 5, 8])
def test_moving_average_full_window_is_uniform_filter1d(filters, mode, axis, size):
    img = image((13, 9, 6), seed=13)
    got = ndimage.generic_filter1d(img, filters.moving_average.lowlevel([size]), size, axis=axis, mode=mode, cval=3.0)
    expected = ndimage.uniform_filter1d(img, size, axis=axis, mode=mode, cval=3.0)
    assert_allclose(got, expected, rtol=RTOL, atol=1e-13)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("size", "m"), [(5, 1), (5, 3), (6, 4), (7, 7)])
def test_moving_average_trailing_window(filters, mode, size, m):
    img = image((11, 17), seed=14)
    kernel = filters.moving_average
    got = ndimage.generic_filter1d(img, kernel.lowlevel([m]), size, axis=1, mode=mode)
    python = ndimage.generic_filter1d(img, python_filter1d(kernel, [m], dtype=np.int64), size, axis=1, mode=mode)
    assert_allclose(got, python, rtol=RTOL, atol=ATOL)
    # the same from numpy: the last m values of each window of the padded line
    windows = np.lib.stride_tricks.sliding_window_view(extended_lines(img, size, mode), size, axis=-1)
    assert_allclose(got, windows[..., size - m :].mean(axis=-1), rtol=RTOL, atol=1e-13)


@pytest.mark.parametrize("m", [0, -1, 6])
def test_moving_average_refuses_a_window_longer_than_filter_size(filters, m):
    with pytest.raises(capsules.KernelError, match="returned 0 \\(failure\\)"):  # located, not SciPy's "unknown error"
        ndimage.generic_filter1d(image((4, 6)), filters.moving_average.lowlevel([m]), 5)


@pytest.mark.parametrize("alpha", [0.05, 0.3, 1.0])
@pytest.mark.parametrize("axis", [0, 1])
def test_ewma_is_the_recursive_filter(filters, alpha, axis):
    img = image((12, 31), seed=15)
    got = ndimage.generic_filter1d(img, filters.ewma.lowlevel([alpha]), 1, axis=axis)
    # y_j = alpha x_j + (1 - alpha) y_{j-1} with y_0 = x_0, as an IIR filter
    first = np.take(img, [0], axis=axis)
    expected, _ = signal.lfilter([alpha], [1.0, alpha - 1.0], img, axis=axis, zi=(1 - alpha) * first)
    assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", [2, 3, 6])
def test_ewma_with_a_window_equals_python(filters, mode, size):
    img = image((9, 14), seed=16)
    kernel = filters.ewma
    got = ndimage.generic_filter1d(img, kernel.lowlevel([0.4]), size, mode=mode, cval=-1.0)
    python = ndimage.generic_filter1d(img, python_filter1d(kernel, [0.4]), size, mode=mode, cval=-1.0)
    assert_allclose(got, python, rtol=RTOL, atol=ATOL)
    # the recursion run over the padded line, read at the windows' right ends
    line = extended_lines(img, size, mode, cval=-1.0)
    full, _ = signal.lfilter([0.4], [1.0, -0.6], line, axis=-1, zi=0.6 * line[:, :1])
    assert_allclose(got, full[:, size - 1 :], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_cumulative_max_is_maximum_accumulate(filters, axis):
    img = image((7, 10, 5), seed=17)
    got = ndimage.generic_filter1d(img, filters.cumulative_max.lowlevel(), 1, axis=axis)
    assert_array_equal(got, np.maximum.accumulate(img, axis=axis))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", [2, 5])
def test_cumulative_max_with_a_window(filters, mode, size):
    img = image((8, 13), seed=18)
    kernel = filters.cumulative_max
    got = ndimage.generic_filter1d(img, kernel.lowlevel(), size, mode=mode, cval=10.0)
    python = ndimage.generic_filter1d(img, python_filter1d(kernel, [0.0]), size, mode=mode, cval=10.0)
    assert_array_equal(got, python)
    # the running maximum of the padded line, read at the windows' right ends
    line = extended_lines(img, size, mode, cval=10.0)
    assert_array_equal(got, np.maximum.accumulate(line, axis=-1)[:, size - 1 :])
