"""Natural kernels: the ``#capsules`` comment that gives a plain Python function a SciPy role.

A natural kernel is written as the scientist thinks of it, and one comment
says which SciPy role it plays and which of its arguments SciPy provides::

    #capsules integrand oscillatory(x, y, z; a, b)
    def oscillatory(x, y, z, a, b):
        return cos(a * x + b * y + z)

Before ``;`` come the arguments SciPy provides (integration variables, a
filter window, the input and output lines, the output coordinates); after it
the parameters, passed by name to ``Kernel.lowlevel(a=1.0, b=2.0)`` and
carried in one user_data block.  A parameter is a float64 unless the comment
types it (``n: int64``, ``table: float64[:]``, ``weights: float64[:, :]``;
the types are capsules.generate.parameters').  The roles (integrand, filter, filter1d,
mapping) are the records of capsules.generate.roles, which also write the
adapter SciPy calls.  This module reads the comments and checks each against
the ``def`` it names; the comment leaves the file valid Python and valid
pythran.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .errors import CapsulesError, SpecError
from .generate.parameters import FLOAT64, TYPES, ParameterType, parameter_type, types_of
from .generate.roles import ROLES
from .source import functions, require_ascii_names

# "#capsules verify ..." is capsules.verify's, not a role comment
# a remark may follow, after a second '#'
_COMMENT = re.compile(r"^\s*#\s*capsules\b(?!\s+verify\b)([^#]*)(?:#.*)?$")
_FORM = re.compile(r"^\s*(\w+)\s+(\w+)\s*\(([^;)]*)(?:;([^)]*))?\)\s*(?:->\s*(\w+))?\s*$")
COMPLEX = "complex"


@dataclass(frozen=True)
class NaturalSpec:
    """One ``#capsules ROLE name(provided; parameters)`` comment, checked against its def."""

    role: str
    name: str
    provided: tuple[str, ...]
    parameters: tuple[str, ...]
    path: str
    line: int
    source_line: str
    # parameters fixed at build time, as literals the compiler can fold and
    # unroll with; they are no longer passed at run time
    constants: tuple[tuple[str, float], ...] = ()
    # each parameter's type as the comment spells it ("float64[:]"); none: all float64
    types: tuple[str, ...] = ()
    # declared ``-> complex``: compiled as two kernels, its real and its imaginary part
    complex: bool = False

    @property
    def runtime_parameters(self) -> tuple[str, ...]:
        """The parameters still passed at run time, through user_data."""
        fixed = dict(self.constants)
        return tuple(p for p in self.parameters if p not in fixed)

    @property
    def parameter_types(self) -> dict[str, ParameterType]:
        """Each parameter's type."""
        return dict(zip(self.parameters, types_of(self.types, len(self.parameters))))

    @property
    def runtime_types(self) -> tuple[str, ...]:
        """The runtime parameters' types as spelled (empty where all are float64, as before types existed)."""
        kinds = self.parameter_types
        spelled = tuple(kinds[p].spelling for p in self.runtime_parameters)
        return spelled if any(kinds[p].unpacked for p in self.runtime_parameters) else ()


def specialize(
    specs: list[NaturalSpec], constants: Mapping[str, Mapping[str, float]]
) -> tuple[list[NaturalSpec], list[CapsulesError]]:
    """Fix parameters at build time: ``{"kernel": {"parameter": value}}``."""
    by_name = {s.name: s for s in specs}
    errors: list[CapsulesError] = []
    for kernel, values in constants.items():
        spec = by_name.get(kernel)
        if spec is None:
            errors.append(SpecError(f"constants name '{kernel}', which is not a natural kernel of this file",
                                    path=specs[0].path if specs else None))
            continue
        unknown = [p for p in values if p not in spec.parameters]
        typed = [p for p in values if p in spec.parameters and spec.parameter_types[p].unpacked]
        if typed:
            errors.append(SpecError(f"'{kernel}': only float64 parameters can be fixed at build time, not "
                                    f"{', '.join(f'{p}: {spec.parameter_types[p].spelling}' for p in typed)}",
                                    path=spec.path, line=spec.line, source_line=spec.source_line))
            continue
        if unknown:
            errors.append(SpecError(f"'{kernel}' has no parameter {', '.join(unknown)} to fix "
                                    f"(its parameters: {', '.join(spec.parameters)})",
                                    path=spec.path, line=spec.line, source_line=spec.source_line))
            continue
        fixed = tuple((p, float(values[p])) for p in spec.parameters if p in values)
        by_name[kernel] = replace(spec, constants=fixed)
    return [by_name[s.name] for s in specs], errors


def is_real(value: object) -> bool:
    """Whether a parameter value is a real number (bools are not), as natural kernels take them."""
    import numpy as np

    numbers = (int, float, np.integer, np.floating)
    return isinstance(value, numbers) and not isinstance(value, (bool, np.bool_))


def kernel_names(text: str) -> set[str]:
    """The names of the natural kernels a source declares (no parsing beyond the comments)."""
    forms = (_FORM.match(m.group(1)) for m in map(_COMMENT.match, text.splitlines()) if m)
    return {form.group(2) for form in forms if form}


def is_comment(line: str) -> bool:
    """Whether a source line is a ``#capsules`` role comment."""
    return _COMMENT.match(line) is not None


def find(text: str, path: str | Path, tree: ast.Module) -> tuple[list[NaturalSpec], list[CapsulesError]]:
    """Every ``#capsules`` comment of a kernel file, checked against the defs it names."""
    defs = functions(tree)
    specs: list[NaturalSpec] = []
    errors: list[CapsulesError] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        found = _COMMENT.match(line)
        if not found:
            continue
        try:
            specs.append(_parse(found.group(1), defs, str(path), lineno, line.rstrip()))
        except CapsulesError as err:
            errors.append(err)
    return specs, errors


def _parse(body: str, defs: dict[str, ast.FunctionDef], path: str, line: int, source_line: str) -> NaturalSpec:
    where = {"path": path, "line": line, "source_line": source_line}
    form = _FORM.match(body)
    if form is None:
        raise SpecError("expected '#capsules ROLE name(provided, ...; parameter, ...)' (an integrand may end "
                        "'-> complex')", **where)
    require_ascii_names(body, **where)
    role, name, provided = form.group(1), form.group(2), tuple(split(form.group(3)))
    typed = [_typed(item, where) for item in split(form.group(4))]
    parameters = tuple(n for n, _ in typed)
    if any(":" in n for n in provided):
        raise SpecError("what SciPy provides (before ';') takes no type: only parameters (after it) are typed",
                        **where)
    if role not in ROLES:
        raise SpecError(f"unknown role '{role}'; the roles are {', '.join(ROLES)}", **where)
    expected = ROLES[role].provided
    if (expected is None and not provided) or (expected is not None and len(provided) != expected):
        count = "one or more" if expected is None else str(expected)
        raise SpecError(f"a {role} takes {count} argument(s) before ';' ({ROLES[role].summary})", **where)
    node = defs.get(name)
    if node is None:
        raise SpecError(f"'#capsules' names '{name}', but the file has no top-level 'def {name}'", **where)
    actual = tuple(a.arg for a in node.args.posonlyargs + node.args.args)
    if actual != provided + parameters or node.args.vararg or node.args.kwarg:
        raise SpecError(different_names(name, actual, provided + parameters, "the comment"), **where)
    types = tuple(t for _, t in typed)
    return NaturalSpec(role, name, provided, parameters, path, line, source_line,
                       types=types if any(t != FLOAT64 for t in types) else (),
                       complex=_returns_complex(role, form.group(5), where))


def _returns_complex(role: str, returns: str | None, where: dict[str, Any]) -> bool:
    """Whether the comment ends ``-> complex``, which only a role with parts (an integrand) may."""
    if returns is None:
        return False
    if returns != COMPLEX or not ROLES[role].parts_body:
        with_parts = [r.name for r in ROLES.values() if r.parts_body]
        raise SpecError(f"'-> {returns}': only '-> {COMPLEX}' may follow the parentheses, and only for a "
                        f"{' or '.join(with_parts)}", **where)
    return True


def _typed(item: str, where: dict[str, Any]) -> tuple[str, str]:
    """``name`` or ``name: type``, as (name, the type's spelling)."""
    name, colon, spelled = (part.strip() for part in item.partition(":"))
    if not colon:
        return name, FLOAT64
    kind = parameter_type(spelled)
    if kind is None:
        raise SpecError(f"parameter '{name}' has type '{spelled}', which capsules does not pass; the types are "
                        f"{', '.join(TYPES)} (float64 is the default)", **where)
    return name, kind.spelling


def split(text: str | None) -> list[str]:
    """The comma-separated items of ``text``, commas inside brackets (``float64[:, :]``) left in their item."""
    items, depth, current = [], 0, ""
    for char in text or "":
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    return [item.strip() for item in [*items, current] if item.strip()]


def listed_names(text: str) -> tuple[str, ...]:
    """The names a role's form lists, ``"x; table: float64[:], x0"`` -> ``("x", "table", "x0")``.

    A decorator's string may end as the comment does after its parentheses
    (``"x; k -> complex"``): that is no name.
    """
    provided, _, parameters = text.partition("->")[0].partition(";")
    return tuple(item.partition(":")[0].strip() for item in split(provided) + split(parameters))


def different_names(name: str, takes: tuple[str, ...], listed: tuple[str, ...], lister: str) -> str:
    """The error for a kernel whose arguments are not the names its comment or decorator lists."""
    return (f"'{name}' takes ({', '.join(takes)}), but {lister} lists ({', '.join(listed)}): "
            "they must be the same names in the same order")

