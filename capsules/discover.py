"""Stage 0: the kernel files under the paths a user names.

A file named explicitly is always taken (and refused later, with a reason,
if it holds nothing to build).  A folder is searched recursively, as build
tools search a project: hidden folders, virtual environments, caches that
carry a ``CACHEDIR.TAG`` and ``__pycache__`` are skipped, and a file is
taken when it has an export comment or a capsules-decorated kernel.  A
folder that holds none says so: nothing is skipped without a word.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from . import inline
from .errors import SpecError
from .source import decode_source, read_source
from .spec import declares_kernels

# folders no build looks into: tools' and environments' own
_SKIPPED = frozenset({"__pycache__", "node_modules", "site-packages"})
# a folder that is an environment or a cache, whatever its name
_MARKERS = ("pyvenv.cfg", "conda-meta", "CACHEDIR.TAG")

NOTHING_FOUND = (
    "no kernel file in this folder or below (no '#pythran export' or '#capsules' comment, "
    "no kernel decorated with capsules)"
)


def kernel_files(paths: Iterable[str | Path]) -> list[Path]:
    """The kernel files named by ``paths``: files as given, folders searched recursively (sorted).

    Raises
    ------
    SpecError
        A path does not exist, is not a regular file, or is a folder with no kernel file in it.
    """
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in _python_files(path) if _holds_kernels(p))
            if not found:
                raise SpecError(NOTHING_FOUND, path=path)
            files += found
        elif path.exists():
            read_source(path)  # a FIFO or a device is refused here, before anything blocks on it
            files.append(path)
        else:
            raise SpecError("no such file or directory", path=path)
    return list(dict.fromkeys(files))


def _python_files(folder: Path) -> Iterator[Path]:
    for top, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not _skipped(Path(top, d)))
        yield from (Path(top, name) for name in sorted(names) if name.endswith(".py"))


def _skipped(folder: Path) -> bool:
    if folder.name.startswith(".") or folder.name in _SKIPPED or folder.is_symlink():
        return True
    return any((folder / marker).exists() for marker in _MARKERS)


def _holds_kernels(path: Path) -> bool:
    """Whether a file found in a folder has export comments or kernels decorated with capsules."""
    try:
        text = decode_source(read_source(path), path)
    except SpecError:
        return False  # not a regular file, unreadable or undecodable: a folder scan passes it by
    return declares_kernels(text) or inline.script_line(text) is not None
