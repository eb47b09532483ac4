"""The capsules command, run in-process through main(argv)."""

from __future__ import annotations

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
    assert main(["list", str(path)]) == 0
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
