"""A whole build's compile, started before pythran generates the C++ (see :class:`EarlyCompile`)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from .commands import commands, report
from .protocol import Request, c_string, is_gcc


class EarlyCompile:
    """A whole build's compile, started before pythran generates the C++, on a core that would idle meanwhile.

    gcc reads ``NAME.cpp`` as it is when the compile starts: the prologue
    and an ``#include "/dev/stdin"``.  It reads and preprocesses the
    prologue and pythran's core headers while pythran
    generates the rest, which then reaches it on its stdin, after a
    ``#line`` that numbers it as in the whole ``NAME.cpp`` written
    meanwhile.  That is all it can do ahead: gcc's C++ parser starts once
    the whole file is read (the prologue's parse waits for the rest; only precompiled headers take it out of a compile).  The
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
    def start(cls, request: Request, cpp: Path) -> EarlyCompile | None:
        """The early compile of a build, or None: a split or portable build, or one with no core to spare."""
        if request["parts"] or len(request["targets"]) != 1 or request["cores"] < 2:
            return None
        if not os.path.exists("/dev/stdin"):
            return None
        compiles, _ = commands(request, cpp, "", "", 1, record=False)
        if not is_gcc(compiles[0][0]):
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
        out, _ = self.process.communicate(f"#line {line} {c_string(str(self.cpp))}\n{text[self.head:]}".encode())
        return report(self.command, subprocess.CompletedProcess(self.command, self.process.returncode, out))

    def stop(self) -> None:
        """Stop the compile if it still runs (pythran failed, or the build runs another command)."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.communicate()
