"""Stage 0: a kernel file's source, read as Python reads a module.

Its bytes (regular files only), its text (a BOM or a PEP 263 coding line
honoured), its syntax tree (an error naming the line where it is not valid
Python), and what the tree's statements bind.  Every stage that reads a
kernel's source reads it through here.
"""

from __future__ import annotations

import ast
import io
import os
import re
import stat
import tokenize
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import SpecError


def read_source(path: str | Path) -> bytes:
    """A kernel file's bytes; only regular files (a FIFO or a device would block or never end).

    Raises
    ------
    SpecError
        The file is missing, not a regular file, or unreadable.
    """
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise SpecError("not a regular file (a kernel file must be a plain .py file)", path=path)
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise SpecError("no such kernel file", path=path) from None
    except OSError as err:
        raise SpecError(f"cannot read kernel file: {err.strerror}", path=path) from None


def decode_source(data: bytes, path: str | Path) -> str:
    """Source bytes as text, the way Python reads a module: a UTF-8 BOM or a PEP 263 coding line honoured."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError) as err:
        reason = err.reason if isinstance(err, UnicodeDecodeError) else str(err)
        raise SpecError(
            f"cannot decode the kernel file ({reason}); save it as UTF-8 or declare its encoding (PEP 263)",
            path=path,
            line=_first_bad_line(data),
        ) from None


def read_text(path: str | Path) -> str:
    """A kernel file's text (:func:`read_source`, then :func:`decode_source`)."""
    return decode_source(read_source(path), path)


def _first_bad_line(data: bytes) -> int | None:
    """The line of the first byte that is not UTF-8, if any."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        return data.count(b"\n", 0, err.start) + 1
    return None


def parse(text: str, path: str | Path, *, source_line: bool = True) -> ast.Module:
    """The syntax tree of a module's text.

    Raises
    ------
    SpecError
        It is not valid Python: located at the line (and, ``source_line``, showing it).
    """
    if "\0" in text:  # Python before 3.12 raises ValueError for it, with no line
        line = text.count("\n", 0, text.index("\0")) + 1
        shown = text.splitlines()[line - 1].rstrip() if source_line else ""
        raise SpecError("not valid Python: source code cannot contain null bytes", path=path, line=line,
                        source_line=shown)
    try:
        return ast.parse(text, filename=str(path))
    except SyntaxError as err:
        shown = (err.text or "").rstrip() if source_line else ""
        raise SpecError(f"not valid Python: {err.msg}", path=path, line=err.lineno, source_line=shown) from None


def functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    """A module's top-level functions by name."""
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def bound_names(stmt: ast.stmt) -> Iterator[str]:
    """The names a top-level statement binds in its module (whatever an if or a try binds included)."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield stmt.name
    elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
        yield from (bound_name(a, stmt) for a in stmt.names if a.name != "*")
    else:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                yield node.id
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)) and node is not stmt:
                yield from bound_names(node)


def bound_name(alias: ast.alias, stmt: ast.Import | ast.ImportFrom) -> str:
    """The name an import binds for one of its aliases."""
    if alias.asname:
        return alias.asname
    return alias.name.split(".")[0] if isinstance(stmt, ast.Import) else alias.name


def identifier(text: str) -> str:
    """``text`` with every character that cannot be in an ASCII identifier replaced by ``_``."""
    return re.sub(r"[^0-9A-Za-z_]", "_", text)


def require_ascii_names(text: str, **where: Any) -> None:
    """Refuse a kernel comment that names something outside ASCII.

    A kernel's name and its parameters become C++ names, which pythran
    spells in ASCII (its comment parser fails on others with an IndexError).

    Raises
    ------
    SpecError
        Naming the first such name, located at ``where``.
    """
    found = re.search(r"\w*[^\x00-\x7f]\w*", text)
    if found:
        raise SpecError(
            f"'{found.group()}' is not an ASCII name: a kernel's name and parameters become C++ names, "
            "so rename it with ASCII letters, digits and '_'",
            **where,
        )
