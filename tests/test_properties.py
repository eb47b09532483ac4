"""Property: whatever export comments and kernel bodies a user writes, check and build end in success or a located error.

Never a traceback, a signal or a hang: every outcome is success or a
CapsulesError whose message starts with the kernel file's path.
"""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import capsules
from capsules.cli import main

TYPES = ["int32", "int64", "float64", "float32", "float64*", "int64*", "int32*", "complex128", "str", "bool",
         "float64[:]", "int", "float64 *", "?", ""]
ROLES = ["integrand", "filter", "filter1d", "mapping", "integrand2", ""]
EXPRESSIONS = ["x[0]", "n", "1", "1.0", "'s'", "None", "x[0] / x[1]", "x[0] * 2.0", "(x[0], 1.0)", "[1.0]",
               "undefined_name", "x", "x[0] + n", "float(n)", "x[-1]", "len(x)"]
names = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=6)


@st.composite
def raw_kernels(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(["f", "g"]))
    types = draw(st.lists(st.sampled_from(TYPES), max_size=5))
    capsule = draw(st.sampled_from(["capsule ", "", "capsule"]))
    params = draw(st.sampled_from(["n, x", "n, x, ud", "x", "", "n, x, ud, extra"]))
    body = draw(st.sampled_from(EXPRESSIONS))
    defined = draw(st.sampled_from([name, "other"]))
    return f"#pythran export {capsule}{name}({', '.join(types)})\ndef {defined}({params}):\n    return {body}\n"


@st.composite
def natural_kernels(draw: st.DrawFn) -> str:
    role = draw(st.sampled_from(ROLES))
    provided = draw(st.lists(names, max_size=3))
    parameters = draw(st.lists(names, max_size=2))
    sep = draw(st.sampled_from(["; ", ";", "", " ; "]))
    args = ", ".join(provided) + (sep + ", ".join(parameters) if parameters or sep.strip() else "")
    every = list(dict.fromkeys(provided + parameters))
    body = draw(st.sampled_from(["1.0", "0", "'s'", "None", f"{every[0]}" if every else "2.0", "(1.0, 2.0)"]))
    return f"#capsules {role} k({args})\ndef k({', '.join(every)}):\n    return {body}\n"


SIGNATURES = [("int32, float64*", "n, x"), ("float64", "x"), ("int32, float64*, float64*", "n, x, ud"),
              ("float64*, int64, float64*, float64*", "x, n, out, ud"), ("float64, float64*", "x, ud")]
ROLE_FORMS = [("integrand", "x; a", "x, a"), ("filter", "x", "x"), ("mapping", "x; a", "x, a"),
              ("filter1d", "x, out", "x, out")]


@st.composite
def plausible_kernels(draw: st.DrawFn) -> str:
    """Comments that fit their defs, with bodies of every kind: these reach the compiler."""
    if draw(st.booleans()):
        types, params = draw(st.sampled_from(SIGNATURES))
        body = draw(st.sampled_from(EXPRESSIONS))
        return f"#pythran export capsule f({types})\ndef f({params}):\n    return {body}\n"
    role, args, params = draw(st.sampled_from(ROLE_FORMS))
    body = draw(st.sampled_from(["x * 2.0", "'s'", "None", "(1.0, 2.0)", "x", "1", "x[0]", "len(x)", "undefined"]))
    return f"#capsules {role} k({args})\ndef k({params}):\n    return {body}\n"


sources = st.one_of(raw_kernels(), natural_kernels(), plausible_kernels(), st.text(max_size=80))


def _located(err: capsules.CapsulesError, path: Path) -> bool:
    return str(err).startswith(str(path))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(source=sources)
def test_check_ends_in_success_or_located_errors(tmp_path, capsys, source):
    path = tmp_path / "kernel.py"
    path.write_text(source)
    assert main(["check", str(path)]) in (0, 1)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    # each line: a located error, the offending source line (indented), or the count of problems
    for line in err.splitlines():
        assert line.startswith((str(path), "    ")) or line.endswith("problem(s) in 1 file(s)"), err


@pytest.mark.compile
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(source=st.one_of(raw_kernels(), natural_kernels(), plausible_kernels(), plausible_kernels()))
def test_build_ends_in_success_or_a_located_error(tmp_path, cache_dir, source):
    path = tmp_path / "kernel.py"
    path.write_text(source)
    try:
        capsules.build([path], cache=cache_dir)
    except capsules.CapsulesError as err:
        assert _located(err, path), str(err)
        assert "Traceback" not in str(err) and "_capsules_" not in str(err).splitlines()[0], str(err)
