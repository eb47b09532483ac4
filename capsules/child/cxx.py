"""pythran's C++ for a build: the whole module at once, or part by part for a build split across cores."""

from __future__ import annotations

import copy
import ctypes
import os
import re
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .pch import leading_directives
from .protocol import Request, in_part

# pythran's random generators: state that each part would have a copy of
_RANDOM = re.compile(r"^#include <pythonic/include/(numpy/)?random/", re.MULTILINE)


@dataclass(frozen=True)
class Generated:
    """pythran's C++ for a build, and how to compile it."""

    code: str  # what follows the prologue, before the entry points
    headers: str  # the headers it includes (its leading directives), for its precompiled headers
    parts: int  # compiles of each target: 1 (whole), or one per part (with -DCAPSULES_PART=k)
    check: Callable[[], None]  # raises a located error, when the compile failed for a reason pythran can tell


def generate_whole(request: Request, source: str, specs: Any) -> Generated:
    """pythran's C++ for the whole module at once, compiled whole or (see _in_parts) in parts."""
    import pythran

    module, error_checker = pythran.generate_cxx(
        request["module_name"], source, specs, module_dir=request["module_dir"]
    )
    _without_pythrans_capsules(module)
    code, parts = str(module), request["parts"]
    split = _in_parts(code, parts["functions"]) if parts else None
    if split is None:
        return Generated(code, leading_directives(code), 1, error_checker)
    return Generated(split, leading_directives(split), parts["count"], error_checker)


def generate_in_parts(request: Request, source: str, specs: Any) -> Generated | None:
    """pythran's C++ generated part by part, all parts at once (a forked process each); None to generate it whole.

    pythran generates the C++ of a module on one core, a quarter of a first
    build of several kernels.  Each part of a split build needs only its
    own kernels' C++: the module's source with only those kernels exported
    (the first part also exports what is not a capsule, and initializes
    the module).  The code of each function is the C++ the whole module
    would have, but for the numbering of pythran's typedefs.  The module's
    C++ then holds each part's under ``#if CAPSULES_PART == k``.  None
    (generate it whole) where processes cannot be forked, when a part
    fails (the whole generation then reports the error, as a build in one
    piece would) and when the kernels use pythran's random generators
    (state each part would have its own copy of).
    """
    parts = request["parts"]
    if not parts or not hasattr(os, "fork") or re.search(r"\brandom\b", source):
        return None  # (a source that never names random cannot use it: no part generated in vain)
    outdir, count = Path(request["outdir"]), parts["count"]
    codes = [outdir / f"part{k}.generated" for k in range(count)]
    running: list[int] = []
    try:
        for k in range(count):
            pid = os.fork()
            if not pid:
                _generate_part(request, source, (specs, parts["functions"], k), codes[k])
            running.append(pid)
        done = []
        while running:
            done.append(os.waitstatus_to_exitcode(os.waitpid(running[0], 0)[1]) == 0)
            running.pop(0)
    except BaseException as err:
        for pid in running:  # Ctrl-C, or a failed fork: no part outlives the build
            _kill_part(pid)
        if not isinstance(err, OSError):
            raise
        done = [False]
    texts = [code.read_text() for code in codes] if all(done) else []
    for k in range(count):
        _append_log(outdir / f"part{k}.log", keep=all(done))
        codes[k].unlink(missing_ok=True)
    if not texts or any(_RANDOM.search(text) for text in texts):
        return None
    code = "".join(f"#elif CAPSULES_PART == {k}\n{text}\n" for k, text in enumerate(texts))
    guard = f"#ifndef CAPSULES_PART\n#error \"generated in parts: compile once per part, -DCAPSULES_PART=0 to {count - 1}\"\n"
    headers = "".join(leading_directives(text) for text in texts)
    return Generated(guard + code + "#endif\n", headers, count, lambda: generate_whole(request, source, specs).check())


def _part_specs(specs: Any, functions: dict[str, int], part: int) -> Any:
    """The exports of one part: its capsules; part 0 also exports the functions and ufuncs that are not capsules.

    A copy of pythran's own, whatever else it holds (pythran 0.19 added
    ``pkgs``), with only these exports.
    """
    own = copy.copy(specs)
    own.capsules = {name: sig for name, sig in specs.capsules.items() if functions.get(name, 0) == part}
    if part:
        own.functions, own.ufuncs = {}, {}
    return own


def _generate_part(request: Request, source: str, part: tuple[Any, dict[str, int], int], target: Path) -> None:
    """In a forked process: one part's C++ into ``target``; its messages into its own log.  Never returns.

    ``part``: the module's specs, the part of each function, and this part.
    """
    status = 1
    try:
        import pythran

        _die_with_parent()
        log = os.open(target.with_suffix(".log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        specs = _part_specs(*part)
        module, _ = pythran.generate_cxx(request["module_name"], source, specs, module_dir=request["module_dir"])
        _without_pythrans_capsules(module)
        target.write_text(str(module))
        status = 0
    except BaseException:  # noqa: BLE001 - the build generates the module whole and reports why
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(status)


def _die_with_parent() -> None:
    """On Linux: killed with the build's process (a part's C++ is of no use once the build is gone)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _kill_part(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _append_log(part_log: Path, keep: bool) -> None:
    """A part's messages (pythran's warnings) into the build's log, in part order, unless the build starts again."""
    try:
        if keep:
            sys.stdout.write(part_log.read_text(errors="replace"))
            sys.stdout.flush()
        part_log.unlink()
    except FileNotFoundError:
        pass


def _without_pythrans_capsules(module: Any) -> None:
    """Leave pythran's own capsules out of the module: the entry points replace them.

    Each is a function with pythran's signature, registered in the module;
    registered, it is compiled on its own, a third copy of the kernel's code
    beside the two the entry point inlines.
    Unregistered, it is inlined into the entry point and not emitted.  Nor
    can a caller then reach a kernel around the entry point's exception
    barrier and checks.  A pythran whose module keeps them elsewhere keeps
    them: the build is the same, only slower.
    """
    capsules = getattr(module, "capsules", None)
    if isinstance(capsules, list):
        capsules.clear()


def _in_parts(code: str, functions: dict[str, int]) -> str | None:
    """pythran's C++ with each export's function defined in its part of a split build only.

    pythran defines, after its kernels, an inline function per export that
    calls the kernel; defined, it makes the compiler instantiate the kernel.
    In the other parts it is only declared (the exports function takes its
    type).  The guard is the one the entry points get (protocol.in_part).
    None when a function is not as pythran writes it, or when the kernels
    share state each compile would have its own copy of (pythran's random
    generators, local to a compile like the rest of pythran): the build is
    then compiled whole.
    """
    if _RANDOM.search(code):
        return None
    for function, part in functions.items():
        pattern = rf"^inline\n(typename [^\n]*::{re.escape(function)}::type<[^\n]*\)) *\n\{{\n.*?^\}}\n"
        found = list(re.finditer(pattern, code, re.MULTILINE | re.DOTALL))
        if len(found) != 1:
            return None
        whole, declared = found[0].group(0), found[0].group(1)
        guarded = in_part(part, whole, f"{declared};\n")
        code = code[: found[0].start()] + guarded + code[found[0].end() :]
    return code
