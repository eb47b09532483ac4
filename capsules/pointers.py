"""Stage 5, when it fails: a raw kernel's pointer used as a number, found in its source.

A raw kernel's export comment makes some parameters pointers (``float64*``:
SciPy passes a ``double *``).  Used as a number (``x * 2.0``, ``float(x)``)
or returned, such a pointer fails deep in the C++ pythran generates, or is
refused for its return type; the user's mistake is on one line of their
Python.  Here that line is found: every use of a pointer that is not an
index (``x[i]``), an assignment, or an argument of a call other than a
builtin's or math's (a function of the module is then searched in turn).
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .source import functions

if TYPE_CHECKING:
    from .spec import ExportSpec


@dataclass(frozen=True)
class Misuse:
    """A pointer used where a number is wanted: in which function, which name, on which line, and how."""

    function: str
    name: str
    declared: str  # its type in the export comment, e.g. "float64*"
    line: int
    returned: bool

    @property
    def message(self) -> str:
        """What is wrong, in Python's terms: what the name is, and how to read what it points to."""
        what = f"'{self.function}': {self.name} is declared {self.declared}, a pointer,"
        if self.returned:
            return f"{what} and is returned: return a value it points to, {self.name}[0] or {self.name}[i]"
        return f"{what} and is used here as a number: index it, {self.name}[0] for the first value, " \
               f"{self.name}[i] for the others"


def find(tree: ast.Module, exports: Iterable[ExportSpec], *, returned: bool = False) -> Misuse | None:
    """The first use of a raw kernel's pointer as a number (``returned``: the first return of one), or None."""
    defs = functions(tree)
    found = [m for name, held in _holders(defs, exports).items() for m in _misuses(defs[name], held, defs)]
    return min((m for m in found if m.returned or not returned), key=lambda m: m.line, default=None)


def _holders(defs: dict[str, ast.FunctionDef], exports: Iterable[ExportSpec]) -> dict[str, dict[str, str]]:
    """Each function's parameters that hold a raw kernel's pointer (name to declared type), through calls."""
    held = {
        s.name: {p: t for p, t in zip(s.params, s.types) if t.endswith("*")}
        for s in exports if s.capsule and not s.role and s.name in defs
    }
    todo = list(held)
    while todo:
        caller = todo.pop()
        for callee, param, declared in _passed(defs, caller, held[caller]):
            if param not in held.setdefault(callee, {}):
                held[callee][param] = declared
                todo.append(callee)
    return held


def _passed(defs: dict[str, ast.FunctionDef], caller: str, held: dict[str, str]) -> Iterator[tuple[str, str, str]]:
    """(function, its parameter, the pointer's type) for each pointer ``caller`` passes to a function of the module."""
    for call in ast.walk(defs[caller]):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in defs:
            params = [a.arg for a in defs[call.func.id].args.args]
            for arg, param in zip(call.args, params):
                if isinstance(arg, ast.Name) and arg.id in held:
                    yield call.func.id, param, held[arg.id]


def _misuses(function: ast.FunctionDef, held: dict[str, str], defs: dict[str, ast.FunctionDef]) -> Iterator[Misuse]:
    # a name the function assigns again may no longer hold the pointer: left alone
    assigned = {n.id for n in ast.walk(function) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    pointers = set(held) - assigned
    for parent in ast.walk(function):
        for child in ast.iter_child_nodes(parent):
            if isinstance(child, ast.Name) and child.id in pointers and not _reads_through(parent, child, defs):
                yield Misuse(function.name, child.id, held[child.id], child.lineno, isinstance(parent, ast.Return))


def _reads_through(parent: ast.AST, name: ast.Name, defs: dict[str, ast.FunctionDef]) -> bool:
    """Whether ``parent`` uses the pointer ``name`` as a pointer: indexes it, passes it on, or names it again."""
    if isinstance(parent, ast.Subscript):
        return parent.value is name
    if isinstance(parent, ast.Call):  # passed on (as_array(x, n), a helper), but not to float() or math.sin()
        return name in parent.args and not _takes_numbers(parent.func, defs)
    return isinstance(parent, ast.Assign)


def _takes_numbers(function: ast.expr, defs: dict[str, ast.FunctionDef]) -> bool:
    """Whether a call's function is one that takes numbers only: a builtin, or one of math's or cmath's."""
    if isinstance(function, ast.Name):
        return function.id not in defs and hasattr(builtins, function.id)
    return isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name) and \
        function.value.id in ("math", "cmath")
