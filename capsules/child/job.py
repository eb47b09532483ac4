"""One build in the compiler process: pythran's C++ between the build's own, the compiler calls, the result.

A request (capsules.child.protocol.Request) names the private staging
directory the build works in, and the log it writes to.  Each build runs in
its own process so that parallel builds share no global state (pythran has
plenty), and so that everything pythran and the compiler print goes to the
build log the parent captures.  The result is written as JSON next to the
request.
"""

from __future__ import annotations

import gc
import json
import os
import re
import signal
import sys
import time
import traceback
from pathlib import Path

from .commands import CompilerFailed, NoCompiler, NoSpace, commands, run_compilers
from .cxx import generate_in_parts, generate_whole
from .early import EarlyCompile
from .pch import make_pending
from .protocol import EXIT_NO_SPACE, NO_SPACE, Built, Failed, Request, Result, failed, read_exports


def import_pythran() -> float:
    """Import what a build needs of pythran (most of it), while the parent still scans the kernel file; seconds.

    The cyclic garbage collector waits meanwhile: the import makes more than
    a hundred thousand objects (pythran's tables, NumPy, SciPy) that live as
    long as the process.  They are then frozen: the collections of a build's
    process skip them (scanning them was a large share of a small module's
    generation, benchmarks/RESULTS.md), and leave their pages shared with
    the server's.
    """
    started = time.perf_counter()
    gc.disable()
    try:
        import pythran.config
        import pythran.spec
        import pythran.toolchain  # noqa: F401
    except BaseException:  # noqa: BLE001 - reported with the request
        pass
    finally:
        gc.freeze()
        gc.enable()
    return time.perf_counter() - started


def handle(text: str, imported: float) -> int:
    """Run the build a request describes; its exit status."""
    request: Request = json.loads(text)
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # held back by a server until here
        _work_in(request)
        result: Result = run(request)
        result["seconds"] = {"import_pythran": round(imported, 4), **result["seconds"]}
    except KeyboardInterrupt:
        result = failed("interrupted", "interrupted")
    except BaseException as err:  # every failure must reach the parent as data
        result = as_result(err)
        if result["stage"] == "no space":
            _make_room(request)
        try:  # into the log, which may be on the full disk that made the build fail
            if result["stage"] == "internal":  # a bug, not the kernel's fault: keep the traceback in the log
                traceback.print_exc()
            else:
                print(f"{result['stage']} failed: {result['message']}", file=sys.stderr)
        except OSError:
            pass
    try:
        Path(request["result"]).write_text(json.dumps(result))
    except OSError as err:
        if err.errno in NO_SPACE:
            return EXIT_NO_SPACE
        raise
    return 0 if result["ok"] else 1


def _work_in(request: Request) -> None:
    """Move into the build's folder and write to its log: the process may have been started before either existed."""
    os.chdir(request["outdir"])
    if request["log"]:
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)


def _make_room(request: Request) -> None:
    """Remove what the build wrote (the parent discards it anyway), so that the result fits on the full disk."""
    outdir = Path(request["outdir"])
    names = [f"{request['module_name']}.cpp", *(target["binary"] for target in request["targets"])]
    for name in [*names, *(o.name for o in outdir.glob("*.part*.o"))]:
        try:
            (outdir / name).unlink(missing_ok=True)
        except OSError:
            pass


def run(request: Request) -> Built:
    from pythran.spec import spec_parser

    timings = {"start": time.perf_counter()}
    source = Path(request["source"]).read_text(encoding="utf-8")
    name, outdir = request["module_name"], Path(request["outdir"])
    cpp = outdir / f"{name}.cpp"
    early = EarlyCompile.start(request, cpp)
    try:
        specs = spec_parser(source)
        generated = generate_in_parts(request, source, specs) or generate_whole(request, source, specs)
        # the prologue goes first: what it declares must precede pythran's headers
        text = request["prologue"] + generated.code + "\n" + request["entries"]
        _replace(cpp, text)
        headers = request["prologue"] + generated.headers if request["module_pch"] else ""
        timings["generate_cxx"] = time.perf_counter()
        compiles, links = commands(request, cpp, generated.code, headers, generated.parts)
        compiled = early.finish(compiles, links, text) if early else None
    finally:
        if early:
            early.stop()
    if compiled is None:
        at_once = request["cores"]
        compiled = run_compilers(compiles, at_once) and run_compilers(links, at_once)
    if not compiled:
        if _code_errors(request["log"]):  # not a compiler that cannot start, or refuses a flag
            generated.check()  # raises a located PythranTypeError when it can tell why
        raise CompilerFailed("the C++ compiler failed")
    for leftover in outdir.glob("*.part*.o"):
        leftover.unlink()
    binaries = [target["binary"] for target in request["targets"]]
    timings["compile"] = time.perf_counter()
    make_pending()
    returns = {name: kind for name, _capsule, kind in read_exports((outdir / binaries[0]).resolve())}
    timings["read_returns"] = time.perf_counter()
    return {"ok": True, "binaries": binaries, "returns": returns, "seconds": _phases(timings)}


def _replace(path: Path, text: str) -> None:
    """Write ``path`` anew (a new file, so that a compiler that opened the old one reads the old one)."""
    temporary = path.with_name(f".{path.name}.new")
    temporary.write_text(text)
    os.replace(temporary, path)


def _phases(marks: dict[str, float]) -> dict[str, float]:
    """Seconds spent in each phase, from consecutive time marks (in insertion order)."""
    names, times = list(marks), list(marks.values())
    return {names[i]: round(times[i] - times[i - 1], 4) for i in range(1, len(names))}


def as_result(err: BaseException) -> Failed:
    """A build's failure as data for the parent: at which stage, why, and where pythran says."""
    syntax = sys.modules.get("pythran.syntax")
    if syntax is not None and isinstance(err, syntax.PythranSyntaxError):
        return failed("pythran", str(err.args[0]) if err.args else type(err).__name__, err.lineno)
    if isinstance(err, NoCompiler):
        return failed("toolchain", str(err))
    if isinstance(err, OSError) and err.errno in NO_SPACE:
        where = f": {err.filename}" if err.filename else ""
        return failed("no space", f"{err.strerror}{where}")
    if isinstance(err, NoSpace):
        return failed("no space", str(err))
    if isinstance(err, CompilerFailed):
        return failed("compile", str(err))
    return failed("internal", f"{type(err).__name__}: {err}")


def _code_errors(log: str) -> bool:
    """Whether the compiler reported an error at a line of the code (only then can pythran's checker say why)."""
    try:
        text = Path(log).read_text(errors="replace") if log else ""
    except OSError:
        return True
    return not log or re.search(r"\.(?:cpp|hpp|h):\d+:(?:\d+:)? (?:fatal )?error: ", text) is not None
