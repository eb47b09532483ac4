"""Natural kernels: plain Python functions with a SciPy role, and the adapters that serve them.

A natural kernel is written as the scientist thinks of it, and one comment
says which SciPy role it plays and which of its arguments SciPy provides::

    #capsules integrand oscillatory(x, y, z; a, b)
    def oscillatory(x, y, z, a, b):
        return cos(a * x + b * y + z)

Before ``;`` come the arguments SciPy provides (integration variables, a
filter window, the input and output lines, the output coordinates); after it
the parameters, passed by name to ``Kernel.lowlevel(a=1.0, b=2.0)`` and
carried as float64 user_data.  The roles:

=============  ==================================  ===========================
role           SciPy provides                      the function returns
=============  ==================================  ===========================
integrand      one float per integration variable  the value (a float)
filter         ``window``: 1-D float64 view        the filtered value
filter1d       ``line_in``, ``line_out`` views     nothing (fills line_out)
mapping        ``out_coords``: 1-D int64 view      input coordinates (tuple
                                                   or array of floats)
=============  ==================================  ===========================

For each natural kernel we append a small pythran function with a raw
``#pythran export capsule`` signature that unpacks the pointers into views
(no copy), reads the parameters out of user_data, calls the user's function
and writes or returns its result.  A line kernel or mapping that only
indexes its lines or coordinates and takes their ``len()`` is called
through a twin that takes the pointers themselves (:func:`pointer_twin`).
The comment leaves the file valid Python and valid pythran.

A *checked* build also rewrites the module's division and modulo into
versions that raise ZeroDivisionError, bounds-checks the views' subscripts,
enables ``assert``, and reports non-finite results.
"""

from __future__ import annotations

import ast
import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import CapsulesError, SpecError

PREFIX = "_capsules_"
# "#capsules verify ..." is capsules.verify's, not a role comment
_COMMENT = re.compile(r"^\s*#\s*capsules\b(?!\s+verify\b)(.*)$")
_FORM = re.compile(r"^\s*(\w+)\s+(\w+)\s*\(([^;)]*)(?:;([^)]*))?\)\s*$")


@dataclass(frozen=True)
class Role:
    """What SciPy provides to a natural kernel of one role."""

    name: str
    provided: int | None  # how many arguments before ';' (None: one or more)
    types: str  # the raw pythran signature of the adapter, without user_data
    summary: str


ROLES: dict[str, Role] = {
    r.name: r
    for r in (
        Role("integrand", None, "int32, float64*", "integration variables"),
        Role("filter", 1, "float64*, int64, float64*", "the window"),
        Role("filter1d", 2, "float64*, int64, float64*, int64", "line_in and line_out"),
        Role("mapping", 1, "int64*, float64*, int32, int32", "the output coordinates"),
    )
}


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
    # provided arguments the function only ever indexes (one index) or
    # measures with len(): a twin of the function can take SciPy's raw
    # pointers and their lengths instead, with no view to build on every
    # call (see pointer_twin)
    as_pointers: tuple[str, ...] = ()
    # parameters fixed at build time, as literals the compiler can fold and
    # unroll with; they are no longer passed at run time
    constants: tuple[tuple[str, float], ...] = ()

    @property
    def entry(self) -> str:
        """The name of the generated raw capsule function."""
        return PREFIX + self.name

    @property
    def twin(self) -> str:
        """The name of the function's twin that takes SciPy's pointers (see :func:`pointer_twin`)."""
        return PREFIX + "raw_" + self.name

    @property
    def runtime_parameters(self) -> tuple[str, ...]:
        """The parameters still passed at run time, through user_data."""
        fixed = dict(self.constants)
        return tuple(p for p in self.parameters if p not in fixed)

    def export_types(self) -> str:
        """The pythran types of the generated raw capsule."""
        role = ROLES[self.role]
        needs_user_data = self.runtime_parameters or self.role != "integrand"
        return role.types + (", float64*" if needs_user_data else "")


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


def functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    """A module's top-level functions by name: the defs a ``#capsules`` comment may name."""
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


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
        raise SpecError("expected '#capsules ROLE name(provided, ...; parameter, ...)'", **where)
    role, name, provided, parameters = form.group(1), form.group(2), _names(form.group(3)), _names(form.group(4))
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
        raise SpecError(
            f"'{name}' takes ({', '.join(actual)}), but the comment lists ({', '.join(provided + parameters)}): "
            "they must be the same names in the same order",
            **where,
        )
    return NaturalSpec(role, name, provided, parameters, path, line, source_line, _as_pointers(node, provided))


def _as_pointers(node: ast.FunctionDef, provided: tuple[str, ...]) -> tuple[str, ...]:
    """The provided arguments whose every use in the function is a single-index subscript or ``len(name)``.

    None where the function defines functions (which could capture them),
    has defaults (the twin adds arguments after the others), or calls
    itself (the twin would call the function that takes views).
    """
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


def pointer_twin(spec: NaturalSpec, node: ast.FunctionDef, division: bool) -> str:
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
    lengths = {name: f"{PREFIX}len_{name}" for name in spec.provided}
    twin = _Pointers(lengths).visit(copy.deepcopy(node))
    twin.name = spec.twin
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


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(n.strip() for n in (text or "").split(",") if n.strip())


def adapters(
    specs: list[NaturalSpec], defs: Mapping[str, ast.FunctionDef], *, checked: bool = False, division: bool = False
) -> str:
    """Pythran source to append to a module: the helpers and one raw capsule per natural kernel.

    ``defs``: the module's :func:`functions`.  ``division``: the module's
    ``//`` and ``%`` were rewritten to the integer-division helpers.
    """
    if not specs and not checked and not division:
        return ""
    helpers = _CHECKED_HELPERS if checked else _DIVISION_HELPERS if division else ""
    parts = [_HELPERS.format(checked=helpers)]
    parts += [_adapter(spec, defs[spec.name], checked, division) for spec in specs]
    return "\n".join(parts)


def _takes_pointers(spec: NaturalSpec, checked: bool) -> bool:
    """Whether the kernel's adapter calls its pointer twin: a line kernel's or a mapping's, outside checked builds.

    A checked build keeps the views, whose subscripts it checks.
    """
    return spec.role in ("filter1d", "mapping") and not checked and set(spec.provided) <= set(spec.as_pointers)


_HELPERS = '''

# ---- generated by capsules: entry points for natural kernels ----
from numpy.ctypeslib import as_array as _capsules_as_array
import numpy as _capsules_np


def _capsules_at(i, n):
    return i + n if i < 0 else i
{checked}'''

# Every build: an integer // or % by zero raises, as in Python, instead of
# SIGFPE.  isinstance is decided at compile time: floats keep IEEE semantics
# and pay nothing, integers one compare next to a division.
_DIVISION_HELPERS = '''

def _capsules_ifloordiv(a, b):
    if isinstance(b, int) and b == 0:
        raise ZeroDivisionError("integer division or modulo by zero")
    return a // b


def _capsules_imod(a, b):
    if isinstance(b, int) and b == 0:
        raise ZeroDivisionError("integer division or modulo by zero")
    return a % b
'''

_CHECKED_HELPERS = '''

def _capsules_truediv(a, b):
    if b == 0:
        raise ZeroDivisionError("division by zero")
    return a / b


def _capsules_floordiv(a, b):
    if b == 0:
        raise ZeroDivisionError("integer division or modulo by zero")
    return a // b


def _capsules_mod(a, b):
    if b == 0:
        raise ZeroDivisionError("integer division or modulo by zero")
    return a % b


def _capsules_index(i, n):
    if i < -n or i >= n:
        raise IndexError("index out of range")
    return i
'''


def _adapter(spec: NaturalSpec, node: ast.FunctionDef, checked: bool, division: bool) -> str:
    fixed = dict(spec.constants)
    runtime = {p: i for i, p in enumerate(spec.runtime_parameters)}
    params = ", ".join(repr(fixed[p]) if p in fixed else f"ud[{runtime[p]}]" for p in spec.parameters)
    twin = f"\n\n{pointer_twin(spec, node, division)}\n" if _takes_pointers(spec, checked) else ""
    body = _BODIES[spec.role](spec, params, checked)
    return f"{twin}\n\n#pythran export capsule {spec.entry}({spec.export_types()})\n{body}\n"


def _finite_check(name: str, value: str, checked: bool) -> str:
    if not checked:
        return ""
    return (
        f"    if not _capsules_np.isfinite({value}):\n"
        f'        raise FloatingPointError("{name} returned a non-finite value")\n'
    )


def _integrand(spec: NaturalSpec, params: str, checked: bool) -> str:
    k = len(spec.provided)
    args = ", ".join([f"xx[{i}]" for i in range(k)] + ([params] if params else []))
    signature = "n, xx, ud" if spec.runtime_parameters else "n, xx"
    return (
        f"def {spec.entry}({signature}):\n"
        f"    if n != {k}:\n"
        f'        raise ValueError("{spec.name} integrates {k} variable(s) ({", ".join(spec.provided)}), '
        f'but SciPy passed another number")\n'
        f"    r = float({spec.name}({args}))\n"
        f"{_finite_check(spec.name, 'r', checked)}"
        f"    return r"
    )


def _filter(spec: NaturalSpec, params: str, checked: bool) -> str:
    args = ", ".join(["_capsules_as_array(buf, size)"] + ([params] if params else []))
    return (
        f"def {spec.entry}(buf, size, out, ud):\n"
        f"    r = {spec.name}({args})\n"
        f"{_finite_check(spec.name, 'r', checked)}"
        # r * 1.0: exactly r for any number (-0.0 and NaN too), and a build error
        # for a string or None, which would otherwise be stored as garbage
        f"    out[0] = r * 1.0\n"
        f"    return 1"
    )


def _filter1d(spec: NaturalSpec, params: str, checked: bool) -> str:
    if _takes_pointers(spec, checked):
        # SciPy's lines as they are: the entry point's path for kept promises
        # (adapters.py) then lets the compiler see that they do not overlap
        args = ", ".join(["li", "lo"] + ([params] if params else []) + ["nin", "nout"])
        return f"def {spec.entry}(li, nin, lo, nout, ud):\n    {spec.twin}({args})\n    return 1"
    args = ", ".join(["_capsules_as_array(li, nin)", "lo_view"] + ([params] if params else []))
    check = ""
    if checked:
        check = (
            "    for v in lo_view:\n"
            "        if not _capsules_np.isfinite(v):\n"
            f'            raise FloatingPointError("{spec.name} wrote a non-finite value")\n'
        )
    return (
        f"def {spec.entry}(li, nin, lo, nout, ud):\n"
        f"    lo_view = _capsules_as_array(lo, nout)\n"
        f"    {spec.name}({args})\n"
        f"{check}"
        f"    return 1"
    )


def _mapping(spec: NaturalSpec, params: str, checked: bool) -> str:
    # a coordinate view costs an allocation per pixel: the twin takes the raw pointer
    if _takes_pointers(spec, checked):
        call = f"{spec.twin}({', '.join(['oc'] + ([params] if params else []) + ['orank'])})"
    else:
        call = f"{spec.name}({', '.join(['_capsules_as_array(oc, orank)'] + ([params] if params else []))})"
    check = ""
    if checked:
        check = (
            "        if not _capsules_np.isfinite(ic[i]):\n"
            f'            raise FloatingPointError("{spec.name} returned a non-finite coordinate")\n'
        )
    return (
        f"def {spec.entry}(oc, ic, orank, irank, ud):\n"
        f"    res = {call}\n"
        f"    if len(res) != irank:\n"
        f'        raise ValueError("{spec.name} returned the wrong number of input coordinates")\n'
        f"    for i in range(irank):\n"
        f"        ic[i] = res[i] * 1.0\n"  # see _filter: strings are refused at build time
        f"{check}"
        f"    return 1"
    )


_BODIES = {"integrand": _integrand, "filter": _filter, "filter1d": _filter1d, "mapping": _mapping}
# what a natural kernel of each role must return (for errors)
RETURNS = {
    "integrand": "a number",
    "filter": "a number",
    "filter1d": "nothing in particular (it fills line_out)",
    "mapping": "the input coordinates, a tuple or array of numbers",
}


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
        if isinstance(node.slice, (ast.Slice, ast.Tuple)):
            return node
        size = ast.Call(ast.Name("len", ast.Load()), [ast.Name(node.value.id, ast.Load())], [])
        node.slice = ast.Call(ast.Name("_capsules_index", ast.Load()), [node.slice, size], [])
        return node


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
    text: str, specs: list[NaturalSpec], directives: list[str], *, checked: bool
) -> tuple[str, dict[int, int]]:
    """The module as a build compiles it (see :class:`_Checked`, :class:`_IntegerDivision`), and its line map.

    ``directives`` are pythran's comments (each with its continuation lines),
    which unparsing drops: they follow the code verbatim.  The map takes a
    line of the rewritten module to the user's line, so that errors name it.
    """
    tree = ast.parse(text)
    views = {spec.name: set(spec.provided) for spec in specs if spec.role != "integrand"}
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
