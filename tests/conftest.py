"""Shared fixtures: one private cache per test session, each kernel module built once."""

from __future__ import annotations

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
