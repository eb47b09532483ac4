"""The compiler child process: pythran C++ generation, entry points, the compiler calls.

Run as ``python -I .../capsules/_compile.py --serve [PYTHRAN_DIR]`` (what
``capsules.workers`` starts), it imports pythran at once, so that the import
overlaps the parent's work, and then forks a process for each build request
it reads from stdin (``serve``); without ``--serve``, it runs the one build
its stdin describes.  A request (JSON) names the private staging directory
its process then works in, and the log it writes to.  Each build runs in its
own process so that parallel builds share no global state (pythran has
plenty), and so that everything pythran and the compiler print goes to the
build log the parent captures.  A build split into parts forks again, a
process per part, to generate each part's C++ side by side.  The result is
written as JSON next to the request.

The child depends on nothing but the request: isolated mode (``-I``) keeps
the current directory, ``PYTHON*`` variables and user site-packages off
``sys.path``, and the compiler is called directly with pythran's own flags
(no setuptools, so no ``pyproject.toml``, ``setup.cfg`` or ``setup.py`` of
wherever the user stands is ever read).  This file imports nothing from
capsules, so a ``capsules/`` folder in the current directory cannot shadow it.
"""

from __future__ import annotations

import copy
import ctypes
import errno
import gc
import hashlib
import json
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Python's own CFLAGS define NDEBUG (pythran's asserts off); the link makes an
# extension module, which on Linux and macOS does not link libpython.
BASE_COMPILE = ("-DNDEBUG", "-fPIC")
SHARED = {"darwin": ("-bundle", "-undefined", "dynamic_lookup")}
# errno values that mean the disk, or the user's quota on it, is full
NO_SPACE = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
# the exit status when even the result could not be written for lack of space
EXIT_NO_SPACE = 28


def main(argv: list[str]) -> int:
    """One build: its request on stdin.  ``--serve`` first: a server of builds, one forked process each."""
    if argv[:1] == ["--serve"]:
        return serve(argv[1:])
    sys.path += argv  # where pythran lives, after the standard library
    imported = _import_pythran()
    text = sys.stdin.read()
    if not text:
        return 0  # the parent stopped before sending a request
    return _handle(text, imported)


def _import_pythran() -> float:
    """Import what a build needs of pythran (most of it), while the parent still scans the kernel file; seconds.

    The cyclic garbage collector waits meanwhile: the import makes some
    165,000 objects (pythran's tables, NumPy, SciPy) that live as long as
    the process.  They are then frozen: the collections of a build's
    process skip them (scanning them took a third of a one-kernel module's
    generation), and leave their pages shared with the server's.
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


def _handle(text: str, imported: float) -> int:
    """Run the build a request describes; its exit status."""
    request = json.loads(text)
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # held back by a server until here
        _work_in(request)
        result = _compile(request)
        result["seconds"] = {"import_pythran": round(imported, 4), **result["seconds"]}
    except KeyboardInterrupt:
        result = {"ok": False, "stage": "interrupted", "message": "interrupted", "line": None}
    except BaseException as err:  # every failure must reach the parent as data
        result = _failure(err)
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


def serve(argv: list[str]) -> int:
    """Import pythran once, then fork a process for each build request, for as long as stdin is open.

    A line on stdin is ``TOKEN REQUEST`` (the request as JSON, on one
    line).  A line on stdout answers it, ``TOKEN started PID`` (or ``TOKEN
    failed``), and another tells when that process ended, ``PID exited
    CODE`` (negative: killed by that signal).  Each process starts from the
    state of a process that has imported pythran and done nothing else, as
    one started for its build alone, and runs the build as ``main`` does.
    The server holds Ctrl-C back (its builds report it) and exits once
    stdin is closed and its builds have ended.
    """
    # Ctrl-C is held back, not ignored: a build's process inherits the mask
    # and takes a Ctrl-C sent to it while it starts once its build begins
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    sys.path += argv
    imported = _import_pythran()  # reported by the first build, which may have waited for it
    wake, woken = os.pipe()
    os.set_blocking(wake, False)
    os.set_blocking(woken, False)
    signal.set_wakeup_fd(woken)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # handled, so that it writes to the wakeup pipe
    running: set[int] = set()
    pending, reading = b"", True
    while reading or running:
        ready, _, _ = select.select([0, wake] if reading else [wake], [], [])
        if wake in ready:
            _drain(wake)
        _reap(running)
        if 0 not in ready:
            continue
        data = os.read(0, 1 << 16)
        reading, pending = bool(data), pending + data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            token, _, request = line.partition(b" ")
            pid = _fork(request, imported, (wake, woken))
            running.update([pid] if pid else [])
            imported = 0.0
            _say(f"{token.decode()} started {pid}" if pid else f"{token.decode()} failed")
    return 0


def _fork(request: bytes, imported: float, pipes: tuple[int, int]) -> int | None:
    """The pid of a new process running the build ``request`` (None when none could be made)."""
    try:
        pid = os.fork()
    except OSError:
        return None
    if pid:
        return pid
    status = 70  # EX_SOFTWARE: the build did not get as far as its result
    try:  # undo what is the server's: its signals, its pipes, its stdout (where only the server speaks)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in pipes:
            os.close(fd)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.close(null)
        status = _handle(request.decode(), imported)
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001 - the parent finds no result and says the process died
        pass
    os._exit(status)


def _reap(running: set[int]) -> None:
    while running:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if not pid:
            return
        running.discard(pid)
        _say(f"{pid} exited {os.waitstatus_to_exitcode(status)}")


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _say(line: str) -> None:
    os.write(1, f"{line}\n".encode())


def _work_in(request: dict[str, Any]) -> None:
    """Move into the build's folder and write to its log: the process may have been started before either existed."""
    os.chdir(request["outdir"])
    if request.get("log"):
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)


def _make_room(request: dict[str, Any]) -> None:
    """Remove what the build wrote (the parent discards it anyway), so that the result fits on the full disk."""
    outdir = Path(request["outdir"])
    names = [f"{request['module_name']}.cpp", *(target["binary"] for target in request["targets"])]
    for name in [*names, *(o.name for o in outdir.glob("*.part*.o"))]:
        try:
            (outdir / name).unlink(missing_ok=True)
        except OSError:
            pass


def _compile(request: dict[str, Any]) -> dict[str, Any]:
    from pythran.spec import spec_parser

    timings = {"start": time.perf_counter()}
    source = Path(request["source"]).read_text(encoding="utf-8")
    name, outdir = request["module_name"], Path(request["outdir"])
    cpp = outdir / f"{name}.cpp"
    early = _EarlyCompile.start(request, cpp)
    try:
        specs = spec_parser(source)
        generated = _generate_in_parts(request, source, specs) or _generate_whole(request, source, specs)
        # the prologue goes first: what it declares must precede pythran's headers
        text = request["prologue"] + generated.code + "\n" + request["entries"]
        _replace(cpp, text)
        headers = request["prologue"] + generated.headers if request.get("module_pch", True) else ""
        timings["generate_cxx"] = time.perf_counter()
        compiles, links = _commands(request, cpp, generated.code, headers, generated.parts)
        compiled = early.finish(compiles, links, text) if early else None
    finally:
        if early:
            early.stop()
    if compiled is None:
        at_once = request.get("cores", 1)
        compiled = _run_compilers(compiles, at_once) and _run_compilers(links, at_once)
    if not compiled:
        generated.check()  # raises a located PythranTypeError when it can tell why
        raise CompilerFailed("the C++ compiler failed")
    for leftover in outdir.glob("*.part*.o"):
        leftover.unlink()
    binaries = [target["binary"] for target in request["targets"]]
    timings["compile"] = time.perf_counter()
    _make_pending()
    returns = _returns(outdir / binaries[0], request["exports_symbol"])
    timings["read_returns"] = time.perf_counter()
    return {"ok": True, "binaries": binaries, "returns": returns, "seconds": _phases(timings)}


def _replace(path: Path, text: str) -> None:
    """Write ``path`` anew (a new file, so that a compiler that opened the old one reads the old one)."""
    temporary = path.with_name(f".{path.name}.new")
    temporary.write_text(text)
    os.replace(temporary, path)


class _EarlyCompile:
    """A whole build's compile, started before pythran generates the C++, on a core that would idle meanwhile.

    gcc reads ``NAME.cpp`` as it is when the compile starts: the prologue
    and an ``#include "/dev/stdin"``.  It reads and preprocesses the
    prologue and pythran's core headers (0.1 s here) while pythran
    generates the rest, which then reaches it on its stdin, after a
    ``#line`` that numbers it as in the whole ``NAME.cpp`` written
    meanwhile.  That is all it can do ahead: gcc's C++ parser starts once
    the whole file is read (the prologue's parse, 0.5 s, waits for the
    rest; only precompiled headers take it out of a compile).  The
    compiler reads the same text as from that file, so the log's command
    compiles that file to the same binary.  Only for the command the build
    would run anyway: when the generated C++ asks for another (BLAS, the
    module's own precompiled headers), the early compile is stopped and
    that command runs instead.
    """

    def __init__(self, command: list[str], process: subprocess.Popen, cpp: Path, head: int) -> None:
        self.command, self.process, self.cpp = command, process, cpp
        self.head = head  # the characters of the C++ the compiler read from the file: the prologue

    @classmethod
    def start(cls, request: dict[str, Any], cpp: Path) -> _EarlyCompile | None:
        """The early compile of a build, or None: a split or portable build, or one with no core to spare."""
        if request.get("parts") or len(request["targets"]) != 1 or request.get("cores", 1) < 2:
            return None
        if not os.path.exists("/dev/stdin"):
            return None
        compiles, _ = _commands(request, cpp, "", "", 1, record=False)
        if not _is_gcc(compiles[0][0]):
            return None
        cpp.write_text(request["prologue"] + '#include "/dev/stdin"\n')
        try:
            # a group of its own: the driver's cc1plus and as are stopped with it (see stop)
            process = subprocess.Popen(compiles[0], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        except OSError:
            return None  # reported by the compile that follows
        return cls(compiles[0], process, cpp, len(request["prologue"]))

    def finish(self, compiles: list[list[str]], links: list[list[str]], text: str) -> bool | None:
        """Give the compiler the rest of the C++ ``text``; whether it succeeded, None if not the build's command."""
        if compiles != [self.command] or links:
            return None
        line = text.count("\n", 0, self.head) + 1
        quoted = str(self.cpp).replace("\\", "\\\\").replace('"', '\\"')
        out, _ = self.process.communicate(f'#line {line} "{quoted}"\n{text[self.head:]}'.encode())
        return _report(self.command, subprocess.CompletedProcess(self.command, self.process.returncode, out))

    def stop(self) -> None:
        """Stop the compile if it still runs (pythran failed, or the build runs another command)."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.communicate()


@dataclass(frozen=True)
class Generated:
    """pythran's C++ for a build, and how to compile it."""

    code: str  # what follows the prologue, before the entry points
    headers: str  # the headers it includes (its leading directives), for its precompiled headers
    parts: int  # compiles of each target: 1 (whole), or one per part (with -DCAPSULES_PART=k)
    check: Callable[[], None]  # raises a located error, when the compile failed for a reason pythran can tell


def _generate_whole(request: dict[str, Any], source: str, specs: Any) -> Generated:
    """pythran's C++ for the whole module at once, compiled whole or (see _in_parts) in parts."""
    import pythran

    module, error_checker = pythran.generate_cxx(
        request["module_name"], source, specs, module_dir=request["module_dir"]
    )
    _without_pythrans_capsules(module)
    code, parts = str(module), request.get("parts")
    split = _in_parts(code, parts["functions"]) if parts else None
    if split is None:
        return Generated(code, _leading_directives(code), 1, error_checker)
    return Generated(split, _leading_directives(split), parts["count"], error_checker)


def _generate_in_parts(request: dict[str, Any], source: str, specs: Any) -> Generated | None:
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
    parts = request.get("parts")
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
            _kill(pid)
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
    headers = "".join(_leading_directives(text) for text in texts)
    return Generated(guard + code + "#endif\n", headers, count, lambda: _generate_whole(request, source, specs).check())


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


def _generate_part(request: dict[str, Any], source: str, part: tuple[Any, dict[str, int], int], target: Path) -> None:
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


def _kill(pid: int) -> None:
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
    beside the two the entry point inlines (6% of filters.py's compile).
    Unregistered, it is inlined into the entry point and not emitted.  Nor
    can a caller then reach a kernel around the entry point's exception
    barrier and checks.  A pythran whose module keeps them elsewhere keeps
    them: the build is the same, only slower.
    """
    capsules = getattr(module, "capsules", None)
    if isinstance(capsules, list):
        capsules.clear()


def _phases(marks: dict[str, float]) -> dict[str, float]:
    """Seconds spent in each phase, from consecutive time marks (in insertion order)."""
    names, times = list(marks), list(marks.values())
    return {names[i]: round(times[i] - times[i - 1], 4) for i in range(1, len(names))}


class CompilerFailed(Exception):
    """The compiler exited with an error (its messages are in the log above)."""


class NoCompiler(Exception):
    """The compiler could not be started at all."""


class NoSpace(Exception):
    """The compiler could not write its output: the disk (or quota) is full."""


def _commands(
    request: dict[str, Any], cpp: Path, code: str, headers: str, parts: int, record: bool = True
) -> tuple[list[list[str]], list[list[str]]]:
    """The compiler calls of a build, with the flags pythran's own build would use, then its link calls.

    Each target is one compile-and-link call, or with ``parts`` one compile
    per part and a link.  With a ``pch`` folder in the request (native
    builds with gcc only), the calls include headers precompiled for exactly
    these flags, when they have been: the module's own ``headers`` (the text
    the C++ starts with), else pythran's core headers.  ``record``: those
    found missing are made after the build (see _make_later).
    """
    compiles, links = [], []
    shared, blas = SHARED.get(sys.platform, ("-shared",)), _requires_blas(code)
    for target in request["targets"]:
        binary = Path(request["outdir"]) / target["binary"]
        compiler, compile_flags, link = _flags(target["flags"], request.get("cxx"), blas)
        include = _precompiled(request.get("pch"), compiler, compile_flags, bool(request.get("pch_now")), headers,
                               record)
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


# pythran's random generators: state that each part would have a copy of
_RANDOM = re.compile(r"^#include <pythonic/include/(numpy/)?random/", re.MULTILINE)


def _in_parts(code: str, functions: dict[str, int]) -> str | None:
    """pythran's C++ with each export's function defined in its part of a split build only.

    pythran defines, after its kernels, an inline function per export that
    calls the kernel; defined, it makes the compiler instantiate the kernel.
    In the other parts it is only declared (the exports function takes its
    type).  The guard is the one the entry points get (adapters.generate).
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
        guarded = f"#if !defined(CAPSULES_PART) || CAPSULES_PART == {part}\n{whole}#else\n{declared};\n#endif\n"
        code = code[: found[0].start()] + guarded + code[found[0].end() :]
    return code


def _part(part: int, module_name: str) -> list[str]:
    """The flags of one part's compile: which part; pythran's module init function is part 0's alone."""
    init = f"PyInit_{module_name}"
    return [f"-DCAPSULES_PART={part}", *([f"-D{init}=capsules_part{part}_{init}"] if part else [])]


def _flags(flags: list[str], cxx: str | None, blas: bool) -> tuple[list[str], list[str], list[str]]:
    """The compiler, the compile flags and the link flags of a build."""
    from pythran import config

    config_args = [] if blas else ["compiler.blas=none"]
    ext = config.make_extension(python=True, config=config_args, extra_compile_args=list(flags))
    compiler = shlex.split(cxx or ext.get("cxx") or sysconfig.get_config_var("CXX") or "c++")
    includes = [*ext["include_dirs"], sysconfig.get_paths()["include"], sysconfig.get_paths()["platinclude"]]
    defines = [f"-D{n}" if v is None else f"-D{n}={v}" for n, v in ext["define_macros"]]
    compile_flags = [
        *BASE_COMPILE,
        *defines,
        *(f"-U{n}" for n in ext["undef_macros"]),
        *(f"-I{d}" for d in dict.fromkeys(includes)),
        *shlex.split(os.environ.get("CPPFLAGS", "")),
        *(ext["extra_compile_args"] if _is_gcc(compiler[0]) else _for_other_compilers(ext["extra_compile_args"])),
    ]
    link = [
        *ext["extra_objects"],
        *ext["extra_link_args"],
        *(f"-L{d}" for d in ext["library_dirs"]),
        *(f"-l{lib}" for lib in ext["libraries"]),
    ]
    return compiler, compile_flags, link


# capsules' own defaults for gcc (build.LOOP_FLAGS, build.LAYOUT_FLAGS), which other compilers do not know
GCC_LOOP_PARAMS = ("--param=align-loop-iterations=", "--param=max-unrolled-insns=")


def _for_other_compilers(flags: list[str]) -> list[str]:
    """gcc's flags as clang takes them: ``-falign-loops=32:16:16`` as ``=32`` (an alignment only), no gcc param."""
    kept = [flag for flag in flags if not flag.startswith(GCC_LOOP_PARAMS)]
    return [flag.split(":", 1)[0] if flag.startswith("-falign-loops=") else flag for flag in kept]


# Every pythran module starts with these two headers, most of the compile's
# parsing.  gcc reads them precompiled (a .gch beside the header named by
# -include) only when the .gch was made with the same flags, and reads the
# header text otherwise: the binary is the same either way.
PCH_HEADER = "#include <pythonic/core.hpp>\n#include <pythonic/python/core.hpp>\n"
PCH_NAME = "capsules_pch.hpp"
# A module's own headers: the prologue and every pythran header it includes
# (all guarded, so the C++ that follows skips them).  For the edit loop: made
# from a module's second build with the same headers on, never at once (45
# to 140 MB, 2 to 4 s of a core), and not for a batch of modules; it
# halves the compile of a module that uses much of numpy.  The cache keeps
# the last few used.
MODULE_PCH_NAME = "capsules_module.hpp"
MODULE_PCH_KEEP = 4


def _precompiled(
    pch: str | None, compiler: list[str], compile_flags: list[str], now: bool = False, headers: str = "",
    record: bool = True,
) -> list[str]:
    """``-include`` of the precompiled headers for these flags, or nothing (and, ``record``, they are made later)."""
    if not pch or not _is_gcc(compiler[0]):
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


# what _precompiled found missing, made once the build's compile is done (not
# to compete with it for a core)
_PENDING: list[tuple[Path, str, str, list[str], bool]] = []


def _make_pending() -> None:
    while _PENDING:
        try:
            _make_later(*_PENDING.pop(0))
        except OSError:
            pass  # an optimisation only: the build went on without


def _pch_folder(pch: str, compiler: list[str], compile_flags: list[str], text: str) -> Path:
    import pythran

    identity = [_identity(compiler[0]), compiler[1:], compile_flags, text, pythran.__version__]
    return Path(pch) / hashlib.sha256(json.dumps(identity).encode()).hexdigest()


def _leading_directives(code: str) -> str:
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


def _is_gcc(command: str) -> bool:
    found = shutil.which(command)
    name = os.path.basename(os.path.realpath(found)) if found else ""
    return ("g++" in name or "gcc" in name) and "clang" not in name


def _identity(command: str) -> str:
    found = shutil.which(command) or command
    real = os.path.realpath(found)
    try:
        info = os.stat(real)
    except OSError:
        return real
    return f"{real}:{info.st_size}:{info.st_mtime_ns}"


def _run_compilers(commands: list[list[str]], at_once: int) -> bool:
    """Run compiler calls, ``at_once`` at a time; their messages go into the log in the order given.

    They pass through here rather than straight into the log: on a full
    disk the log loses them, and the build must still tell why it failed.
    """
    if at_once < 2 or len(commands) < 2:
        return all(_report(command, _run(command)) for command in commands)
    with ThreadPoolExecutor(min(at_once, len(commands))) as pool:
        done = list(pool.map(_run, commands))
    return all([_report(command, d) for command, d in zip(commands, done)])


def _run(command: list[str]) -> subprocess.CompletedProcess | OSError:
    try:
        return subprocess.run(command, check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as err:
        return err


def _report(command: list[str], done: subprocess.CompletedProcess | OSError) -> bool:
    """Log one compiler call and its messages; whether it succeeded."""
    print(shlex.join(command), flush=True)
    if isinstance(done, OSError):
        raise NoCompiler(
            f"cannot run the C++ compiler '{command[0]}': {done.strerror} (set CXX to a C++ compiler, e.g. g++)"
        )
    sys.stdout.buffer.write(done.stdout)
    sys.stdout.flush()
    if done.returncode != 0:
        reasons = {os.strerror(number) for number in NO_SPACE}
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
    if isinstance(err, OSError) and err.errno in NO_SPACE:
        where = f": {err.filename}" if err.filename else ""
        return {"ok": False, "stage": "no space", "message": f"{err.strerror}{where}", "line": None}
    if isinstance(err, NoSpace):
        return {"ok": False, "stage": "no space", "message": str(err), "line": None}
    if isinstance(err, CompilerFailed):
        return {"ok": False, "stage": "compile", "message": str(err), "line": None}
    return {"ok": False, "stage": "internal", "message": f"{type(err).__name__}: {err}", "line": None}


if __name__ == "__main__":
    status = main(sys.argv[1:])
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # the log is on a full disk: exit with main's status, not the 120 Python's exit would give
        pass
    # The parent waits for this exit.  Everything is written and flushed, and
    # nothing here needs finalizing: skip the interpreter's teardown, which
    # frees pythran's tables one object at a time (0.15 s).
    os._exit(status)
