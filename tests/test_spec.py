"""Export comments: parsed per line by pythran's parser, checked against the defs."""

from __future__ import annotations

import pytest

from capsules.errors import SpecError
from capsules.generate.module import read_exports, scan
from capsules.spec import ExportSpec


def test_reads_capsules_and_plain_exports(write_kernel):
    path = write_kernel(
        """
        import numpy as np

        #pythran export capsule f(int32, float64*, float64*)
        def f(n, x, cp):
            "doc of f"
            return cp[2] + x[0]

        #pythran export norm(float64[:])
        #pythran export norm(float32[:])
        def norm(v):
            return np.sqrt(np.sum(v * v))
        """
    )
    f, norm = read_exports(path)
    assert (f.name, f.types, f.params, f.capsule, f.line) == ("f", ("int32", "float64*", "float64*"), ("n", "x", "cp"), True, 3)
    assert f.doc == "doc of f"
    assert f.reads == (None, 1, 3)  # n unused, x[0], cp[2]
    assert f.pythran == "f(int32, float64*, float64*)"
    assert (norm.name, norm.capsule, norm.line) == ("norm", False, 8)


BAD = [
    ("#pythran export capsule g(int32, float64*)\ndef f(n, x):\n    return 1.0\n", 1, "no top-level 'def g'"),
    ("#pythran export capsule f(int32)\ndef f(n, x):\n    return 1.0\n", 1, "takes 2 argument(s) (n, x), but the export comment gives 1"),
    ("#pythran export capsule f(int32, float64*, float64*)\ndef f(n, x):\n    return 1.0\n", 1, "gives 3 type(s)"),
    ("x = 1\n#pythran export capsule f(int32, flaot64)\ndef f(n, x):\n    return 1.0\n", 2, "flaot64"),
    ("x = 1\n#pythran export capsule f(int32, flaot64*)\ndef f(n, x):\n    return 1.0\n", 2, "Unexpected token"),
    ("#pythran export capsule f(double)\ndef f(x):\n    return x\n", 1, "float64"),
    ("#pythran export capsule f(float64)\n#pythran export capsule f(float64)\ndef f(x):\n    return x\n", 2, "exported twice"),
    ("#pythran export capsule f(float64)\ndef f(*x):\n    return 1.0\n", 1, "*args"),
    ("#pythran export capsule f(float64)\ndef f(x):\n    return x\x00\n", 3, "null bytes"),
]


@pytest.mark.parametrize(("text", "line", "fragment"), BAD)
def test_bad_export_names_file_and_line(write_kernel, text, line, fragment):
    path = write_kernel(text)
    with pytest.raises(SpecError) as info:
        read_exports(path)
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_any_pythran_comment_is_checked_like_pythran_does(write_kernel):
    path = write_kernel(
        "#pythran export capsule f(float64)\ndef f(x):\n    # pythran turns this into C++\n    return x\n"
    )
    with pytest.raises(SpecError, match=rf"^{path}:3: .*turns"):
        read_exports(path)


def test_typo_in_name_suggests_the_def(write_kernel):
    path = write_kernel("#pythran export capsule integrnd(float64)\ndef integrand(x):\n    return x\n")
    with pytest.raises(SpecError, match="did you mean 'integrand'"):
        read_exports(path)


def test_scan_collects_every_problem(write_kernel):
    path = write_kernel(
        "#pythran export capsule a(float64)\n#pythran export capsule b(float64)\n"
        "#pythran export capsule c(float64)\ndef c(x):\n    return x\n"
    )
    result = scan(path)
    assert [e.line for e in result.errors] == [1, 2]
    assert [s.name for s in result.exports] == ["c"]


def test_invalid_python_is_located(write_kernel):
    path = write_kernel("#pythran export capsule f(float64)\ndef f(x):\n    return x +\n")
    with pytest.raises(SpecError, match=rf"^{path}:3: not valid Python"):
        read_exports(path)


def test_missing_file_and_no_exports(tmp_path, write_kernel):
    with pytest.raises(SpecError, match="no such kernel file"):
        read_exports(tmp_path / "nope.py")
    with pytest.raises(SpecError, match="no '#pythran export' or '#capsules' comment"):
        read_exports(write_kernel("def f(x):\n    return x\n"))


def test_continuation_lines_join_like_pythran(write_kernel):
    path = write_kernel("#pythran export capsule f(int32,\n#                  float64*)\ndef f(n, x):\n    return x[0]\n")
    (spec,) = read_exports(path)
    assert spec.types == ("int32", "float64*")


def test_scans_in_parallel_threads_agree_with_serial_scans():
    # builds run in threads (-j): pythran's parser keeps state in its instance
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    files = sorted((Path(__file__).resolve().parent.parent / "kernels").glob("*.py")) * 8
    serial = [scan(f) for f in files]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(scan, files))
    assert [(r.exports, r.errors) for r in parallel] == [(r.exports, r.errors) for r in serial]


# In a fresh interpreter: scan a file with a good and a bad export comment,
# then import the rest of pythran as its compiler process would.
FRESH_SCAN = """
import sys
from capsules.generate.module import scan
found = scan(sys.argv[1])
print(len(found.exports), len(found.errors), "pythran.tables" in sys.modules)
import pythran.errors, pythran.spec, pythran.syntax
print(pythran.spec.PythranSyntaxError is pythran.syntax.PythranSyntaxError is pythran.errors.PythranSyntaxError,
      callable(pythran.syntax.check_specs))
"""


def test_a_scan_leaves_pythrans_tables_to_the_compiler_process(write_kernel):
    # they take most of a second to import; the scan needs only the spec parser
    import subprocess
    import sys

    path = write_kernel(
        "#pythran export capsule f(float64)\ndef f(x):\n    return x\n"
        "#pythran export capsule g(flaot64)\ndef g(x):\n    return x\n"
    )
    done = subprocess.run([sys.executable, "-c", FRESH_SCAN, str(path)], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["1", "1", "False", "True", "True"]


STRAIGHT_OR_NOT = """
import math
import math as m
from math import cos, exp, sin, fsum as total
import numpy as np


def helper(x):
    return x * 2.0


#pythran export capsule one_line(float64)
def one_line(x):
    s = sin(50.0 * x)
    return exp(-x * x) * s * s


#pythran export capsule by_module(float64, float64*)
def by_module(x, c):
    if x < c[0]:
        return abs(math.cos(x)) + m.log1p(float(c[1]))
    return round(x) ** 2


#pythran export capsule looping(int32, float64*, float64*)
def looping(n, x, c):
    t = c[0]
    for i in range(n):
        t += c[i + 1] * x[i]
    return math.cos(t)


#pythran export capsule waiting(float64)
def waiting(x):
    while x > 1.0:
        x = x / 2.0
    return x


#pythran export capsule comprehension(int32, float64*)
def comprehension(n, x):
    return sum([x[i] for i in range(n)])


#pythran export capsule calls_a_helper(float64)
def calls_a_helper(x):
    return helper(x)


#pythran export capsule calls_numpy(float64)
def calls_numpy(x):
    return np.sqrt(x)


#pythran export capsule sums_an_iterable(int32, float64*)
def sums_an_iterable(n, x):
    return total(x[:n]) + math.fsum(x[:n])


#pythran export capsule counts_up(float64)
def counts_up(x):
    return math.factorial(int(x))


#pythran export capsule shadowed(float64)
def shadowed(x):
    return cos(x)


def cos(x):
    for _ in range(1000):
        x = x * 0.5
    return x
"""


def test_a_kernel_is_straight_only_without_loops_and_with_scalar_math_calls_only(write_kernel):
    specs = {s.name: s.straight for s in read_exports(write_kernel(STRAIGHT_OR_NOT))}
    assert specs == {"one_line": True, "by_module": True, "looping": False, "waiting": False,
                     "comprehension": False, "calls_a_helper": False, "calls_numpy": False,
                     "sums_an_iterable": False, "counts_up": False, "shadowed": False}


def test_an_export_read_back_from_its_entry_ignores_what_a_later_capsules_adds(write_kernel):
    path = write_kernel(STRAIGHT_OR_NOT)
    for spec in read_exports(path):
        data = spec.to_json()
        assert ExportSpec.from_json(data, str(path)) == spec
        assert ExportSpec.from_json({**data, "learned_later": [1, 2]}, str(path)) == spec
