"""Typed parameters of natural kernels: arrays and integers passed by name, in one user_data block."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import pickle
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, ndimage

import capsules
from capsules import prebuilt
from capsules.generate.module import read_exports, scan

# np.trapz became np.trapezoid in NumPy 2.0
TRAPEZOID = getattr(np, "trapezoid", None) or np.trapz

ROOT = Path(__file__).resolve().parent.parent
PARAMETERS = ROOT / "tests" / "kernels" / "parameters.py"
DATA = ROOT / "kernels" / "data.py"  # a tabulated integrand and a weighted filter


@pytest.fixture(scope="module")
def mod(cache_dir: Path) -> capsules.KernelModule:
    return capsules.load(PARAMETERS, cache=cache_dir)


@pytest.fixture(scope="module")
def data(cache_dir: Path) -> capsules.KernelModule:
    return capsules.load(DATA, cache=cache_dir)


KNOTS = np.linspace(-1.0, 2.0, 40)


def _tabulated() -> dict[str, object]:
    return {"table": np.sin(3 * KNOTS) * np.exp(-KNOTS), "x0": -1.0, "dx": 3.0 / 39}


def _quad(function: object, args: tuple[object, ...] = ()) -> float:
    """The integral over [-1.5, 2.5], told where the kinks are."""
    return integrate.quad(function, -1.5, 2.5, args=args, points=KNOTS, limit=200)[0]


@pytest.mark.compile
def test_a_tabulated_integrand_under_capsules_nquad_gives_scipys_answers(data: capsules.KernelModule) -> None:
    """Array parameters go through capsules' compiled integrals too: SciPy's value and evaluation count."""
    callable_ = data.interpolated.lowlevel(**_tabulated())
    ours = capsules.nquad(callable_, [[-1.5, 2.5]], opts={"limit": 200}, full_output=True)
    theirs = integrate.nquad(callable_, [[-1.5, 2.5]], opts={"limit": 200}, full_output=True)
    np.testing.assert_array_max_ulp(ours[0], theirs[0], maxulp=4)
    assert ours[2] == theirs[2]
    # the table's kinks, not given as points, end in QUADPACK's roundoff flag: the same warning from both
    with pytest.warns(integrate.IntegrationWarning, match="roundoff") as ours_warned:
        alone = capsules.quad(callable_, -1.5, 2.5, limit=200)
    with pytest.warns(integrate.IntegrationWarning, match="roundoff") as theirs_warned:
        integrate.quad(callable_, -1.5, 2.5, limit=200)
    assert [str(w.message) for w in ours_warned] == [str(w.message) for w in theirs_warned]
    np.testing.assert_array_max_ulp(alone[0], theirs[0], maxulp=4)
    # near the Python function's integral told where the kinks are, as near as the flag allows
    assert ours[0] == pytest.approx(_quad(data.interpolated.py, tuple(_tabulated().values())), rel=1e-5)


@pytest.mark.compile
@pytest.mark.parametrize("checked", [False, True])
def test_a_tabulated_integrand_against_the_same_function_under_quad(checked: bool, cache_dir: Path) -> None:
    kernel = capsules.load(DATA, cache=cache_dir, checked=checked).interpolated
    given = _tabulated()
    compiled, python = _quad(kernel.lowlevel(**given)), _quad(kernel.py, tuple(given.values()))
    assert compiled == pytest.approx(python, rel=1e-13)
    # the trapezoidal rule is exact for the piecewise-linear function, plus the constant ends
    table = given["table"]
    assert compiled == pytest.approx(TRAPEZOID(table, KNOTS) + 0.5 * (table[0] + table[-1]), rel=1e-12)


@pytest.mark.compile
@pytest.mark.parametrize("checked", [False, True])
def test_a_weighted_filter_against_ndimage_correlate(checked: bool, cache_dir: Path) -> None:
    kernel = capsules.load(DATA, cache=cache_dir, checked=checked).weighted
    rng = np.random.default_rng(3)
    image, weights = rng.normal(size=(41, 37)), rng.normal(size=(5, 3))
    for mode in ("reflect", "nearest", "constant"):
        got = ndimage.generic_filter(image, kernel.lowlevel(weights=weights), size=weights.shape, mode=mode)
        assert np.allclose(got, ndimage.correlate(image, weights, mode=mode), rtol=1e-13, atol=1e-13)


@pytest.mark.compile
def test_a_line_kernel_with_taps_against_ndimage_correlate1d(mod: capsules.KernelModule) -> None:
    image, taps = np.random.default_rng(5).normal(size=(23, 64)), np.array([0.25, -1.0, 0.5, 2.0, 0.125])
    got = ndimage.generic_filter1d(image, mod.fir.lowlevel(taps=taps), filter_size=len(taps))
    # generic_filter1d centres the window as correlate1d does with origin 0
    assert np.allclose(got, ndimage.correlate1d(image, taps), rtol=1e-13, atol=1e-13)


@pytest.mark.compile
def test_a_mapping_with_a_matrix_against_ndimage_affine_transform(mod: capsules.KernelModule) -> None:
    image = np.random.default_rng(9).normal(size=(31, 29))
    matrix, offset = np.array([[0.9, 0.2], [-0.1, 1.1]]), np.array([1.5, -2.25])
    got = ndimage.geometric_transform(image, mod.affine.lowlevel(matrix=matrix, offset=offset), order=1)
    assert np.allclose(got, ndimage.affine_transform(image, matrix, offset, order=1), rtol=0, atol=1e-12)


INTEGERS = {
    "n": 3,
    "small": np.array([7, -5], dtype=np.int32),
    "large": [2**40 + 1, 2**40],  # a list: copied to int64, and no float64 on the way
    "grid": np.arange(6, dtype=np.int16).reshape(2, 3),  # converted to int64
    "cells": np.array([[1, 2], [30, 4], [5, 6]], dtype=np.int64),  # converted to int32
}


@pytest.mark.compile
@pytest.mark.parametrize("checked", [False, True])
def test_each_integer_dtype_and_rank_arrives_as_given(checked: bool, cache_dir: Path) -> None:
    kernel = capsules.load(PARAMETERS, cache=cache_dir, checked=checked).integers
    assert kernel.parameters == ("n", "small", "large", "grid", "cells")
    got = integrate.quad(kernel.lowlevel(**INTEGERS), 0, 2)[0]
    python = integrate.quad(kernel.py, 0, 2, args=tuple(np.asarray(v) for v in INTEGERS.values()))[0]
    assert got == python
    assert got == pytest.approx(3 * 2 + 2 * (-5 + 1 + 5 + 30 + 300 + 2000), rel=1e-8)


@pytest.mark.compile
def test_a_non_contiguous_array_is_copied_in_c_order(data: capsules.KernelModule) -> None:
    image = np.random.default_rng(4).normal(size=(19, 21))
    weights = np.asfortranarray(np.arange(15.0).reshape(5, 3))[::-1, ::2]
    got = ndimage.generic_filter(image, data.weighted.lowlevel(weights=weights), size=weights.shape)
    assert np.allclose(got, ndimage.correlate(image, weights), rtol=1e-13, atol=1e-12)


@pytest.mark.compile
def test_the_callable_keeps_a_copy_of_the_data(data: capsules.KernelModule) -> None:
    given = _tabulated()
    callable_ = data.interpolated.lowlevel(**given)
    before = _quad(callable_)
    given["table"][:] = 0.0  # the caller's array, not the callable's copy
    del given
    assert _quad(callable_) == before != 0.0


@pytest.mark.compile
@pytest.mark.parametrize(
    ("table", "grid", "i", "j", "message"),
    [
        ([1.0], np.ones((2, 2)), 1, 0, "IndexError"),
        ([1.0, 2.0], np.ones((1, 2)), 1, 0, "IndexError"),
        ([1.0, 2.0], np.ones((2, 2)), 1, 2, "IndexError"),
        ([1.0, 2.0], np.ones((2, 2)), -3, 0, "IndexError"),
    ],
)
def test_a_checked_build_checks_every_subscript_of_an_array(
    cache_dir: Path, table: list[float], grid: np.ndarray, i: int, j: int, message: str
) -> None:
    checked = capsules.load(PARAMETERS, cache=cache_dir, checked=True)
    with pytest.raises(SystemError) as raised:
        integrate.quad(checked.picks.lowlevel(table=table, grid=grid, i=i, j=j), 0, 1)
    error = raised.value.__cause__
    assert isinstance(error, capsules.KernelError) and f"'picks' raised {message}" in str(error)
    assert str(error).startswith(f"{PARAMETERS.name}:{_line('picks')}:")
    # within bounds, the same call answers
    assert integrate.quad(checked.picks.lowlevel(table=[1.0, 2.0], grid=np.ones((2, 2)), i=1, j=-1), 0, 1)[0] == 3.5


def _line(kernel: str) -> int:
    return next(i for i, line in enumerate(PARAMETERS.read_text().splitlines(), 1) if f" {kernel}(" in line)


GOOD = {"table": [1.0, 2.0], "grid": np.ones((2, 2)), "i": 1, "j": 0}


@pytest.mark.compile
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"table": np.ones((2, 2))}, "parameter table must be a 1-D array (float64[:]), not a 2-D array"),
        ({"table": 1.0}, "parameter table must be a 1-D array (float64[:]), not a scalar"),
        ({"grid": [1.0, 2.0]}, "parameter grid must be a 2-D array (float64[:, :]), not a 1-D array"),
        ({"i": [1]}, "parameter i must be a number, not a 1-D array"),
        ({"i": 1.5}, "parameter i (int64) would lose the fraction of 1.5"),
        ({"i": float("nan")}, "parameter i (int64) would lose the fraction of nan"),
        ({"i": 2.0**63}, "parameter i (int64) would lose 9.223372036854776e+18, which int64 cannot hold"),
        ({"i": 2**63}, "parameter i (int64) would lose 9223372036854775808, which int64 cannot hold"),
        ({"i": 2**70}, "parameter i (int64) would lose 1180591620717411303424, which int64 cannot hold"),
        ({"i": True}, "parameter i must be a number, not values of dtype bool"),
        ({"table": [1, 2**53 + 1]}, "parameter table (float64[:]) would lose the integer 9007199254740993"),
        ({"table": ["a", "b"]}, "parameter table must be a 1-D array (float64[:]), not values of dtype <U1"),
        ({"table": [1.0, None]}, "parameter table must be a 1-D array (float64[:]), not values of dtype object"),
    ],
)
def test_each_mismatch_is_refused_naming_the_parameter(
    mod: capsules.KernelModule, change: dict[str, object], message: str
) -> None:
    with pytest.raises(capsules.UserDataError, match=r"^.*parameters\.py:\d+: ") as raised:
        mod.picks.lowlevel(**{**GOOD, **change})
    assert f"'picks': {message}" in str(raised.value)


@pytest.mark.compile
@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("small", np.array([2**31, 0]), "parameter small (int32[:]) would lose 2147483648, which int32 cannot hold"),
        ("small", [-(2**31) - 1, 0], "parameter small (int32[:]) would lose -2147483649, which int32 cannot hold"),
        ("small", np.array([1.0, 2.5]), "parameter small (int32[:]) would lose the fraction of 2.5"),
        ("large", np.array([2**64 - 1], dtype=np.uint64), "would lose 18446744073709551615, which int64 cannot hold"),
        ("cells", np.full((2, 2), 2.0**31), "parameter cells (int32[:, :]) would lose 2147483648.0"),
    ],
)
def test_integers_too_large_or_fractional_are_refused(
    mod: capsules.KernelModule, name: str, value: object, message: str
) -> None:
    with pytest.raises(capsules.UserDataError) as raised:
        mod.integers.lowlevel(**{**INTEGERS, name: value})
    assert message in str(raised.value)


@pytest.mark.compile
def test_missing_and_extra_names_are_refused(mod: capsules.KernelModule) -> None:
    with pytest.raises(capsules.UserDataError, match=r"'picks' takes parameters \(table, grid, i, j\): "
                       r"missing grid; unexpected weights"):
        mod.picks.lowlevel(table=[1.0], i=0, j=0, weights=[1.0])
    with pytest.raises(capsules.UserDataError, match="by name"):
        mod.picks.lowlevel([1.0, 2.0])


@pytest.mark.compile
def test_the_callable_pickles_with_its_data(data: capsules.KernelModule) -> None:
    callable_ = data.interpolated.lowlevel(**_tabulated())
    again = pickle.loads(pickle.dumps(callable_))
    assert _quad(again) == _quad(callable_)


def _spelled(text: str, tmp_path: Path) -> Path:
    path = tmp_path / "kernel.py"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_types_are_read_with_free_spacing_and_shown_as_spelled(tmp_path: Path) -> None:
    path = _spelled("""
        #capsules filter k(window; w:float64[:,:], n : int64, t: int32[ : ], a)
        def k(window, w, n, t, a):
            return a
    """, tmp_path)
    (spec,) = read_exports(path)
    assert spec.parameters == ("w", "n", "t", "a")
    assert spec.parameter_types == ("float64[:, :]", "int64", "int32[:]", "float64")
    assert spec.declared == "filter k(window; w: float64[:, :], n: int64, t: int32[:], a)"


def test_float64_scalars_alone_keep_the_block_they_always_had(tmp_path: Path) -> None:
    path = _spelled("""
        #capsules integrand k(x; a, b: float64)
        def k(x, a, b):
            return a * x + b
    """, tmp_path)
    (spec,) = read_exports(path)
    assert spec.parameter_types == () and spec.unpacked == ()
    assert spec.types == ("int32", "float64*", "float64*")


@pytest.mark.parametrize(
    ("comment", "message"),
    [
        ("k(x; t: float32[:])", "parameter 't' has type 'float64[:]'".replace("float64", "float32")),
        ("k(x; t: float64[:, :, :])", "parameter 't' has type 'float64[:, :, :]'"),
        ("k(x: float64; t)", "what SciPy provides (before ';') takes no type"),
    ],
)
def test_bad_types_are_refused_at_their_comment(comment: str, message: str, tmp_path: Path) -> None:
    path = _spelled(f"""
        #capsules integrand {comment}
        def k(x, t):
            return x
    """, tmp_path)
    errors = scan(path).errors
    assert len(errors) == 1 and message in str(errors[0]) and str(errors[0]).startswith(f"{path}:1:")


def test_only_float64_parameters_can_be_fixed_at_build_time(tmp_path: Path) -> None:
    path = _spelled("""
        #capsules integrand k(x; t: float64[:], n: int64, a)
        def k(x, t, n, a):
            return x
    """, tmp_path)
    errors = scan(path, constants={"k": {"n": 3, "a": 1.0}}).errors
    assert len(errors) == 1 and "only float64 parameters can be fixed at build time, not n: int64" in str(errors[0])


def _integrate_in_a_worker(callable_: object) -> float:
    return _quad(callable_)


@pytest.mark.compile
def test_the_data_goes_with_the_callable_into_a_spawn_pool(data: capsules.KernelModule) -> None:
    given = _tabulated()
    callables = [data.interpolated.lowlevel(**{**given, "table": given["table"] * scale}) for scale in (1.0, -2.0)]
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        remote = list(pool.map(_integrate_in_a_worker, callables))
    assert remote == [_quad(c) for c in callables]
    assert remote[1] == pytest.approx(-2.0 * remote[0], rel=1e-13)


@pytest.mark.compile
def test_a_prebuilt_kernel_takes_its_data_at_run_time(data: capsules.KernelModule, tmp_path: Path) -> None:
    path = tmp_path / DATA.name
    shutil.copy(DATA, path)
    prebuilt.copy_entry(data.entry, path, path.parent / prebuilt.PREBUILT_DIR)
    shipped = capsules.load(path, build=False, cache=tmp_path / "empty-cache")
    assert prebuilt.PREBUILT_DIR in str(shipped.entry.directory)
    given = _tabulated()
    assert _quad(shipped.interpolated.lowlevel(**given)) == _quad(data.interpolated.lowlevel(**given))
    with pytest.raises(capsules.UserDataError, match="parameter table must be a 1-D array"):
        shipped.interpolated.lowlevel(**{**given, "table": 1.0})


@pytest.mark.compile
def test_an_array_parameter_is_a_view_with_slices_and_reductions(mod: capsules.KernelModule) -> None:
    a, b = np.array([5.0, 1.5, 2.5]), np.arange(6, dtype=np.int32).reshape(3, 2)
    assert integrate.quad(mod.summed.lowlevel(a=a, b=b), 0, 2)[0] == pytest.approx(2 * 4.0 + 2 * (15 + 3), rel=1e-13)
    assert mod.summed.py(1.0, a, b) == 4.0 + 15 + 3
