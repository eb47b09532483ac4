"""Rewriting the user's Python for a build: pointer twins, and division and subscripts that raise.

Two rewrites of the module's syntax tree, each keeping a map from its lines
back to the user's, so that errors name the user's own line:

- a *pointer twin* of a line kernel or mapping that only indexes its lines or
  coordinates and takes their ``len()``: the same function taking SciPy's
  raw pointers and their lengths, with no view to build on every call;
- the module as a build compiles it: ``//`` and ``%`` that raise
  ZeroDivisionError for an integer zero (every build that uses them), and in
  a checked build all division raising, and the views' subscripts checked.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterable

from . import names


def as_pointers(node: ast.FunctionDef, provided: Iterable[str]) -> tuple[str, ...]:
    """The provided arguments whose every use in the function is a single-index subscript or ``len(name)``.

    Empty where the function defines functions (which could capture them),
    has defaults, keyword-only or variable arguments (the twin adds
    arguments after the others), or calls itself (the twin would call the
    function that takes views).
    """
    provided = tuple(provided)
    if node.args.defaults or node.args.kwonlyargs or node.args.vararg or node.args.kwarg:
        return ()
    allowed, uses = set(), []
    for sub in ast.walk(node):
        if sub is not node and isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            return ()
        if isinstance(sub, ast.Name) and sub.id == node.name:
            return ()
        if isinstance(sub, ast.Subscript) and not isinstance(sub.slice, (ast.Slice, ast.Tuple)):
            allowed.add(id(sub.value))
        elif _is_len(sub):
            allowed.add(id(sub.args[0]))
        elif isinstance(sub, ast.Name) and sub.id in provided:
            uses.append(sub)
    refused = {n.id for n in uses if id(n) not in allowed}
    return tuple(p for p in provided if p not in refused)


def _is_len(node: ast.AST) -> bool:
    """Whether ``node`` is ``len(name)``."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len"
            and len(node.args) == 1 and not node.keywords and isinstance(node.args[0], ast.Name))


class _Pointers(ast.NodeTransformer):
    """Views as pointers: ``len(view)`` as the length argument, each index counted from the end where negative."""

    def __init__(self, lengths: dict[str, str]) -> None:
        self.lengths = lengths  # view name -> the name of the argument holding its length

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if _is_len(node) and node.args[0].id in self.lengths:
            return ast.copy_location(ast.Name(self.lengths[node.args[0].id], ast.Load()), node)
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        self.generic_visit(node)
        if not (isinstance(node.value, ast.Name) and node.value.id in self.lengths):
            return node
        index = node.slice
        if isinstance(index, ast.Constant) and type(index.value) is int and index.value >= 0:
            return node  # nothing to count from the end
        size = ast.Name(self.lengths[node.value.id], ast.Load())
        node.slice = ast.Call(ast.Name("_capsules_at", ast.Load()), [index, size], [])
        return node


def pointer_twin(node: ast.FunctionDef, provided: tuple[str, ...], division: bool) -> str:
    """The kernel's function, as source, taking SciPy's pointers and their lengths where it takes views.

    Its arguments are the function's, then each provided argument's length.
    A pointer is the memory a view shows, with neither a length nor
    Python's negative indices: ``len(line_in)`` reads the length argument,
    and an index that may be negative goes through ``_capsules_at``, which
    counts it from the end as the view would (the compiler drops the test
    where it knows the index is not negative, as in a loop over
    ``range(n)``).  Indices past the end are what they are with a view in a
    build that is not checked.  The twin has the function's statements one
    for one (:func:`twin_lines`).  ``division``: the module's ``//`` and
    ``%`` raise for an integer zero, so the twin's do too.
    """
    lengths = {name: names.length(name) for name in provided}
    twin = _Pointers(lengths).visit(copy.deepcopy(node))
    twin.name = names.twin(node.name)
    twin.args.args += [ast.arg(length) for length in lengths.values()]
    if division:
        twin = _IntegerDivision({}).visit(twin)
    return ast.unparse(ast.fix_missing_locations(twin))


def twin_lines(original: ast.FunctionDef, twin: ast.FunctionDef) -> dict[int, int]:
    """Each line of a twin's statements -> the line of the function's same statement."""
    return {new.lineno: old.lineno for old, new in zip(_statements(original), _statements(twin))}


def _statements(node: ast.AST) -> list[ast.stmt]:
    # expressions hold no statements: filtered, both walks list the statements in the same order
    return [sub for sub in ast.walk(node) if isinstance(sub, ast.stmt)]


class _Checked(ast.NodeTransformer):
    """Division that raises like Python's, and bounds-checked subscripts of the views."""

    _DIVISION = {ast.Div: "_capsules_truediv", ast.FloorDiv: "_capsules_floordiv", ast.Mod: "_capsules_mod"}

    def __init__(self, views: dict[str, set[str]]) -> None:
        self.views = views  # function name -> its arguments that are views SciPy provides
        self.current: set[str] = set()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        outer, self.current = self.current, self.views.get(node.name, set())
        self.generic_visit(node)
        self.current = outer
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        helper = self._DIVISION.get(type(node.op))
        if helper is None:
            return node
        return ast.copy_location(ast.Call(ast.Name(helper, ast.Load()), [node.left, node.right], []), node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        if type(node.op) not in self._DIVISION:
            return self.generic_visit(node)
        load = ast.parse(ast.unparse(node.target), mode="eval").body
        binop = ast.copy_location(ast.BinOp(load, node.op, node.value), node)
        return self.visit(ast.copy_location(ast.Assign([node.target], binop), node))

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        self.generic_visit(node)
        if not (isinstance(node.value, ast.Name) and node.value.id in self.current):
            return node
        if isinstance(node.slice, ast.Slice):
            return node
        if isinstance(node.slice, ast.Tuple):  # an array parameter's w[i, j]: each index against its axis
            if any(isinstance(index, ast.Slice) for index in node.slice.elts):
                return node
            node.slice.elts = [_checked_index(index, _extent(node.value.id, axis), node.value.id)
                               for axis, index in enumerate(node.slice.elts)]
            return node
        size = ast.Call(ast.Name("len", ast.Load()), [ast.Name(node.value.id, ast.Load())], [])
        node.slice = _checked_index(node.slice, size, node.value.id)
        return node


def _checked_index(index: ast.expr, size: ast.expr, view: str) -> ast.expr:
    # the view's name is for the message, as checked pointers name theirs
    return ast.Call(ast.Name("_capsules_index", ast.Load()), [index, size, ast.Constant(view)], [])


def _extent(view: str, axis: int) -> ast.expr:
    """``view.shape[axis]``."""
    return ast.parse(f"{view}.shape[{axis}]", mode="eval").body


class _IntegerDivision(_Checked):
    """Every build: ``//`` and ``%`` through helpers that raise for an integer zero (nothing else)."""

    _DIVISION = {ast.FloorDiv: "_capsules_ifloordiv", ast.Mod: "_capsules_imod"}

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        return self.generic_visit(node)


def has_integer_division(tree: ast.Module) -> bool:
    """Whether a module uses ``//`` or ``%`` (and so needs the rewrite of every build)."""
    return any(
        isinstance(node, (ast.BinOp, ast.AugAssign)) and isinstance(node.op, (ast.FloorDiv, ast.Mod))
        for node in ast.walk(tree)
    )


def rewritten_module(
    text: str, views: dict[str, set[str]], directives: list[str], *, checked: bool
) -> tuple[str, dict[int, int]]:
    """The module as a build compiles it (see :class:`_Checked`, :class:`_IntegerDivision`), and its line map.

    ``views``: each natural kernel's arguments that are views of what SciPy
    provides.  ``directives`` are pythran's comments (each with its
    continuation lines), which unparsing drops: they follow the code
    verbatim.  The map takes a line of the rewritten module to the user's
    line, so that errors name it.
    """
    tree = ast.parse(text)
    rewrite = _Checked(views) if checked else _IntegerDivision({})
    tree = ast.fix_missing_locations(rewrite.visit(tree))
    code = ast.unparse(tree)
    # parsing the unparsed code gives the same tree, node for node: pair their lines
    lines = {
        new.lineno: old.lineno
        for old, new in zip(ast.walk(tree), ast.walk(ast.parse(code)))
        if isinstance(new, ast.stmt) and isinstance(old, ast.stmt)
    }
    return code + "\n\n" + "\n".join(directives) + "\n", lines
