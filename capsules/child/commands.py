"""The compiler calls of a build: pythran's own flags, capsules' for the parts of a split build, and their runs.

The compiler is called directly with the flags pythran's own build would
use (no setuptools, so no ``pyproject.toml``, ``setup.cfg`` or ``setup.py``
of wherever the user stands is ever read).  Everything it prints goes to
the build log.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .pch import precompiled
from .protocol import GCC_ONLY_PARAMS, NO_SPACE, SIZE_LIMIT, Request, is_gcc

# Python's own CFLAGS define NDEBUG (pythran's asserts off); the link makes an
# extension module, which on Linux and macOS does not link libpython.
BASE_COMPILE = ("-DNDEBUG", "-fPIC")
SHARED = {"darwin": ("-bundle", "-undefined", "dynamic_lookup")}


class CompilerFailed(Exception):
    """The compiler exited with an error (its messages are in the log above)."""


class NoCompiler(Exception):
    """The compiler could not be started at all."""


class NoSpace(Exception):
    """The compiler could not write its output: the disk (or quota) is full."""


def commands(
    request: Request, cpp: Path, code: str, headers: str, parts: int, record: bool = True
) -> tuple[list[list[str]], list[list[str]]]:
    """The compiler calls of a build, with the flags pythran's own build would use, then its link calls.

    Each target is one compile-and-link call, or with ``parts`` one compile
    per part and a link.  With a ``pch`` folder in the request (native
    builds with gcc only), the calls include headers precompiled for exactly
    these flags, when they have been: the module's own ``headers`` (the text
    the C++ starts with), else pythran's core headers.  ``record``: those
    found missing are made after the build (see capsules.child.pch).
    """
    compiles, links = [], []
    shared, blas = SHARED.get(sys.platform, ("-shared",)), _requires_blas(code)
    for target in request["targets"]:
        binary = Path(request["outdir"]) / target["binary"]
        compiler, compile_flags, link = _flags(target["flags"], blas)
        include = precompiled(request["pch"], compiler, compile_flags, request["pch_now"], headers, record)
        if parts == 1:
            compiles.append([*compiler, *shared, *compile_flags, *include, str(cpp), "-o", str(binary), *link])
            continue
        objects = [binary.with_name(f"{binary.name}.part{k}.o") for k in range(parts)]
        compiles += [
            [*compiler, *compile_flags, *include, *_part(k, request["module_name"]), "-c", str(cpp), "-o", str(o)]
            for k, o in enumerate(objects)
        ]
        links.append([*compiler, *shared, *map(str, objects), "-o", str(binary), *link])
    return compiles, links


def _part(part: int, module_name: str) -> list[str]:
    """The flags of one part's compile: which part; pythran's module init function is part 0's alone."""
    init = f"PyInit_{module_name}"
    return [f"-DCAPSULES_PART={part}", *([f"-D{init}=capsules_part{part}_{init}"] if part else [])]


def _flags(flags: list[str], blas: bool) -> tuple[list[str], list[str], list[str]]:
    """The compiler, the compile flags and the link flags of a build."""
    from pythran import config

    config_args = [] if blas else ["compiler.blas=none"]
    ext = config.make_extension(python=True, config=config_args, extra_compile_args=list(flags))
    compiler = shlex.split(ext.get("cxx") or sysconfig.get_config_var("CXX") or "c++")
    includes = [*ext["include_dirs"], sysconfig.get_paths()["include"], sysconfig.get_paths()["platinclude"]]
    defines = [f"-D{n}" if v is None else f"-D{n}={v}" for n, v in ext["define_macros"]]
    compile_flags = [
        *BASE_COMPILE,
        *defines,
        *(f"-U{n}" for n in ext["undef_macros"]),
        *(f"-I{d}" for d in dict.fromkeys(includes)),
        *shlex.split(os.environ.get("CPPFLAGS", "")),
        *(ext["extra_compile_args"] if is_gcc(compiler[0]) else _for_other_compilers(ext["extra_compile_args"])),
    ]
    link = [
        *ext["extra_objects"],
        *ext["extra_link_args"],
        *(f"-L{d}" for d in ext["library_dirs"]),
        *(f"-l{lib}" for lib in ext["libraries"]),
    ]
    return compiler, compile_flags, link


def _for_other_compilers(flags: list[str]) -> list[str]:
    """gcc's flags as clang takes them: ``-falign-loops=32:16:16`` as ``=32`` (an alignment only), no gcc param."""
    kept = [flag for flag in flags if not flag.startswith(GCC_ONLY_PARAMS)]
    return [flag.split(":", 1)[0] if flag.startswith("-falign-loops=") else flag for flag in kept]


def run_compilers(commands: list[list[str]], at_once: int) -> bool:
    """Run compiler calls, ``at_once`` at a time; their messages go into the log in the order given.

    They pass through here rather than straight into the log: on a full
    disk the log loses them, and the build must still tell why it failed.
    """
    if at_once < 2 or len(commands) < 2:
        return all(report(command, _run(command)) for command in commands)
    with ThreadPoolExecutor(min(at_once, len(commands))) as pool:
        done = list(pool.map(_run, commands))
    return all([report(command, d) for command, d in zip(commands, done)])


def _run(command: list[str]) -> subprocess.CompletedProcess | OSError:
    try:
        return subprocess.run(command, check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as err:
        return err


def report(command: list[str], done: subprocess.CompletedProcess | OSError) -> bool:
    """Log one compiler call and its messages; whether it succeeded."""
    print(shlex.join(command), flush=True)
    if isinstance(done, OSError):
        raise NoCompiler(
            f"cannot run the C++ compiler '{command[0]}': {done.strerror} (set CXX to a C++ compiler, e.g. g++)"
        )
    sys.stdout.buffer.write(done.stdout)
    if done.returncode != 0 and not done.stdout.strip():  # else the summary of the log would be the command
        print(f"error: {command[0]} exited with status {done.returncode} and printed nothing")
    sys.stdout.flush()
    if done.returncode != 0:
        reasons = {*(os.strerror(number) for number in NO_SPACE), *SIZE_LIMIT}
        full = [line for line in done.stdout.decode(errors="replace").splitlines() if any(r in line for r in reasons)]
        if full:
            raise NoSpace(full[0].strip())
    return done.returncode == 0


def _requires_blas(cxx_source: str) -> bool:
    # the test pythran.dist applies before linking a BLAS (that module imports setuptools)
    from pythran.tables import blas_requires
    from pythran.utils import cxxid

    needs = {"/".join(map(cxxid, elem)) for elem in blas_requires}
    return not needs.isdisjoint(re.findall(r"^#include <pythonic/include/(.*)\.hpp>$", cxx_source, re.MULTILINE))
