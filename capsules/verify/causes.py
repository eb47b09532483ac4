"""Verify's causes: the known classes of divergence, and the one a divergence belongs to."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .compare import Outcome


CAUSES: dict[str, str] = {
    "int-overflow": "int64 wrap-around: Python's integers grow past 2**63, the compiled ones wrap",
    "float-to-int": "a float too large for an int64: Python converts it exactly (or raises), C's conversion "
    "gives nonsense",
    "division-by-zero": "float division by zero: Python raises ZeroDivisionError, C gives inf or nan",
    "math-domain": "math domain error: Python raises ValueError, C gives nan or -inf",
    "overflow": "overflow: Python raises OverflowError, C gives inf",
    "index": "an index out of range: Python raises IndexError, a build that is not checked reads past the end",
    "python-raises": "Python raises where the compiled kernel returns a value",
    "compiled-raises": "the compiled kernel raises where Python returns a value",
    "typing": "a different value, with no error on either side: Pythran's typing or C's semantics (round, % of "
    "a negative divisor, an argument's C type) or another implementation of a library function",
}


INT64 = (-(2**63), 2**63 - 1)
_CONVERSIONS = frozenset({"int", "round", "floor", "ceil", "trunc"})


class Probe:
    """Notes the first integer outside int64 that the Python side makes, and the line that made it."""

    def __init__(self) -> None:
        self.line: int | None = None
        self.conversion = False
        self.outcome: Outcome | None = None

    def note(self, value: Any, line: int, conversion: bool) -> Any:
        if self.line is None and type(value) is int and not INT64[0] <= value <= INT64[1]:
            self.line, self.conversion = line, conversion
        return value

    def instrumented(self, text: str, path: str, name: str) -> Callable[..., Any]:
        """``name`` from ``text`` run again, every integer operation and conversion noted."""
        tree = _Noting().visit(ast.parse(text, filename=path))
        namespace: dict[str, Any] = {"__name__": "capsules_verify_probe", "__file__": path, _NOTE: self.note}
        exec(compile(ast.fix_missing_locations(tree), path, "exec"), namespace)  # noqa: S102  (the user's own module)
        return namespace[name]


_NOTE = "_capsules_verify_note"


class _Noting(ast.NodeTransformer):
    """Wraps arithmetic and conversions to int in calls that note their results."""

    def _wrap(self, node: ast.expr, conversion: bool) -> ast.expr:
        call = ast.Call(ast.Name(_NOTE, ast.Load()),
                        [node, ast.Constant(getattr(node, "lineno", 0)), ast.Constant(conversion)], [])
        return ast.copy_location(call, node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        return self._wrap(self.generic_visit(node), False)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        return self._wrap(self.generic_visit(node), False)

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        return self._wrap(node, name in _CONVERSIONS)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.stmt:
        self.generic_visit(node)
        if not isinstance(node.target, ast.Name):
            return node
        value = ast.BinOp(ast.Name(node.target.id, ast.Load()), node.op, node.value)
        assign = ast.Assign([node.target], self._wrap(ast.copy_location(value, node), False))
        return ast.copy_location(assign, node)


def classify(compiled: Outcome, python: Outcome, probe: Probe, path: str) -> tuple[str, str]:
    """The known cause of a divergence (a key of :data:`CAUSES`) and the line of the kernel it comes from."""
    if probe.line is not None:
        return ("float-to-int" if probe.conversion else "int-overflow"), f"line {probe.line}"
    error = python.error
    if error is None:
        return ("compiled-raises" if compiled.error is not None else "typing"), ""
    noted = probe.outcome.error if probe.outcome is not None else None
    line = _raised_at(noted, path) if noted is not None else None
    line = line or _raised_at(error, path)
    where = f"line {line}" if line else ""
    text = str(error)
    if isinstance(error, ZeroDivisionError):
        return "division-by-zero", where
    if isinstance(error, OverflowError):
        if "convert float" in text:
            return "float-to-int", where
        return ("int-overflow" if "int too large" in text else "overflow"), where
    if isinstance(error, ValueError):
        return ("float-to-int" if "convert float NaN" in text else
                "math-domain" if "math domain" in text else "python-raises"), where
    if isinstance(error, IndexError):
        return "index", where
    return "python-raises", where


def _raised_at(error: BaseException, path: str) -> int | None:
    """The last line of ``path`` in the traceback of ``error``."""
    line, tb = None, error.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename) == Path(path):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
