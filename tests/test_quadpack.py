"""capsules.nquad (and quad, dblquad, tplquad, inner) against scipy.integrate on the same compiled callables.

SciPy is the reference: the same LowLevelCallable integrated by
``scipy.integrate.nquad`` (its outer levels in Python) must give the same
value and error estimate (within 4 ulp), the same number of evaluations and
the same warnings as with every level in capsules' QUADPACK driver.
"""

from __future__ import annotations

import ctypes
import runpy
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import LowLevelCallable, integrate

import capsules
from capsules.quadpack.driver import compile_into, driver

pytestmark = pytest.mark.compile

ROOT = Path(__file__).resolve().parent.parent
CASES = Path(__file__).resolve().parent / "kernels" / "nquad_cases.py"
FAMILIES = ("oscillatory", "product_peak", "corner_peak", "gaussian", "continuous", "discontinuous")
INF = np.inf


@pytest.fixture(scope="session", autouse=True)
def quadpack_driver(cache_dir: Path) -> None:
    """The driver, compiled once per session into the session's cache."""
    driver(cache_dir)


@pytest.fixture(scope="session")
def genz(load_kernel: Callable[[str], capsules.KernelModule]) -> capsules.KernelModule:
    return load_kernel("genz")


@pytest.fixture(scope="session")
def cases(load_kernel_file: Callable[[Path], capsules.KernelModule]) -> capsules.KernelModule:
    return load_kernel_file(CASES)


def outcome(integrator: Callable[..., Any], *call: Any, **options: Any) -> tuple[tuple[float, ...], list[str]]:
    """What an integrator returns, and the distinct warning messages it issued, in order."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = integrator(*call, **options)
    messages: list[str] = []
    for warning in caught:
        assert warning.category is integrate.IntegrationWarning, warning
        if str(warning.message) not in messages:
            messages.append(str(warning.message))
    return result, messages


def assert_same(ours: tuple, theirs: tuple) -> None:
    """Value and error estimate within 4 ulp; anything else (neval) identical."""
    np.testing.assert_array_max_ulp(np.float64(ours[0]), np.float64(theirs[0]), maxulp=4)
    np.testing.assert_array_max_ulp(np.float64(ours[1]), np.float64(theirs[1]), maxulp=4)
    assert ours[2:] == theirs[2:]


def assert_agrees(func: Any, ranges: list, args: tuple = (), opts: Any = None, scipy_ranges: list | None = None,
                  ) -> None:
    """capsules.nquad and scipy.integrate.nquad: same value, error, neval and warnings."""
    theirs = outcome(integrate.nquad, func, scipy_ranges or ranges, args=args, opts=opts, full_output=True)[0]
    ours = outcome(capsules.nquad, func, ranges, args=args, opts=opts, full_output=True)[0]
    assert_same(ours, theirs)
    theirs, expected = outcome(integrate.nquad, func, scipy_ranges or ranges, args=args, opts=opts)
    ours, issued = outcome(capsules.nquad, func, ranges, args=args, opts=opts)
    assert_same(ours, theirs)
    assert issued == expected


def genz_data(n: int, seed: int, difficulty: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 1.5, n)
    return np.concatenate([difficulty * a / a.sum() * n, rng.uniform(0, 1, n)])


# (family, dimensions, difficulty): the C0 and discontinuous families take
# millions of evaluations in 3-D at the default tolerance, so they run in 2-D
GENZ = [(f, n, d) for f in FAMILIES for n in (2, 3) for d in (2.0, 9.0) if n == 2 or f not in FAMILIES[4:]]


@pytest.mark.parametrize(("family", "n", "difficulty"), GENZ)
@pytest.mark.parametrize("seed", [1, 2])
def test_genz_families_agree_with_scipy_nquad(genz, family: str, n: int, difficulty: float, seed: int) -> None:
    assert_agrees(genz[family].lowlevel(genz_data(n, seed, difficulty)), [[0, 1]] * n)


@pytest.mark.parametrize("family", ["oscillatory", "gaussian", "corner_peak"])
def test_genz_in_four_dimensions(genz, family: str) -> None:
    assert_agrees(genz[family].lowlevel(genz_data(4, 3, 4.0)), [[0, 1]] * 4)


@pytest.mark.parametrize("family", ["discontinuous", "product_peak", "corner_peak"])
def test_genz_in_three_dimensions_with_loose_opts(genz, family: str) -> None:
    opts = [{"epsrel": 1e-3, "epsabs": 0}, {"epsabs": 1e-4, "limit": 20}, {"epsrel": 1e-5}]
    assert_agrees(genz[family].lowlevel(genz_data(3, 4, 5.0)), [[0, 1]] * 3, opts=opts)


def test_tight_opts(genz) -> None:
    opts = {"epsabs": 0, "epsrel": 1e-12, "limit": 200}
    assert_agrees(genz.gaussian.lowlevel(genz_data(2, 5, 3.0)), [[0, 1]] * 2, opts=opts)


@pytest.mark.parametrize(
    ("ranges", "args"),
    [
        ([[-INF, INF], [-INF, INF]], ()),
        ([[0, INF], [-INF, 1]], ()),
        ([[-INF, 0.5], [2, -INF]], ()),  # a reversed range integrates the other way round
        ([[1, 1], [0, 1]], ()),  # an empty range is 0, without a call
    ],
)
def test_infinite_ranges(cases, ranges: list, args: tuple) -> None:
    assert_agrees(cases.gauss.lowlevel([1.0, 0.5]), ranges, args)


def test_arrays_for_ranges_and_args_as_scipy_takes_them(cases) -> None:
    ranges, args = np.array([[0.0, INF], [-INF, 0.0]]), np.array([2.0, 0.5])
    assert capsules.nquad(cases.decay.lowlevel(), ranges, args) == integrate.nquad(cases.decay.lowlevel(), ranges, args)


def test_semi_infinite_ranges_with_args(cases) -> None:
    # the args follow the variables in the integrand's array, as SciPy passes them
    assert_agrees(cases.decay.lowlevel(), [[0, INF], [-INF, 0]], args=(2.0, 0.5))


def libm(name: str, *argtypes: Any) -> Any:
    """A function of the C library's libm, through ctypes: a foreign pointer."""
    function = getattr(ctypes.CDLL(None), name)
    function.restype, function.argtypes = ctypes.c_double, list(argtypes)
    return function


def test_one_dimension_in_the_one_variable_form() -> None:
    erfc = LowLevelCallable(libm("erfc", ctypes.c_double))
    assert erfc.signature == "double (double)"
    assert_agrees(erfc, [[0, INF]])
    assert capsules.quad(erfc, -1, 3) == integrate.quad(erfc, -1, 3)


def python_bound(kernel: capsules.Kernel, data: Any = None) -> Callable[..., float]:
    """The compiled bound called from Python, as scipy.integrate.nquad's range functions are."""
    pointer = kernel.as_ctypes()
    keep = kernel.lowlevel(data) if data is not None else None

    def call(*values: float) -> float:
        array = (ctypes.c_double * max(1, len(values)))(*values)
        if keep is None:
            return pointer(len(values), array)
        return pointer(len(values), array, ctypes.c_void_p(keep.user_data_array.ctypes.data))

    return call


def test_dependent_ranges(cases, genz) -> None:
    below, above = cases.below.lowlevel(), cases.above.lowlevel()
    parabola = cases.parabola.lowlevel([2.0])
    lo, hi, top = python_bound(cases.below), python_bound(cases.above), python_bound(cases.parabola, [2.0])
    func = genz.gaussian.lowlevel(genz_data(3, 6, 3.0))
    ranges = [[0, parabola], [below, above], [-0.5, 0.5]]
    scipy_ranges = [lambda *v: (0, top(*v)), lambda *v: (lo(*v), hi(*v)), [-0.5, 0.5]]
    assert_agrees(func, ranges, scipy_ranges=scipy_ranges)


def test_dependent_ranges_see_the_args(cases) -> None:
    above = cases.above.lowlevel()
    hi = python_bound(cases.above)
    ranges = [[0, above], [0, 1]]
    assert_agrees(cases.decay.lowlevel(), ranges, args=(0.25, 3.0), scipy_ranges=[lambda *v: (0, hi(*v)), [0, 1]])


BOUND_SCRIPT = """
import math

import capsules


@capsules.integrand("y")
def half_width(y):
    return math.sqrt(1.0 - y * y)
"""


def test_a_decorated_integrand_as_a_bound(tmp_path: Path, cache_dir: Path, genz) -> None:
    # a bound written inline, as the docs show: the quarter of the unit disc where x, y >= 0, on
    # which the corner peak (1 + a.x)^-3 is smooth (on the whole disc 1 + a.x reaches 0: an
    # infinite integral, which SciPy's versions report as inf or nan)
    script = tmp_path / "bounds.py"
    script.write_text(BOUND_SCRIPT)
    half_width = runpy.run_path(str(script))["half_width"].build(cache_dir)
    func = genz.corner_peak.lowlevel(genz_data(2, 11, 2.0))
    width = python_bound(half_width)
    assert_agrees(func, [[0, half_width.lowlevel()], [0, 1]], scipy_ranges=[lambda y: (0, width(y)), [0, 1]])


# Integrals that end a quad call with each of QUADPACK's flags, in the
# inner level (run at every outer point) or in the outer one.
FLAGGED = {
    "limit": ("spike", [[0, INF], [0, 1]], (0.0, -1.0), None),
    "roundoff": ("wavy", [[0, 1], [0, 1]], (), [{"epsabs": 0, "epsrel": 2e-14, "limit": 200}, {}]),
    "bad integrand": ("spike", [[0, 1], [0, 1]], (1 / 3, -1.0), None),
    "no convergence": ("spike", [[0, INF], [0, 1]], (0.0, 0.5), {"limit": 500}),
    "divergent": ("spike", [[0, INF], [0, 1]], (0.0, -2.0), None),
    "outer level": ("wavy", [[0, 1], [0, 1]], (), [{}, {"limit": 1}]),
}
FIRST_WORDS = {
    "limit": "The maximum number of subdivisions (50)",
    "roundoff": "The occurrence of roundoff error",
    "bad integrand": "Extremely bad integrand behavior",
    "no convergence": "The algorithm does not converge",
    "divergent": "The integral is probably divergent",
    "outer level": "The maximum number of subdivisions (1)",
}


@pytest.mark.parametrize("flag", FLAGGED)
def test_each_warning_as_scipy_issues_it(cases, flag: str) -> None:
    name, ranges, args, opts = FLAGGED[flag]
    func = cases[name].lowlevel()
    assert_agrees(func, ranges, args, opts)
    issued = outcome(capsules.nquad, func, ranges, args=args, opts=opts)[1]
    assert issued and issued[0].startswith(FIRST_WORDS[flag])


def test_full_output_issues_no_warning(cases) -> None:
    name, ranges, args, opts = FLAGGED["limit"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        capsules.nquad(cases[name].lowlevel(), ranges, args=args, opts=opts, full_output=True)


def test_dblquad_and_tplquad_keep_scipys_conventions(cases, genz) -> None:
    func = genz.product_peak.lowlevel(genz_data(3, 7, 2.0))
    below, above = cases.below.lowlevel(), cases.above.lowlevel()
    lo, hi = python_bound(cases.below), python_bound(cases.above)
    assert_same(capsules.dblquad(func, 0, 1, below, 2.0), integrate.dblquad(func, 0, 1, lo, 2.0))
    assert_same(
        capsules.tplquad(func, -1, 1, below, above, 0.0, above, epsrel=1e-10),
        integrate.tplquad(func, -1, 1, lo, hi, 0.0, hi, epsrel=1e-10),
    )


def test_inner_levels_as_a_capsule_for_scipy(genz, cases) -> None:
    func = genz.oscillatory.lowlevel(genz_data(3, 8, 6.0))
    above, hi = cases.above.lowlevel(), python_bound(cases.above)
    inside = capsules.inner(func, [[0, 1], [0, above]])
    assert inside.signature == "double (int, double *, void *)"
    everything = integrate.nquad(func, [[0, 1], lambda *v: (0, hi(*v)), [-1, 1]])
    # the same value; the error estimate is the outer level's alone (nquad's is
    # the largest of every level's: the inner ones' do not come through a capsule)
    for outer in (integrate.quad(inside, -1, 1), integrate.nquad(inside, [[-1, 1]]), capsules.nquad(inside, [[-1, 1]])):
        np.testing.assert_array_max_ulp(outer[0], everything[0], maxulp=4)
        assert outer[1] <= everything[1]


def test_the_inner_capsule_pickles_as_the_call_that_made_it(genz, cases) -> None:
    import pickle

    inside = capsules.inner(genz.gaussian.lowlevel(genz_data(3, 12, 2.0)), [[0, 1], [0, cases.above.lowlevel()]])
    again = pickle.loads(pickle.dumps(inside))
    assert again.signature == inside.signature
    assert integrate.quad(again, 0, 1) == integrate.quad(inside, 0, 1)


def test_inner_capsule_warns_as_scipys_inner_levels(cases) -> None:
    name, ranges, args, opts = FLAGGED["limit"]
    inside = capsules.inner(cases[name].lowlevel(), ranges[:1])
    ours, issued = outcome(integrate.quad, inside, 0, 1, args=args)
    theirs, expected = outcome(integrate.nquad, cases[name].lowlevel(), ranges, args=args)
    np.testing.assert_array_max_ulp(ours[0], theirs[0], maxulp=4)
    assert issued == expected


def test_a_raising_kernel_gives_the_located_kernel_error(cases) -> None:
    with pytest.raises(capsules.KernelError, match=r"nquad_cases.py:\d+.*raises.*x beyond the limit") as caught:
        capsules.nquad(cases.raises.lowlevel(), [[0, 1], [0, 1]], args=(0.5,))
    assert isinstance(caught.value.__cause__, ValueError)
    assert capsules.nquad(cases.raises.lowlevel(), [[0, 1], [0, 1]], args=(2.0,))[0] == pytest.approx(0.5)


def test_a_kernel_raising_in_one_thread_leaves_the_others_integrating(cases) -> None:
    """Each thread counts down to its own look at Python: a failure in one stops that integral only."""
    from concurrent.futures import ThreadPoolExecutor

    def integral(limit: float) -> Any:
        try:
            return capsules.nquad(cases.raises.lowlevel(), [[0, 1], [0, 1]], args=(limit,))[0]
        except capsules.KernelError as error:
            return error

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(integral, [0.5, 2.0] * 8))
    for failed, passed in zip(results[::2], results[1::2]):
        assert isinstance(failed, capsules.KernelError) and "x beyond the limit" in str(failed)
        assert passed == pytest.approx(0.5)


def test_a_raising_kernel_inside_the_inner_capsule(cases) -> None:
    # as with a kernel called by quad directly: SciPy's SystemError, caused by the KernelError
    with pytest.raises(SystemError) as caught:
        integrate.quad(capsules.inner(cases.raises.lowlevel(), [[0, 1]]), 0, 1, args=(0.5,))
    assert isinstance(caught.value.__cause__, capsules.KernelError)


def test_foreign_pointers_from_ctypes_and_cffi(genz) -> None:
    cffi = pytest.importorskip("cffi")
    data = genz_data(2, 9, 3.0)
    reference = integrate.nquad(genz.gaussian.lowlevel(data), [[0, 1]] * 2, full_output=True)
    pointer = genz.gaussian.as_ctypes()
    through_ctypes = LowLevelCallable(pointer, ctypes.c_void_p(data.ctypes.data))
    assert_same(capsules.nquad(through_ctypes, [[0, 1]] * 2, full_output=True), reference)
    ffi = cffi.FFI()
    function = ffi.cast("double (*)(int, double *, void *)", genz.gaussian.address)
    through_cffi = LowLevelCallable(function, ffi.cast("void *", data.ctypes.data))
    assert_same(capsules.nquad(through_cffi, [[0, 1]] * 2, full_output=True), reference)
    cos = libm("cos", ctypes.c_double)
    assert_same(capsules.nquad(cos, [[0, 2]]), integrate.quad(cos, 0, 2))


def test_the_gil_is_released_for_the_whole_integral(genz) -> None:
    # millions of evaluations; meanwhile this thread runs Python, which it
    # could not do at all if the call held the GIL
    func = genz.discontinuous.lowlevel(genz_data(3, 10, 4.0))
    worker = threading.Thread(target=capsules.nquad, args=(func, [[0, 1]] * 3))
    counted = 0
    worker.start()
    while worker.is_alive():
        counted += 1
    worker.join()
    assert counted > 10_000


def test_threads_give_the_same_answers(genz) -> None:
    from concurrent.futures import ThreadPoolExecutor

    funcs = [genz.oscillatory.lowlevel(genz_data(3, seed, 5.0)) for seed in range(4)]
    alone = [capsules.nquad(f, [[0, 1]] * 3) for f in funcs]
    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(lambda f: capsules.nquad(f, [[0, 1]] * 3), funcs)) == alone


def test_ctrl_c_stops_a_long_integral(cache_dir: Path) -> None:
    script = textwrap.dedent(
        f"""
        import capsules
        from capsules.quadpack.driver import compile_into, driver
        driver({str(cache_dir)!r})
        genz = capsules.load({str(ROOT / "kernels" / "genz.py")!r}, cache={str(cache_dir)!r})
        func = genz.discontinuous.lowlevel([9.0] * 4 + [0.3] * 4)
        print("integrating", flush=True)
        capsules.nquad(func, [[0, 1]] * 4, opts={{"limit": 1000, "epsabs": 0, "epsrel": 1e-13}})
        print("finished", flush=True)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "integrating"
        time.sleep(0.5)
        child.send_signal(signal.SIGINT)
        sent = time.monotonic()
        out, err = child.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        child.kill()
    assert "KeyboardInterrupt" in err and "finished" not in out
    assert took < 5, f"{took:.1f} s after Ctrl-C"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda ll: capsules.nquad(lambda x, y: x * y, [[0, 1], [0, 1]]), "Python function.*scipy.integrate.nquad"),
        (lambda ll: capsules.nquad(ll, [lambda y: (0, y), [0, 1]]), r"ranges\[0\].*scipy.integrate.nquad"),
        (lambda ll: capsules.nquad(ll, [[0, lambda y: y], [0, 1]]), r"ranges\[0\]\[1\].*Python function"),
        (lambda ll: capsules.nquad(ll, [[0, 1]] * 2, opts={"points": [0.5]}), "'points' is not supported"),
        (lambda ll: capsules.nquad(ll, [[0, 1]] * 2, opts=[{}, {"limit": 0}]), r"opts\[1\]: Invalid 'limit'"),
        (lambda ll: capsules.nquad(ll, [[0, 1]] * 2, opts={"epsabs": 0, "epsrel": 1e-15}), "'epsrel' must be"),
        (lambda ll: capsules.nquad(ll, [[0, 1]] * 2, opts={"tol": 1}), "unknown option 'tol'"),
        (lambda ll: capsules.nquad(ll, [[0, 1]] * 2, args=("a",)), r"args\[0\] must be a real number"),
        (lambda ll: capsules.nquad(ll, [[0, 1, 2]]), r"ranges\[0\] must be a \(lo, hi\) pair"),
        (lambda ll: capsules.quad(ll, 0, 1, points=[0.5]), "'points' is not supported; use scipy.integrate.quad"),
    ],
)
def test_bad_input_is_refused_clearly(genz, call: Callable, match: str) -> None:
    with pytest.raises(capsules.IntegrationInputError, match=match) as caught:
        call(genz.gaussian.lowlevel(genz_data(2, 1, 1.0)))
    assert isinstance(caught.value, ValueError)  # as SciPy's own errors for bad input


def test_the_one_variable_form_is_refused_for_more() -> None:
    cos = libm("cos", ctypes.c_double)
    with pytest.raises(capsules.IntegrationInputError, match="takes one double.*2 variable"):
        capsules.nquad(cos, [[0, 1], [0, 1]])
    with pytest.raises(capsules.IntegrationInputError, match="1 argument"):
        capsules.quad(cos, 0, 1, args=(2.0,))


def test_a_signature_nquad_cannot_call_is_refused() -> None:
    power = libm("pow", ctypes.c_double, ctypes.c_double)
    with pytest.raises(capsules.SignatureError, match=r"'double \(double, double\)'; capsules.nquad takes"):
        capsules.nquad(power, [[0, 1]])


def test_a_kernel_given_another_number_of_variables_is_refused_at_its_line(write_kernel, load_kernel_file) -> None:
    path = write_kernel("#capsules integrand plane(x, y; a)\ndef plane(x, y, a):\n    return a * x + y\n", "plane.py")
    kernel = load_kernel_file(path).plane
    # one range per variable, or the last ones as args: the integral of a x + y over the unit square, and over x
    assert capsules.dblquad(kernel.lowlevel(a=3.0), 0, 1, 0, 1)[0] == pytest.approx(2.0, rel=1e-14)
    assert capsules.nquad(kernel.lowlevel(a=3.0), [[0, 1]], args=(0.25,))[0] == pytest.approx(1.75, rel=1e-14)
    declared = f"{path}:1: 'plane' integrates 2 variable(s) (x, y), but capsules."
    calls = {
        "nquad was given 3 range(s):": lambda: capsules.nquad(kernel.lowlevel(a=3.0), [[0, 1]] * 3),
        "nquad was given 1 range(s) and 2 argument(s):": lambda: capsules.nquad(kernel.lowlevel(a=3.0), [[0, 1]], args=(1.0, 2.0)),
        "tplquad was given 3 range(s):": lambda: capsules.tplquad(kernel.lowlevel(a=3.0), 0, 1, 0, 1, 0, 1),
        "quad was given 1 range(s):": lambda: capsules.quad(kernel.lowlevel(a=3.0), 0, 1),
    }
    for given, call in calls.items():
        with pytest.raises(capsules.IntegrationInputError) as caught:
            call()
        assert str(caught.value).startswith(declared + given), caught.value
        assert caught.value.source_line == "#capsules integrand plane(x, y; a)"
    # the same capsule as a plain LowLevelCallable cannot say how many variables it reads: its own check still runs
    made = kernel.lowlevel(a=3.0)
    foreign = LowLevelCallable(made.function, made.user_data, made.signature)
    with pytest.raises(capsules.KernelError, match="plane integrates 2 variable"):
        capsules.nquad(foreign, [[0, 1]] * 3)


def test_the_driver_is_built_once_into_the_cache(cache_dir: Path) -> None:
    loaded = driver()
    assert loaded.path.is_file() and str(loaded.path).startswith(str(cache_dir))
    assert driver() is loaded


def test_without_a_compiler_the_driver_build_says_what_to_do(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    with pytest.raises(capsules.BuildError, match="set CXX to a C\\+\\+ compiler, or use scipy.integrate.nquad"):
        compile_into(tmp_path)
