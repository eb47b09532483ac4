"""What the build and its compiler process agree on: the request, the result, and the C++ they share.

Both sides import this module: the build as ``capsules.child.protocol``, the
compiler process (which imports nothing of capsules, see ``__main__.py``) as
part of its own folder.  It imports only the standard library.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import signal
from pathlib import Path
from typing import Any, Literal, TypedDict, Union

# The one function a built binary exports for capsules: (name, capsule, inferred return kind) per
# kernel (capsules/generate/entry.cpp.in, section exports).
EXPORTS_SYMBOL = "capsules_exports_v1"
# errno values that mean a write did not fit: the disk, or the user's quota on it, is full, or
# the file would pass the limit on file sizes (ulimit -f, RLIMIT_FSIZE)
NO_SPACE = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG})
# that limit as messages show it: its errno's text, and its signal's, which kills a compiler that passes it
SIZE_LIMIT = (os.strerror(errno.EFBIG), signal.strsignal(signal.SIGXFSZ) or "File size limit exceeded")
# the compiler process's exit status when even its result could not be written for lack of space
EXIT_NO_SPACE = 28
# The build's flags for gcc's loops and code layout (capsules.build, where the reasons are), which
# other compilers do not know: the compiler process leaves them out for those.
LOOP_FLAGS = ("-funroll-loops", "--param=max-unrolled-insns=24")
LAYOUT_FLAGS = ("-falign-loops=32", "--param=align-loop-iterations=8")
GCC_ONLY_PARAMS = tuple(
    flag.rsplit("=", 1)[0] + "=" for flag in (*LOOP_FLAGS, *LAYOUT_FLAGS) if flag.startswith("--param=")
)


class Target(TypedDict):
    """One binary a build makes: its compile flags and file name (one for a native build, one per CPU level else)."""

    flags: list[str]
    binary: str


class Parts(TypedDict):
    """A build split across cores: how many parts, and the part each kernel's function is compiled in."""

    count: int
    functions: dict[str, int]


class Request(TypedDict):
    """What the build asks its compiler process to do, as JSON on its stdin."""

    source: str  # the Python pythran compiles: the kernel file, with the natural kernels' adapters
    module_dir: str  # where pythran looks for the modules the source imports
    module_name: str
    outdir: str  # the build's private folder, where the process works
    prologue: str  # C++ before pythran's (capsules.generate.prologue)
    entries: str  # C++ after pythran's: the entry points (capsules.generate.entries)
    targets: list[Target]
    result: str  # the file the process writes its Result to
    log: str  # the build log, the process's stdout and stderr
    pch: str | None  # the folder of precompiled headers; None: none
    pch_now: bool  # make missing precompiled headers at once (more builds are coming)
    module_pch: bool  # a module's own precompiled headers (its edit loop), not only pythran's core
    cores: int  # compiler processes it may run at once
    parts: Parts | None  # None: compiled whole


class Built(TypedDict):
    """A build that succeeded: its binaries, the return type pythran inferred per kernel, and where time went."""

    ok: Literal[True]
    binaries: list[str]
    returns: dict[str, str]
    seconds: dict[str, float]


Stage = Literal["pythran", "compile", "toolchain", "no space", "interrupted", "internal"]


class Failed(TypedDict):
    """A build that failed: at which stage, why, and the line of the Python source pythran names (or None)."""

    ok: Literal[False]
    stage: Stage
    message: str
    line: int | None


Result = Union[Built, Failed]


def failed(stage: Stage, message: str, line: int | None = None) -> Failed:
    return {"ok": False, "stage": stage, "message": message, "line": line}


def in_part(part: int, text: str, otherwise: str = "") -> str:
    """``text`` compiled in part ``part`` of a split build (and in a whole build); ``otherwise`` in the others.

    A split build compiles its C++ once per part, with ``-DCAPSULES_PART=k``
    (capsules/generate/runtime/part.hpp).
    """
    test = f"#if !defined(CAPSULES_PART) || CAPSULES_PART == {part}\n"
    return f"{test}{text}#else\n{otherwise}#endif\n" if otherwise else f"{test}{text}#endif\n"


def c_string(text: str) -> str:
    """``text`` as a C string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def compiler_identity(command: str) -> str:
    """A compiler told apart from others without running it: its resolved file, size and modification time."""
    name = command.split()[0] if command.split() else command
    found = shutil.which(name)
    if found is None:
        return f"{name}: not found"
    real = os.path.realpath(found)
    try:
        info = os.stat(real)
    except OSError:
        return real
    return f"{real}:{info.st_size}:{info.st_mtime_ns}"


def is_gcc(command: str) -> bool:
    """Whether a compiler command is gcc (which takes capsules' loop flags and precompiled headers)."""
    found = shutil.which(command)
    name = os.path.basename(os.path.realpath(found)) if found else ""
    return ("g++" in name or "gcc" in name) and "clang" not in name


def read_exports(binary: Path) -> list[tuple[str, Any, str]]:
    """A built binary's kernels: (name, PyCapsule, inferred return kind) each, from its exports function."""
    function = getattr(ctypes.PyDLL(str(binary)), EXPORTS_SYMBOL)
    function.restype = ctypes.py_object
    return list(function())
