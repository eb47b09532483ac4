"""Compiler processes started ahead of their builds (capsules.workers): used when they can be, never when not."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from scipy import integrate

import capsules
from capsules import workers

pytestmark = pytest.mark.compile

KERNEL = """\
from math import exp

#pythran export capsule f(float64)
def f(x):
    return exp(-SCALE * x * x)
"""


@pytest.fixture
def private_cache(tmp_path: Path) -> capsules.Cache:
    root = tmp_path / "cache"
    root.mkdir(mode=0o700)
    return capsules.Cache(root)


@pytest.fixture
def interactive(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As in IPython: a spare is kept between builds."""
    monkeypatch.setattr(workers, "interactive", lambda: True)
    yield
    workers.retire()


def _kernel(tmp_path: Path, name: str, scale: float) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(KERNEL.replace("SCALE", repr(scale)))
    return path


def _check(path: Path, cache: capsules.Cache, scale: float) -> None:
    # against the closed form: the integral of exp(-s x^2) over the line is sqrt(pi / s)
    value, _ = integrate.quad(capsules.load(path, cache=cache).f.lowlevel(), -50, 50)
    assert value == pytest.approx((3.141592653589793 / scale) ** 0.5, rel=1e-10)


def test_a_batch_leaves_no_process_behind(private_cache: capsules.Cache, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "interactive", lambda: False)
    started: list[workers._Spare] = []
    start = workers._start
    monkeypatch.setattr(workers, "_start", lambda command: started.append(start(command)) or started[-1])
    paths = [_kernel(tmp_path, f"k{i}", 1.0 + i) for i in range(3)]
    capsules.build(paths, cache=private_cache, jobs=1)
    for i, path in enumerate(paths):
        _check(path, private_cache, 1.0 + i)
    # the first build starts its own process; each sent request starts the next one's, but the last
    assert len(started) == 3
    assert not workers._IDLE
    assert all(spare.process.poll() is not None for spare in started)


def test_interactive_session_keeps_a_spare_that_the_next_build_uses(
    private_cache: capsules.Cache, tmp_path: Path, interactive: None
) -> None:
    workers.retire()
    capsules.build([_kernel(tmp_path, "first", 1.0)], cache=private_cache)
    (spare,) = workers._IDLE
    capsules.build([_kernel(tmp_path, "second", 2.0)], cache=private_cache)
    assert spare.process.returncode == 0  # it built the second module and exited
    _check(tmp_path / "second.py", private_cache, 2.0)
    assert len(workers._IDLE) == 1 and workers._IDLE[0] is not spare


def test_a_changed_environment_is_not_served_by_an_older_spare(
    private_cache: capsules.Cache, tmp_path: Path, interactive: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    workers.retire()
    capsules.build([_kernel(tmp_path, "first", 1.0)], cache=private_cache)
    (spare,) = workers._IDLE
    monkeypatch.setenv("CAPSULES_CXXFLAGS", "-DCAPSULES_TEST_FLAG=1")
    (result,) = capsules.build([_kernel(tmp_path, "second", 2.0)], cache=private_cache)
    assert spare.process.returncode is not None and spare.process.returncode != 0  # stopped, not used
    assert "-DCAPSULES_TEST_FLAG=1" in (result.entry.binary.parent / "build.log").read_text()


def test_a_dead_spare_is_replaced(private_cache: capsules.Cache, tmp_path: Path, interactive: None) -> None:
    workers.retire()
    capsules.build([_kernel(tmp_path, "first", 1.0)], cache=private_cache)
    (spare,) = workers._IDLE
    spare.process.kill()
    spare.process.wait()
    capsules.build([_kernel(tmp_path, "second", 3.0)], cache=private_cache)
    _check(tmp_path / "second.py", private_cache, 3.0)


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="reads a process's folder from /proc (Linux)")
def test_a_spare_works_in_the_build_folder_not_where_it_started(
    private_cache: capsules.Cache, tmp_path: Path, interactive: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    workers.retire()
    monkeypatch.chdir(tmp_path)
    capsules.build([_kernel(tmp_path, "first", 1.0)], cache=private_cache)
    (spare,) = workers._IDLE
    assert os.readlink(f"/proc/{spare.process.pid}/cwd") == os.path.abspath(os.sep)
    (result,) = capsules.build([_kernel(tmp_path, "second", 2.0)], cache=private_cache)
    log = (result.entry.binary.parent / "build.log").read_text()
    assert "second" in log.splitlines()[0]  # the compiler's command went to this build's log
    assert not list(tmp_path.glob("*.cpp"))



COMMAND = """
import sys
sys.argv = ["/venv/bin/capsules", *sys.argv[1:]]
import capsules  # as the console script does, through capsules.cli
from capsules import workers
early = list(workers._IDLE)
print(len(early))
from capsules.cli import main
code = main(sys.argv[1:])
print(code, len(workers._IDLE), [spare.process.wait() for spare in early])
"""


@pytest.mark.parametrize(("build", "expected"), [(True, ["1", "0 0 [0]"]), (False, ["0", "0 0 []"])])
def test_the_build_command_starts_its_compiler_process_before_the_imports(
    tmp_path: Path, build: bool, expected: list[str]
) -> None:
    import subprocess
    import sys

    path = str(_kernel(tmp_path, "early", 2.0))
    argv = ["build", path, "--cache", str(tmp_path / "cache")] if build else ["check", path]
    done = subprocess.run([sys.executable, "-c", COMMAND, *argv], capture_output=True, text=True, check=False,
                          timeout=300)
    lines = done.stdout.splitlines()
    # one process, started by the import; it built the module (exit status 0, where an unused spare is killed)
    assert [lines[0], lines[-1]] == expected, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("program", "given", "expected"),
    [
        ("/venv/bin/capsules", [], True),
        ("-m", ["python3", "-I", "-m", "capsules", "build"], True),
        ("-m", ["python3", "-m", "mypackage", "build"], False),
        ("analysis.py", ["python3", "analysis.py", "build"], False),
    ],
)
def test_the_command_is_its_console_script_or_python_m_capsules(
    monkeypatch: pytest.MonkeyPatch, program: str, given: list[str], expected: bool
) -> None:
    import sys

    monkeypatch.setattr(sys, "orig_argv", given, raising=False)
    assert workers._the_command(program) is expected
