"""Precompiled headers: pythran's core ones, made once per cache and flags from its second native build on (or its
first of a batch), and a module's own, from its second build with the same headers on; same binaries."""

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
    from capsules.child.protocol import is_gcc as _is_gcc

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
def test_second_build_makes_them_third_uses_them_binary_unchanged(private_cache: capsules.Cache, tmp_path: Path) -> None:
    first = _build(private_cache).read_bytes()
    assert not _wait_for_gch(private_cache, seconds=2), "a cache that built once must not pay for them"
    _build(private_cache)
    made = sorted(gch.name for gch in _wait_for_gch(private_cache))
    assert made == ["capsules_module.hpp.gch", "capsules_pch.hpp.gch"]
    binary = _build(private_cache)  # the module's own headers, all of them precompiled
    assert _included(binary) == "capsules_module.hpp"
    assert binary.read_bytes() == first  # the same bytes as without
    # another module, which includes more of pythran: the core headers
    other = tmp_path / "other.py"
    other.write_text("from math import erf\n" + KERNEL.read_text().replace("return c + ", "return erf(c) + "))
    (result,) = capsules.build([other], cache=private_cache)
    assert _included(result.entry.binary) == "capsules_pch.hpp"
    assert private_cache.clean() == 2 and not list((private_cache.base / "pch").iterdir())


def _included(binary: Path) -> str | None:
    """The precompiled header a build's compiler command includes, if any."""
    command = (binary.parent / "build.log").read_text().splitlines()[0].split()
    return Path(command[command.index("-include") + 1]).name if "-include" in command else None


def test_only_the_last_used_modules_headers_are_kept(tmp_path: Path) -> None:
    # 45 to 140 MB each: a new one replaces the least recently used beyond the limit
    import os

    from capsules.child.pch import MODULE_PCH_NAME, PCH_NAME, _evict

    for age, name in enumerate(["a", "b", "c", "d"]):
        folder = tmp_path / name
        folder.mkdir()
        (folder / MODULE_PCH_NAME).write_text("// headers")
        (folder / f"{MODULE_PCH_NAME}.gch").write_bytes(b"made")
        os.utime(folder, (1000 - age, 1000 - age))  # a: the most recently used
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / f"{PCH_NAME}.gch").write_bytes(b"made")
    _evict(tmp_path, keep=2)
    assert sorted(gch.parent.name for gch in tmp_path.glob("*/*.gch")) == ["a", "b", "core"]
    assert (tmp_path / "d" / MODULE_PCH_NAME).is_file()  # a build that named it reads its text instead


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
    # and only the core headers: a module's own are for its edit loop
    assert [gch.name for gch in _wait_for_gch(private_cache)] == ["capsules_pch.hpp.gch"]


def test_headers_made_meanwhile_are_not_made_again(tmp_path: Path) -> None:
    # builds of a batch that started before the first made them each find them missing; the first to finish makes
    # them, and the others, finishing later, must not make them again (1 s of a core each, beside the batch's work)
    from capsules.child.pch import PCH_HEADER, PCH_NAME, _make_later

    (tmp_path / f"{PCH_NAME}.gch").write_bytes(b"made")
    _make_later(tmp_path, PCH_NAME, PCH_HEADER, ["c++"], now=True)
    assert not (tmp_path / "making").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{PCH_NAME}.gch"]
