"""Stage 0: lift a decorated function, and what it uses from its module, into a kernel module.

A kernel written inline (``@capsules.integrand("x, y; a")`` above a ``def``
in a script, a module or a notebook cell) is compiled from a kernel module
generated here.  That module holds, each at the line it has in the user's
file, so that every error names the user's own line:

- the role comment (``#capsules integrand f(x, y; a)`` or, for the raw form,
  ``#pythran export capsule f(int32, float64*)``) at the decorator's line;
- the function itself, and the plain functions it calls, transitively;
- the module-level numbers (and tuples of numbers) they read, as written;
- the imports they use, reduced to the names they use.

Everything else in the file is left out, and anything the kernel uses that
pythran cannot compile from source (a class, a list, a closure's variable,
a relative import) is refused with the file, the line and the name.  The
generated text is what the cache key hashes: editing the function, a helper
or a constant it reads makes a new build; anything else in the file does not.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import CapsulesError, SpecError
from .generate import roles
from .source import bound_name, bound_names, identifier, parse
from .spec import declares_kernels

RAW = "raw"
ROLES = (*roles.ROLES, RAW)
_BUILTINS = frozenset(dir(builtins))
# what a module-level constant may be built from
_CONSTANT_NODES = (
    ast.Constant, ast.UnaryOp, ast.BinOp, ast.Tuple, ast.Name, ast.Attribute, ast.Call, ast.Load,
    ast.operator, ast.unaryop,
)


@dataclass(frozen=True)
class Declaration:
    """What a decorator declares: the role, the function's name and what goes between the parentheses.

    For a natural role, ``text`` is ``"x, y; a, b"`` (what SciPy provides;
    the parameters); for the raw form, the pythran types of a capsule export,
    ``"int32, float64*, float64*"``.
    """

    role: str
    name: str
    text: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}")

    def comment(self) -> str:
        """The export comment this form stands for."""
        if self.role == RAW:
            return f"#pythran export capsule {self.name}({self.text})"
        # "x; k -> complex": what follows the arrow goes after the parentheses, as in the comment
        inside, arrow, returns = self.text.partition("->")
        return f"#capsules {self.role} {self.name}({inside.strip()}){f' -> {returns.strip()}' if arrow else ''}"


def natural_form(role: str, name: str, arguments: tuple[str, ...], text: str | None) -> Declaration:
    """The form of a natural decorator; with no text, SciPy provides the role's own arguments.

    Bare ``@capsules.integrand`` integrates over every argument; a bare filter,
    filter1d or mapping takes what SciPy provides first and the rest as
    parameters.
    """
    if text is None:
        provided = roles.ROLES[role].provided
        count = len(arguments) if provided is None else provided
        parameters = f"; {', '.join(arguments[count:])}" if arguments[count:] else ""
        text = f"{', '.join(arguments[:count])}{parameters}"
    return Declaration(role, name, " ".join(text.split()))


def raw_form(name: str, types: str) -> Declaration:
    """The form of ``@capsules.raw("int32, float64*")``; parentheses around the types are accepted."""
    text = " ".join(types.split())
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    return Declaration(RAW, name, text)


@dataclass(frozen=True)
class Lifted:
    """A kernel module generated from one decorated function of ``origin``."""

    origin: str  # the user's file, as errors name it
    name: str  # the kernel's name
    text: str  # the generated module
    line: int  # the decorator's line in origin (the def's, without one)
    comment_line: int  # the line of the role comment in text
    origin_lines: tuple[str, ...]

    @property
    def filename(self) -> str:
        """The generated module's file name: the user's, so run-time errors name the user's file."""
        name = Path(self.origin).name
        return name if name.endswith(".py") else f"{identifier(name) or 'kernel'}.py"

    def relocate(self, err: CapsulesError, generated: str | Path) -> CapsulesError:
        """``err`` about the generated module, re-pointed at the user's file and line."""
        line = self.line if err.line == self.comment_line else err.line
        return relocated(err, generated, self.origin, self.origin_lines, line)


def relocated(
    err: CapsulesError, generated: str | Path, origin: str, lines: tuple[str, ...], line: int | None
) -> CapsulesError:
    """A copy of ``err``, if it is about the file ``generated``, located at ``origin:line`` instead."""
    if err.path is None or Path(err.path) != Path(generated):
        return err
    moved = type(err).__new__(type(err))
    moved.__dict__.update(err.__dict__)
    moved.__cause__, moved.__context__ = err.__cause__, err.__context__
    moved.path, moved.line, moved.source_line = origin, line, line_text(lines, line) or err.source_line
    moved.args = (moved._located(),)
    return moved


def line_text(lines: Sequence[str], line: int | None) -> str:
    """Line ``line`` (1-based) of ``lines``, right-stripped; "" where there is none."""
    return lines[line - 1].rstrip() if line and 0 < line <= len(lines) else ""


def lift(origin: str, text: str, node: ast.FunctionDef, form: Declaration, tree: ast.Module | None = None) -> Lifted:
    """Generate the kernel module of ``node``, a top-level function of ``text`` (the file ``origin``).

    Raises
    ------
    SpecError
        The function uses something that cannot be compiled from source.
    """
    tree = tree if tree is not None else ast.parse(text)
    lines = text.splitlines()
    layout = _Layout()
    _Collector(tree, _Where(origin, lines), layout).function(node, kernel=True)
    comment_line = _comment_line(node, layout)
    layout.put(comment_line, form.comment())
    return Lifted(origin, form.name, layout.text(), first_line(node), comment_line, tuple(lines))


def find_function(tree: ast.Module, name: str, line: int) -> ast.FunctionDef | None:
    """The top-level ``def name`` whose first line (its first decorator's, if any) is ``line``."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name and first_line(node) == line:
            return node
    return None


def decorated(
    text: str, origin: str, tree: ast.Module | None = None
) -> Iterator[tuple[ast.FunctionDef, Declaration | CapsulesError, ast.Module]]:
    """The top-level functions of a source decorated with capsules' decorators, and their forms.

    This reads the source only (for ``capsules build script.py``): a
    decorator's arguments must be string literals to be found here.
    """
    tree = tree if tree is not None else ast.parse(text, filename=origin)
    where, ours = _Where(origin, text.splitlines()), _Decorators(tree)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            roles = [(d, role) for d in node.decorator_list if (role := ours.role(d))]
            if roles:
                try:
                    yield node, _static_form(node, *roles[0], where), tree
                except CapsulesError as err:
                    yield node, err, tree


def lift_source(origin: str, text: str) -> tuple[list[Lifted], list[CapsulesError]]:
    """Every inline kernel of a source, lifted; one error per kernel that cannot be.

    Raises
    ------
    SpecError
        The source is not valid Python.
    """
    lifted: list[Lifted] = []
    errors: list[CapsulesError] = []
    found = list(decorated(text, origin, parse(text, origin, source_line=False)))
    for node, form, tree in found:
        if isinstance(form, CapsulesError):  # the decorator itself could not be read
            errors.append(form)
            continue
        try:
            lifted.append(lift(origin, text, node, form, tree))
        except CapsulesError as err:
            errors.append(err)
    return lifted, errors


def script_line(text: str) -> int | None:
    """Where a script of inline kernels has its first: the line of its first capsules decorator, or None.

    The one rule that tells such a script (built kernel by kernel, from the
    functions its decorators lift) from a kernel file: a source with no
    ``#pythran export`` or ``#capsules`` comment whose top-level function is
    decorated with capsules' decorators, as its imports name them
    (``@capsules.integrand``, ``@cp.integrand`` after ``import capsules as
    cp``, ``@integrand`` after ``from capsules import integrand``).  A source
    that does not parse is judged by its text alone: its build says why it
    does not parse.
    """
    if "capsules" not in text or declares_kernels(text):  # a cheap look first: folder scans read every file
        return None
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):  # ValueError: a NUL byte, before Python 3.12
        return _first_decorator(text)
    ours = _Decorators(tree)
    found = [d.lineno for node in tree.body if isinstance(node, ast.FunctionDef)
             for d in node.decorator_list if ours.role(d)]
    return min(found, default=None)


def _first_decorator(text: str) -> int | None:
    """The line of the first decorator that may be capsules' (a cheap look before parsing), or None."""
    found = re.search(rf"^[ \t]*@\s*(?:[\w.]+\.)?(?:{'|'.join(ROLES)})\b", text, re.MULTILINE)
    return None if found is None else text.count("\n", 0, found.start()) + 1


class _Decorators:
    """Which decorators of a module are capsules' own, from its imports."""

    def __init__(self, tree: ast.Module) -> None:
        self.prefixes = {"capsules"}
        self.bare: dict[str, str] = {}
        for stmt in tree.body:
            if isinstance(stmt, ast.Import):
                self.prefixes |= {a.asname for a in stmt.names if a.name == "capsules" and a.asname}
            elif isinstance(stmt, ast.ImportFrom) and stmt.module in ("capsules", "capsules.decorators"):
                self.bare |= {a.asname or a.name: a.name for a in stmt.names if a.name in ROLES}

    def role(self, decorator: ast.expr, strict: bool = True) -> str | None:
        """The role a decorator gives; not strict: any ``x.integrand`` (its import may be in another cell)."""
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Name):
            return self.bare.get(target.id) or (None if strict or target.id not in ROLES else target.id)
        prefix, _, role = ast.unparse(target).rpartition(".")
        known = prefix in self.prefixes | {"capsules.decorators"}
        return role if role in ROLES and (known or not strict) else None


def _static_form(node: ast.FunctionDef, decorator: ast.expr, role: str, where: _Where) -> Declaration:
    args = decorator.args if isinstance(decorator, ast.Call) else []
    text = args[0].value if args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str) else None
    if args and text is None:
        raise SpecError(
            f"'{node.name}': the decorator's argument must be a string literal to build it from the source",
            **where.at(decorator.lineno),
        )
    if role == RAW:
        if text is None:
            raise SpecError(f"'{node.name}': @raw needs the pythran types, e.g. @capsules.raw(\"int32, float64*\")",
                            **where.at(decorator.lineno))
        return raw_form(node.name, text)
    arguments = tuple(a.arg for a in node.args.posonlyargs + node.args.args)
    return natural_form(role, node.name, arguments, text)


def first_line(node: ast.FunctionDef) -> int:
    """A function's first line: its first decorator's, as its code object counts."""
    return node.decorator_list[0].lineno if node.decorator_list else node.lineno


def _comment_line(node: ast.FunctionDef, layout: _Layout) -> int:
    # the decorator's line; a function decorated by a call (k = integrand(...)(f)) has none:
    # then the line above its def if the kernel needs nothing there, else after the end
    if node.decorator_list:
        return node.decorator_list[0].lineno
    above = node.lineno - 1
    return above if above > 0 and above not in layout.lines else max(layout.lines, default=0) + 1


class _Where:
    """Locates errors in the user's file."""

    def __init__(self, origin: str, lines: list[str]) -> None:
        self.origin, self.lines = origin, lines

    def at(self, line: int) -> dict[str, object]:
        return {"path": self.origin, "line": line, "source_line": line_text(self.lines, line)}


class _Layout:
    """The generated module, line by line: fragments put at the lines of the user's file."""

    def __init__(self) -> None:
        self.lines: dict[int, list[str]] = {}

    def put(self, line: int, text: str) -> None:
        self.lines.setdefault(line, []).append(text)

    def copy(self, first: int, source: list[str]) -> None:
        for offset, text in enumerate(source):
            self.put(first + offset, text)

    def text(self) -> str:
        last = max(self.lines, default=0)
        return "".join("; ".join(self.lines.get(i, [])) + "\n" for i in range(1, last + 1))


_Binding = ast.stmt


class _Collector:
    """Walks what a kernel uses, from the kernel down, and lays it out."""

    def __init__(self, tree: ast.Module, where: _Where, layout: _Layout) -> None:
        self.where, self.layout = where, layout
        self.bindings = _bindings(tree)
        self.decorators = _Decorators(tree)
        self.done: set[str] = set()
        # id(import statement) -> the statement and the aliases the kernel uses of it
        self.imports: dict[int, tuple[ast.Import | ast.ImportFrom, dict[str, ast.alias]]] = {}

    def function(self, node: ast.FunctionDef, kernel: bool = False) -> None:
        self.done.add(node.name)  # a function that calls itself (or its caller) is laid out once
        for decorator in node.decorator_list:
            if self.decorators.role(decorator, strict=False) is None:
                what = "the kernel" if kernel else f"'{node.name}', which the kernel calls,"
                raise SpecError(
                    f"{what} is decorated with '@{ast.unparse(decorator)}': capsules compiles plain functions",
                    **self.where.at(decorator.lineno),
                )
        self.layout.copy(node.lineno, self.where.lines[node.lineno - 1 : node.end_lineno])
        for name, line in _globals_of(node):
            self.name(name, line)
        if kernel:
            self._emit_imports()

    def name(self, name: str, line: int) -> None:
        if name in self.done:
            return
        self.done.add(name)
        found = self.bindings.get(name)
        if not found:
            if name in _BUILTINS:
                return
            raise SpecError(f"the kernel uses '{name}', which is not defined at the top level of the file",
                            **self.where.at(line))
        kinds = {type(b) for b in found}
        if len(found) > 1 and not kinds <= {ast.Import, ast.ImportFrom}:
            lines = ", ".join(str(b.lineno) for b in found)
            raise SpecError(f"the kernel uses '{name}', which is bound more than once at the top level "
                            f"(lines {lines}); give it one definition", **self.where.at(line))
        self._binding(name, found[-1], line)

    def _binding(self, name: str, stmt: _Binding, line: int) -> None:
        if isinstance(stmt, ast.FunctionDef):
            self.function(stmt)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            self._import(name, stmt, line)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)) and _simple_target(stmt):
            self._constant(name, stmt)
        else:
            raise SpecError(f"the kernel uses '{name}', {_describe(stmt)}: a kernel can use functions, numbers, "
                            "tuples of numbers and imported modules of its file", **self.where.at(line))

    def _import(self, name: str, stmt: ast.Import | ast.ImportFrom, line: int) -> None:
        if isinstance(stmt, ast.ImportFrom) and (stmt.level or stmt.module is None):
            raise SpecError(f"the kernel uses '{name}', from a relative import, which pythran cannot follow; "
                            "import it absolutely", **self.where.at(stmt.lineno))
        alias = next(a for a in stmt.names if bound_name(a, stmt) == name)
        module = alias.name if isinstance(stmt, ast.Import) else stmt.module or ""
        if module.split(".")[0] == "capsules":
            raise SpecError(f"the kernel uses '{name}' from capsules itself, which does not compile",
                            **self.where.at(line))
        self.imports.setdefault(id(stmt), (stmt, {}))[1][name] = alias

    def _constant(self, name: str, stmt: ast.Assign | ast.AnnAssign) -> None:
        value = stmt.value
        assert value is not None
        bad = next((n for n in ast.walk(value) if not isinstance(n, _CONSTANT_NODES)), None)
        bad = bad or next((n for n in ast.walk(value) if isinstance(n, ast.Constant) and not _is_number(n.value)), None)
        if bad is not None:
            raise SpecError(f"the kernel uses '{name}', which is not a number or a tuple of numbers (it holds "
                            f"{_kind(bad)}): pass it as a parameter instead", **self.where.at(stmt.lineno))
        source = f"{name} = {ast.unparse(value)}"
        self.layout.put(stmt.lineno, source)
        for used, line in _loads(value):
            self.name(used, line)

    def _emit_imports(self) -> None:
        for stmt, aliases in self.imports.values():
            names = ", ".join(ast.unparse(a) for a in aliases.values())
            if isinstance(stmt, ast.Import):
                self.layout.put(stmt.lineno, f"import {names}")
            else:
                self.layout.put(stmt.lineno, f"from {stmt.module} import {names}")


def _bindings(tree: ast.Module) -> dict[str, list[_Binding]]:
    found: dict[str, list[_Binding]] = {}
    for stmt in tree.body:
        for name in bound_names(stmt):
            found.setdefault(name, []).append(stmt)
    return found


def _simple_target(stmt: ast.Assign | ast.AnnAssign) -> bool:
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
    return stmt.value is not None and len(targets) == 1 and isinstance(targets[0], ast.Name)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, complex))  # bool is an int


def _kind(node: ast.AST) -> str:
    if isinstance(node, ast.Constant):
        return f"a {type(node.value).__name__}"
    names = {ast.List: "a list", ast.Dict: "a dict", ast.Set: "a set", ast.Lambda: "a lambda",
             ast.ListComp: "a list comprehension", ast.Subscript: "a subscript", ast.JoinedStr: "an f-string"}
    return names.get(type(node), f"a {type(node).__name__} expression")


def _describe(stmt: ast.stmt) -> str:
    line = stmt.lineno
    if isinstance(stmt, ast.ClassDef):
        return f"a class (line {line})"
    if isinstance(stmt, ast.AsyncFunctionDef):
        return f"an async function (line {line})"
    kind = type(stmt).__name__.lower()
    return f"which is bound by a top-level '{kind}' statement (line {line}), not by a plain assignment"


def _globals_of(node: ast.FunctionDef) -> list[tuple[str, int]]:
    """The names a function reads that it does not bind itself, each with the first line that reads it."""
    bound = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
    for sub in ast.walk(node):
        if sub is node:
            continue
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
            bound.add(sub.id)
        elif isinstance(sub, (ast.FunctionDef, ast.Lambda)):
            bound |= {a.arg for a in ast.walk(sub.args) if isinstance(a, ast.arg)}
            if isinstance(sub, ast.FunctionDef):
                bound.add(sub.name)
        elif isinstance(sub, (ast.Import, ast.ImportFrom)):
            bound |= {bound_name(a, sub) for a in sub.names}
    declared_global = {n for sub in ast.walk(node) if isinstance(sub, ast.Global) for n in sub.names}
    bound -= declared_global
    body = [n for stmt in node.body for n in ast.walk(stmt)]
    # default values and annotations are read by Python, not by the compiled kernel: only the body counts
    first: dict[str, int] = {}
    for sub in body:
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load) and sub.id not in bound:
            first[sub.id] = min(first.get(sub.id, sub.lineno), sub.lineno)
    return sorted(first.items(), key=lambda item: (item[1], item[0]))


def _loads(value: ast.expr) -> list[tuple[str, int]]:
    return [(n.id, n.lineno) for n in ast.walk(value) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)]


__all__ = ["RAW", "ROLES", "Declaration", "Lifted", "decorated", "find_function", "lift",
           "lift_source", "line_text", "natural_form", "raw_form", "relocated", "script_line"]
