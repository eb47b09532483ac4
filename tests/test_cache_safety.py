"""The cache never loses what it did not create and never imports what others could have changed."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import shutil
from pathlib import Path

import pytest

import capsules
from capsules import ship
from capsules.cache import TAG_FILE, Cache
from capsules.build import plan
from capsules.cli import main

ROOT = Path(__file__).resolve().parent.parent
INTEGRANDS = ROOT / "kernels" / "integrands.py"


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, capsules.KernelModule]:
    """A private cache holding one build of a copy of kernels/integrands.py."""
    cache = tmp_path / "cache"
    kernel = tmp_path / "integrands.py"
    shutil.copy(INTEGRANDS, kernel)
    return cache, capsules.load(kernel, cache=cache)


def test_cache_root_carries_a_cachedir_tag(tmp_path):
    Cache(tmp_path / "c")
    assert (tmp_path / "c" / TAG_FILE).read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55\n")


@pytest.mark.compile
def test_clean_removes_builds_and_nothing_else(built, capsys):
    cache, mod = built
    foreign = [cache / "v1" / "api" / "handler.py", cache / "v1" / "notes.txt", cache / "v1" / "logs" / "mine.txt"]
    for path in foreign:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("not capsules'")
    (cache / "v1" / "logs" / "x_0123.log").write_text("a failed build's log")
    assert main(["clean", "--cache", str(cache)]) == 0
    assert "removed 1 build(s)" in capsys.readouterr().out
    assert not mod.entry.directory.exists() and not (cache / "v1" / "logs" / "x_0123.log").exists()
    assert all(path.read_text() == "not capsules'" for path in foreign)


def test_clean_refuses_a_folder_that_is_not_a_capsules_cache(tmp_path, capsys):
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "data.csv").write_text("1,2,3")
    assert main(["clean", "--cache", str(tmp_path)]) == 1
    assert "not a capsules cache" in capsys.readouterr().err
    assert (tmp_path / "v1" / "data.csv").read_text() == "1,2,3" and not (tmp_path / TAG_FILE).exists()


@pytest.mark.compile
@pytest.mark.parametrize("where", ["entry directory", "binary", "v1"])
def test_a_build_others_could_change_is_never_imported(built, where):
    cache, mod = built
    target = {"entry directory": mod.entry.directory, "binary": mod.entry.binary, "v1": cache / "v1"}[where]
    target.chmod(target.stat().st_mode | 0o022)
    with pytest.raises(capsules.CacheError, match="writable by others"):
        capsules.load(mod.path, cache=cache, build=False)


@pytest.mark.compile
def test_a_failing_build_never_writes_through_a_planted_log_link(tmp_path, write_kernel):
    cache = Cache(tmp_path / "cache")
    path = write_kernel("#pythran export capsule f(int32, float64*)\ndef f(n, x):\n    return undefined_name\n")
    planned = plan(path)  # the module name the log will have
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.symlink(victim, cache.log_path(planned.module_name))
    with pytest.raises(capsules.BuildError):
        capsules.build([path], cache=cache)
    assert victim.read_text() == "precious"
    assert not cache.log_path(planned.module_name).is_symlink()


@pytest.mark.compile
def test_a_symlinked_lock_file_is_a_clear_error(tmp_path):
    cache = Cache(tmp_path / "cache")
    planned = plan(INTEGRANDS)
    os.symlink(tmp_path / "elsewhere", cache.base / "locks" / f"{planned.key}.lock")
    with pytest.raises(capsules.CacheError, match="symbolic link"):
        capsules.build([INTEGRANDS], cache=cache)


@pytest.mark.compile
@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.pop("exports"),
        lambda d: d.update(variants={"native": {"binary": 3, "sha256": "x"}}),
        lambda d: d.update(variants={"native": {"binary": "../../elsewhere.so", "sha256": "x"}}),
        lambda d: d.update(module_name="not an identifier"),
        lambda d: d.update(returns=[]),
    ],
    ids=["missing-exports", "binary-not-a-string", "binary-outside", "bad-module-name", "returns-wrong-type"],
)
def test_a_hand_damaged_entry_is_rebuilt(built, damage, capsys):
    cache, mod = built
    entry_file = mod.entry.directory / "entry.json"
    data = json.loads(entry_file.read_text())
    damage(data)
    entry_file.write_text(json.dumps(data))
    assert main(["build", str(mod.path), "--cache", str(cache)]) == 0
    assert "1 compiled" in capsys.readouterr().out


@pytest.mark.compile
@pytest.mark.parametrize(
    "change",
    [
        lambda s: dataclasses.replace(s, key="../../X"),
        lambda s: dataclasses.replace(s, entry={**s.entry, "key": "../../X"}, key="../../X"),
        lambda s: dataclasses.replace(s, binaries={"../../evil": b"x"}),
        lambda s: dataclasses.replace(s, source=s.source + b"# edited\n"),
    ],
    ids=["key", "entry-key", "variant-name", "edited-source"],
)
def test_altered_pickles_are_refused(built, change):
    _, mod = built
    with pytest.raises(capsules.CacheError):
        change(ship.pack(mod))


@pytest.mark.compile
def test_pickle_round_trip_still_works(built):
    _, mod = built
    assert pickle.loads(pickle.dumps(mod)).f.signature == mod.f.signature


@pytest.mark.compile
def test_builds_load_from_a_read_only_cache_on_the_search_path(built, tmp_path, monkeypatch):
    shared, mod = built
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("CAPSULES_CACHE_PATH", f"{tmp_path / 'missing'}{os.pathsep}{shared}")
    copy = tmp_path / "copy" / "integrands.py"  # a fresh load of the same source, elsewhere
    copy.parent.mkdir()
    shutil.copy(mod.path, copy)
    # the user's own cache cannot even be created: the shared one serves the build
    loaded = capsules.load(copy, cache=blocker / "cache", build=False)
    assert loaded.entry.directory.parent.parent == shared
    assert loaded.f.py(3, [1.0, 2.0, 3.0], [0.5]) == 0.5 + 1.0 - 2.0 * 3.0


@pytest.mark.compile
def test_a_shared_cache_others_can_write_is_refused(built, tmp_path, monkeypatch):
    shared, mod = built
    mod.entry.directory.chmod(0o777)
    monkeypatch.setenv("CAPSULES_CACHE_PATH", str(shared))
    with pytest.raises(capsules.CacheError, match="writable by others"):
        capsules.load(mod.path, cache=tmp_path / "own", build=False)


def _crafted(shipment: ship.Shipment, **fields: object) -> bytes:
    """A pickle of ``shipment`` with ``fields`` changed, as a hand-made one would be: never validated when made."""
    crafted = object.__new__(ship.Shipment)
    for field in dataclasses.fields(ship.Shipment):
        object.__setattr__(crafted, field.name, fields.get(field.name, getattr(shipment, field.name)))

    class Payload:
        def __reduce__(self):
            return ship.receive, (crafted,)

    return pickle.dumps(Payload())


@pytest.mark.compile
@pytest.mark.parametrize(
    "fields",
    [
        lambda s: {"key": "../../ESCAPED", "entry": {**s.entry, "key": "../../ESCAPED"}},
        lambda s: {"binaries": {"../../ESCAPED": b"x"}},
        lambda s: {"path": "../../ESCAPED/\0", "source": b"x"},
        lambda s: {"key": 7},
    ],
    ids=["key", "variant-name", "path", "key-type"],
)
def test_a_crafted_pickle_is_refused_when_unpickled(built, tmp_path, monkeypatch, fields):
    _, mod = built
    payload = _crafted(ship.pack(mod), **fields(ship.pack(mod)))
    worker = tmp_path / "worker" / "a" / "b"
    monkeypatch.setenv("CAPSULES_CACHE", str(worker))
    with pytest.raises(capsules.CacheError):
        pickle.loads(payload)
    assert sorted(p.name for p in (tmp_path / "worker").rglob("*") if "ESCAPED" in p.name) == []
    assert not (tmp_path / "worker" / "a" / "ESCAPED").exists() and not (tmp_path / "ESCAPED").exists()


@pytest.mark.compile
@pytest.mark.skipif(not hasattr(os, "chown") or os.getuid() != 0, reason="giving a file to another group needs root")
def test_a_shared_cache_its_group_can_write_is_refused(built, tmp_path, monkeypatch):
    shared, mod = built
    import grp

    try:
        nogroup = grp.getgrnam("nogroup").gr_gid
    except KeyError:
        pytest.skip("this system has no 'nogroup' group")
    os.chown(mod.entry.directory, 0, nogroup)
    mod.entry.directory.chmod(0o770)
    monkeypatch.setenv("CAPSULES_CACHE_PATH", str(shared))
    with pytest.raises(capsules.CacheError, match="writable by others"):
        capsules.load(mod.path, cache=tmp_path / "own", build=False)


@pytest.mark.compile
def test_a_folder_above_the_cache_others_can_write_is_refused_unless_sticky(built, tmp_path):
    cache, mod = built
    try:
        tmp_path.chmod(0o777)
        with pytest.raises(capsules.CacheError, match=f"{tmp_path}, above {cache}, is writable by others"):
            capsules.load(mod.path, cache=cache, build=False)
        tmp_path.chmod(0o1777)  # like /tmp: no one may rename what they do not own
        assert capsules.load(mod.path, cache=cache, build=False).f.signature == mod.f.signature
    finally:
        tmp_path.chmod(0o700)
