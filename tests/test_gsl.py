"""capsules.gsl: kernels/gsl_functions.py called by the GNU Scientific Library, against closed forms.

Skipped when GSL is not installed (Debian: ``apt-get install libgsl-dev``).
"""

from __future__ import annotations

import ctypes
import gc
import math

import pytest

import capsules
from capsules import gsl


@pytest.fixture(scope="module")
def lib() -> ctypes.CDLL:
    try:
        return gsl.load_library()
    except capsules.CapsulesError as err:
        pytest.skip(str(err))


@pytest.fixture(scope="module")
def mod(load_kernel):
    return load_kernel("gsl_functions")


@pytest.fixture
def workspace(lib):
    work = lib.gsl_integration_workspace_alloc(1000)
    yield work
    lib.gsl_integration_workspace_free(work)


def call(routine, f, *args):
    """Run a GSL routine on gsl_function f; return (status, result, abserr)."""
    result, abserr = ctypes.c_double(), ctypes.c_double()
    status = routine(ctypes.byref(f), *args, ctypes.byref(result), ctypes.byref(abserr))
    return status, result.value, abserr.value


# kernel, user_data, x, exact derivative at x
DERIVATIVES = [
    ("quadratic", [1.0, 2.0, 3.0], 2.0, 14.0),
    ("quadratic", [-0.5, 0.0, 1.5], -1.0, -3.0),
    ("damped_sine", [0.5, 3.0], 1.0, math.exp(-0.5) * (3 * math.cos(3.0) - 0.5 * math.sin(3.0))),
]


@pytest.mark.compile
@pytest.mark.parametrize(("name", "user_data", "x", "exact"), DERIVATIVES)
def test_deriv_central(lib, mod, name, user_data, x, exact):
    status, value, abserr = call(lib.gsl_deriv_central, gsl.gsl_function(mod[name], user_data), x, 1e-3)
    assert status == 0
    assert value == pytest.approx(exact, abs=1e-9)
    assert abserr < 1e-8


# kernel, user_data, a, b, exact integral over [a, b]
INTEGRALS = [
    ("quadratic", [1.0, 2.0, 3.0], 0.0, 2.0, 14.0),
    ("log_over_sqrt", [1.0], 0.0, 1.0, -4.0),
    ("log_over_sqrt", [3.0], 0.0, 1.0, 2 * math.log(3.0) - 4.0),
]


@pytest.mark.compile
@pytest.mark.parametrize(("name", "user_data", "a", "b", "exact"), INTEGRALS)
def test_integration_qags(lib, mod, workspace, name, user_data, a, b, exact):
    f = gsl.gsl_function(mod[name], user_data)
    status, value, _ = call(lib.gsl_integration_qags, f, a, b, 0.0, 1e-10, 1000, workspace)
    assert status == 0
    assert value == pytest.approx(exact, rel=1e-10, abs=1e-12)


@pytest.mark.compile
def test_integration_qagiu_keeps_user_data_alive(lib, mod, workspace):
    f = gsl.gsl_function(mod.damped_sine, [0.5, 3.0])  # the list is gone after this line
    gc.collect()
    status, value, _ = call(lib.gsl_integration_qagiu, f, 0.0, 0.0, 1e-10, 1000, workspace)
    assert status == 0
    assert value == pytest.approx(3.0 / (0.25 + 9.0), rel=1e-9)


@pytest.mark.compile
def test_failure_is_a_status_not_an_abort(lib, mod, workspace):
    # log(alpha x) with alpha < 0 is NaN everywhere: GSL reports it instead of calling abort()
    status, _, _ = call(lib.gsl_integration_qags, gsl.gsl_function(mod.log_over_sqrt, [-1.0]),
                        0.0, 1.0, 0.0, 1e-10, 1000, workspace)
    assert status != 0
    assert lib.gsl_strerror(status)


@pytest.mark.compile
def test_wrong_signature_or_user_data_is_refused(mod, load_kernel):
    with pytest.raises(capsules.SignatureError, match=r"integrands\.py:\d+: 'f' is 'double \(int, double \*"):
        gsl.gsl_function(load_kernel("integrands").f, [1.0])
    with pytest.raises(capsules.UserDataError, match="pass user_data"):
        gsl.gsl_function(mod.quadratic)
    with pytest.raises(capsules.UserDataError, match="reads user_data\\[2\\]"):
        gsl.gsl_function(mod.quadratic, [1.0, 2.0])
