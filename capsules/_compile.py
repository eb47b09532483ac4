"""The compiler child process: pythran C++ generation, entry points, one compiler call.

Run as ``python -I .../capsules/_compile.py [PYTHRAN_DIR]`` in the build's
private staging directory; it imports pythran at once and then reads its
request (JSON) from stdin, so that the import overlaps the parent's work.  Each build runs in its own process so that
parallel builds share no global state (pythran has plenty), and so that
everything pythran and the compiler print goes to the build log the parent
captures.  The result is written as JSON next to the request.

The child depends on nothing but the request: isolated mode (``-I``) keeps
the current directory, ``PYTHON*`` variables and user site-packages off
``sys.path``, and the compiler is called directly with pythran's own flags
(no setuptools, so no ``pyproject.toml``, ``setup.cfg`` or ``setup.py`` of
wherever the user stands is ever read).  This file imports nothing from
capsules, so a ``capsules/`` folder in the current directory cannot shadow it.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shlex
import subprocess
import sys
import sysconfig
import time
import traceback
from pathlib import Path
from typing import Any

# Python's own CFLAGS define NDEBUG (pythran's asserts off); the link makes an
# extension module, which on Linux and macOS does not link libpython.
BASE_COMPILE = ("-DNDEBUG", "-fPIC")
SHARED = {"darwin": ("-bundle", "-undefined", "dynamic_lookup")}


def main(argv: list[str]) -> int:
    sys.path += argv  # where pythran lives, after the standard library
    started = time.perf_counter()
    try:  # what the build needs of pythran (most of it), while the parent still scans the kernel file
        import pythran.config
        import pythran.spec
        import pythran.toolchain  # noqa: F401
    except BaseException:  # noqa: BLE001 - reported with the request below
        pass
    imported = time.perf_counter() - started
    text = sys.stdin.read()
    if not text:
        return 0  # the parent stopped before sending a request
    request = json.loads(text)
    try:
        result = _compile(request)
        result["seconds"] = {"import_pythran": round(imported, 4), **result["seconds"]}
    except KeyboardInterrupt:
        result = {"ok": False, "stage": "interrupted", "message": "interrupted", "line": None}
    except BaseException as err:  # every failure must reach the parent as data
        result = _failure(err)
        if result["stage"] == "internal":  # a bug, not the kernel's fault: keep the traceback in the log
            traceback.print_exc()
        else:
            print(f"{result['stage']} failed: {result['message']}", file=sys.stderr)
    Path(request["result"]).write_text(json.dumps(result))
    return 0 if result["ok"] else 1


def _compile(request: dict[str, Any]) -> dict[str, Any]:
    import pythran
    from pythran.spec import spec_parser

    timings = {"start": time.perf_counter()}
    source = Path(request["source"]).read_text(encoding="utf-8")
    name, outdir = request["module_name"], Path(request["outdir"])
    specs = spec_parser(source)
    module, error_checker = pythran.generate_cxx(name, source, specs, module_dir=request["module_dir"])
    cpp = outdir / f"{name}.cpp"
    cpp.write_text(str(module) + "\n" + request["entries"])
    timings["generate_cxx"] = time.perf_counter()
    binaries = []
    for target in request["targets"]:
        binary = outdir / target["binary"]
        if not _run_compiler(_command(cpp, binary, target["flags"], request.get("cxx"))):
            error_checker()  # raises a located PythranTypeError when it can tell why
            raise CompilerFailed("the C++ compiler failed")
        binaries.append(binary.name)
    timings["compile"] = time.perf_counter()
    returns = _returns(outdir / binaries[0], request["exports_symbol"])
    timings["read_returns"] = time.perf_counter()
    return {"ok": True, "binaries": binaries, "returns": returns, "seconds": _phases(timings)}


def _phases(marks: dict[str, float]) -> dict[str, float]:
    """Seconds spent in each phase, from consecutive time marks (in insertion order)."""
    names, times = list(marks), list(marks.values())
    return {names[i]: round(times[i] - times[i - 1], 4) for i in range(1, len(names))}


class CompilerFailed(Exception):
    """The compiler exited with an error (its messages are in the log above)."""


class NoCompiler(Exception):
    """The compiler could not be started at all."""


def _command(cpp: Path, binary: Path, flags: list[str], cxx: str | None) -> list[str]:
    """One compile-and-link call, with the flags pythran's own build would use."""
    from pythran import config

    config_args = [] if _requires_blas(cpp.read_text()) else ["compiler.blas=none"]
    ext = config.make_extension(python=True, config=config_args, extra_compile_args=list(flags))
    compiler = shlex.split(cxx or ext.get("cxx") or sysconfig.get_config_var("CXX") or "c++")
    includes = [*ext["include_dirs"], sysconfig.get_paths()["include"], sysconfig.get_paths()["platinclude"]]
    defines = [f"-D{n}" if v is None else f"-D{n}={v}" for n, v in ext["define_macros"]]
    return [
        *compiler,
        *SHARED.get(sys.platform, ("-shared",)),
        *BASE_COMPILE,
        *defines,
        *(f"-U{n}" for n in ext["undef_macros"]),
        *(f"-I{d}" for d in dict.fromkeys(includes)),
        *shlex.split(os.environ.get("CPPFLAGS", "")),
        *ext["extra_compile_args"],
        str(cpp),
        "-o",
        str(binary),
        *ext["extra_objects"],
        *ext["extra_link_args"],
        *(f"-L{d}" for d in ext["library_dirs"]),
        *(f"-l{lib}" for lib in ext["libraries"]),
    ]


def _run_compiler(command: list[str]) -> bool:
    print(shlex.join(command), flush=True)
    try:
        return subprocess.run(command, check=False).returncode == 0
    except OSError as err:
        raise NoCompiler(
            f"cannot run the C++ compiler '{command[0]}': {err.strerror} (set CXX to a C++ compiler, e.g. g++)"
        ) from None


def _requires_blas(cxx_source: str) -> bool:
    # the test pythran.dist applies before linking a BLAS (that module imports setuptools)
    from pythran.tables import blas_requires
    from pythran.utils import cxxid

    needs = {"/".join(map(cxxid, elem)) for elem in blas_requires}
    return not needs.isdisjoint(re.findall(r"^#include <pythonic/include/(.*)\.hpp>$", cxx_source, re.MULTILINE))


def _returns(binary: Path, symbol: str) -> dict[str, str]:
    lib = ctypes.PyDLL(str(binary.resolve()))
    fn = getattr(lib, symbol)
    fn.restype = ctypes.py_object
    return {name: kind for name, _capsule, kind in fn()}


def _failure(err: BaseException) -> dict[str, Any]:
    syntax = sys.modules.get("pythran.syntax")
    if syntax is not None and isinstance(err, syntax.PythranSyntaxError):
        return {
            "ok": False,
            "stage": "pythran",
            "message": str(err.args[0]) if err.args else type(err).__name__,
            "line": err.lineno,
        }
    if isinstance(err, NoCompiler):
        return {"ok": False, "stage": "toolchain", "message": str(err), "line": None}
    if isinstance(err, CompilerFailed):
        return {"ok": False, "stage": "compile", "message": str(err), "line": None}
    return {"ok": False, "stage": "internal", "message": f"{type(err).__name__}: {err}", "line": None}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
