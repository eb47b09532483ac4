"""build (stage 5, its processes): the compiler processes, forked from a server that imported pythran once.

Each module compiles in its own process, which needs most of pythran
imported first: half a second of a core.  A *server* (``capsules/child/__main__.py
--serve``) pays for that once: it imports pythran, then forks one process per
build request, each starting from that state as a process started for its
build alone would, and reports when it ends.  A batch (``capsules build
kernels/``) imports pythran once instead of once per module, and its
builds never wait for an import after the first.

The server is started by the first build, before that build scans its
kernel file, so that its import overlaps the scan, the other builds of a
batch, or the time between two edits of a cell in a notebook (nothing
starts one at ``import capsules``).  It serves only the process that started it, and only
while the environment is the one it was started with (the compiler, its
flags and pythran's configuration come from there); otherwise it is stopped
and a new one started.  It ends when the batch that wanted it ends, and at
exit; one is kept between builds in an interactive session (IPython,
Jupyter, the REPL).  A build outside a batch has a server of its own, which
ends with it.  Each build's process works in the build's own folder and
writes to its log, both named in its request.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import BuildError

# the compiler process (capsules/child/__init__.py)
CHILD = str(Path(__file__).with_name("child") / "__main__.py")
# The server forks: with one thread (NumPy's BLAS starts a pool at import), a
# forked process has every lock of the server in the state it saw it in.
_ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# Elsewhere than on Linux, a process forked after NumPy's import may crash in
# a system library (macOS's Accelerate, as multiprocessing warns): there each
# build starts a process of its own, which imports pythran itself.
FORKS = sys.platform.startswith("linux")


class Process:
    """One build's compiler process, forked by a server; what ``subprocess.Popen`` offers that a build uses.

    The build writes its request to ``stdin`` and closes it, then waits.
    ``returncode`` is the process's exit status, negative when a signal
    killed it, and -1 when its server died or could not fork it.
    """

    def __init__(self, server: _Server, last: bool = False) -> None:
        self.stdin = _Request(self)
        self.pid: int | None = None
        self.returncode: int | None = None
        self._server = server
        self._last = last  # the server's only build: it is closed with this process's stdin
        self._killed = False

    def poll(self) -> int | None:
        return self.returncode

    def wait(self) -> int:
        with self._server.changed:
            while self.returncode is None:
                self._server.changed.wait()
        return self.returncode

    def kill(self) -> None:
        with self._server.changed:
            if self.returncode is not None:
                return
            self._killed = True
            if self.pid is None and not self.stdin.sent:  # never asked for: nothing to stop
                self._ended(-signal.SIGKILL)
                return
            pid = self.pid
        if pid is not None:  # else killed as soon as its server reports it started
            _kill(pid)

    def _ended(self, code: int) -> None:  # with the server's lock held
        self.returncode = code
        self._server.changed.notify_all()


class _Request:
    """A process's stdin: what is written is sent to the server as one request when it is closed."""

    def __init__(self, process: Process) -> None:
        self._process, self._parts, self.sent, self.closed = process, [], False, False

    def write(self, data: bytes) -> int:
        self._parts.append(data)
        return len(data)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        process, request = self._process, b"".join(self._parts)
        if request:
            self.sent = True
            process._server.send(process, request)
        else:  # closed unused: as a process whose parent stopped before sending its request
            with process._server.changed:
                if process.returncode is None:
                    process._ended(0)
        if process._last:
            process._server.close()


class _Server:
    """A process that imported pythran and forks a process per build (capsules/child/server.py)."""

    def __init__(self, command: tuple[str, ...]) -> None:
        self.process = _start([*command[:3], "--serve", *command[3:]], stdout=subprocess.PIPE,
                              env={**os.environ, **_ONE_THREAD})
        self.owner = os.getpid()  # a forked process must not write to its stdin
        self.command = command
        self.environ = tuple(sorted(os.environ.items()))
        self.changed = threading.Condition()
        self.used = False
        self._sending = threading.Lock()
        self._asked: dict[int, Process] = {}  # by token, until the server says it started
        self._running: dict[int, Process] = {}  # by pid
        self._tokens = 0
        self.interrupted = False
        _LIVE.add(self)
        threading.Thread(target=self._listen, name="capsules-compiler-server", daemon=True).start()

    def usable(self, command: tuple[str, ...]) -> bool:
        return (
            self.owner == os.getpid()
            and self.command == command
            and self.environ == tuple(sorted(os.environ.items()))
            and self.process.poll() is None
            and not self.process.stdin.closed
        )

    def send(self, process: Process, request: bytes) -> None:
        with self.changed:
            self.used = True
            token, self._tokens = self._tokens, self._tokens + 1
            self._asked[token] = process
        line = b"%d %s\n" % (token, request.replace(b"\n", b" "))  # JSON: a newline is only ever whitespace
        try:
            with self._sending:
                self.process.stdin.write(line)
                self.process.stdin.flush()
        except (OSError, ValueError):  # it died, or was stopped meanwhile: no result, reported by the build
            with self.changed:
                if self._asked.pop(token, None) is not None:
                    process._ended(-1)

    def close(self) -> None:
        """No more builds: it ends once those it runs have; one never used is stopped at once."""
        with self.changed:
            unused = not self.used
        try:
            with self._sending:
                self.process.stdin.close()
        except OSError:
            pass
        if unused:
            self.process.kill()

    def _listen(self) -> None:
        for line in self.process.stdout:
            words = line.split()
            with self.changed:
                if len(words) == 3 and words[1] == b"started":
                    self._started(int(words[0]), int(words[2]))
                elif len(words) == 2 and words[1] == b"failed":
                    self._asked.pop(int(words[0]))._ended(-1)
                elif len(words) == 3 and words[1] == b"exited":
                    self._running.pop(int(words[0]))._ended(int(words[2]))
        self.process.stdout.close()
        self.process.wait()
        with self.changed:  # it died: nothing more will be said of its processes
            lost, self._asked = list(self._asked.values()), {}
            running, self._running = dict(self._running), {}
        for pid in running:
            _outlive(pid)
        with self.changed:
            for process in [*lost, *running.values()]:
                process._ended(-1)

    def interrupt(self) -> None:
        """Ctrl-C for the builds it runs, and for those it is about to start."""
        with self.changed:
            self.interrupted = True
            running = list(self._running)
        for pid in running:
            _kill(pid, signal.SIGINT)

    def _started(self, token: int, pid: int) -> None:
        process = self._asked.pop(token)
        process.pid = pid
        self._running[pid] = process
        if process._killed or self.interrupted:
            _kill(pid, signal.SIGKILL if process._killed else signal.SIGINT)


def _start(args: list[str], stdout: int = subprocess.DEVNULL, env: dict[str, str] | None = None) -> subprocess.Popen:
    """A compiler process (a server, or one build's), reading its requests on stdin."""
    # Isolated (-I): nothing of where the user stands (a math.py, a
    # pyproject.toml, a capsules/ folder) and no PYTHON* variable reaches the
    # build; it starts in the root folder and each build works in its own.
    return subprocess.Popen(args, cwd=os.path.abspath(os.sep), stdin=subprocess.PIPE, stdout=stdout,
                            stderr=subprocess.DEVNULL, env=env)


def _kill(pid: int, how: int = signal.SIGKILL) -> None:
    try:
        os.kill(pid, how)
    except ProcessLookupError:
        pass


def _outlive(pid: int) -> None:
    """Wait until a process that is not this one's child has ended (its server died first)."""
    while True:
        try:
            os.kill(pid, 0)
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        except (ProcessLookupError, PermissionError):
            return
        except OSError:  # no /proc: a zombie looks alive, for as long as init takes to reap it
            state = "R"
        if state in ("Z", "X"):
            return
        time.sleep(0.05)


_LOCK = threading.Lock()
_LIVE: weakref.WeakSet[_Server] = weakref.WeakSet()  # every server started here, kept or not
_SERVERS: list[_Server] = []  # kept for the builds to come: a batch's, an interactive session's, the command's
_EXPECTED = 0  # builds announced by expect() and not yet started
_BATCHES = 0  # expect() contexts of more than one build, open now
_AT_ONCE = 0  # builds the expect() contexts open now run at the same time
_FOREIGN: list[_Server] = []  # a forked process's copy of its parent's servers: left alone


def take() -> Process | subprocess.Popen:
    """A compiler process for one build, forked by a server started for this process's builds.

    Where processes are not forked (see ``FORKS``), a process of its own.

    Raises
    ------
    BuildError
        pythran is not installed in this environment.
    """
    global _EXPECTED
    command = _command()
    with _LOCK:  # the builds of a batch start together: one server for all
        _EXPECTED = max(0, _EXPECTED - 1)
        if not FORKS:
            return _start(list(command))
        stale = [server for server in _SERVERS if not server.usable(command)]
        _SERVERS[:] = [server for server in _SERVERS if server not in stale]
        if _SERVERS:
            process = Process(_SERVERS[0])
        elif _EXPECTED > 0 or _BATCHES > 0 or interactive():  # more builds to come: kept for them
            _SERVERS.append(_Server(command))
            process = Process(_SERVERS[0])
        else:
            process = Process(_Server(command), last=True)
    for server in stale:
        _stop(server)
    return process


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
    """Announce ``count`` builds to come (a batch), ``at_once`` of them at a time; its server ends with it."""
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
        else:  # a server that passed on a Ctrl-C would pass it on to every build it starts
            retire(interrupted_only=True)


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


def interrupt() -> None:
    """Pass Ctrl-C on to the builds under way, as a terminal does to its foreground processes.

    A build whose process was forked after the key was pressed would
    otherwise run to its end while the batch waits for it.  The builds the
    batch starts from then on get it too; its servers end with the batch.
    """
    for server in list(_LIVE):
        if server.owner == os.getpid():
            server.interrupt()


def retire(interrupted_only: bool = False) -> None:
    """Stop every server kept for builds to come, or those that passed on a Ctrl-C (each ends after its builds)."""
    with _LOCK:
        stopped = [server for server in _SERVERS if server.interrupted or not interrupted_only]
        _SERVERS[:] = [server for server in _SERVERS if server not in stopped]
    for server in stopped:
        _stop(server)


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
    return (sys.executable, "-I", CHILD, str(Path(spec.origin).resolve().parent.parent))


def _stop(server: _Server) -> None:
    if server.owner == os.getpid():
        server.close()


def _forget_after_fork() -> None:
    global _EXPECTED, _BATCHES, _AT_ONCE, _LOCK
    _LOCK = threading.Lock()  # another thread may have held it at the fork
    _FOREIGN.extend(_SERVERS)
    _SERVERS.clear()
    _LIVE.clear()
    _EXPECTED = _BATCHES = _AT_ONCE = 0


atexit.register(retire)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
