"""build (stage 5, its processes): compiler processes started before they are needed.

Each module compiles in its own process (``capsules/_compile.py``), which
spends its first half second importing pythran.  Started early, that import
overlaps other work: the command's own imports (``capsules build`` starts
one before anything else), the parent's scan of the kernel file, the
compile of the module before it in a batch (``capsules build kernels/``),
or the time between two edits of a cell in a notebook.

A process started ahead of its build is a *spare*.  It imports pythran and
waits for its request on stdin; the request names the build's folder, which
it then works in, and its log, which it then writes to.  A spare serves only
the process that started it, and only while the environment is the one it
was started with (the compiler, its flags and pythran's configuration come
from there); otherwise it is stopped and a new process started.  Spares are
stopped when the batch that wanted them ends, and at exit; one is kept
between builds in an interactive session (IPython, Jupyter, the REPL).
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import BuildError

_CHILD = str(Path(__file__).with_name("_compile.py"))


@dataclass(frozen=True)
class _Spare:
    process: subprocess.Popen
    owner: int  # the pid that started it: a forked process must not write to its stdin
    command: tuple[str, ...]
    environ: tuple[tuple[str, str], ...]


_LOCK = threading.Lock()
_IDLE: list[_Spare] = []
_EXPECTED = 0  # builds announced by expect() and not yet started
_BATCHES = 0  # expect() contexts of more than one build, open now
_AT_ONCE = 0  # builds the expect() contexts open now run at the same time
_FOREIGN: list[_Spare] = []  # a forked process's copy of its parent's spares: left alone


def take() -> subprocess.Popen:
    """A compiler process for one build: a matching spare, or a new one.

    Raises
    ------
    BuildError
        pythran is not installed in this environment.
    """
    global _EXPECTED
    command = _command()
    with _LOCK:
        _EXPECTED = max(0, _EXPECTED - 1)
        while _IDLE:
            spare = _IDLE.pop()
            if _usable(spare, command):
                return spare.process
            _stop(spare)
    return _start(command).process


def started() -> None:
    """A build has sent its request: start a spare if another build is expected and none is idle."""
    if _IDLE or not more_expected():
        return
    try:
        spare = _start(_command())
    except (BuildError, OSError):
        return  # the next build starts its own process, and reports what is wrong
    with _LOCK:
        _IDLE.append(spare)


def start_for_the_command() -> None:
    """For ``capsules build`` (and ``demo``), start a compiler process before the package's own imports.

    The command spends its first 0.15 s importing NumPy, SciPy and capsules
    before it reaches a build; the compiler process spends its first 0.35 s
    importing pythran.  Started first, its import overlaps theirs.  Unused
    (every module up to date, or a mistyped command), it is stopped at exit
    like any spare.
    """
    argv = getattr(sys, "argv", None) or [""]
    if not _the_command(argv[0]) or argv[1:2] not in (["build"], ["demo"]):
        return
    try:
        spare = _start(_command())
    except (BuildError, OSError):
        return  # the build starts its own, and reports what is wrong
    with _LOCK:
        _IDLE.append(spare)


def _the_command(program: str) -> bool:
    """Whether this process is the capsules command: its console script, or ``python -m capsules``."""
    if program == "-m":  # while python -m imports the package, before its __main__ runs
        given = getattr(sys, "orig_argv", [])
        return "-m" in given and given[given.index("-m") + 1 : given.index("-m") + 2] == [__package__]
    return Path(program).name == "capsules"


def more_expected() -> bool:
    """Whether more builds are expected soon (a batch, or an interactive session)."""
    with _LOCK:
        return _EXPECTED > 0 or interactive()


def in_batch() -> bool:
    """Whether a batch of builds is under way (rather than one build, as after an edit)."""
    with _LOCK:
        return _BATCHES > 0


@contextmanager
def expect(count: int, at_once: int = 1) -> Iterator[None]:
    """Announce ``count`` builds to come (a batch), ``at_once`` of them at a time; their spares are stopped at the end."""
    global _EXPECTED, _BATCHES, _AT_ONCE
    batch, running = int(count > 1), max(1, min(count, at_once))
    with _LOCK:
        _EXPECTED += count
        _BATCHES += batch
        _AT_ONCE += running
    try:
        yield
    finally:
        with _LOCK:
            _EXPECTED = max(0, _EXPECTED - count)
            _BATCHES = max(0, _BATCHES - batch)
            _AT_ONCE = max(0, _AT_ONCE - running)
        if not interactive():
            retire()


def cores() -> int:
    """How many compiler processes one build may run at once: its share of the CPUs this process may use.

    The builds a batch runs at the same time share them.  ``$CAPSULES_CORES``
    sets the number instead (1: one process per build, as pythran's own).
    """
    wanted = os.environ.get("CAPSULES_CORES", "")
    if wanted.isdigit():
        return max(1, int(wanted))
    with _LOCK:
        return max(1, cpus() // max(1, _AT_ONCE))


def cpus() -> int:
    """The CPUs this process may run on."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def retire() -> None:
    """Stop every idle spare."""
    with _LOCK:
        idle = _IDLE[:]
        _IDLE.clear()
    for spare in idle:
        _stop(spare)


def interactive() -> bool:
    """Whether this is an interactive session, where another build usually follows."""
    if hasattr(sys, "ps1"):
        return True
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    return get is not None and get() is not None


def _command() -> tuple[str, ...]:
    # the folder pythran is imported from here, for the isolated child (after its own sys.path)
    spec = importlib.util.find_spec("pythran")
    if spec is None or spec.origin is None:
        raise BuildError("pythran is not installed in this environment; pip install pythran")
    return (sys.executable, "-I", _CHILD, str(Path(spec.origin).resolve().parent.parent))


def _start(command: tuple[str, ...]) -> _Spare:
    # Isolated (-I): nothing of where the user stands (a math.py, a
    # pyproject.toml, a capsules/ folder) and no PYTHON* variable reaches the
    # build; it starts in the root folder and works in the build's own.
    process = subprocess.Popen(
        command, cwd=os.path.abspath(os.sep), stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return _Spare(process, os.getpid(), command, tuple(sorted(os.environ.items())))


def _usable(spare: _Spare, command: tuple[str, ...]) -> bool:
    return (
        spare.owner == os.getpid()
        and spare.command == command
        and spare.environ == tuple(sorted(os.environ.items()))
        and spare.process.poll() is None
    )


def _stop(spare: _Spare) -> None:
    if spare.owner != os.getpid():
        return
    if spare.process.poll() is None:
        spare.process.kill()
    spare.process.wait()
    if spare.process.stdin is not None:
        spare.process.stdin.close()


def _forget_after_fork() -> None:
    global _EXPECTED, _BATCHES, _AT_ONCE, _LOCK
    _LOCK = threading.Lock()  # another thread may have held it at the fork
    _FOREIGN.extend(_IDLE)
    _IDLE.clear()
    _EXPECTED = _BATCHES = _AT_ONCE = 0


atexit.register(retire)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
