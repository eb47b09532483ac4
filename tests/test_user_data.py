"""user_data values the kernel's dtype cannot hold exactly are refused, never wrapped or rounded."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

import capsules

INT32 = """
#pythran export capsule f(float64, int32*)
def f(x, ud):
    return x * ud[0]
"""
INT64 = INT32.replace("int32*", "int64*")
NATURAL = """
#capsules integrand g(x; a)
def g(x, a):
    return a * x
"""

pytestmark = pytest.mark.compile


@pytest.fixture(scope="module")
def kernels(tmp_path_factory, cache_dir):
    folder = tmp_path_factory.mktemp("user-data")
    loaded = {}
    for name, text in (("int32", INT32), ("int64", INT64), ("natural", NATURAL)):
        path = folder / f"ud_{name}.py"
        path.write_text(text.lstrip())
        loaded[name] = capsules.load(path, cache=cache_dir)
    return loaded


@pytest.mark.parametrize(
    ("dtype", "value"),
    [
        ("int32", 2**40 + 2),  # would wrap to 2
        ("int32", -(2**31) - 1),
        ("int32", 3e9),
        ("int64", 1e20),  # would become -9.2e18
        ("int64", np.uint64(2**64 - 1)),  # would become -1
        ("int64", 2**63),
    ],
)
def test_values_that_do_not_fit_are_refused_naming_value_and_dtype(kernels, dtype, value):
    with pytest.raises(capsules.UserDataError, match=rf"user_data value .* does not fit the kernel's {dtype}"):
        kernels[dtype].f.lowlevel(user_data=[value])


@pytest.mark.parametrize(("dtype", "value"), [("int32", 2**31 - 1), ("int32", -(2**31)), ("int64", 2**62), ("int64", 7.0)])
def test_values_that_fit_give_the_exact_result(kernels, dtype, value):
    result, _ = integrate.quad(kernels[dtype].f.lowlevel(user_data=[value]), 0, 1)
    assert result == pytest.approx(float(int(value)) / 2, rel=1e-14)


def test_a_natural_parameter_float64_cannot_hold_is_refused(kernels):
    with pytest.raises(capsules.UserDataError, match=r"parameter a=9007199254740993 does not fit float64 exactly"):
        kernels["natural"].g.lowlevel(a=2**53 + 1)
    result, _ = integrate.quad(kernels["natural"].g.lowlevel(a=2**53), 0, 1)
    assert result == pytest.approx(2.0**52, rel=1e-14)


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_a_fraction_for_an_integer_kernel_names_the_value(kernels, dtype):
    with pytest.raises(capsules.UserDataError, match=rf"not 1\.5, which is not a whole number: the kernel reads {dtype}"):
        kernels[dtype].f.lowlevel(user_data=[2.0, 1.5])
