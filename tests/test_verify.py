"""capsules.verify: each compiled kernel against its own Python, on inputs Hypothesis generates.

Every kernel here is compiled for real and called through its capsule's C
function pointer; the divergent ones are built to show one known class each.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import capsules
from capsules.cli import main
from capsules.testing import assert_matches_python
from capsules.verify import KernelResult, Report, Settings, close, comment_settings, parse_domain

pytestmark = pytest.mark.compile

ROOT = Path(__file__).resolve().parent.parent
KERNELS = ROOT / "kernels"
PACKAGE = ROOT / "examples" / "package" / "src" / "quadfilt"

# One kernel per known cause of divergence, each at a line the tests name (and two that agree).
DIVERGENT = """
import math


#capsules integrand reciprocal(x)
def reciprocal(x):
    return 1.0 / x


#capsules integrand root(x)
def root(x):
    return math.sqrt(x)


#capsules integrand grow(x)
def grow(x):
    return math.exp(x)


#capsules integrand square_count(x; a)
def square_count(x, a):
    k = int(a)
    return float(k * k)


#capsules integrand truncate(x)
def truncate(x):
    return float(int(x))


#capsules verify x=-10:10
#capsules integrand rounded(x)
def rounded(x):
    return float(round(x))


#pythran export capsule second(int32, float64*)
def second(n, x):
    return x[1]


#capsules integrand tenfold(x)
def tenfold(x):
    return x * 10.0


#capsules verify x=0:1
#capsules integrand root_in_domain(x)
def root_in_domain(x):
    return math.sqrt(x)


#capsules integrand squared_item(x; counts: int64[:])
def squared_item(x, counts):
    c = int(counts[0])
    return float(c * c)


#capsules integrand second_item(x; table: float64[:])
def second_item(x, table):
    return table[1]
"""

# Correct kernels of every role: they agree whatever the seed.
CORRECT = """
import math


#capsules integrand wave(x, y; a, b)
def wave(x, y, a, b):
    return math.cos(a * x + b * y) if abs(a * x + b * y) < 1e300 else 0.0


#capsules filter spread(window; k)
def spread(window, k):
    lo = window[0]
    hi = window[0]
    for i in range(1, len(window)):
        lo = min(lo, window[i])
        hi = max(hi, window[i])
    return k * (hi - lo)


#capsules filter1d running(line_in, line_out)
def running(line_in, line_out):
    acc = 0.0
    for i in range(len(line_out)):
        acc = acc + line_in[i]
        line_out[i] = acc


#capsules mapping halve(out_coords; c)
def halve(out_coords, c):
    return [0.5 * o + c for o in out_coords]


#pythran export capsule weighted(float64*, int64, float64*, float64*)
def weighted(buffer, filter_size, return_value, user_data):
    s = 0.0
    for i in range(filter_size):
        s += buffer[i] * user_data[0]
    return_value[0] = s
    return 1


#pythran export capsule needs_rank_two(int64*, float64*, int32, int32, float64*)
def needs_rank_two(output_coordinates, input_coordinates, output_rank, input_rank, user_data):
    if output_rank != 2:
        return 0
    input_coordinates[0] = output_coordinates[1] - user_data[0]
    input_coordinates[1] = output_coordinates[0] + user_data[0]
    return 1


# an infinite bound of an integer parameter: up to the largest int64
#capsules verify n=-1e3:inf
#capsules integrand counted(x; counts: int32[:, :], n: int64)
def counted(x, counts, n):
    total = 0.0
    for row in range(counts.shape[0]):
        for column in range(counts.shape[1]):
            total += x * counts[row, column]
    return total + float(n)


#capsules verify len(weights)=9 weights=0:1
#capsules filter1d smoothed(line_in, line_out; weights: float64[:])
def smoothed(line_in, line_out, weights):
    for i in range(len(line_out)):
        line_out[i] = line_in[i] * weights[i]
"""


# The ndimage roles: their windows, lines and coordinates reach the Python side as numpy arrays.
ROLES = """
import math


#capsules filter inverse_first(window)
def inverse_first(window):
    return 1.0 / window[0]


#capsules filter1d logs(line_in, line_out)
def logs(line_in, line_out):
    for i in range(len(line_out)):
        line_out[i] = math.log(line_in[i])


#capsules mapping root_coords(out_coords; c)
def root_coords(out_coords, c):
    return [math.sqrt(o - c) for o in out_coords]
"""


def _write(tmp_path_factory: pytest.TempPathFactory, name: str, text: str) -> Path:
    path = tmp_path_factory.mktemp(name) / f"{name}.py"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.fixture(scope="module")
def divergent(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    path = _write(tmp_path_factory, "divergent", DIVERGENT)
    capsules.build([path], cache=cache_dir)
    return path


@pytest.fixture(scope="module")
def divergent_report(divergent: Path, cache_dir: Path) -> dict[str, KernelResult]:
    report = capsules.verify(divergent, cache=cache_dir, seed=0)
    return {r.kernel: r for r in report.results}


@pytest.fixture(scope="module")
def correct(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    path = _write(tmp_path_factory, "correct", CORRECT)
    capsules.build([path], cache=cache_dir)
    return path


def _line(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.mark.parametrize(
    ("kernel", "cause", "inputs", "at"),
    [
        ("reciprocal", "division-by-zero", "x=0.0", "return 1.0 / x"),
        ("root", "math-domain", "x=-1.0", "return math.sqrt(x)"),
        ("grow", "overflow", "x=710.0", "return math.exp(x)"),
        ("square_count", "int-overflow", "a=3037000500.0", "return float(k * k)"),
        ("truncate", "float-to-int", "x=9.223372036854776e+18", "return float(int(x))"),
        ("second", "index", "n=1, x=[0.0]", "return x[1]"),
        ("squared_item", "int-overflow", "x=0.0; counts=[3037000500]", "return float(c * c)"),
        ("second_item", "index", "x=0.0; table=[0.0]", "return table[1]"),
    ],
)
def test_each_known_cause_is_caught_shrunk_and_named(divergent, divergent_report, kernel, cause, inputs, at):
    result = divergent_report[kernel]
    assert not result.agrees
    assert result.divergence.cause == cause
    assert result.divergence.inputs.endswith(inputs) or result.divergence.inputs.startswith(inputs)
    assert f"(line {_line(divergent, at)})" in result.divergence.explanation
    # where Python's index is out of range, the default build (which does not check) is not called
    called = "is not called (a build without checks would read out of range" if cause == "index" else "gives "
    assert result.message().startswith(f"{divergent}:{result.line}: {kernel}: compiled {called}")


def test_shrunk_example_is_the_boundary(divergent_report):
    """The smallest inputs: the first a whose square passes 2**63, exp's first overflowing integer."""
    assert math.isqrt(2**63) + 1 == 3037000500
    assert math.exp(709.0) < math.inf  # 709 does not overflow, 710 does: shrinking found the edge
    assert "Python raises OverflowError: math range error" in divergent_report["grow"].message()


def test_typing_difference_is_named(divergent_report):
    """Python rounds half to even, the compiled round() half away from zero."""
    result = divergent_report["rounded"]
    assert result.divergence.cause == "typing"
    x = float(result.divergence.inputs.removeprefix("x="))
    assert -10 <= x <= 10 and (2 * x) % 2 == 1  # a half: where the two roundings differ
    assert float(round(x)) != math.floor(abs(x) + 0.5) * math.copysign(1, x)


def test_a_domain_comment_is_read(divergent_report):
    assert divergent_report["root_in_domain"].agrees
    assert divergent_report["root_in_domain"].settings.domain("x") == (0.0, 1.0)


def test_the_same_seed_gives_the_same_report(divergent, cache_dir, divergent_report):
    def found(result: KernelResult) -> tuple[str, str, str] | None:
        # not what the compiled side gives: 'second' reads memory past its input, whatever is there
        d = result.divergence
        return None if d is None else (d.inputs, d.python, d.cause)

    again = capsules.verify(divergent, cache=cache_dir, seed=0)
    assert [found(r) for r in again.results] == [found(divergent_report[r.kernel]) for r in again.results]


@pytest.mark.parametrize("seed", range(8))
def test_correct_kernels_agree_under_many_seeds(correct, cache_dir, seed):
    report = capsules.verify(correct, cache=cache_dir, seed=seed, examples=60)
    assert report.agrees, str(report)
    assert {r.kernel for r in report.results} == {"wave", "spread", "running", "halve", "weighted",
                                                   "needs_rank_two", "counted", "smoothed"}


def test_ndimage_roles(tmp_path_factory, cache_dir):
    path = _write(tmp_path_factory, "roles", ROLES)
    results = {r.kernel: r for r in capsules.verify(path, cache=cache_dir).results}
    # a window's items are numpy floats, which divide by zero to inf as C does (and as SciPy's
    # generic_filter running the same function as Python would)
    assert results["inverse_first"].agrees
    for kernel, inputs in (("logs", "line_in=[0.0], len(line_out)=1"), ("root_coords", "out_coords=[0]; c=1.0")):
        assert results[kernel].divergence.cause == "math-domain"
        assert results[kernel].divergence.inputs == inputs
        assert results[kernel].divergence.python == "raises ValueError: math domain error"


# Integrands declared '-> complex': each part against the part of the Python value.
COMPLEX = """
import cmath


# complex * float: Python multiplies by x + 0j, C++ part by part (the zeros' signs differ at x = 0)
#capsules verify x=-700:700 k=-1e3:1e3 decay=-1:1 any-zero
#capsules integrand wave(x; k, decay) -> complex
def wave(x, k, decay):
    return cmath.exp(complex(-decay, k) * x)


#capsules integrand real_valued(x; a) -> complex
def real_valued(x, a):
    return a * x


#capsules verify x=-10:10
#capsules integrand rounded_phase(x) -> complex
def rounded_phase(x):
    return complex(x, round(x))
"""


def test_complex_integrands_are_checked_part_by_part(tmp_path_factory, cache_dir):
    path = _write(tmp_path_factory, "waves", COMPLEX)
    results = {r.kernel: r for r in capsules.verify(path, cache=cache_dir).results}
    assert results["wave"].agrees, results["wave"].message()
    assert results["real_valued"].agrees, results["real_valued"].message()  # -0.0 keeps its sign in both parts
    # the imaginary part is checked too: the compiled round() takes a half away from zero
    divergence = results["rounded_phase"].divergence
    x = float(divergence.inputs.removeprefix("x="))
    assert divergence.cause == "typing" and (2 * x) % 2 == 1
    assert divergence.compiled == f"gives {complex(x, math.floor(abs(x) + 0.5) * math.copysign(1, x))!r}"
    assert divergence.python == f"gives {complex(x, round(x))!r}"


def test_checked_build_raises_where_python_does(divergent, cache_dir):
    """The default build reads past x's end; the checked one raises IndexError, as Python does."""
    default = capsules.load(divergent, cache=cache_dir)
    checked = capsules.load(divergent, cache=cache_dir, checked=True)
    assert capsules.verify(default.second).divergences[0].divergence.cause == "index"
    assert capsules.verify(checked.second).agrees


def test_checked_build_reports_non_finite_results(divergent, cache_dir, divergent_report):
    """A checked build raises for an infinite result: where Python raises too it agrees, where Python gives inf not."""
    checked = capsules.load(divergent, cache=cache_dir, checked=True)
    assert divergent_report["grow"].divergence.cause == "overflow" and capsules.verify(checked.grow).agrees
    assert divergent_report["tenfold"].agrees  # inf on both sides
    result = capsules.verify(checked.tenfold).results[0]
    assert result.divergence.cause == "compiled-raises"
    assert "compiled raises FloatingPointError: tenfold returned a non-finite value, Python gives inf" in result.message()


# ---------------------------------------------------------------- inline kernels


SCRIPT = """
import math

import capsules


@capsules.integrand("x; a")
def scaled(x, a):
    return a / x


#capsules verify x=0.5:2 a=-1e6:1e6
@capsules.integrand("x; a")
def scaled_in_domain(x, a):
    return a / x
"""


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(tmp_path_factory, "script", SCRIPT)


def test_inline_kernels_of_a_script(script, cache_dir):
    results = {r.kernel: r for r in capsules.verify(script, cache=cache_dir).results}
    diverging = results["scaled"]
    assert diverging.path == str(script) and diverging.line == _line(script, '@capsules.integrand("x; a")')
    assert diverging.divergence.cause == "division-by-zero"
    assert diverging.divergence.inputs == "x=0.0; a=1.0" or diverging.divergence.inputs.startswith("x=0.0;")
    assert f"(line {_line(script, 'return a / x')})" in diverging.divergence.explanation
    assert results["scaled_in_domain"].agrees


def test_an_inline_kernel_object(script, cache_dir):
    spec = importlib.util.spec_from_file_location("verify_script", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.scaled.build(cache_dir)
    module.scaled_in_domain.build(cache_dir)
    assert capsules.verify(module.scaled_in_domain).agrees
    with pytest.raises(AssertionError) as caught:
        assert_matches_python(module.scaled)
    text = str(caught.value)
    assert f"{script}:" in text and "scaled: compiled gives" in text and "x=0.0" in text
    assert "division by zero" in text


def test_assert_matches_python_passes_quietly(divergent, cache_dir):
    module = capsules.load(divergent, cache=cache_dir)
    assert_matches_python(module.root_in_domain, examples=50, seed=3)
    assert_matches_python(module.root, domains={"x": (0.0, 4.0)})


# ---------------------------------------------------------------- the command


def test_exit_status_and_json(divergent, correct, cache_dir, tmp_path, capsys):
    report = tmp_path / "report.json"
    assert main(["verify", str(correct), "--cache", str(cache_dir), "--examples", "30"]) == 0
    assert "8 kernel(s): 8 agree, 0 diverge" in capsys.readouterr().out
    assert main(["verify", str(divergent), "--cache", str(cache_dir), "--json", str(report)]) == 1
    out = capsys.readouterr().out
    assert f"{divergent}:{_line(divergent, '#capsules integrand reciprocal')}: reciprocal: compiled gives inf, " \
           "Python raises ZeroDivisionError: float division by zero for inputs x=0.0" in out
    data = json.loads(report.read_text())
    assert data["agrees"] is False
    causes = {k["kernel"]: k.get("divergence", {}).get("cause") for k in data["kernels"]}
    assert causes["reciprocal"] == "division-by-zero" and causes["root_in_domain"] is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--domain", "x=1:0"], "domain 'x=1:0'"),
        (["--domain", "x"], "expected NAME=LOW:HIGH"),
        (["--examples", "0"], "examples must be at least 1"),
    ],
)
def test_usage_errors_exit_2(correct, cache_dir, capsys, argv, message):
    assert main(["verify", str(correct), "--cache", str(cache_dir), *argv]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err + captured.out


def test_missing_path_and_bad_arguments_exit_2(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "nowhere.py")]) == 2
    assert "nowhere.py: no such file or directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:
        main(["verify", "--examples", "many"])
    assert caught.value.code == 2


def test_a_malformed_verify_comment_is_located(write_kernel, cache_dir, capsys):
    path = write_kernel("#capsules verify x=0:oops\n#capsules integrand f(x)\ndef f(x):\n    return x\n")
    assert main(["verify", str(path), "--cache", str(cache_dir)]) == 2
    assert capsys.readouterr().err.startswith(f"{path}:1: '#capsules verify': domain 'x=0:oops'")


def test_a_verify_comment_naming_nothing_is_located(write_kernel, cache_dir, capsys):
    path = write_kernel("#capsules verify xx=0:1\n#capsules integrand f(x; a)\ndef f(x, a):\n    return x\n")
    assert main(["verify", str(path), "--cache", str(cache_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}:1: '#capsules verify': the kernel below has no 'xx' (a domain may name x, a, ")
    assert "    #capsules verify xx=0:1" in err


# ---------------------------------------------------------------- the rules, without a compiler


@pytest.mark.parametrize(
    ("a", "b", "agree"),
    [
        (1.0, 1.0, True),
        (1.0, math.nextafter(1.0, 2.0), True),
        (1.0, 1.0 + 4 * 2.220446049250313e-16, True),
        (1.0, 1.0 + 5 * 2.220446049250313e-16, False),
        (math.nan, math.nan, True),
        (math.nan, 1.0, False),
        (0.0, -0.0, False),
        (-0.0, -0.0, True),
        (0.0, 5e-324, True),
        (math.inf, math.inf, True),
        (math.inf, -math.inf, False),
        (math.inf, 1.7976931348623157e308, False),
        (-5e-324, 5e-324, True),
    ],
)
def test_agreement_within_ulp(a, b, agree):
    assert close(a, b, Settings()) is agree
    assert close(b, a, Settings()) is agree


def test_any_zero_and_atol():
    assert close(0.0, -0.0, Settings(any_zero=True))
    assert close(1e-20, 2e-20, Settings(atol=1e-19)) and not close(1e-20, 2e-20, Settings())


def test_parse_domain():
    assert parse_domain("x=0:1") == ("x", (0.0, 1.0))
    assert parse_domain("user_data[2]=-1e3:inf") == ("user_data[2]", (-1000.0, math.inf))
    assert parse_domain("len(user_data)=6") == ("len(user_data)", (6.0, 6.0))


def test_verify_comments_apply_to_the_next_kernel_only():
    text = textwrap.dedent("""
        #capsules verify x=0:1 ulp=8
        # why: the docstring's domain
        #pythran export capsule f(float64)
        def f(x):
            return x

        #capsules verify atol=1e-9 any-zero
        #pythran export capsule g(float64)
        def g(x):
            return x
    """)
    f = comment_settings(text, "k.py", 4, Settings())
    g = comment_settings(text, "k.py", 9, Settings())
    assert f.domain("x") == (0.0, 1.0) and f.ulp == 8 and not f.any_zero
    assert g.domain("x") is None and g.ulp == 4 and g.atol == 1e-9 and g.any_zero


def test_report_is_frozen():
    report = Report(())
    assert report.agrees and report.to_json() == {"version": 1, "agrees": True, "kernels": []}
    with pytest.raises(AttributeError):
        report.results = ()  # type: ignore[misc]


# ---------------------------------------------------------------- the bundled kernels


def test_every_bundled_kernel_agrees(cache_dir: Path) -> None:
    """kernels/ and the example package's kernels, each within its own '#capsules verify' domain."""
    report = capsules.verify([KERNELS, PACKAGE / "kernels.py", PACKAGE / "inline.py"], cache=cache_dir)
    assert report.agrees, "\n".join(r.message() for r in report.divergences)
    assert len(report.results) >= 42
    # kernels/data.py's kernels, whose parameters are arrays, are among them
    data = {r.kernel: r.path for r in report.results if Path(r.path).name == "data.py"}
    assert set(data) == {"interpolated", "weighted"}, data


FAR = """
#capsules integrand far(x; table: float64[:])
def far(x, table):
    return table[len(table) + 100000000]
"""


def test_the_default_build_is_not_called_where_python_reads_out_of_range(tmp_path, cache_dir):
    """Reading 800 MB past an array's end may crash the process: verify reports the index instead of calling it."""
    path = tmp_path / "far.py"
    path.write_text(FAR)
    done = subprocess.run([sys.executable, "-m", "capsules", "verify", str(path), "--cache", str(cache_dir)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1, done.stdout + done.stderr  # a divergence, not a crash
    assert f"{path}:2: far: compiled is not called (a build without checks would read out of range" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
