"""The module a build compiles: the user's Python, rewritten where a build needs it, and the natural kernels' adapters.

:func:`scan` reads a kernel file's export comments (capsules.spec) and its
``#capsules`` comments (capsules.natural), writes each natural kernel's
adapter (capsules.generate.adapters), and returns a :class:`Scan`: the
exports, each natural kernel presented as the kernel it serves, and the
exact Python source pythran compiles, with a map from its lines to the
user's.
"""

from __future__ import annotations

import ast
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import natural, spec
from ..errors import CapsulesError, SpecError
from ..source import functions, parse, read_text
from ..spec import ExportSpec
from . import names
from .adapters import adapters, unpacked_arguments
from .rewrite import has_integer_division, rewritten_module, twin_lines
from .roles import ROLES
from .straight import is_straight, math_names

Constants = Mapping[str, Mapping[str, float]]
NOTHING_TO_BUILD = "no '#pythran export' or '#capsules' comment: nothing to build"


@dataclass(frozen=True)
class Scan:
    """What :func:`scan` found: the good exports and one error per bad one."""

    path: str
    exports: tuple[ExportSpec, ...]
    errors: tuple[CapsulesError, ...]
    source: str = ""  # what to compile: the module (rewritten where a build needs it) and the generated adapters
    # a line of ``source`` -> the user's line, where they differ (a rewritten module, the adapters)
    lines: Mapping[int, int] = field(default_factory=dict)

    def user_line(self, line: int | None) -> int | None:
        """The user's line for a line of :attr:`source`."""
        return self.lines.get(line, line) if line is not None and self.lines else line


def read_exports(
    path: str | Path, text: str | None = None, *, checked: bool = False, constants: Constants | None = None
) -> tuple[ExportSpec, ...]:
    """Return the exports of a kernel file, raising the first problem found.

    Raises
    ------
    SpecError
        The file is missing, is not valid Python, has no export comment, or
        an export comment is malformed or does not match its ``def``.
    """
    return read_scan(path, text, checked=checked, constants=constants).exports


def read_scan(
    path: str | Path, text: str | None = None, *, checked: bool = False, constants: Constants | None = None
) -> Scan:
    """:func:`scan`, raising the first problem found (or that there is nothing to export)."""
    result = scan(path, text, checked=checked, constants=constants)
    if result.errors:
        raise result.errors[0]
    if not result.exports:
        raise SpecError(NOTHING_TO_BUILD, path=path)
    return result


def scan(
    path: str | Path, text: str | None = None, *, checked: bool = False, constants: Constants | None = None
) -> Scan:
    """Parse every export comment of ``path``, collecting errors instead of raising.

    Natural kernels (``#capsules`` comments) are expanded into generated
    adapters; ``checked`` selects the checked build's rewriting, ``constants``
    fixes natural kernels' parameters at build time.  Errors that
    make the whole file unreadable (missing file, invalid Python) are still
    raised as :class:`SpecError`.
    """
    text = read_text(path) if text is None else text
    # CPython 3.11's ast.parse is not safe in parallel threads (builds use -j): one scan at a time
    with _AST_LOCK:
        return _scan(path, text, checked, constants)


_AST_LOCK = threading.Lock()


def _scan(path: str | Path, text: str, checked: bool, constants: Constants | None) -> Scan:
    tree = parse(text, path)
    naturals, errors = natural.find(text, path, tree)
    if constants:
        naturals, problems = natural.specialize(naturals, constants)
        errors += problems
    division = not checked and has_integer_division(tree)
    defs = functions(tree)
    generated = adapters(naturals, defs, checked=checked, division=division)
    exports = _exports(text, tree, str(path), errors)
    if generated:
        made = _exports(generated, ast.parse(generated), str(path), errors)
        exports += [_attach(e, naturals, defs) for e in made if e.name.startswith(names.PREFIX)]
    exports = spec.unique(exports, errors)
    body, lines = text, {}
    if checked or division:  # else the user's text is compiled as it is
        views = {n.name: _views(n) for n in naturals}
        body, lines = rewritten_module(text, views, spec.directives(text), checked=checked)
    lines = {**lines, **_adapter_lines(generated, naturals, defs, offset=len(body.splitlines()))}
    return Scan(str(path), tuple(spec.merge_overloads(exports)), tuple(errors), body + generated, lines)


def _views(kernel: natural.NaturalSpec) -> set[str]:
    """A natural kernel's arguments that are views: what SciPy provides (where the role makes views), its arrays."""
    arrays = {p for p, kind in kernel.parameter_types.items() if kind.rank}
    return (set(kernel.provided) if ROLES[kernel.role].views else set()) | arrays


def _exports(text: str, tree: ast.Module, path: str, errors: list[CapsulesError]) -> list[ExportSpec]:
    """The export comments of ``text``, each marked straight or not (see capsules.generate.straight)."""
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    found = spec.exports(text, defs, path, errors)
    math = math_names(tree)
    return [replace(e, straight=is_straight(defs[e.name], math)) for e in found]


def _adapter_lines(
    generated: str, naturals: list[natural.NaturalSpec], defs: Mapping[str, ast.FunctionDef], offset: int
) -> dict[int, int]:
    """Each line of the generated code -> the user's line that errors there are about.

    An adapter's lines are its ``#capsules`` comment's (errors there are the
    kernel's); a twin's statements are the kernel's own statements.
    """
    if not generated:
        return {}
    comment = {entry: n.line for n in naturals for entry in _entries(n)}
    twins = {names.twin(n.name): defs[n.name] for n in naturals}
    lines = {}
    for node in ast.parse(generated).body:
        if isinstance(node, ast.FunctionDef) and node.name in comment:
            lines |= {offset + line: comment[node.name]
                      for line in range(node.lineno, (node.end_lineno or node.lineno) + 1)}
        elif isinstance(node, ast.FunctionDef) and node.name in twins:
            lines |= {offset + new: old for new, old in twin_lines(twins[node.name], node).items()}
    return lines


def _entries(kernel: natural.NaturalSpec) -> tuple[str, ...]:
    """The generated functions SciPy calls for a natural kernel: its adapter, and the imaginary part's."""
    return (names.adapter(kernel.name),) + ((names.imaginary(kernel.name),) if kernel.complex else ())


def _attach(made: ExportSpec, naturals: list[natural.NaturalSpec], defs: Mapping[str, ast.FunctionDef]) -> ExportSpec:
    """Present a generated adapter's capsule as the natural kernel it serves."""
    nat = next(n for n in naturals if made.name in _entries(n))
    scipy = len(made.types) - len(unpacked_arguments(nat))  # SciPy's arguments come first
    imaginary = made.name == names.imaginary(nat.name)
    return replace(
        made,
        types=made.types[:scipy],
        cxx_types=made.cxx_types[:scipy],
        params=made.params[:scipy],
        reads=made.reads[:scipy],
        unpacked=made.cxx_types[scipy:],
        parameter_types=nat.runtime_types,
        part=("imag" if imaginary else "real") if nat.complex else "",
        name=made.name if imaginary else nat.name,
        adapter=made.name,
        role=nat.role,
        provided=nat.provided,
        parameters=nat.runtime_parameters,
        constants=nat.constants,
        line=nat.line,
        source_line=nat.source_line,
        doc=ast.get_docstring(defs[nat.name]) or "",
    )
