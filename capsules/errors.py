"""The one exception tree of capsules.

Every error capsules raises on purpose is a :class:`CapsulesError`.  Errors
about a kernel file carry its path and the line of the export comment, and
their message starts with ``path:line:`` so editors and terminals can jump
to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar


class CapsulesError(Exception):
    """Base class of every error capsules raises on purpose.

    Parameters
    ----------
    message
        What went wrong, in one line, without the location.
    path, line
        The kernel file and the line of the offending export comment, when
        there is one.
    source_line
        The text of that line, shown under the message by the CLI.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        source_line: str | None = None,
    ) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.source_line = source_line
        super().__init__(self._located())

    def _located(self) -> str:
        if self.path is None:
            return self.message
        if self.line is None:
            return f"{self.path}: {self.message}"
        return f"{self.path}:{self.line}: {self.message}"

    def __str__(self) -> str:
        return self._located()

    def report(self) -> str:
        """The error as the CLI prints it: the message, and the offending line indented under it."""
        if not (self.source_line or "").strip():
            return str(self)
        # escaped: a form feed or a stray control character must not break the report's lines
        shown = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in self.source_line.strip())
        return f"{self}\n    {shown}"

    def __reduce__(self):  # keep keyword-only fields through pickling
        # not IPython's rendering hook (capsules.reporting), which refers to the error itself
        state = {key: value for key, value in self.__dict__.items() if key != "_render_traceback_"}
        return (_rebuild, (type(self), state))


def _rebuild(cls: type[CapsulesError], state: dict) -> CapsulesError:
    err = cls.__new__(cls)
    err.__dict__.update(state)
    Exception.__init__(err, err._located())
    return err


class SpecError(CapsulesError):
    """An export comment is malformed or names something that is not there."""


class SignatureError(CapsulesError):
    """A capsule's C signature is not one SciPy accepts, or lies about it.

    Raised for argument types SciPy does not pass (``float32*`` where SciPy
    passes ``double *``), wrong arities, unsupported argument kinds, and
    return types pythran infers that the SciPy caller would misread.
    """


class BuildError(CapsulesError):
    """Pythran or the C++ compiler failed.

    ``summary`` holds the first real messages (about 20 lines), ``log_path``
    the full compiler log kept in the cache.
    """

    def __init__(
        self,
        message: str,
        *,
        summary: str = "",
        log_path: str | Path | None = None,
        **where,
    ) -> None:
        self.summary = summary
        self.log_path = str(log_path) if log_path is not None else None
        super().__init__(message, **where)

    def __str__(self) -> str:
        text = self._located()
        if self.summary:
            text += "\n" + "\n".join("    " + s for s in self.summary.splitlines())
        if self.log_path:
            text += f"\nfull log: {self.log_path}"
        return text


class CacheError(CapsulesError):
    """The cache directory is unusable or unsafe (for example, writable by others)."""


class KernelError(CapsulesError):
    """A compiled kernel raised while SciPy was calling it.

    Raised (or, for quad, chained as the cause of SciPy's error) instead of
    ending the process; its message names the kernel file, line and function,
    and its ``__cause__`` is the kernel's own exception.
    """

    #: How to name a built file whose name means nothing to the user (a notebook
    #: cell's copy in the cache is shown as ``In[n]``), by the file's name.
    shown_as: ClassVar[dict[str, str]] = {}

    def __init__(self, message: str, **located: Any) -> None:
        # the compiled kernel names the file it was built from: "cell_<sha>.py:4: 'osc' raised ..."
        name, colon, rest = message.partition(":")
        super().__init__(self.shown_as.get(name, name) + colon + rest, **located)


class PrebuiltError(CapsulesError):
    """A kernel's prebuilt binaries (from a wheel) do not suit this process; the message says what differs."""


class UserDataError(CapsulesError):
    """``Kernel.lowlevel`` was given user_data the kernel cannot safely read."""


class IntegrationInputError(CapsulesError, ValueError):
    """An argument of ``capsules.nquad`` (or quad, dblquad, tplquad, inner) that it cannot integrate as given.

    Also a ``ValueError``, which SciPy's integrators raise for bad input.
    """
