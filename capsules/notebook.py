"""The ``%%capsules`` cell magic: a notebook cell as a kernel module.

::

    %load_ext capsules

    %%capsules
    import math

    #capsules integrand osc(x, y; a)
    def osc(x, y, a):
        return math.cos(a * x + y)

The cell runs as Python first (so its functions also exist as Python), then
is built like a kernel file: each kernel replaces its function in the
notebook's namespace by an :class:`~capsules.InlineKernel`, compiled and
ready (``osc.lowlevel(a=1.0)``; ``osc(0.5, 0.2, 1.0)`` still runs the Python).
Kernels written with the decorators in the cell are built at once too.
Errors name the cell's own lines (``In[3]:4: ...``).  The cell's source is
kept in the cache by its content, so an edited cell is a new build and an
unchanged one costs a lookup; the new build is loaded into the same process.
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
from pathlib import Path
from types import CodeType
from typing import Any, NoReturn

from . import inline
from .cache import Cache
from .decorators import InlineKernel
from .errors import CapsulesError, KernelError, SpecError
from .load import KernelModule, load
from .reporting import alone
from .spec import declares_kernels

def load_ipython_extension(ipython: Any) -> None:
    """Register ``%%capsules`` (``%load_ext capsules``)."""
    ipython.register_magic_function(_magic(ipython), magic_kind="cell", magic_name="capsules")


class _Options(argparse.ArgumentParser):
    """The option line's parser: a refusal is an exception, not a usage printed and an exit."""

    def error(self, message: str) -> NoReturn:
        raise ValueError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Options(prog="%%capsules", add_help=False)
    parser.add_argument("--checked", action="store_true", help="build the checked variant")
    parser.add_argument("--portable", action="store_true", help="build for every CPU level")
    parser.add_argument("--cache", help="cache directory (default: $CAPSULES_CACHE or the user cache)")
    return parser


def _options(ipython: Any, line: str, cell: str) -> argparse.Namespace:
    """The options of a ``%%capsules`` line; a bad one is refused at the cell, as ``In[n]``.

    Raises
    ------
    SpecError
        Naming what is wrong; it renders without a traceback.
    """
    try:
        if "\0" in line:  # no path or option holds one; shlex and the file system would say worse
            raise ValueError("a NUL byte")
        return _parser().parse_args(shlex.split(line))
    except ValueError as err:  # argparse's refusal, or shlex's unclosed quote
        where = f"In[{_cell_number(ipython, cell)}]"
        raise alone(SpecError(f"%%capsules options: {err}; the options are --checked, --portable, --cache DIR",
                               path=where, source_line=f"%%capsules {line}")) from None


def _magic(ipython: Any) -> Any:
    def capsules(line: str, cell: str) -> None:
        """Build the cell as a kernel module; its kernels replace their functions in the namespace.

        Options: ``--checked``, ``--portable``, ``--cache DIR``.
        """
        options = _options(ipython, line, cell)
        run_cell(ipython, cell, checked=options.checked, portable=options.portable, cache=options.cache)

    return capsules


def run_cell(
    ipython: Any, cell: str, *, checked: bool = False, portable: bool = False, cache: str | None = None
) -> dict[str, InlineKernel]:
    """Run and build one cell in ``ipython``'s namespace; returns the kernels it defined.

    Raises
    ------
    CapsulesError
        Located at the cell's own lines; it renders without a traceback.
    """
    shown = f"In[{_cell_number(ipython, cell)}]"
    try:
        store = Cache(cache)
        path = store.source_file(cell_file(cell), cell.encode())
    except CapsulesError as err:  # an unusable --cache: the message names it
        raise alone(err) from None
    KernelError.shown_as[path.name] = shown  # what its kernels' run-time errors call it
    namespace = ipython.user_ns
    before = dict(namespace)
    exec(_compiled(cell, path, shown), namespace)  # noqa: S102  (the user's own cell, as IPython would)
    try:
        kernels = _inline_kernels(namespace, before, path, store)
        if declares_kernels(cell):
            kernels.update(_comment_kernels(load(path, cache=store, checked=checked, portable=portable), namespace,
                                            shown, cell))
    except CapsulesError as err:
        raise alone(inline.relocated(err, path, shown, tuple(cell.splitlines()), err.line)) from None
    return kernels


def cell_file(cell: str) -> str:
    """The file name a cell builds under: its own, so that its kernels' errors can be told from another cell's."""
    return f"cell_{hashlib.sha256(cell.encode()).hexdigest()[:12]}.py"


def _compiled(cell: str, path: Path, shown: str) -> CodeType:
    """The cell's code; a syntax error (or a NUL byte) is located at the cell's own line, shown as ``In[n]``."""
    try:
        return compile(cell, str(path), "exec")
    except (SyntaxError, ValueError) as err:  # ValueError: a NUL byte, before Python 3.12
        line = getattr(err, "lineno", None) or _nul_line(cell)
        message = getattr(err, "msg", None) or str(err)
        text = inline.line_text(cell.splitlines(), line)
        raise alone(SpecError(f"not valid Python: {message}", path=shown, line=line, source_line=text)) from None


def _nul_line(cell: str) -> int | None:
    return cell.count("\n", 0, cell.index("\0")) + 1 if "\0" in cell else None


def _cell_number(ipython: Any, cell: str) -> int:
    """The running cell's number, as the notebook shows it (In[n]).

    IPython stores each cell's input under its number before running it; its
    ``execution_count`` is already the next number in IPython 9, not yet in 8.
    """
    history = getattr(getattr(ipython, "history_manager", None), "input_hist_raw", None)
    if history and cell.strip() and cell.strip() in history[-1]:
        return len(history) - 1
    return int(ipython.execution_count)


def _inline_kernels(namespace: dict[str, Any], before: dict[str, Any], path: Path, cache: Cache) -> dict[str, Any]:
    """The decorated kernels this cell defined, built now so that their errors show at the cell."""
    new = {
        name: value for name, value in namespace.items()
        if isinstance(value, InlineKernel) and before.get(name) is not value
        and Path(value.function.__code__.co_filename) == path
    }
    for kernel in new.values():
        kernel.build(cache)
    return new


def _comment_kernels(module: KernelModule, namespace: dict[str, Any], shown: str, cell: str) -> dict[str, Any]:
    """Each ``#capsules``/``#pythran export capsule`` kernel of the cell, in place of its Python function."""
    lines = tuple(cell.splitlines())
    kernels: dict[str, Any] = {}
    for kernel in module:
        lifted = inline.Lifted(shown, kernel.name, cell, kernel.spec.line, kernel.spec.line, lines)
        kernels[kernel.name] = namespace[kernel.name] = InlineKernel.loaded(namespace[kernel.name], kernel, lifted)
    for spec in module.exports:
        if not spec.capsule:  # a plain pythran export: the compiled function, as %%pythran gives
            namespace[spec.name] = getattr(module.native, spec.name)
    return kernels


__all__ = ["cell_file", "load_ipython_extension", "run_cell"]
