"""Inputs a careful user may still hand over: odd files, odd names, encodings, pipes, a missing compiler."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from scipy import integrate

import capsules
from capsules.cli import main

ROOT = Path(__file__).resolve().parent.parent
KERNELS = ROOT / "kernels"
F = "#pythran export capsule f(int32, float64*)\ndef f(n, x):\n    return x[0] * 2.0\n"


def _cli(*args: str, cwd: Path = ROOT, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "capsules", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env=env, stdin=subprocess.DEVNULL, check=False,
    )


@pytest.mark.parametrize("command", ["check", "list", "build"])
def test_a_fifo_is_refused_instead_of_blocking(tmp_path, command):
    fifo = tmp_path / "kernel.py"
    os.mkfifo(fifo)
    extra = ["--cache", str(tmp_path / "cache")] if command == "build" else []
    done = _cli(command, str(fifo), *extra, timeout=60)
    assert done.returncode == 1 and "not a regular file" in done.stderr and "Traceback" not in done.stderr
    with pytest.raises(capsules.SpecError, match="not a regular file"):
        capsules.load(fifo, cache=tmp_path / "cache")


@pytest.mark.compile
def test_a_file_name_that_is_no_identifier_still_imports(tmp_path, cache_dir):
    path = tmp_path / "ké rnel-1.py"
    path.write_text(F)
    mod = capsules.load(path, cache=cache_dir)
    assert mod.entry.module_name.isascii() and mod.entry.module_name.isidentifier()
    assert integrate.quad(mod.f.lowlevel(), 0, 1)[0] == pytest.approx(1.0)


@pytest.mark.compile
@pytest.mark.parametrize(
    "data",
    [
        b"# -*- coding: latin-1 -*-\n# caf\xe9 au lait\n" + F.encode(),
        b"\xef\xbb\xbf" + F.encode(),  # a UTF-8 byte order mark
    ],
    ids=["pep263-latin-1", "utf-8-bom"],
)
def test_check_and_build_read_encodings_as_python_does(tmp_path, cache_dir, capsys, data):
    path = tmp_path / "encoded.py"
    path.write_bytes(data)
    assert main(["check", str(path)]) == 0
    mod = capsules.load(path, cache=cache_dir)
    assert mod.f.py(1, [0.5]) == 1.0
    assert integrate.quad(mod.f.lowlevel(), 0, 1)[0] == pytest.approx(1.0)


def test_undecodable_bytes_are_a_located_error(tmp_path, capsys):
    path = tmp_path / "bad.py"
    path.write_bytes(b"# ok\n# caf\xe9 without a coding line\n" + F.encode())
    assert main(["check", str(path)]) == 1
    assert f"{path}:2: cannot decode the kernel file" in capsys.readouterr().err


def test_check_and_build_agree_on_an_empty_file(tmp_path, capsys):
    path = tmp_path / "empty.py"
    path.write_text("")
    assert main(["check", str(path)]) == 1
    checked = capsys.readouterr().err
    assert main(["build", str(path), "--cache", str(tmp_path / "cache")]) == 1
    built = capsys.readouterr().err
    assert "nothing to build" in checked and "nothing to build" in built


def test_a_closed_pipe_ends_quietly(tmp_path):
    done = subprocess.run(
        f"{sys.executable} -m capsules list {KERNELS} | head -1", shell=True, cwd=ROOT, capture_output=True,
        text=True, timeout=120, check=False,
    )
    assert done.stdout.startswith("kernel") and "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


@pytest.mark.compile
def test_a_missing_compiler_is_one_clear_error(tmp_path):
    (tmp_path / "k.py").write_text(F)
    env = {**os.environ, "CXX": "/nonexistent/c++"}
    done = _cli("build", str(tmp_path / "k.py"), "--cache", str(tmp_path / "cache"), env=env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "cannot run the C++ compiler '/nonexistent/c++'" in done.stderr


@pytest.mark.compile
def test_const_applies_to_the_file_that_declares_the_kernel(tmp_path, cache_dir, capsys):
    assert main(["build", str(KERNELS), "--cache", str(cache_dir), "--const", "moving_average.length=9", "-j", "2"]) == 0
    assert main(["build", str(KERNELS), "--cache", str(cache_dir), "--const", "no_such_kernel.x=1"]) == 1
    assert "constants name 'no_such_kernel', which no file being built declares" in capsys.readouterr().err


@pytest.mark.compile
def test_a_file_name_as_long_as_the_file_system_allows_builds(tmp_path):
    name = "k" * (os.pathconf(tmp_path, "PC_NAME_MAX") - len(".py"))
    path = tmp_path / f"{name}.py"
    path.write_text(F)
    done = _cli("build", path.name, "--cache", str(tmp_path / "cache"), "--into", "__capsules__", cwd=tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    mod = capsules.load(path, cache=tmp_path / "cache")
    assert mod.entry.directory == tmp_path / "__capsules__" / name  # the prebuilt copy, by the file's own name
    assert integrate.quad(mod.f.lowlevel(), 0, 1)[0] == pytest.approx(1.0)


@pytest.mark.compile
def test_a_latin_1_kernel_builds_and_its_failures_show_its_line_as_python_reads_it(tmp_path):
    # latin-1 bytes in remarks on the export comment and under it, and in a string, whose length a wrong
    # decoding would change
    kernel = (b"# -*- coding: latin-1 -*-\n#pythran export capsule f(int32, float64*)  # caf\xe9\n# \xb5: a remark\n"
              b"def f(n, x):\n    return x[0] * len(\"caf\xe9\")\n")
    (tmp_path / "good.py").write_bytes(kernel)
    (tmp_path / "bad.py").write_bytes(kernel.replace(b"x[0] *", b"unknown_name *"))
    mod = capsules.load(tmp_path / "good.py", cache=tmp_path / "cache")
    assert integrate.quad(mod.f.lowlevel(), 0, 1)[0] == mod.f.py(1, [0.5]) == 2.0
    done = _cli("build", "bad.py", "--cache", str(tmp_path / "cache"), cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "bad.py:5: pythran: Unbound identifier unknown_name" in done.stderr
    assert '    return unknown_name * len("café")\n' in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("comment", "line", "name"),
    [
        ("#pythran export capsule fé(int32, float64*)\ndef fé(n, x):\n", 3, "fé"),
        ("#pythran export capsule f(int32, float64*)\n#pythran export fé(float64)\ndef f(n, x):\n", 4, "fé"),
        ("#capsules integrand f(x; α)\ndef f(x, α):\n", 3, "α"),
        ("#pythran export capsule f(int32, float64*), gé(float64)\ndef f(n, x):\n", 3, "gé"),
    ],
)
def test_a_name_outside_ascii_in_a_kernel_comment_is_one_located_message(tmp_path, comment, line, name):
    (tmp_path / "names.py").write_text("import math\n\n" + comment + "    return 1.0\n", encoding="utf-8")
    done = _cli("check", "names.py", cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr and "IndexError" not in done.stderr
    assert done.stderr.startswith(f"names.py:{line}: '{name}' is not an ASCII name: "), done.stderr
    assert "rename it with ASCII letters, digits and '_'" in done.stderr


def test_a_remark_outside_ascii_after_a_kernel_comment_is_no_name(tmp_path):
    natural = "#capsules integrand g(x; a)  # µ: a remark\ndef g(x, a):\n    return a * x\n"
    text = F.replace("\n", "  # café, µ\n# ½: a remark under it\n", 1) + natural
    (tmp_path / "remark.py").write_text(text, encoding="utf-8")
    done = _cli("check", "remark.py", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("ok: 2 capsule"), done.stderr


@pytest.mark.compile
def test_a_script_name_as_long_as_the_file_system_allows_builds_its_decorated_kernels(tmp_path):
    name = "s" * (os.pathconf(tmp_path, "PC_NAME_MAX") - len(".py"))
    (tmp_path / f"{name}.py").write_text(
        "import capsules\nfrom scipy import integrate\n\n\n@capsules.integrand('x; a')\ndef wave(x, a):\n"
        "    return a * x\n\n\nprint(integrate.quad(wave.lowlevel(a=2.0), 0, 1)[0])\n"
    )
    env = {**os.environ, "CAPSULES_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, f"{name}.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert float(done.stdout) == pytest.approx(1.0)
