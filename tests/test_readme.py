"""The README, followed as a newcomer would, in a copy of this checkout.

The install command runs as the README prints it, in a new virtual environment that installs this checkout, never the
unrelated ``capsules`` on the package index.  Then the quickstart runs from
the clone's root, the demo from outside the clone (the installed package
carries its kernels), and all of it again after the first environment was
re-created in place the way the old test command did, which upgraded its
setuptools under it.  Sections that moved from the README into the
documentation are followed from their pages in docs/ the same way.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"

pytestmark = [pytest.mark.compile, pytest.mark.readme]


def _blocks(language: str, page: Path = README) -> list[str]:
    return [b.strip() for b in re.findall(rf"```{language}\n(.*?)```", page.read_text(), re.S)]


def install_command() -> str:
    return next(b for b in _blocks("sh") if "capsules demo" in b and "venv" in b)


def test_command() -> str:
    return next(b for b in _blocks("sh") if "tox" in b and "venv" in b)


test_command.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def quickstart() -> str:
    return next(b for b in _blocks("python") if 'capsules.load("kernels/integrands.py")' in b)


def _venv_dir(command: str) -> str:
    found = re.search(r"python3 -m venv (\S+)", command)
    assert found, command
    return found.group(1)


def test_the_two_readme_commands_use_separate_environments():
    assert _venv_dir(install_command()) != _venv_dir(test_command())
    assert ".ci/run" in README.read_text()
    assert test_command() in (ROOT / ".ci" / "run").read_text()
    assert test_command() in _blocks("sh", DOCS / "development.md")


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files a fresh clone has (tracked, plus new files git does not ignore), as in the working tree."""
    target = tmp_path_factory.mktemp("readme") / "capsules"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=False,
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout: cannot tell which files a clone has")
    for name in filter(None, listed.stdout.decode().split("\0")):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The caller's environment with this Python first on PATH and a private build cache."""
    cache = tmp_path_factory.mktemp("readme-cache")
    cache.chmod(0o700)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["CAPSULES_CACHE"] = str(cache)
    return env


def _sh(command: str, cwd: Path, env: dict[str, str], timeout: float = 900) -> str:
    done = subprocess.run(
        ["bash", "-c", f"set -eo pipefail; {command}"], cwd=cwd, env=env, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=timeout, check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{command}\n{output}"
    assert "Traceback" not in output, output
    return output


REPL = """
import ast, sys
for node in ast.parse(sys.stdin.read()).body:  # like the interactive prompt: echo expression values
    exec(compile(ast.Interactive([node]), "<quickstart>", "single"))
"""


def _quickstart(clone: Path, env: dict[str, str]) -> None:
    venv = clone / _venv_dir(install_command())
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", REPL], input=quickstart(), cwd=clone, env=env,
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    first = re.search(r"^\(([-\d.e+]+), ", done.stdout, re.M)
    assert first and float(first.group(1)) == pytest.approx(1200.0, rel=1e-12), done.stdout
    assert "'double (int, double *, void *)'" in done.stdout


def inline_quickstart() -> str:
    return next(b for b in _blocks("python") if b.startswith("# wave.py"))


def _inline_quickstart(clone: Path, env: dict[str, str]) -> None:
    """The README's inline kernel, saved as the script it names and run with the installed Python."""
    (clone / "wave.py").write_text(inline_quickstart() + "\n")
    venv = clone / _venv_dir(install_command())
    done = subprocess.run([str(venv / "bin" / "python"), "wave.py"], cwd=clone, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    # x in [0, 1] outside, y in [0, 2] inside: (cos a + cos 2b - cos(a + 2b) - 1) / ab, with a = 1, b = 2;
    # the kernel with its variables swapped integrates to (2 cos 2 - cos 4 - 1) / 2 instead
    exact = (math.cos(1.0) + math.cos(4.0) - math.cos(5.0) - 1.0) / 2.0
    value, printed_exact, python = (float(line) for line in done.stdout.split())
    assert value == pytest.approx(exact, rel=1e-12) and printed_exact == exact, done.stdout
    assert abs(value - (2 * math.cos(2.0) - math.cos(4.0) - 1.0) / 2.0) > 0.05
    assert python == math.cos(0.5 + 2 * 2.0)  # wave(y=2.0, x=0.5, a=1.0, b=2.0) as plain Python


def _demo_ok(output: str) -> None:
    assert re.search(r"^nquad example.*\s1200\s", output, re.M), output
    assert "out of tolerance" not in output


@pytest.fixture(scope="module")
def installed(clone: Path, env: dict[str, str]) -> Path:
    """The README's install-and-demo command, run in the clone as printed."""
    _demo_ok(_sh(install_command(), clone, env))
    return clone


def test_install_command_then_quickstart_from_the_clone_root(installed, env):
    _quickstart(installed, env)
    _inline_quickstart(installed, env)
    _sh(f"{_venv_dir(install_command())}/bin/capsules build kernels/", installed, env)


def test_installed_demo_runs_outside_the_clone(installed, env, tmp_path):
    capsules = installed / _venv_dir(install_command()) / "bin" / "capsules"
    _demo_ok(_sh(f"{capsules} demo --quick", tmp_path, env))


def packaging_commands() -> str:
    return next(b for b in _blocks("sh", DOCS / "wheels.md") if "build --wheel examples/package" in b)


def test_packaging_commands_build_the_example_wheel_and_pass_its_self_check(installed, env):
    output = _sh(packaging_commands(), installed, env)
    assert "ok: prebuilt" in output and "smooth_edges" in output
    (wheel,) = (installed / "examples" / "package" / "dist").glob("quadfilt-*.whl")
    assert not wheel.name.endswith("-none-any.whl")


def test_environment_recreated_in_place_still_builds(installed, env):
    # what the old test command did to the first environment: `python3 -m venv`
    # again over it, which upgrades its setuptools (pythran pins <60 below 3.12)
    venv = _venv_dir(install_command())
    _sh(f"python3 -m venv {venv}", installed, env)
    _sh(f"{venv}/bin/capsules build kernels/integrands.py --force && {venv}/bin/capsules demo --quick", installed, env)
    _quickstart(installed, env)
