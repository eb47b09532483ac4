"""Natural kernels, the exception barrier and checked builds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import traceback
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, ndimage

import capsules
from capsules.generate.module import read_exports

pytestmark = pytest.mark.compile

ROOT = Path(__file__).resolve().parent.parent
RISKY = ROOT / "tests" / "kernels" / "risky.py"


def test_natural_integrand_matches_raw_twin_bit_for_bit(load_kernel):
    natural, genz = load_kernel("natural").oscillatory3, load_kernel("genz").oscillatory
    assert natural.signature == genz.signature == "double (int, double *, void *)"
    assert natural.parameters == ("a1", "a2", "a3", "u1")
    params = {"a1": 1.5, "a2": 0.7, "a3": 2.1, "u1": 0.3}
    box = [[0, 1]] * 3
    got = integrate.nquad(natural.lowlevel(**params), box)
    twin = integrate.nquad(genz.lowlevel([1.5, 0.7, 2.1, 0.3, 0.0, 0.0]), box)
    assert got == twin
    python = integrate.nquad(lambda x, y, z: natural.py(x, y, z, **params), box)[0]
    assert got[0] == pytest.approx(python, rel=1e-13)


def test_natural_filters_and_mapping_match_raw_twins(load_kernel):
    natural, filters, transforms = load_kernel("natural"), load_kernel("filters"), load_kernel("transforms")
    image = np.random.default_rng(7).normal(size=(37, 23))
    for mode in ("reflect", "nearest", "constant"):
        got = ndimage.generic_filter(image, natural.local_range.lowlevel(), size=(3, 5), mode=mode)
        twin = ndimage.generic_filter(image, filters.local_range.lowlevel(), size=(3, 5), mode=mode)
        assert np.array_equal(got, twin)
        assert np.array_equal(got, ndimage.maximum_filter(image, (3, 5), mode=mode) -
                              ndimage.minimum_filter(image, (3, 5), mode=mode))
    got = ndimage.generic_filter1d(image, natural.ewma.lowlevel(alpha=0.25), filter_size=3)
    assert np.array_equal(got, ndimage.generic_filter1d(image, filters.ewma.lowlevel([0.25]), filter_size=3))
    got = ndimage.geometric_transform(image, natural.shift2d.lowlevel(dy=0.5, dx=-1.25), order=1)
    assert np.array_equal(got, ndimage.geometric_transform(image, transforms.shift.lowlevel([2, 0.5, -1.25]), order=1))
    assert np.allclose(got, ndimage.shift(image, (0.5, -1.25), order=1), rtol=0, atol=1e-12)


NEGATIVE_INDICES = """
#capsules filter1d ends(line_in, line_out)
def ends(line_in, line_out):
    for i in range(len(line_out)):
        line_out[i] = line_in[-1] - line_in[i - 1]
    line_out[-1] = 7.0


#capsules mapping flip(out_coords; s)
def flip(out_coords, s):
    return (out_coords[-2] + s, out_coords[-1] * 1.0)
"""


def test_negative_indices_count_from_the_end_as_in_python(write_kernel, cache_dir):
    # the compiled kernels take SciPy's pointers, which know no end of their own
    module = capsules.load(write_kernel(NEGATIVE_INDICES, "ends.py"), cache=cache_dir)
    image = np.random.default_rng(8).normal(size=(6, 11))
    for size in (1, 3, 4):
        np.testing.assert_array_equal(ndimage.generic_filter1d(image, module.ends.lowlevel(), size),
                                      ndimage.generic_filter1d(image, module.ends.py, size))
    flipped = ndimage.geometric_transform(image, module.flip.lowlevel(s=1.0), order=1)
    python = ndimage.geometric_transform(image, lambda out: module.flip.py(np.array(out), 1.0), order=1)
    np.testing.assert_array_equal(flipped, python)
    assert np.array_equal(flipped[:-1], image[1:])  # input row = output row + 1


TYPE_ERROR_IN_A_LINE_KERNEL = """
import math


#capsules filter1d smooth(line_in, line_out)
def smooth(line_in, line_out):
    n = len(line_out)
    for i in range(n):
        line_out[i] = line_in[i] + "x"
"""


@pytest.mark.parametrize("checked", [False, True], ids=["twin", "views"])
def test_a_type_error_in_a_line_kernel_names_the_users_line(write_kernel, cache_dir, checked):
    # found where pythran types the code the exports call: the kernel's twin,
    # which takes pointers, in the default build; the function itself, with views, in the checked one
    path = write_kernel(TYPE_ERROR_IN_A_LINE_KERNEL, "smooth.py")
    with pytest.raises(capsules.BuildError, match=rf"^{re.escape(str(path))}:8: pythran: Invalid operand"):
        capsules.build([path], cache=cache_dir, checked=checked)


def test_natural_py_is_the_users_function(load_kernel):
    kernel = load_kernel("natural").local_range
    assert kernel.py(np.array([3.0, -1.0, 2.0])) == 4.0
    assert kernel.spec.declared == "filter local_range(window; )"


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda k: k.lowlevel(a1=1.0, a2=2.0, a3=3.0), "missing u1"),
        (lambda k: k.lowlevel(a1=1.0, a2=2.0, a3=3.0, u1=0.0, b=1.0), "unexpected b"),
        (lambda k: k.lowlevel([1.0, 2.0, 3.0, 4.0]), "takes its parameters by name"),
        (lambda k: k.lowlevel(a1="x", a2=2.0, a3=3.0, u1=0.0), "a1='x' is not a real number"),
    ],
)
def test_parameters_are_checked_before_scipy_runs(load_kernel, call, fragment):
    kernel = load_kernel("natural").oscillatory3
    with pytest.raises(capsules.UserDataError, match=fragment) as info:
        call(kernel)
    assert str(info.value).startswith(f"{kernel.spec.path}:15: ")


def test_a_parameter_listed_with_the_variables_gets_a_hint(write_kernel, cache_dir):
    path = write_kernel("#capsules integrand f(x, a)\ndef f(x, a):\n    return a * x\n")
    kernel = capsules.load(path, cache=cache_dir).f
    with pytest.raises(capsules.UserDataError, match=re.escape("unexpected a; a is listed before ';'")) as info:
        kernel.lowlevel(a=2.0)
    assert str(info.value).endswith("did you mean 'f(x; a)'?")


def test_raw_kernel_refuses_parameters_by_name(load_kernel):
    with pytest.raises(capsules.UserDataError, match="raw kernel"):
        load_kernel("integrands").f.lowlevel(c=1.0)


@pytest.mark.parametrize(
    ("comment", "fragment"),
    [
        ("#capsules integrand f(x, y; a)\ndef f(x, a, y):\n    return x\n", "must be the same names in the same order"),
        ("#capsules smoother f(x; a)\ndef f(x, a):\n    return x\n", "unknown role 'smoother'"),
        ("#capsules filter f(a, b)\ndef f(a, b):\n    return a\n", "a filter takes 1 argument(s) before ';'"),
        ("#capsules filter g(w)\ndef f(w):\n    return w\n", "no top-level 'def g'"),
        ("#capsules filter f w\ndef f(w):\n    return w\n", "expected '#capsules ROLE name("),
        ("#capsules integrand \u0192(x)\ndef \u0192(x):\n    return x\n", "'\u0192' is not an ASCII name"),
        ("#pythran export capsule \u0192(float64)\ndef \u0192(x):\n    return x\n", "rename it with ASCII letters"),
    ],
)
def test_bad_role_comment_is_located(write_kernel, comment, fragment):
    path = write_kernel("x = 1\n" + comment)
    with pytest.raises(capsules.SpecError, match=re.escape(fragment)) as info:
        read_exports(path)
    assert str(info.value).startswith(f"{path}:2: ")


# Each risky call runs in a fresh process: an abort there must not take the test run down.
SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from scipy import integrate, ndimage
    import capsules

    checked = sys.argv[2] == "checked"
    mod = capsules.load(sys.argv[1], checked=checked)
    image = np.linspace(0.0, 1.0, 60).reshape(6, 10)
    calls = {{
        "raises": lambda: integrate.quad(mod.raises.lowlevel([0.5]), 0, 1),
        "raising_filter": lambda: ndimage.generic_filter(image, mod.raising_filter.lowlevel([0.0]), size=3),
        "far_reach": lambda: ndimage.generic_filter(image, mod.far_reach.lowlevel(), size=3),
        "divides": lambda: integrate.quad(mod.divides.lowlevel(k=0.0), 0, 1),
        "asserts": lambda: ndimage.generic_filter(image, mod.asserts.lowlevel(), size=3),
        "blows_up": lambda: ndimage.generic_filter(image, mod.blows_up.lowlevel(), size=3),
        "int32_division": lambda: integrate.quad(mod.int32_division.lowlevel(), 0, 1),
    }}
    outcome = {{}}
    try:
        calls[sys.argv[3]]()
        outcome["raised"] = None
    except Exception as err:
        kernel_error = err if isinstance(err, capsules.KernelError) else err.__cause__
        outcome = {{"raised": type(err).__name__, "kernel_error": str(kernel_error),
                    "is_kernel_error": isinstance(kernel_error, capsules.KernelError),
                    "original": type(kernel_error.__cause__).__name__, "cause": str(kernel_error.__cause__)}}
    # the process and the kernels stay usable
    outcome["after"] = integrate.quad(mod.raises.lowlevel([2.0]), 0, 1)[0]
    outcome["identity"] = bool(np.array_equal(
        ndimage.geometric_transform(image, mod.identity.lowlevel(), order=1), image))
    print(json.dumps(outcome))
    """
)


@pytest.fixture(scope="module")
def risky_builds(cache_dir):
    for checked in (False, True):
        capsules.load(RISKY, cache=cache_dir, checked=checked)
    return cache_dir


def _run_risky(cache_dir: Path, variant: str, case: str) -> dict:
    env = {**os.environ, "CAPSULES_CACHE": str(cache_dir)}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(), str(RISKY), variant, case],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 0, f"the process died ({proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("variant", "case", "raised", "original", "line"),
    [
        ("default", "raises", "SystemError", "ValueError", 6),
        ("default", "raising_filter", "KernelError", "IndexError", 13),
        ("checked", "raises", "SystemError", "ValueError", 6),
        ("checked", "far_reach", "KernelError", "IndexError", 21),
        ("checked", "divides", "SystemError", "ZeroDivisionError", 26),
        ("checked", "asserts", "KernelError", "AssertionError", 31),
        ("checked", "blows_up", "KernelError", "FloatingPointError", 37),
    ],
)
def test_kernel_errors_do_not_end_the_process(risky_builds, variant, case, raised, original, line):
    outcome = _run_risky(risky_builds, variant, case)
    assert outcome["raised"] == raised
    assert outcome["is_kernel_error"]
    assert outcome["original"] == original
    assert outcome["kernel_error"].startswith(f"risky.py:{line}: '{case}' raised {original}")
    assert outcome["after"] == pytest.approx(0.5) and outcome["identity"]


@pytest.mark.parametrize(
    ("variant", "case", "message"),
    [
        # pythran's exceptions reach Python with their own text, not as their argument tuple prints
        ("default", "raises", "x beyond the limit"),
        ("checked", "asserts", "window starts too high"),
        # a view out of range names the index and the length, as checked pointers do
        ("checked", "far_reach", "window[12] is out of range (window has 9 items)"),
        # an int32 divided by zero: ZeroDivisionError in every build, not SIGILL
        ("default", "int32_division", "integer division or modulo by zero"),
        ("checked", "int32_division", "integer division or modulo by zero"),
    ],
)
def test_kernel_errors_say_what_python_would(risky_builds, variant, case, message):
    outcome = _run_risky(risky_builds, variant, case)
    assert outcome["cause"] == message
    assert outcome["kernel_error"].endswith(f"raised {outcome['original']}: {message}")


def test_checked_build_has_its_own_cache_entry(cache_dir):
    default = capsules.load(RISKY, cache=cache_dir)
    checked = capsules.load(RISKY, cache=cache_dir, checked=True)
    assert default.key != checked.key
    assert checked.entry.data["inputs"]["checked"] is True
    assert "-UNDEBUG" in checked.entry.data["inputs"]["flags"]


def test_constants_fix_parameters_at_build_time(load_kernel, cache_dir):
    runtime = load_kernel("natural")
    fixed = capsules.load(ROOT / "kernels" / "natural.py", cache=cache_dir,
                          constants={"moving_average": {"length": 9}})
    assert fixed.key != runtime.key
    assert fixed.moving_average.parameters == () and runtime.moving_average.parameters == ("length",)
    assert fixed.moving_average.spec.declared == "filter1d moving_average(line_in, line_out; length=9.0)"
    assert fixed.oscillatory3.parameters == ("a1", "a2", "a3", "u1")  # other kernels keep theirs
    image = np.random.default_rng(3).normal(size=(41, 67))
    got = ndimage.generic_filter1d(image, fixed.moving_average.lowlevel(), 9)
    assert np.array_equal(got, ndimage.generic_filter1d(image, runtime.moving_average.lowlevel(length=9), 9))
    assert np.array_equal(got, ndimage.generic_filter1d(image, load_kernel("filters").moving_average.lowlevel([9]), 9))
    assert np.allclose(got, ndimage.uniform_filter1d(image, 9), rtol=0, atol=1e-12)
    with pytest.raises(capsules.UserDataError, match="unexpected length"):
        fixed.moving_average.lowlevel(length=9)


@pytest.mark.parametrize(
    ("constants", "fragment"),
    [
        ({"nope": {"length": 9}}, "constants name 'nope', which is not a natural kernel"),
        ({"moving_average": {"width": 9}}, "'moving_average' has no parameter width to fix"),
        ({"moving_average": {"length": float("nan")}}, "is not a finite real number"),
        ({"moving_average": {"length": "9"}}, "is not a finite real number"),
    ],
)
def test_bad_constants_are_refused(cache_dir, constants, fragment):
    with pytest.raises(capsules.SpecError, match=re.escape(fragment)):
        capsules.load(ROOT / "kernels" / "natural.py", cache=cache_dir, constants=constants)


def test_cli_const_flag(tmp_path, capsys):
    from capsules.cli import main

    path = str(ROOT / "kernels" / "natural.py")
    assert main(["build", path, "--cache", str(tmp_path), "--const", "moving_average.length=9"]) == 0
    assert "built " in capsys.readouterr().out
    assert main(["build", path, "--cache", str(tmp_path), "--const", "moving_average.length"]) == 1
    assert "expected KERNEL.PARAM=NUMBER" in capsys.readouterr().err


def test_specialized_callable_pickles(cache_dir):
    import pickle

    fixed = capsules.load(ROOT / "kernels" / "natural.py", cache=cache_dir,
                          constants={"moving_average": {"length": 5}})
    callable_ = pickle.loads(pickle.dumps(fixed.moving_average.lowlevel()))
    image = np.arange(60.0).reshape(6, 10)
    assert np.array_equal(ndimage.generic_filter1d(image, callable_, 5),
                          ndimage.generic_filter1d(image, fixed.moving_average.lowlevel(), 5))


@pytest.mark.compile
@pytest.mark.parametrize(
    ("comment", "body", "wanted"),
    [
        ("#capsules integrand m(x)", "return 's'", "a number"),
    ],
)
def test_a_natural_kernel_returning_what_its_role_cannot_use_is_refused_at_build(
    write_kernel, cache_dir, comment, body, wanted
):
    args = comment[comment.index("(") + 1 : -1].replace(";", ",")
    path = write_kernel(f"{comment}\ndef m({args}):\n    {body}\n")
    with pytest.raises(capsules.CapsulesError) as info:
        capsules.build([path], cache=cache_dir)
    assert str(info.value).startswith(f"{path}:1: 'm' must return {wanted}")


TEXT_KERNELS = """
#capsules mapping constant_text(out_coords)
def constant_text(out_coords):
    return 'ab'

#capsules mapping varying_text(out_coords; d)
def varying_text(out_coords, d):
    return 'ab' if out_coords[0] > d else 'cd'

#capsules filter labels(window)
def labels(window):
    return 'high' if window[0] > 3.0 else 'low'

#capsules filter nothing(window)
def nothing(window):
    return None

#capsules mapping shifted(out_coords; d)
def shifted(out_coords, d):
    return (out_coords[0] - d, out_coords[1] * 0.5)
"""
TEXT_RESULTS = [  # kernel, its line, how SciPy calls it, what the kernel must return and not
    ("constant_text", 1, lambda k, image: ndimage.geometric_transform(image, k.lowlevel()),
     "2 input coordinates, not a string"),
    ("varying_text", 5, lambda k, image: ndimage.geometric_transform(image, k.lowlevel(d=1.0)),
     "2 input coordinates, not a string"),
    ("labels", 9, lambda k, image: ndimage.generic_filter(image, k.lowlevel(), size=2),
     "a number for its window of 4 values, not a string"),
    ("nothing", 13, lambda k, image: ndimage.generic_filter(image, k.lowlevel(), size=2),
     "a number for its window of 4 values, not None"),
]


@pytest.mark.parametrize("checked", [False, True], ids=["default", "checked"])
def test_a_string_or_none_result_is_refused_alike_by_both_builds(write_kernel, cache_dir, checked):
    # a string has a length and characters: each build once compiled some of them to numbers,
    # and refused others at build, depending on what pythran could fold
    path = write_kernel(TEXT_KERNELS, "text_results.py")
    mod = capsules.load(path, cache=cache_dir, checked=checked)
    image = np.arange(20.0).reshape(4, 5)
    for name, line, call, wanted in TEXT_RESULTS:
        with pytest.raises(capsules.KernelError) as caught:
            call(mod[name], image)
        assert str(caught.value) == f"{path.name}:{line}: '{name}' raised TypeError: {name} must return {wanted}"
        assert isinstance(caught.value.__cause__, TypeError)
        frames = [frame.filename for frame in traceback.extract_tb(caught.value.__traceback__)]
        assert not [f for f in frames if Path(f).parent == Path(capsules.__file__).parent], frames
    # a mapping returning numbers gives what the same function gives as a Python callback
    python = ndimage.geometric_transform(image, lambda c: mod.shifted.py(np.array(c), 0.25))
    np.testing.assert_array_equal(ndimage.geometric_transform(image, mod.shifted.lowlevel(d=0.25)), python)
