"""Stage 6a: prebuilt binaries shipped beside kernel files, as in a package's wheel.

``capsules build KERNEL --into DIR`` (and the hatch build hook,
``capsules.hatch``) builds a kernel file for every CPU level
(``capsules.levels``) and writes ``DIR/<stem>/``: ``entry.json`` and one
binary per level.  An inline kernel (``capsules.decorators``) of a module
goes to ``DIR/<stem>.<kernel>/``, with the kernel module generated for it.
Inside a package, DIR is ``__capsules__`` beside the kernel file (like
``__pycache__``), which is where :func:`capsules.load`
looks first.  A prebuilt entry is used only when it was built from exactly
the kernel file's bytes and suits this interpreter (Python ABI, platform,
NumPy's ABI); the variant for this CPU is checked against its sha256 before
it is imported.  Nothing here imports pythran or calls a compiler.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from .build import SOURCE_COPY, BuildResult, build
from .cache import ENTRY_FILE, Cache, Entry, EntryData, verified
from .key import numpy_version
from .child.protocol import EXPORTS_SYMBOL
from .errors import CapsulesError, PrebuiltError

PREBUILT_DIR = "__capsules__"
MARK = "capsules-prebuilt"
INLINE_SOURCE = "kernel.py"  # in an inline kernel's prebuilt directory: the module generated for it
# The __capsules__ folders this process found prebuilt kernels in: where a
# package's wheel also ships what those kernels run with (the nquad driver).
_folders: dict[Path, None] = {}


def directory_for(path: Path, kernel: str = "") -> Path:
    """Where the prebuilt binaries of kernel file ``path`` live: ``__capsules__/<stem>/`` beside it.

    For the inline kernel ``kernel`` of the module ``path``: ``__capsules__/<stem>.<kernel>/``.
    """
    return path.parent / PREBUILT_DIR / _name(path, kernel)


def _name(path: Path, kernel: str) -> str:
    return f"{path.stem}.{kernel}" if kernel else path.stem


def build_into(
    paths: Iterable[str | Path],
    into: str | Path,
    *,
    cache: Cache | str | Path | None = None,
    jobs: int = 1,
    **options: Any,
) -> list[tuple[BuildResult, Path]]:
    """Build kernel files for every CPU level and write each to ``into/<stem>/``.

    ``options`` are :func:`capsules.build`'s (``checked``, ``constants``,
    ``force``, ``on_result``); the build is always portable.

    Raises
    ------
    CapsulesError
        ``into`` is not a directory (checked before anything compiles), or cannot be written.
    """
    into = Path(into)
    if into.exists() and not into.is_dir():
        raise CapsulesError(
            "is not a directory; --into (or build_into) takes the folder to write <stem>/ in, e.g. PKG/__capsules__",
            path=into,
        )
    results = build(paths, cache=cache, jobs=jobs, portable=True, **options)
    return [(r, copy_entry(r.entry, r.path, into, r.kernel)) for r in results]


def copy_entry(entry: Entry, path: Path, into: Path, kernel: str = "") -> Path:
    """Write a cache entry's binaries and description to ``into/<stem>/``; return that directory.

    For an inline kernel, ``into/<stem>.<kernel>/``, which also keeps the
    generated kernel module (it is what the kernel runs as plain Python).

    Replaces an earlier prebuilt directory of the same kernel, never
    anything else.

    Raises
    ------
    CapsulesError
        The target exists and is not a capsules prebuilt directory.
    """
    target = into / _name(path, kernel)
    if target.exists() and not _is_prebuilt(target):
        raise CapsulesError(f"{target} exists and is not a capsules prebuilt directory; not replacing it", path=path)
    try:
        _write_entry(entry, target, kernel)
    except OSError as err:  # replacing() removed its staging folder: nothing half written is left in ``into``
        raise CapsulesError(f"cannot write the prebuilt binaries there: {err.strerror}", path=into) from None
    return target


def _write_entry(entry: Entry, target: Path, kernel: str) -> None:
    """Copy an entry's binaries and description into ``target``, through :func:`replacing`."""
    with replacing(target) as staged:
        for binary in entry.binaries.values():
            shutil.copyfile(binary, staged / binary.name)
        if kernel:
            shutil.copyfile(entry.directory / SOURCE_COPY, staged / INLINE_SOURCE)
        data: EntryData = {**entry.data, "format": MARK, "exports_symbol": EXPORTS_SYMBOL, "numpy_abi": _numpy_major()}
        if kernel:
            data["kernel"] = kernel
        data.pop("source", None)  # the builder's path means nothing where the wheel is installed
        (staged / ENTRY_FILE).write_text(json.dumps(data, indent=1, sort_keys=True))


@contextmanager
def replacing(target: Path) -> Iterator[Path]:
    """A staging folder beside ``target``, which replaces ``target`` in one rename if the block ends without error.

    The caller has checked that ``target``, if it exists, is one of ours.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    # a fixed prefix: the target's name may be as long as a file name can be
    staged = Path(tempfile.mkdtemp(prefix=".capsules-", dir=target.parent))
    try:
        yield staged
        staged.chmod(0o755)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staged, target)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def find(
    path: Path, source: bytes, *, checked: bool, constants: dict[str, Any], kernel: str = ""
) -> tuple[Entry | None, str | None]:
    """The prebuilt entry of kernel file ``path`` for this process, or why there is none.

    Returns ``(entry, None)`` when one suits, ``(None, None)`` when the
    kernel has no prebuilt directory, and ``(None, reason)`` when it has one
    that does not suit (the reason names each difference).  For an inline
    kernel, ``kernel`` is its name and ``source`` the module generated for it.
    """
    directory = directory_for(path, kernel)
    try:
        data = json.loads((directory / ENTRY_FILE).read_text())
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as err:
        return None, f"its prebuilt entry {directory / ENTRY_FILE} is unreadable ({err})"
    _folders.setdefault(directory.parent)
    problems = mismatches(data, source, checked=checked, constants=constants)
    if problems:
        return None, f"its prebuilt binaries in {directory} do not suit this process: {'; '.join(problems)}"
    try:
        return verified(directory, data, installed=True), None
    except (OSError, ValueError) as err:
        return None, f"its prebuilt binaries in {directory} are damaged ({err})"
    except PrebuiltError as err:  # no level runs here: as any other difference, a build from source may do
        return None, f"its prebuilt binaries in {directory} do not suit this process: {err.message}"


def folders() -> list[Path]:
    """The ``__capsules__`` folders of packages whose prebuilt kernels this process has looked up, first seen first."""
    return list(_folders)


def not_built_either(unsuitable: str, err: CapsulesError, **where: Any) -> PrebuiltError:
    """The error when prebuilt binaries do not suit (``unsuitable`` says why) and building here failed too."""
    return PrebuiltError(f"{unsuitable}; building it here failed too: {err}", **where)


def mismatches(data: dict[str, Any], source: bytes, *, checked: bool, constants: dict[str, Any]) -> list[str]:
    """Every way a prebuilt entry differs from what this process needs, in words."""
    if not isinstance(data, dict) or data.get("format") != MARK or not isinstance(data.get("inputs"), dict):
        return ["it is not a capsules prebuilt entry"]
    inputs = data["inputs"]
    here = {
        "python": sys.implementation.cache_tag,
        "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX"),
        "platform": sysconfig.get_platform(),
    }
    problems = [f"built for {inputs.get(k)}, this is {v}" for k, v in here.items() if inputs.get(k) != v]
    if inputs.get("source_sha256") != hashlib.sha256(source).hexdigest():
        problems.append("the kernel file changed since its binaries were built" if "kernel" not in data else
                        f"the kernel '{data['kernel']}' (or what it uses) changed since its binaries were built")
    if data.get("exports_symbol") != EXPORTS_SYMBOL:
        problems.append(f"built with entry points {data.get('exports_symbol')}, this capsules reads {EXPORTS_SYMBOL}")
    if data.get("numpy_abi") == 1 and _numpy_major() >= 2:
        problems.append(f"built against NumPy 1.x, this is NumPy {numpy_version()} (NumPy 2 builds run on both)")
    if bool(inputs.get("checked")) != checked:
        problems.append(f"built {'with' if inputs.get('checked') else 'without'} checks, asked for checked={checked}")
    if (inputs.get("constants") or {}) != constants:
        problems.append(f"built with constants {inputs.get('constants') or {}}, asked for {constants}")
    return problems


def _is_prebuilt(directory: Path) -> bool:
    try:
        return json.loads((directory / ENTRY_FILE).read_text()).get("format") == MARK
    except (OSError, ValueError, AttributeError):
        return False


def _numpy_major() -> int:
    return int(numpy_version().split(".")[0])
