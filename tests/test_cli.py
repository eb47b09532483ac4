"""The capsules command, run in-process through main(argv)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from capsules.cli import main

KERNELS = Path(__file__).resolve().parent.parent / "kernels"


def test_list_shows_exact_signatures(capsys):
    assert main(["list", str(KERNELS / "integrands.py"), str(KERNELS / "shift.py")]) == 0
    out = capsys.readouterr().out
    assert "integrands.f" in out and "double (int, double *, void *)" in out
    assert "quad, dblquad, tplquad, nquad" in out
    assert out.count("int (npy_intp *, double *, int, int, void *)") == 2
    assert "geometric_transform" in out


def test_list_shows_plain_exports(write_kernel, capsys):
    path = write_kernel("#pythran export norm2(float64[:])\ndef norm2(v):\n    return (v * v).sum()\n")
    assert main(["list", "--wide", str(path)]) == 0
    assert "kernel.norm2  norm2(float64[:])  (Python function, not a capsule)" in capsys.readouterr().out


def test_check_passes_on_bundled_kernels(capsys):
    assert main(["check", str(KERNELS)]) == 0
    assert capsys.readouterr().out.startswith("ok: ")


def test_check_reports_every_problem_with_location(write_kernel, capsys):
    path = write_kernel(
        "#pythran export capsule f(int32, float32*, float64*)\ndef f(n, x, cp):\n    return x[0]\n\n"
        "#pythran export capsule g(float64)\ndef h(x):\n    return x\n"
    )
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:1: 'f': argument 2 'x' is float32*" in err
    assert f"{path}:5: export names 'g'" in err
    assert "2 problem(s) in 1 file(s)" in err


@pytest.mark.compile
def test_build_then_up_to_date_then_clean(tmp_path, capsys):
    cache = str(tmp_path / "cache")
    source = str(KERNELS / "integrands.py")
    assert main(["build", source, "--cache", cache]) == 0
    assert capsys.readouterr().out.startswith("built ")
    assert main(["build", source, "--cache", cache]) == 0
    out = capsys.readouterr().out
    assert out.startswith("up to date ") and "0 compiled" in out
    assert main(["clean", "--cache", cache]) == 0
    assert "removed 1 build(s)" in capsys.readouterr().out
    assert main(["build", source, "--cache", cache]) == 0
    assert capsys.readouterr().out.startswith("built ")


@pytest.mark.compile
def test_build_into_a_cache_named_relative_to_the_current_folder(write_kernel, tmp_path, capsys, monkeypatch):
    path = write_kernel("#pythran export capsule f(float64)\ndef f(x):\n    return 2.0 * x\n")
    monkeypatch.chdir(tmp_path)
    assert main(["build", path.name, "--cache", "relative-cache"]) == 0
    assert capsys.readouterr().out.startswith("built ")
    assert main(["build", path.name, "--cache", "relative-cache"]) == 0
    assert capsys.readouterr().out.startswith("up to date ")
    assert list((tmp_path / "relative-cache" / "v1").glob("*/entry.json"))


@pytest.mark.compile
def test_build_failure_exits_1_and_keeps_going(write_kernel, tmp_path, capsys):
    bad = write_kernel("#pythran export capsule g(int32, float64*, float64*)\ndef g(n, x, cp):\n    return n\n")
    code = main(["build", str(bad), str(KERNELS / "integrands.py"), "--cache", str(tmp_path / "c"), "-j", "2"])
    captured = capsys.readouterr()
    assert code == 1
    assert f"{bad}:1: 'g' returns int" in captured.err
    assert "built " in captured.out  # the good module was still built
    assert "1 of 2 module(s) failed" in captured.err


def test_missing_path_is_an_error(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nope")]) == 1
    assert "no such file or directory" in capsys.readouterr().err


def test_cli_imports_stay_light():
    # a no-op 'capsules build' must not pay for the demo's SciPy imports
    import subprocess
    import sys

    code = "import sys, capsules.cli; print(sorted(m for m in ('capsules.demo', 'scipy.ndimage') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_list_fits_100_columns_unless_wide(capsys):
    examples = KERNELS.parent / "examples"
    assert main(["list", str(KERNELS), str(examples)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= 100
    assert "    accepted by: quad, dblquad, tplquad, nquad" in lines
    assert "    pythran export: fib(int)" in lines
    assert main(["list", "--wide", str(KERNELS), str(examples)]) == 0
    wide = capsys.readouterr().out.splitlines()
    assert max(map(len, wide)) > 100 and any(line.startswith("arrays.fib ") and "fib(int)" in line for line in wide)


DECORATED = """
import capsules


@capsules.integrand("x; a")
def scaled(x, a):
    return a * x
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with kernels at several depths, a decorated script, and folders a scan must skip."""
    kernel = "#capsules integrand f(x)\ndef f(x):\n    return {} * x\n"
    for folder in ("pkg/sub", ".hidden", "venv", "pkg/__pycache__", "notes"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    (tmp_path / "top.py").write_text(kernel.format(1.0))
    (tmp_path / "pkg" / "sub" / "deep.py").write_text(kernel.format(2.0))
    (tmp_path / "pkg" / "deco.py").write_text(DECORATED)
    (tmp_path / "pkg" / "plain.py").write_text("def helper():\n    return 1\n")
    # a decorator of the same name from elsewhere is not capsules'
    (tmp_path / "pkg" / "other.py").write_text("from mylib import filter\n\n@filter\ndef g():\n    pass\n")
    for skipped in (".hidden", "venv", "pkg/__pycache__"):
        (tmp_path / skipped / "k.py").write_text(kernel.format(3.0))
    (tmp_path / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    return tmp_path


def test_folders_are_searched_recursively_for_every_kind_of_kernel(project, capsys):
    assert main(["check", str(project)]) == 0
    assert capsys.readouterr().out == "ok: 3 capsule(s) in 3 file(s)\n"
    assert main(["list", str(project)]) == 0
    out = capsys.readouterr().out
    assert {line.split()[0] for line in out.splitlines()[1:] if not line.startswith(" ")} == {
        "top.f", "deep.f", "deco.scaled"
    }


def test_a_folder_with_nothing_to_build_says_so(project, capsys):
    for command in ("check", "list", "build"):
        assert main([command, str(project / "notes")]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"{project / 'notes'}: no kernel file in this folder or below")


@pytest.mark.compile
def test_clean_removes_only_the_builds_of_the_given_sources(project, tmp_path, capsys):
    cache = str(tmp_path / "cache")
    assert main(["build", str(project), "--cache", cache]) == 0
    assert "3 module(s), 3 compiled" in capsys.readouterr().out
    assert main(["clean", str(project / "pkg"), "--cache", cache]) == 0
    assert f"removed 2 build(s) from {tmp_path / 'cache'} made from {project / 'pkg'}" in capsys.readouterr().out
    assert main(["build", str(project), "--cache", cache]) == 0
    assert "3 module(s), 2 compiled" in capsys.readouterr().out
    (project / "top.py").unlink()  # a deleted file's builds can still be cleaned
    assert main(["clean", str(project / "top.py"), "--cache", cache]) == 0
    assert "removed 1 build(s)" in capsys.readouterr().out


@contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    """``folder``'s entries cannot be removed: its mode for a user, the immutable attribute for root."""
    if os.getuid() != 0:
        folder.chmod(0o500)
        undo = ["chmod", "700", str(folder)]
    elif shutil.which("chattr") and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
        undo = ["chattr", "-i", str(folder)]
    else:
        pytest.skip("root removes files from read-only folders, and chattr +i is not available here")
    try:
        yield
    finally:
        subprocess.run(undo, check=True)


@pytest.mark.compile
def test_clean_of_a_read_only_cache_says_it_removed_nothing(tmp_path, capsys):
    cache = tmp_path / "cache"
    assert main(["build", str(KERNELS / "integrands.py"), "--cache", str(cache)]) == 0
    with _read_only(cache / "v1"):
        assert main(["clean", "--cache", str(cache)]) == 1
        assert "cannot remove" in capsys.readouterr().err
    assert len(list((cache / "v1").glob("*/entry.json"))) == 1


@pytest.mark.parametrize("into", ["a-file", "a-file/sub"])
def test_build_into_a_file_is_one_message_naming_it(tmp_path, into):
    import sys

    (tmp_path / "a-file").write_text("not a folder\n")
    done = subprocess.run(
        [sys.executable, "-m", "capsules", "build", str(KERNELS / "integrands.py"), "--into", into,
         "--cache", str(tmp_path / "cache")],
        cwd=tmp_path, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr and "capsules/" not in done.stderr
    assert done.stderr.startswith(f"{into}: "), done.stderr
    assert "not a directory" in done.stderr.lower()
    assert (tmp_path / "a-file").read_text() == "not a folder\n"
