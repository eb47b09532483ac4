"""Front ends, last stage: how a refusal reaches the user, at the user's own line.

A decorator's error is raised from a frame located at the decorator's line
(:func:`decorator_at`), so a traceback shows the user's file and nothing of
capsules'.  In IPython, a notebook cell is named as the notebook shows it
(``In[3]``, not ``<ipython-input-3-...>``), and a located error renders as its
message alone (IPython's ``_render_traceback_``), as the ``%%capsules`` magic's
errors do.
"""

from __future__ import annotations

import ast
import functools
import linecache
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from . import inline
from .errors import CapsulesError

R = TypeVar("R")

# The decorator a factory hands back, written once; decorator_at gives every
# node of it the user's line, so that its frame is shown as that line.
_DECORATOR = """
def located(apply, refused, shown):
    def decorator(function):
        try:
            return apply(function)
        except refused as err:
            raise shown(err).with_traceback(None) from err.__cause__
    return decorator
"""


def decorator_at(depth: int, name: str, apply: Callable[[Any], R]) -> Callable[[Any], R]:
    """``apply`` as a decorator whose frame is the line that called the factory ``depth`` frames up.

    A :class:`CapsulesError` it raises then shows the user's decorator line
    as the raising frame, and no frame of capsules' (Python shows the frame a
    ``raise`` runs in, so that frame is compiled at the user's line, the way
    template engines show a template's line).
    """
    caller = sys._getframe(depth + 1)
    return _located(caller.f_code.co_filename, caller.f_lineno or 1, name)(apply, CapsulesError, for_user)


@functools.lru_cache(maxsize=256)
def _located(filename: str, line: int, name: str) -> Callable[..., Any]:
    text = linecache.getline(filename, line)
    # spanning the whole line: tracebacks underline nothing in it
    start, end = len(text) - len(text.lstrip()), len(text.rstrip())
    tree = ast.parse(_DECORATOR)
    inner = tree.body[0].body  # type: ignore[attr-defined]
    inner[0].name = inner[1].value.id = name  # its frame is shown "in integrand"
    for node in ast.walk(tree):
        if "lineno" in node._attributes:
            node.lineno = node.end_lineno = line  # type: ignore[attr-defined]
            node.col_offset, node.end_col_offset = start, end  # type: ignore[attr-defined]
    namespace: dict[str, Any] = {}
    exec(compile(tree, filename, "exec"), namespace)  # noqa: S102  (our own template, located)
    return namespace["located"]  # type: ignore[no-any-return]


def cell_name(filename: str) -> str | None:
    """What IPython calls the cell that ``filename`` is (``In[3]``); None outside IPython or for a file."""
    if "IPython" not in sys.modules:  # never imported here: a script pays nothing
        return None
    from IPython import get_ipython

    shell = get_ipython()
    named = getattr(getattr(shell, "compile", None), "format_code_name", None)
    label = named(filename) if named is not None else None
    return label[1] if label else None


def for_user(err: CapsulesError) -> CapsulesError:
    """``err`` as the user is shown it: a cell named as IPython names it, rendered there as its message alone."""
    shown = cell_name(err.path) if err.path else None
    if shown is not None:
        err = inline.relocated(err, err.path, shown, tuple(linecache.getlines(err.path)), err.line)
    return alone(err) if err.path is not None and err.line is not None else err


def alone(err: CapsulesError) -> CapsulesError:
    """``err``, which IPython shows as its located message alone: the traceback would be capsules' own."""
    err._render_traceback_ = functools.partial(render, err)  # type: ignore[attr-defined]
    return err


def render(err: CapsulesError) -> list[str]:
    """The lines IPython shows for ``err``: its type, and its report (the message, the offending line under it)."""
    return f"{type(err).__name__}: {err.report()}".splitlines()


__all__ = ["alone", "cell_name", "decorator_at", "for_user", "render"]
