"""kernels/arrays.py: plain pythran exports on numpy arrays, against numpy, writing in place."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

pytestmark = pytest.mark.compile


@pytest.fixture(scope="module")
def arrays(load_kernel):
    return load_kernel("arrays")


@pytest.fixture
def rng():
    return np.random.default_rng(31)


# ------------------------------------------------------------------ magnitude


@pytest.mark.parametrize("n", [0, 1, 7, 1000])
def test_magnitude_writes_into_p(arrays, rng, n):
    px, py, pz = rng.standard_normal((3, n))
    p = np.full(n, -1.0)
    before = p.__array_interface__["data"][0]
    assert arrays.magnitude(p, px, py, pz) is None
    assert p.__array_interface__["data"][0] == before
    assert_allclose(p, np.sqrt(px**2 + py**2 + pz**2), rtol=1e-15, atol=0)
    assert_allclose(p, np.linalg.norm(np.stack([px, py, pz]), axis=0), rtol=1e-15)


def test_magnitude_writes_through_a_contiguous_slice(arrays, rng):
    buffer = np.zeros(12)
    px, py, pz = rng.standard_normal((3, 5))
    arrays.magnitude(buffer[3:8], px, py, pz)
    assert_allclose(buffer[3:8], np.sqrt(px**2 + py**2 + pz**2), rtol=1e-15)
    assert_array_equal(buffer[:3], 0.0)
    assert_array_equal(buffer[8:], 0.0)


def test_magnitude_equals_its_python_original(arrays, rng):
    px, py, pz = rng.standard_normal((3, 50))
    compiled, python = np.empty(50), np.empty(50)
    arrays.magnitude(compiled, px, py, pz)
    arrays.python_module().magnitude(python, px, py, pz)
    assert_allclose(compiled, python, rtol=1e-15)


def test_magnitude_refuses_mismatched_lengths(arrays):
    with pytest.raises(ValueError, match="same length"):
        arrays.magnitude(np.zeros(4), np.zeros(4), np.zeros(3), np.zeros(4))


@pytest.mark.parametrize(
    "p", [np.zeros(8)[::2], np.zeros(4, dtype=np.float32), np.zeros((4, 1))], ids=["strided", "float32", "2-D"]
)
def test_magnitude_refuses_arrays_it_would_have_to_copy(arrays, p):
    ones = np.ones(4)
    with pytest.raises(TypeError):
        arrays.magnitude(p, ones, ones, ones)
    assert not p.any()


# ------------------------------------------------------------------ mean32


def sequential_float32_mean(a: np.ndarray) -> np.float32:
    """float s = 0; for (...) s += a[i]; return s / n; in numpy (cumsum adds left to right)."""
    return np.cumsum(a, dtype=np.float32)[-1] / np.float32(len(a))


@pytest.mark.parametrize("n", [1, 2, 13, 1000, 100_003])
def test_mean32_is_the_float32_running_sum_mean(arrays, rng, n):
    a = rng.uniform(0, 10, n).astype(np.float32)
    got = arrays.mean32(a)
    assert np.float32(got) == got  # a float32 value, returned as a Python float
    assert got == sequential_float32_mean(a)
    assert got == pytest.approx(np.mean(a, dtype=np.float64), rel=1e-6 * max(1, n / 1000))


def test_mean32_drifts_like_single_precision_c(arrays):
    # ten million times 0.1f: a float32 accumulator stalls far from 1e6, which
    # is what the C compute_mean returns too; numpy's pairwise sum does not
    a = np.full(10_000_000, 0.1, dtype=np.float32)
    got = arrays.mean32(a)
    assert got == sequential_float32_mean(a)
    assert abs(got - 0.1) > 1e-3
    assert abs(np.mean(a) - 0.1) < 1e-4  # pairwise: within 1e-5 relative on NumPy 2, 1.1e-5 on 1.24


def test_mean32_equals_its_python_original(arrays, rng):
    a = rng.uniform(-1, 1, 300).astype(np.float32)
    python = arrays.python_module().mean32(a)
    assert isinstance(python, np.float32)
    assert arrays.mean32(a) == python


def test_mean32_refuses_empty_and_float64(arrays):
    with pytest.raises(ValueError, match="empty"):
        arrays.mean32(np.zeros(0, dtype=np.float32))
    with pytest.raises(TypeError):
        arrays.mean32(np.zeros(3))


# ------------------------------------------------------------------ iadd


@pytest.mark.parametrize(
    ("shape", "dtype"), [((9,), np.float64), ((5, 7), np.float64), ((11,), np.float32)], ids=["1-D", "2-D", "f32"]
)
def test_iadd_adds_in_place(arrays, rng, shape, dtype):
    a = rng.standard_normal(shape).astype(dtype)
    b = rng.standard_normal(shape).astype(dtype)
    expected = a + b
    alias = a  # the same object: what the caller holds
    assert arrays.iadd(a, b) is None
    assert alias is a
    assert_array_equal(a, expected)


def test_iadd_writes_through_views(arrays, rng):
    base = np.zeros((6, 8))
    b = rng.standard_normal((3, 8))
    arrays.iadd(base[2:5], b)  # a contiguous block of rows
    assert_array_equal(base[2:5], b)
    assert_array_equal(base[:2], 0.0)
    assert_array_equal(base[5:], 0.0)
    # a transposed (Fortran-order) array is accepted as a view and updated too
    base = np.zeros((4, 3))
    c = rng.standard_normal((3, 4))
    arrays.iadd(base.T, c)
    assert_array_equal(base.T, c)


def test_iadd_refuses_mismatches_and_leaves_a_alone(arrays):
    a = np.ones(4)
    with pytest.raises(ValueError, match="same shape"):
        arrays.iadd(a, np.ones(3))
    with pytest.raises(TypeError):
        arrays.iadd(a, np.ones(4, dtype=np.float32))
    strided = np.ones(8)[::2]
    with pytest.raises(TypeError):
        arrays.iadd(strided, np.ones(4))
    assert_array_equal(a, 1.0)
    assert_array_equal(strided, 1.0)


# ------------------------------------------------------------------ evolve


def numpy_step(u_previous, a, dt, dx2, dy2):
    p = u_previous
    u = p.copy()
    u[1:-1, 1:-1] = p[1:-1, 1:-1] + a * dt * (
        (p[2:, 1:-1] - 2 * p[1:-1, 1:-1] + p[:-2, 1:-1]) / dx2
        + (p[1:-1, 2:] - 2 * p[1:-1, 1:-1] + p[1:-1, :-2]) / dy2
    )
    return u


@pytest.mark.parametrize("shape", [(3, 3), (17, 23), (64, 31)])
def test_evolve_one_step_matches_numpy(arrays, rng, shape):
    a, dx2, dy2 = 0.5, 0.01**2, 0.02**2
    dt = dx2 * dy2 / (2 * a * (dx2 + dy2))
    u_previous = rng.uniform(0, 1, shape)
    start = u_previous.copy()
    u = np.zeros(shape)
    u[0], u[-1], u[:, 0], u[:, -1] = start[0], start[-1], start[:, 0], start[:, -1]
    arrays.evolve(u, u_previous, a, dt, dx2, dy2)
    expected = numpy_step(start, a, dt, dx2, dy2)
    assert_allclose(u, expected, rtol=1e-13, atol=1e-15)
    assert_array_equal(u_previous, u)  # copied back, ready for the next step


def test_evolve_many_steps_matches_numpy(arrays, rng):
    a, dx2, dy2 = 1.0, 0.1**2, 0.1**2
    dt = 0.9 * dx2 * dy2 / (2 * a * (dx2 + dy2))
    field = rng.uniform(0, 1, (19, 14))
    u, u_previous = field.copy(), field.copy()
    expected = field.copy()
    for _ in range(25):
        arrays.evolve(u, u_previous, a, dt, dx2, dy2)
        expected = numpy_step(expected, a, dt, dx2, dy2)
    assert_allclose(u, expected, rtol=1e-12, atol=1e-14)
    # the fixed border never moves, and diffusion flattens the interior
    assert_array_equal(u[0], field[0])
    assert_array_equal(u[:, -1], field[:, -1])
    assert np.std(u[1:-1, 1:-1]) < np.std(field[1:-1, 1:-1])


def test_evolve_equals_its_python_original(arrays, rng):
    field = rng.uniform(0, 1, (12, 9))
    compiled, compiled_previous = field.copy(), field.copy()
    python, python_previous = field.copy(), field.copy()
    for _ in range(3):
        arrays.evolve(compiled, compiled_previous, 0.7, 0.05, 1.0, 1.5)
        arrays.python_module().evolve(python, python_previous, 0.7, 0.05, 1.0, 1.5)
    assert_allclose(compiled, python, rtol=1e-13, atol=1e-15)


def test_evolve_keeps_a_steady_linear_field(arrays):
    # a linear temperature profile has zero laplacian: a steady state
    y, x = np.mgrid[0:9, 0:12].astype(float)
    field = 2.0 * y - 0.5 * x + 3.0
    u, u_previous = np.zeros_like(field), field.copy()
    u[:] = field
    arrays.evolve(u, u_previous, 1.0, 0.1, 1.0, 1.0)
    assert_allclose(u, field, rtol=0, atol=1e-13)


def test_evolve_writes_into_fortran_order_arrays(arrays, rng):
    field = rng.uniform(0, 1, (10, 8))
    u = np.asfortranarray(np.zeros_like(field))
    u_previous = np.asfortranarray(field)
    arrays.evolve(u, u_previous, 0.5, 0.1, 1.0, 1.0)
    assert_allclose(u[1:-1, 1:-1], numpy_step(field, 0.5, 0.1, 1.0, 1.0)[1:-1, 1:-1], rtol=1e-13)
    assert_array_equal(u_previous, u)


def test_evolve_refuses_mismatched_shapes(arrays):
    with pytest.raises(ValueError, match="same shape"):
        arrays.evolve(np.zeros((4, 5)), np.zeros((5, 4)), 1.0, 0.1, 1.0, 1.0)


# ------------------------------------------------------------------ fibonacci


def python_fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def test_fib_every_term_that_fits_in_int64(arrays):
    for n in range(93):
        assert arrays.fib(n) == python_fib(n)
    assert arrays.fib(92) == 7540113804746346429
    assert python_fib(93) > np.iinfo(np.int64).max


def test_fib_sequence(arrays):
    seq = arrays.fib_sequence(93)
    assert seq.dtype == np.int64
    assert seq.tolist() == [python_fib(n) for n in range(93)]
    assert arrays.fib_sequence(0).shape == (0,)
    assert arrays.fib_sequence(1).tolist() == [0]
    assert arrays.fib_sequence(2).tolist() == [0, 1]
    assert np.all(seq[2:] == seq[1:-1] + seq[:-2])


@pytest.mark.parametrize("n", [-1, 93, 1000])
def test_fib_refuses_what_overflows(arrays, n):
    with pytest.raises(ValueError):
        arrays.fib(n)


def test_fib_sequence_refuses_what_overflows(arrays):
    with pytest.raises(ValueError):
        arrays.fib_sequence(94)
    with pytest.raises(ValueError):
        arrays.fib_sequence(-1)
