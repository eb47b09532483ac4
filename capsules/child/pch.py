"""Precompiled headers: pythran's core headers once per compiler and flags, and a module's own for its edit loop.

gcc reads a header precompiled (a .gch beside the header named by
``-include``) only when the .gch was made with the same flags, and reads
the header's text otherwise: the binary is the same either way.  Headers
found missing are made after the build's compile, in a detached process,
so as not to compete with it for a core.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import time
from pathlib import Path

from .protocol import compiler_identity, is_gcc

# Every pythran module starts with these two headers, most of the compile's
# parsing.  gcc reads them precompiled (a .gch beside the header named by
# -include) only when the .gch was made with the same flags, and reads the
# header text otherwise: the binary is the same either way.
PCH_HEADER = "#include <pythonic/core.hpp>\n#include <pythonic/python/core.hpp>\n"
PCH_NAME = "capsules_pch.hpp"
# A module's own headers: the prologue and every pythran header it includes
# (all guarded, so the C++ that follows skips them).  For the edit loop, where
# it shortens the compile of a module that uses much of numpy most: made from
# a module's second build with the same headers on, never at once (tens of
# MB and seconds of a core each, benchmarks/RESULTS.md), and not for a batch
# of modules.  The cache keeps the last few used.
MODULE_PCH_NAME = "capsules_module.hpp"
MODULE_PCH_KEEP = 4


def precompiled(
    pch: str | None, compiler: list[str], compile_flags: list[str], now: bool = False, headers: str = "",
    record: bool = True,
) -> list[str]:
    """``-include`` of the precompiled headers for these flags, or nothing (and, ``record``, they are made later)."""
    if not pch or not is_gcc(compiler[0]):
        return []
    command = [*compiler, *compile_flags]
    for name, text, eager in ((MODULE_PCH_NAME, headers, False), (PCH_NAME, PCH_HEADER, now)):
        if not text:
            continue
        directory = _pch_folder(pch, compiler, compile_flags, text)
        if (directory / f"{name}.gch").is_file():
            os.utime(directory)  # used: kept (see _evict)
            return ["-include", str(directory / name)]
        if record:
            _PENDING.append((directory, name, text, command, eager))
    return []


# what precompiled() found missing, made once the build's compile is done (not
# to compete with it for a core)
_PENDING: list[tuple[Path, str, str, list[str], bool]] = []


def make_pending() -> None:
    while _PENDING:
        try:
            _make_later(*_PENDING.pop(0))
        except OSError:
            pass  # an optimisation only: the build went on without


def _pch_folder(pch: str, compiler: list[str], compile_flags: list[str], text: str) -> Path:
    import pythran

    identity = [compiler_identity(compiler[0]), compiler[1:], compile_flags, text, pythran.__version__]
    return Path(pch) / hashlib.sha256(json.dumps(identity).encode()).hexdigest()


def leading_directives(code: str) -> str:
    """The lines pythran's C++ starts with that are preprocessor directives (its includes) or blank."""
    lines = []
    for line in code.splitlines(keepends=True):
        if line.strip() and not line.lstrip().startswith("#"):
            break
        lines.append(line)
    return "".join(lines)


def _make_later(directory: Path, name: str, text: str, compile_command: list[str], now: bool = False) -> None:
    """Precompile ``text`` in a detached process, from the second build with these flags and headers on.

    The first build does not pay for it (seconds and tens of MB per set of
    flags): a cache that builds once never needs it.  ``now``: more builds
    are coming (a batch, an interactive session), so the first build makes
    them too.  Headers that fail to precompile are not tried again.
    """
    seen, making, failed = directory / "seen", directory / "making", directory / "failed"
    header, gch = directory / name, directory / f"{name}.gch"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if failed.exists() or gch.exists():
        return  # made since this build looked for it (by a build beside it in a batch), or never to be
    if not seen.exists() and not now:
        seen.touch()
        return
    try:
        os.close(os.open(making, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        if time.time() - making.stat().st_mtime < 600:
            return  # another build is making it
        os.utime(making)
    if gch.exists():  # finished between the look above and the lock
        making.unlink(missing_ok=True)
        return
    if name == MODULE_PCH_NAME:
        _evict(directory.parent, MODULE_PCH_KEEP - 1)
    header.write_text(text)
    temporary = directory / f".{name}.{os.getpid()}.gch"
    make = shlex.join([*compile_command, "-x", "c++-header", str(header), "-o", str(temporary)])
    quoted = {path: shlex.quote(str(path)) for path in (temporary, gch, failed, making)}
    script = f"if {make}; then mv -f {quoted[temporary]} {quoted[gch]}; else touch {quoted[failed]}; fi; " \
             f"rm -f {quoted[temporary]} {quoted[making]}"
    subprocess.Popen(["/bin/sh", "-c", script], cwd=directory, start_new_session=True, stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _evict(pch: Path, keep: int) -> None:
    """Remove all but the ``keep`` most recently used modules' precompiled headers.

    Only the .gch goes: a build that named its header a moment ago reads the
    header's text instead, to the same binary.
    """
    made = sorted(pch.glob(f"*/{MODULE_PCH_NAME}.gch"), key=lambda gch: gch.parent.stat().st_mtime, reverse=True)
    for gch in made[keep:]:
        gch.unlink(missing_ok=True)


