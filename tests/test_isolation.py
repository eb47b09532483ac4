"""Builds do not depend on where they are started: the compiler child is isolated.

A user's project root (a ``pyproject.toml`` setuptools cannot read, a
``setup.py``), modules shadowing the standard library or capsules itself, and
a ``.pythranrc`` in the current directory must neither break a build nor
change what it produces.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import capsules

KERNELS = Path(__file__).resolve().parent.parent / "kernels"

RAISE = "raise ImportError('{name} in the current directory must not be imported')\n"
HOSTILE = {
    # setuptools >= 61 validates this and fails on the missing module and,
    # before 77, on the PEP 639 license string
    "pyproject.toml": textwrap.dedent(
        """
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "myproj"
        dynamic = ["version"]
        license = "BSD-3-Clause"

        [tool.setuptools.dynamic]
        version = {attr = "myproj.__version__"}
        """
    ),
    "setup.py": "raise SystemExit('setup.py in the current directory must not run')\n",
    "setup.cfg": "[metadata\nthis is not a config file\n",
    ".pythranrc": "[compiler]\ncflags=-this-flag-does-not-exist\n",
    "math.py": RAISE.format(name="math.py"),
    "random.py": RAISE.format(name="random.py"),
    "numpy.py": RAISE.format(name="numpy.py"),
    "pythran.py": RAISE.format(name="pythran.py"),
    "capsules/__init__.py": RAISE.format(name="capsules/"),
}


@pytest.fixture
def hostile_dir(tmp_path: Path) -> Path:
    """A project root holding everything that broke builds started from it, plus a kernel."""
    root = tmp_path / "project"
    for name, text in HOSTILE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    shutil.copy(KERNELS / "integrands.py", root / "integrands.py")
    return root


def _private(path: Path) -> Path:
    path.mkdir(mode=0o700)
    return path


def _binary_sha256(entry: capsules.cache.Entry) -> str:
    return hashlib.sha256(entry.binary.read_bytes()).hexdigest()


@pytest.mark.compile
def test_build_started_in_a_hostile_project_root_matches_a_clean_one(hostile_dir, tmp_path, monkeypatch):
    clean = capsules.build([KERNELS / "integrands.py"], cache=_private(tmp_path / "clean"))[0]
    monkeypatch.chdir(hostile_dir)
    # a relative path, as a user standing there would type it
    hostile = capsules.build(["integrands.py"], cache=_private(tmp_path / "hostile"))[0]
    assert hostile.built and hostile.key == clean.key
    assert _binary_sha256(hostile.entry) == _binary_sha256(clean.entry)
    assert "myproj" not in (hostile.entry.directory / "build.log").read_text()


@pytest.mark.compile
def test_loaded_in_a_hostile_project_root_gives_the_reference_result(hostile_dir, tmp_path, monkeypatch):
    from scipy import integrate

    monkeypatch.chdir(hostile_dir)
    mod = capsules.load("integrands.py", cache=_private(tmp_path / "cache"))
    result, _ = integrate.nquad(mod.f.lowlevel(user_data=[1.0]), [[0, 10], [-10, 0], [-1, 1]])
    assert result == pytest.approx(1200.0, rel=1e-12)


def _console_script() -> Path:
    script = Path(sys.executable).parent / "capsules"
    if not script.exists():
        pytest.skip(f"no 'capsules' command beside {sys.executable} (capsules is not installed here)")
    return script


@pytest.mark.compile
def test_cli_in_a_hostile_project_root(hostile_dir, tmp_path):
    cache = _private(tmp_path / "cache")
    for args in (["check", "integrands.py"], ["list", "integrands.py"], ["build", "integrands.py", "--force"]):
        done = subprocess.run(
            [str(_console_script()), *args, *(["--cache", str(cache)] if args[0] == "build" else [])],
            cwd=hostile_dir, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Traceback" not in done.stdout + done.stderr
    assert "1 module(s), 1 compiled" in done.stdout


def test_other_compilers_get_gccs_layout_flags_as_they_take_them():
    from capsules.child.commands import _for_other_compilers

    flags = ["-O3", "-funroll-loops", "--param=max-unrolled-insns=24", "-falign-loops=32:16:16",
             "--param=align-loop-iterations=8", "-fno-plt", "--param=other=1"]
    assert _for_other_compilers(flags) == ["-O3", "-funroll-loops", "-falign-loops=32", "-fno-plt", "--param=other=1"]


@pytest.mark.compile
@pytest.mark.parametrize("portable", [False, True], ids=["native", "every-level"])
def test_a_second_compiler_builds_the_same_results(tmp_path, monkeypatch, portable):
    if shutil.which("clang++") is None:
        pytest.skip("clang++ is not installed (Debian: apt-get install clang); .ci/run installs it as root")
    import ctypes

    import numpy as np

    monkeypatch.setenv("CXX", "clang++")
    mod = capsules.load(KERNELS / "genz.py", cache=_private(tmp_path / "clang"), portable=portable)
    assert "clang" in (mod.entry.directory / "build.log").read_text().splitlines()[0]
    rng = np.random.default_rng(7)
    double_p = ctypes.POINTER(ctypes.c_double)
    for kernel in mod:
        fn = kernel.as_ctypes()
        for n in (1, 3):
            data = np.concatenate([rng.uniform(0.1, 3.0, n), rng.uniform(0.0, 1.0, n)])
            x = rng.uniform(0.0, 1.0, n)
            # -ffp-contract=off: no fused multiply-adds, so clang's build equals plain Python too
            assert fn(n, x.ctypes.data_as(double_p), data.ctypes.data) == kernel.py(n, x, data)
