"""The compiler server: imports pythran once, then forks a process for each build request."""

from __future__ import annotations

import os
import select
import signal
import sys

from .job import handle, import_pythran


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
    imported = import_pythran()  # reported by the first build, which may have waited for it
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
        status = handle(request.decode(), imported)
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
