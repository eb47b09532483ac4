"""Precompiled core headers: made once per cache and flags, from its second native build on (or its first of a
batch); same binaries."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

import capsules
from capsules import workers

pytestmark = pytest.mark.compile

ROOT = Path(__file__).resolve().parent.parent
KERNEL = ROOT / "kernels" / "integrands.py"


def _gcc() -> bool:
    from capsules._compile import _is_gcc

    return _is_gcc(shutil.which("c++") or "c++")


@pytest.fixture(autouse=True)
def not_interactive(monkeypatch: pytest.MonkeyPatch) -> None:
    # an IPython shell made by another test module makes this process interactive (capsules.workers)
    monkeypatch.setattr(workers, "interactive", lambda: False)


@pytest.fixture
def private_cache(tmp_path: Path) -> capsules.Cache:
    root = tmp_path / "cache"
    root.mkdir(mode=0o700)
    return capsules.Cache(root)


def _build(cache: capsules.Cache) -> Path:
    (result,) = capsules.build([KERNEL], cache=cache, force=True)
    return result.entry.binary


def _wait_for_gch(cache: capsules.Cache, seconds: float = 120) -> list[Path]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        made = list((cache.base / "pch").glob("*/*.gch"))
        if made and not list((cache.base / "pch").glob("*/making")):
            return made
        time.sleep(0.2)
    return []


@pytest.mark.skipif(not _gcc(), reason="precompiled headers are used with gcc only")
def test_second_build_makes_them_third_uses_them_binary_unchanged(private_cache: capsules.Cache) -> None:
    first = _build(private_cache).read_bytes()
    assert not _wait_for_gch(private_cache, seconds=2), "a cache that built once must not pay for them"
    _build(private_cache)
    assert len(_wait_for_gch(private_cache)) == 1
    binary = _build(private_cache)
    command = (binary.parent / "build.log").read_text().splitlines()[0]
    assert "-include" in command and "capsules_pch.hpp" in command
    assert binary.read_bytes() == first  # the same bytes as without
    assert private_cache.clean() == 1 and not list((private_cache.base / "pch").iterdir())


@pytest.mark.skipif(not _gcc(), reason="precompiled headers are used with gcc only")
def test_switched_off_and_not_for_portable_builds(private_cache: capsules.Cache, monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(2):
        capsules.build([KERNEL], cache=private_cache, force=True, portable=True)
    monkeypatch.setenv("CAPSULES_PCH", "0")
    for _ in range(2):
        _build(private_cache)
    assert not _wait_for_gch(private_cache, seconds=2)
    assert not list((private_cache.base / "pch").glob("*/seen"))


@pytest.mark.skipif(not _gcc(), reason="precompiled headers are used with gcc only")
def test_a_batch_makes_them_with_its_first_build(private_cache: capsules.Cache, tmp_path: Path) -> None:
    # two modules in one build: the first starts making them, for the second and later builds
    other = tmp_path / "other.py"
    other.write_text(KERNEL.read_text())
    capsules.build([KERNEL, other], cache=private_cache, jobs=1)
    assert len(_wait_for_gch(private_cache)) == 1
