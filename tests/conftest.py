"""Shared fixtures: one private cache per test session, each kernel module built once."""

from __future__ import annotations

import shlex
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

import capsules

ROOT = Path(__file__).resolve().parent.parent
KERNELS = ROOT / "kernels"


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache shared by the whole session, so each kernel module compiles once."""
    path = tmp_path_factory.mktemp("cache")
    path.chmod(0o700)
    return path


@pytest.fixture(scope="session")
def load_kernel(cache_dir: Path) -> Callable[[str], capsules.KernelModule]:
    """``load_kernel("integrands")`` loads kernels/integrands.py through the session cache."""

    def load(name: str) -> capsules.KernelModule:
        return capsules.load(KERNELS / f"{name}.py", cache=cache_dir)

    return load


@pytest.fixture(scope="session")
def load_kernel_file(cache_dir: Path) -> Callable[[Path], capsules.KernelModule]:
    """Load any kernel file through the session cache."""

    def load(path: Path) -> capsules.KernelModule:
        return capsules.load(path, cache=cache_dir)

    return load


@pytest.fixture
def write_kernel(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a kernel source (dedented) into a fresh file and return its path."""

    def write(text: str, name: str = "kernel.py") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    return write


@pytest.fixture
def assemble(tmp_path: Path) -> Callable[..., tuple[str, str]]:
    """``assemble(module, name, *flags)``: a built module's C++ compiled to assembly by its build's own commands.

    The commands are the build log's compiles of its first target (one, or
    one per part of a split build), with ``flags`` added; returns the
    assembly of all parts and what the compiler printed.
    """

    def run(module: capsules.KernelModule, name: str, *flags: str) -> tuple[str, str]:
        entry = module.entry
        listings, printed = [], []
        for k, command in enumerate(_first_compiles((entry.directory / "build.log").read_text())):
            source = next(i for i, arg in enumerate(command) if arg.endswith(".cpp"))
            command = [arg for arg in command[:source] if arg not in ("-shared", "-c")]
            listing = tmp_path / f"{name}.{k}.s"
            done = subprocess.run([*command, *flags, "-S", str(entry.directory / f"{entry.module_name}.cpp"),
                                   "-o", str(listing)], check=True, capture_output=True, text=True)
            listings.append(listing.read_text())
            printed.append(done.stderr)
        return "".join(listings), "".join(printed)

    return run


def _first_compiles(log: str) -> list[list[str]]:
    """The compiler commands a build log starts with that compile its C++: the first target's, each part once."""
    lines = log.splitlines()
    compiler = lines[0].split(" ", 1)[0]
    commands = [shlex.split(line) for line in lines if line.startswith(f"{compiler} ") and ".cpp " in line]
    parts = [next((a for a in command if a.startswith("-DCAPSULES_PART=")), None) for command in commands]
    if parts[0] is None:
        return commands[:1]
    return [command for k, command in enumerate(commands) if parts[k] not in parts[:k]]
