"""Build, cache and load: real pythran, real g++, real SciPy."""

from __future__ import annotations

import gc
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, ndimage

import capsules
from capsules.build import build_plan, plan
from capsules.cache import Cache
from capsules.key import cache_key

pytestmark = pytest.mark.compile

INTEGRAND = """
#pythran export capsule f(int32, float64*, float64*)
def f(n, x, cp):
    return cp[0] * x[0] + {extra}
"""


def test_seed_nquad_example(load_kernel):
    mod = load_kernel("integrands")
    f = mod.f
    assert f.signature == "double (int, double *, void *)"
    assert f.targets == ("quad", "dblquad", "tplquad", "nquad")
    value, _ = integrate.nquad(f.lowlevel(user_data=[1.0]), [[0, 10], [-10, 0], [-1, 1]])
    assert value == pytest.approx(1200.0, rel=1e-12)
    python, _ = integrate.nquad(lambda x, y, z: f.py(3, np.array([x, y, z]), np.array([1.0])), [[0, 10], [-10, 0], [-1, 1]])
    assert value == pytest.approx(python, rel=1e-12)


@pytest.mark.parametrize("name", ["transform", "transform_basic"])
def test_seed_geometric_transform(load_kernel, name):
    kernel = load_kernel("shift")[name]
    assert kernel.signature == "int (npy_intp *, double *, int, int, void *)"
    image = np.arange(12).reshape(4, 3).astype(float)
    got = ndimage.geometric_transform(image, kernel.lowlevel(0.5))
    expected = ndimage.geometric_transform(image, lambda c: tuple(ci - 0.5 for ci in c))
    assert np.array_equal(got, expected)
    closed_form = ndimage.shift(image, 0.5)  # the same mapping, another SciPy code path
    assert np.allclose(got, closed_form, rtol=0, atol=1e-12)


def test_compiled_equals_python_at_random_points(load_kernel):
    f = load_kernel("integrands").f
    call = f.as_ctypes()
    rng = np.random.default_rng(1)
    for _ in range(100):
        x, c = rng.normal(size=3), rng.normal(size=1)
        got = call(3, np.ctypeslib.as_ctypes(x), c.ctypes.data)
        assert got == f.py(3, x, c)  # bit for bit: no FMA contraction unless asked


def test_module_access(load_kernel):
    mod = load_kernel("shift")
    assert mod.transform is mod["transform"]
    assert [k.name for k in mod] == ["transform", "transform_basic"]
    assert isinstance(mod.transform.address, int) and mod.transform.address
    with pytest.raises(KeyError, match="no capsule export 'nope'"):
        mod["nope"]
    with pytest.raises(AttributeError):
        mod.nope


def test_second_build_compiles_nothing(cache_dir):
    kernels = Path(__file__).parent.parent / "kernels"
    capsules.build([kernels], cache=cache_dir, jobs=2)
    results = capsules.build([kernels], cache=cache_dir)
    assert results and not any(r.built for r in results)
    assert len(results) == len(list(kernels.glob("*.py")))


def test_user_data_is_owned_by_the_callable(load_kernel):
    f = load_kernel("integrands").f
    callable_ = f.lowlevel(np.array([2.0, 99.0])[:1].copy())
    gc.collect()
    junk = [np.full(1000, 123.0) for _ in range(100)]  # reuse freed memory, if any was freed
    value, _ = integrate.nquad(callable_, [[0, 10], [-10, 0], [-1, 1]])
    assert value == pytest.approx(1200.0 + 200.0, rel=1e-12)  # c integrates to c * 200
    del junk


def test_user_data_copy_is_private(load_kernel):
    f = load_kernel("integrands").f
    values = np.array([1.0])
    callable_ = f.lowlevel(values)
    values[0] = 50.0
    assert integrate.nquad(callable_, [[0, 10], [-10, 0], [-1, 1]])[0] == pytest.approx(1200.0)


@pytest.mark.parametrize(
    ("user_data", "fragment"),
    [
        (None, "reads its user_data parameter 'cp'"),
        (12345678, "raw address"),
        (__import__("ctypes").c_void_p(1), "raw address or a ctypes object"),
        ([], "reads cp[0], but user_data has 0 value(s)"),
        (np.zeros((2, 2)), "not a 2-D array"),
        (["a"], "values of dtype <U1"),
        ([1j], "values of dtype complex128"),
    ],
)
def test_bad_user_data_refused(load_kernel, user_data, fragment):
    f = load_kernel("integrands").f
    with pytest.raises(capsules.UserDataError) as info:
        f.lowlevel(user_data)
    assert fragment in str(info.value)
    assert str(info.value).startswith(f"{f.spec.path}:4: ")


def test_edited_kernel_reloads_in_the_same_process(write_kernel, cache_dir):
    path = write_kernel(INTEGRAND.format(extra="1.0"))
    first = capsules.load(path, cache=cache_dir)
    v1 = integrate.quad(first.f.lowlevel([2.0]), 0, 1)[0]
    path.write_text(INTEGRAND.format(extra="5.0"))
    second = capsules.load(path, cache=cache_dir)
    v2 = integrate.quad(second.f.lowlevel([2.0]), 0, 1)[0]
    assert (v1, v2) == (pytest.approx(2.0), pytest.approx(6.0))
    assert first.entry.module_name != second.entry.module_name
    assert second.f.py(1, np.array([0.5]), np.array([2.0])) == 6.0


def test_build_false_needs_a_build(write_kernel, cache_dir):
    path = write_kernel(INTEGRAND.format(extra="7.25"))
    with pytest.raises(capsules.CapsulesError, match=r"no build of this source.*capsules build"):
        capsules.load(path, cache=cache_dir, build=False)
    capsules.build([path], cache=cache_dir)
    assert capsules.load(path, cache=cache_dir, build=False).f.py is not None


def test_damaged_entry_is_rebuilt_not_imported(write_kernel, tmp_path):
    cache = Cache(tmp_path / "cache")
    path = write_kernel(INTEGRAND.format(extra="3.0"))
    first = build_plan(plan(path), cache)
    assert first.built
    with open(first.entry.binary, "r+b") as f:  # flip bytes in the middle of the binary
        f.seek(first.entry.binary.stat().st_size // 2)
        f.write(b"\xde\xad\xbe\xef")
    assert cache.lookup(first.key) is None
    again = build_plan(plan(path), cache)
    assert again.built and again.key == first.key
    (again.entry.directory / "entry.json").write_text("{not json")
    assert cache.lookup(first.key) is None
    mod = capsules.load(path, cache=cache)
    assert integrate.quad(mod.f.lowlevel([1.0]), 0, 1)[0] == pytest.approx(3.5)


def test_concurrent_builds_compile_once(write_kernel, tmp_path):
    path = write_kernel(INTEGRAND.format(extra="11.0"))
    cache = tmp_path / "shared"
    script = (
        "import sys, capsules; r = capsules.build([sys.argv[1]], cache=sys.argv[2]);"
        "m = capsules.load(sys.argv[1], cache=sys.argv[2]);"
        "from scipy import integrate; v = integrate.quad(m.f.lowlevel([1.0]), 0, 1)[0];"
        "print(int(r[0].built), v)"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(path), str(cache)], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=300)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(int(o[0]) for o in outputs) == [0, 0, 1]
    assert all(float(o[1]) == pytest.approx(11.5) for o in outputs)
    assert list((cache / "v1" / "tmp").iterdir()) == []


def test_cache_directory_is_private(tmp_path):
    cache = Cache(tmp_path / "fresh")
    for path in (cache.root, cache.base, cache.base / "tmp"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702])
def test_cache_writable_by_others_is_refused(tmp_path, mode):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    with pytest.raises(capsules.CacheError, match="writable by others"):
        Cache(shared)


def test_cache_location_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPSULES_CACHE", str(tmp_path / "from-env"))
    assert Cache().root == tmp_path / "from-env"


def test_native_key_names_the_cpu_and_portable_does_not():
    native_key, native = cache_key(b"x", ("-march=native",), native=True)
    portable_key, portable = cache_key(b"x", ("-mtune=generic",), native=False)
    assert native["cpu"] and portable["cpu"] is None
    assert native_key != portable_key
    for field in ("source_sha256", "pythran", "flags", "python", "ext_suffix", "numpy", "platform"):
        assert field in native


def test_generator_code_is_part_of_the_key():
    from capsules.key import generator_digest, generator_files

    _, inputs = cache_key(b"x", ("-O3",), native=False)
    assert inputs["generator"] == generator_digest() and len(inputs["generator"]) == 64
    # found, not listed by hand: the generation package with its headers and template, the
    # compiler process, and the modules the package imports
    files = {path.relative_to(Path(capsules.__file__).parent).as_posix() for path in generator_files()}
    assert {"generate/entries.py", "generate/adapters.py", "generate/entry.cpp.in", "generate/runtime/part.hpp",
            "child/job.py", "natural.py", "signatures.py"} <= files


def test_compiler_environment_is_part_of_the_key(monkeypatch):
    base, _ = cache_key(b"x", ("-O3",), native=False)
    for name, value in [("CXXFLAGS", "-O0"), ("LDFLAGS", "-s"), ("CXX", "clang++"), ("CPPFLAGS", "-DX")]:
        monkeypatch.setenv(name, value)
        changed, inputs = cache_key(b"x", ("-O3",), native=False)
        assert changed != base and inputs["toolchain"]["env"][name] == value
        monkeypatch.delenv(name)
    assert cache_key(b"x", ("-O3",), native=False)[0] == base


def test_entry_records_what_went_into_it(load_kernel):
    entry = load_kernel("integrands").entry
    data = json.loads((entry.directory / "entry.json").read_text())
    assert data["returns"] == {"f": "float64"}
    assert "-march=native" in data["inputs"]["flags"] and "-O3" in data["inputs"]["flags"]


INTEGER_RETURN = """
#pythran export capsule g(int32, float64*, float64*)
def g(n, x, cp):
    return n + 1
"""
NONE_RETURN = """
#pythran export capsule t(int64*, float64*, int32, int32, float64*)
def t(out, inp, out_rank, in_rank, data):
    inp[0] = out[0]
"""
FLOAT_RETURN = """
#pythran export capsule t(int64*, float64*, int32, int32, float64*)
def t(out, inp, out_rank, in_rank, data):
    inp[0] = out[0]
    return 1.0
"""


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (INTEGER_RETURN, "'g' returns int64 (pythran infers it), but quad, dblquad, tplquad, nquad read a C double"),
        (NONE_RETURN, "'t' returns None (pythran infers it), but geometric_transform read a C int"),
        (FLOAT_RETURN, "'t' returns float64 (pythran infers it), but geometric_transform read a C int"),
    ],
)
def test_wrong_return_type_refused_at_build(write_kernel, cache_dir, text, fragment):
    path = write_kernel(text)
    with pytest.raises(capsules.SignatureError) as info:
        capsules.build([path], cache=cache_dir)
    assert str(info.value).startswith(f"{path}:1: ")
    assert fragment in str(info.value)
    with pytest.raises(capsules.CapsulesError):
        capsules.load(path, cache=cache_dir, build=False)


TYPE_ERROR = """
#pythran export capsule f(int32, float64*, float64*)
def f(n, x, cp):
    return cp[0] + [1.0]
"""
PYTHRAN_ERROR = """
#pythran export capsule f(int32, float64*, float64*)
def f(n, x, cp):
    return cp[0] + undefined_name
"""


@pytest.mark.parametrize(
    ("text", "start"),
    [(TYPE_ERROR, ":2: C++ compilation of 'f' failed\n"), (PYTHRAN_ERROR, ":3: pythran: Unbound identifier")],
)
def test_compile_error_is_short_and_located(write_kernel, cache_dir, text, start):
    path = write_kernel(text)
    with pytest.raises(capsules.BuildError) as info:
        capsules.build([path], cache=cache_dir)
    err = info.value
    text = str(err)
    assert text.startswith(f"{path}{start}")
    assert len(text.splitlines()) <= 25
    assert err.log_path and Path(err.log_path).is_file() and Path(err.log_path).stat().st_size > 0
    assert err.log_path in text


def test_python_m_capsules_runs(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "capsules", "list", str(Path(__file__).parent.parent / "kernels")],
        capture_output=True, text=True, env={**os.environ, "CAPSULES_CACHE": str(tmp_path / "c")},
    )
    assert out.returncode == 0, out.stderr
    assert "double (int, double *, void *)" in out.stdout


@pytest.mark.compile
@pytest.mark.parametrize("checked", [False, True], ids=["default", "checked"])
def test_pythran_errors_name_the_users_line_in_every_build(write_kernel, cache_dir, checked):
    path = write_kernel("# a comment\n" + PYTHRAN_ERROR)  # a comment, a blank line: the error is on line 5
    with pytest.raises(capsules.BuildError, match=rf"^{re.escape(str(path))}:5: pythran: Unbound identifier"):
        capsules.build([path], cache=cache_dir, checked=checked)


@pytest.mark.compile
def test_a_two_line_export_comment_builds_checked_too(write_kernel, cache_dir):
    path = write_kernel(
        "#pythran export capsule f(int32,\n#                         float64*)\ndef f(n, x):\n    return x[0] / 2.0\n"
    )
    for checked in (False, True):
        mod = capsules.load(path, cache=cache_dir, checked=checked)
        assert mod.f.signature == "double (int, double *)"
