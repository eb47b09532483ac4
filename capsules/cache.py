"""Stage 4: the build cache.

Layout, under the cache root (``--cache`` / ``cache=`` / ``$CAPSULES_CACHE`` /
the per-user cache directory)::

    v1/<key>/               one published build: the binaries, entry.json, build.log, the source
    v1/tmp/<random>/        private build directories, never imported
    v1/locks/<key>.lock     one compile per key across processes
    v1/logs/<name>.log      the full log of the last failed build of a module
    v1/sources/<sha256>/    sources kept by their content: shipped ones, and inline kernels' generated modules
    v1/pch/<hash>/          precompiled headers, per compiler, flags and headers (capsules.child.pch)

The key (capsules.key) is the sha256 of a sorted JSON of everything that
changes the binary.  An entry is published by renaming a finished build directory into
place, so readers see all of it or nothing; ``entry.json`` records the
binary's sha256, and an entry whose binary does not match is a miss (and is
rebuilt), never imported.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypedDict

from . import levels
from .child.protocol import NO_SPACE, SIZE_LIMIT
from .errors import CacheError

FORMAT = "v1"
ENTRY_FILE = "entry.json"
# The Cache Directory Tagging convention (bford.info/cachedir): backup tools
# skip a directory holding this file, and `capsules clean` refuses any that lacks it.
TAG_FILE = "CACHEDIR.TAG"
TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by capsules (compiled SciPy kernels).\n"
    "# For information about cache directory tags, see https://bford.info/cachedir/\n"
)
KEY = re.compile(r"[0-9a-f]{64}")
# what capsules creates under v1/, and so what `capsules clean` may remove
_OWN = {"tmp": re.compile(r"(build|trash)-\w+"), "logs": re.compile(r"[\w.-]+\.log"), "sources": KEY, "pch": KEY}


class Variant(TypedDict, total=False):
    """One binary of a build: its file name in the entry, and its sha256 (recorded when it is published)."""

    binary: str
    sha256: str


class EntryData(TypedDict, total=False):
    """What ``entry.json`` records of a build (see :func:`check_entry_data` for what a loader requires)."""

    key: str  # recorded when it is published
    module_name: str
    variants: dict[str, Variant]  # by CPU level (capsules.levels)
    source: str  # the kernel file it was built from, where it was built
    exports: list[dict[str, Any]]  # ExportSpec.to_json() of each export
    returns: dict[str, str]  # the return type pythran inferred, per capsule
    inputs: dict[str, Any]  # what went into the cache key (cache_key)
    build_seconds: float
    phase_seconds: dict[str, float]  # where the build's time went
    # a prebuilt entry's (capsules.prebuilt)
    format: str
    exports_symbol: str
    numpy_abi: int
    kernel: str


@dataclass(frozen=True)
class Entry:
    """A published, verified build; ``binary`` is the variant this CPU runs best (``level``)."""

    key: str
    directory: Path
    level: str
    data: EntryData

    @property
    def module_name(self) -> str:
        return self.data["module_name"]

    @property
    def binary(self) -> Path:
        return self.directory / self.data["variants"][self.level]["binary"]

    @property
    def binaries(self) -> dict[str, Path]:
        """Every variant's binary, by level."""
        return {name: self.directory / v["binary"] for name, v in self.data["variants"].items()}


def verified(directory: Path, data: Any, *, installed: bool = False, any_owner: bool = False) -> Entry:
    """The entry ``data`` describes in ``directory``, its chosen variant checked against its sha256.

    Every directory and file on the way to the binary must be safe to import
    from (see :func:`check_trusted`).

    Raises
    ------
    ValueError, OSError
        The entry is damaged (the caller treats it as missing).
    CacheError
        Others could have changed what would be imported.
    PrebuiltError
        No variant runs on this CPU (or below ``$CAPSULES_CPU``).
    """
    check_entry_data(data)
    level = levels.pick(list(data["variants"]))
    entry = Entry(data["key"], directory, level, data)
    check_trusted(entry.binary, directory.parent.parent, installed=installed, any_owner=any_owner)
    if _sha256_file(entry.binary) != data["variants"][level]["sha256"]:
        raise ValueError(f"{entry.binary}: sha256 mismatch")
    return entry


def check_entry_data(data: Any) -> None:
    """Raise ValueError unless ``data`` has every field a loader reads, of the right type."""
    ok = (
        isinstance(data, dict)
        and isinstance(data.get("key"), str) and KEY.fullmatch(data["key"]) is not None
        and isinstance(data.get("module_name"), str) and data["module_name"].isidentifier()
        and isinstance(data.get("exports"), list) and isinstance(data.get("inputs"), dict)
        and isinstance(data.get("returns"), dict)
        and isinstance(data.get("variants"), dict) and bool(data["variants"])
        and all(
            isinstance(v, dict) and isinstance(v.get("binary"), str) and isinstance(v.get("sha256"), str)
            and Path(v["binary"]).name == v["binary"] and v["binary"] not in ("", ".", "..")
            for v in data["variants"].values()
        )
    )
    if not ok:
        raise ValueError("entry.json lacks fields or has fields of the wrong type")


def check_trusted(path: Path, top: Path, *, installed: bool = False, any_owner: bool = False) -> None:
    """Refuse to import ``path`` if anyone but its owner could have changed it or a folder above it.

    As OpenSSH's StrictModes check a key file, ``path`` and every directory
    above it, up to the file system's root, are checked.  From ``top`` down:
    no symbolic links; for a cache, owned by the current user and writable by
    no one else; for an ``installed`` package's prebuilt binaries, owned by
    the current user or root; ``any_owner``: a read-only cache the user listed
    in ``$CAPSULES_CACHE_PATH``, whoever owns it.  Above ``top`` each
    directory belongs to the current user, root or ``top``'s owner.  Write
    access for the group counts as write access for others everywhere, except
    where the group is its owner's private group (no other member, as Debian's
    OpenSSH accepts); a directory above ``top`` that others may write is safe
    only with its sticky bit (``/tmp``), which keeps them from renaming what
    they do not own.
    """
    chain = [Path(os.path.abspath(path))]
    top = Path(os.path.abspath(top))
    while chain[-1] != top and chain[-1].parent != chain[-1]:
        chain.append(chain[-1].parent)
    uid = os.getuid() if hasattr(os, "getuid") else None
    for item in chain:
        problem = _untrusted(os.lstat(item), uid, installed, any_owner, is_top=item == top)
        if problem:
            raise CacheError(f"{item} {problem}; refusing to load a binary through it", path=path)
    owners = {uid, 0, os.stat(top).st_uid}
    for item in Path(os.path.realpath(top)).parents:
        problem = _unsafe_above(os.stat(item), owners)
        if problem:
            raise CacheError(f"{item}, above {top}, {problem}; refusing to load a binary through it", path=path)


def _untrusted(info: os.stat_result, uid: int | None, installed: bool, any_owner: bool, *, is_top: bool) -> str | None:
    """Why a file or directory from ``top`` down may not be imported through, or None."""
    if stat.S_ISLNK(info.st_mode) and not is_top:
        return "is a symbolic link"
    if info.st_mode & stat.S_IWOTH or (info.st_mode & stat.S_IWGRP and not (installed and _private_group(info))):
        return f"is writable by others (mode {stat.S_IMODE(info.st_mode):o})"
    if uid is not None and not any_owner and info.st_uid != uid and (not installed or info.st_uid != 0):
        return "belongs to another user"
    return None


def _unsafe_above(info: os.stat_result, owners: set[int | None]) -> str | None:
    """Why a directory above ``top`` lets someone else replace what is below it, or None."""
    if hasattr(os, "getuid") and info.st_uid not in owners:
        return "belongs to another user"
    writable = info.st_mode & stat.S_IWOTH or (info.st_mode & stat.S_IWGRP and not _private_group(info))
    if writable and not info.st_mode & stat.S_ISVTX:
        return f"is writable by others (mode {stat.S_IMODE(info.st_mode):o})"
    return None


def _private_group(info: os.stat_result) -> bool:
    """Whether the group of ``info`` is its owner's alone: a user private group (umask 002 is common there)."""
    return _group_of_one(info.st_gid, info.st_uid)


@lru_cache(maxsize=None)
def _group_of_one(gid: int, uid: int) -> bool:
    try:
        import grp
        import pwd

        owner, group = pwd.getpwuid(uid), grp.getgrgid(gid)
        users = pwd.getpwall()
    except (ImportError, KeyError):
        return False
    # like Debian's OpenSSH: the owner's primary group, listing no one else, and no one else's primary group
    return (
        owner.pw_gid == gid
        and set(group.gr_mem) <= {owner.pw_name}
        and all(user.pw_uid == uid for user in users if user.pw_gid == gid)
    )


def default_root() -> Path:
    """``$CAPSULES_CACHE``, else the per-user cache directory."""
    env = os.environ.get("CAPSULES_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return platformdirs.user_cache_path("capsules", appauthor=False)


class Cache:
    """A cache root, created private (0700) and refused if others can write to it."""

    def __init__(self, root: str | Path | None = None) -> None:
        # absolute: a build's compiler process works in the build's own folder
        self.root = (Path(root).expanduser() if root is not None else default_root()).absolute()
        self.base = self.root / FORMAT
        for sub in (self.root, self.base, self.base / "tmp", self.base / "locks", self.base / "logs"):
            _private_dir(sub)
        if not (self.root / TAG_FILE).is_file():
            try:
                write_file(self.root / TAG_FILE, TAG.encode())
            except OSError:
                pass  # a cache on a read-only file system still serves its builds

    @classmethod
    def existing(cls, root: str | Path | None = None) -> Cache:
        """An existing cache, created by capsules (it has our CACHEDIR.TAG); creates nothing.

        Raises
        ------
        CacheError
            ``root`` is not a capsules cache.
        """
        path = Path(root).expanduser() if root is not None else default_root()
        try:
            tagged = (path / TAG_FILE).read_text().startswith(TAG.splitlines()[0]) and "capsules" in (
                path / TAG_FILE
            ).read_text()
        except OSError:
            tagged = False
        if not tagged:
            raise CacheError(f"not a capsules cache (no {TAG_FILE} written by capsules); nothing removed", path=path)
        return cls(path)

    def __repr__(self) -> str:
        return f"Cache({str(self.root)!r})"

    def lookup(self, key: str) -> Entry | None:
        """The verified entry for ``key``, or None (missing, damaged or foreign)."""
        return _lookup(self.root, key)

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold the build lock of ``key`` (an inter-process file lock)."""
        from filelock import FileLock

        path = self.base / "locks" / f"{key}.lock"
        if path.is_symlink():
            raise CacheError("the lock file is a symbolic link; refusing to follow it", path=path)
        try:
            lock = FileLock(str(path))
            lock.acquire()
        except OSError as err:
            raise unwritable(path.parent, err) from None
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A private directory to build in; removed afterwards unless published.

        Raises
        ------
        CacheError
            The cache cannot be written (read-only, full): says where.
        """
        try:
            path = Path(tempfile.mkdtemp(prefix="build-", dir=self.base / "tmp"))
        except OSError as err:
            raise unwritable(self.base / "tmp", err) from None
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def publish(self, staged: Path, key: str, data: EntryData) -> Entry:
        """Record ``data`` in ``staged`` and move it into place as the entry of ``key``.

        If a valid entry appeared meanwhile, ours is dropped and that one kept;
        a damaged one is replaced.
        """
        variants = {n: {**v, "sha256": _sha256_file(staged / v["binary"])} for n, v in data["variants"].items()}
        data = {**data, "key": key, "variants": variants}
        (staged / ENTRY_FILE).write_text(json.dumps(data, indent=1, sort_keys=True))
        target = self.base / key
        existing = self.lookup(key)
        if existing is not None:
            return existing
        self.discard(key)
        os.replace(staged, target)
        entry = self.lookup(key)
        if entry is None:
            raise CacheError(f"entry {key} did not verify right after publishing", path=target)
        return entry

    def discard(self, key: str) -> None:
        """Remove the entry of ``key`` (call with its lock held)."""
        target = self.base / key
        if target.exists():
            _remove(target, self.base / "tmp")

    def source_path(self, name: str, data: bytes) -> Path:
        """Where :meth:`source_file` keeps ``data`` under ``name`` (nothing is written)."""
        return self.base / "sources" / hashlib.sha256(data).hexdigest() / name

    def source_file(self, name: str, data: bytes) -> Path:
        """``v1/sources/<sha256>/<name>``: a source kept by its content (shipped, or generated inline).

        Raises
        ------
        CacheError
            The cache cannot be written.
        """
        path = self.source_path(name, data)
        try:
            if path.read_bytes() == data:
                return path
        except OSError:
            pass
        try:
            _private_dir(path.parent.parent)
            _private_dir(path.parent)
            write_file(path, data)
        except OSError as err:
            raise unwritable(path.parent, err) from None
        return path

    def pch_dir(self) -> Path:
        """``v1/pch``: pythran's core headers, precompiled once per compiler and flags (see capsules.child.pch)."""
        path = self.base / "pch"
        _private_dir(path)
        return path

    def log_path(self, module_name: str) -> Path:
        """Where the log of the last failed build of a module is kept (write it with :func:`write_file`)."""
        return self.base / "logs" / f"{module_name}.log"

    def clean(self, sources: Iterable[Path] = ()) -> int:
        """Remove what capsules created (builds, shipped sources, logs, temporary directories).

        Anything else under the cache is left alone.  With ``sources`` (files
        and folders), only the builds made from those files, or from files in
        those folders, are removed.  Returns how many builds went.

        Raises
        ------
        CacheError
            A build could not be removed (a read-only cache): says where and why.
        """
        wanted = [Path(os.path.realpath(p)) for p in sources]
        count = 0
        for child in sorted(self.base.iterdir()):
            if KEY.fullmatch(child.name) and child.is_dir() and not child.is_symlink():
                if not wanted or _made_from(child, wanted):
                    _remove(child, self.base / "tmp")
                    count += 1
        for sub, own in _OWN.items() if not wanted else ():
            folder = self.base / sub
            for child in sorted(folder.iterdir()) if folder.is_dir() else ():
                if own.fullmatch(child.name) and not child.is_symlink():
                    _remove(child, self.base / "tmp")
        return count


def _made_from(directory: Path, wanted: list[Path]) -> bool:
    """Whether the build in ``directory`` was made from one of the files, or from a file in one of the folders."""
    try:
        source = Path(json.loads((directory / ENTRY_FILE).read_text())["source"])
    except (OSError, ValueError, KeyError, TypeError):
        return False  # damaged: not provably one of these sources' builds
    return any(source == path or path in source.parents for path in wanted)


def no_space(path: Path, reason: str, doing: str = "") -> CacheError:
    """The error for a cache whose disk (or quota) is full, or a file that passed the size limit: where, why, what to do."""
    if any(text in reason for text in SIZE_LIMIT):
        return CacheError(
            f"a file passed the limit on file sizes (ulimit -f): {reason}{doing}. Raise the limit "
            "('ulimit -f unlimited' in the shell that builds)",
            path=path,
        )
    return CacheError(
        f"the disk (or quota) is full: {reason}{doing}. Free some space there, or set CAPSULES_CACHE "
        "(or --cache) to a directory with room",
        path=path,
    )


def unwritable(path: Path, err: OSError) -> CacheError:
    """The error for a cache that cannot be written: where, why, and what to do."""
    if err.errno in NO_SPACE:
        return no_space(path, err.strerror)
    return CacheError(
        f"cannot write in the cache ({err.strerror}); to build, set CAPSULES_CACHE (or --cache) to a writable "
        "directory; to use this cache's builds without writing, list its root in CAPSULES_CACHE_PATH",
        path=path,
    )


def read_only_lookup(key: str) -> Entry | None:
    """The entry of ``key`` in the read-only caches of ``$CAPSULES_CACHE_PATH``, searched in order.

    Such caches (prepared in a container image or on a cluster's shared file
    system) are never written; listing one is trusting whoever owns it, so
    only symlinks and write access for anyone else (its group included) are
    refused there.
    """
    for root in filter(None, os.environ.get("CAPSULES_CACHE_PATH", "").split(os.pathsep)):
        entry = _lookup(Path(root).expanduser(), key, installed=True, any_owner=True)
        if entry is not None:
            return entry
    return None


def _lookup(root: Path, key: str, **trust: bool) -> Entry | None:
    """The verified entry of ``key`` in the cache at ``root``, or None (missing, damaged or foreign)."""
    directory = root / FORMAT / key
    try:
        data = json.loads((directory / ENTRY_FILE).read_text())
        if not isinstance(data, dict) or data.get("key") != key:
            return None
        return verified(directory, data, **trust)
    except (OSError, ValueError):
        return None


def _remove(path: Path, tmp: Path) -> None:
    """Move ``path`` out of the cache in one step, then delete it: a cache that refuses loses nothing.

    Raises
    ------
    CacheError
        ``path`` cannot be moved (a read-only cache): says where and why.
    """
    try:
        trash = Path(tempfile.mkdtemp(prefix="trash-", dir=tmp))
        os.replace(path, trash / path.name)
    except OSError as err:
        raise CacheError(f"cannot remove {path.name} ({err.strerror})", path=path.parent) from None
    shutil.rmtree(trash, ignore_errors=True)  # what is left is trash: the next clean takes it


def write_file(path: Path, data: bytes) -> None:
    """Write ``path`` through a private temporary file renamed into place: never through a planted link."""
    # the temporary name keeps only the start of ``path``'s: that may be as long as a name can be
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:64]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)  # replaces a symlink itself, not what it points to
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _private_dir(path: Path) -> None:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.stat()
    except OSError as err:
        if err.errno in NO_SPACE:
            raise no_space(path, err.strerror) from None
        raise CacheError(f"cannot create the cache directory: {err.strerror}", path=path) from None
    if not stat.S_ISDIR(info.st_mode):
        raise CacheError("the cache path exists and is not a directory", path=path)
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise CacheError("the cache directory belongs to another user; refusing to load binaries from it", path=path)
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise CacheError(
            f"the cache directory is writable by others (mode {stat.S_IMODE(info.st_mode):o}); anyone could "
            f"plant a binary there. Run 'chmod go-w {path}' or choose another --cache",
            path=path,
        )
