"""Stage 1: find the export comments of a kernel file.

A kernel file is plain Python.  Its exports are pythran's own comments::

    #pythran export capsule f(int32, float64*, float64*)
    #pythran export norm(float64[:])

Each comment is parsed with pythran's spec parser, one comment at a time, so
that an error names the line it is on, and checked against the ``def`` it
names (it must exist at top level and take as many arguments as the comment
gives types).  The result is a tuple of :class:`ExportSpec` values.

Pythran is imported lazily: loading an already built kernel never pays for it.
"""

from __future__ import annotations

import ast
import importlib
import io
import logging
import os
import re
import stat
import sys
import threading
import tokenize
import types
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import inline, natural
from .errors import CapsulesError, SpecError

Constants = Mapping[str, Mapping[str, float]]
_EXPORT = re.compile(r"^\s*#\s*pythran\s+export\b")
# pythran reads every comment that starts like this as one of its own
_PYTHRAN = re.compile(r"^\s*#\s*pythran")


@dataclass(frozen=True)
class ExportSpec:
    """One exported function, as the export comment and the ``def`` describe it.

    ``types`` are pythran's spellings (``"float64*"``), ``cxx_types`` the C++
    types pythran passes (``"pythonic::types::pointer<double>"``).  For a
    plain (non-capsule) export with overloads, ``types`` is the first overload.
    ``reads`` tells, per parameter, what the body does with it: ``None``
    never used, ``0`` used in ways we cannot bound, ``k`` indexed with
    constants up to ``k - 1`` (so a buffer passed there needs ``k`` items).
    """

    name: str
    types: tuple[str, ...]
    cxx_types: tuple[str, ...]
    params: tuple[str, ...]
    capsule: bool
    path: str
    line: int
    source_line: str = ""
    doc: str = ""
    reads: tuple[int | None, ...] = field(default=())
    # natural kernels (see natural.py): the generated raw function the capsule
    # calls, the role, what SciPy provides and the parameters passed by name
    entry: str = ""
    role: str = ""
    provided: tuple[str, ...] = ()
    parameters: tuple[str, ...] = ()
    constants: tuple[tuple[str, float], ...] = ()  # parameters fixed at build time
    # the body has no loop and calls nothing but the math module: each call
    # is short, whatever the arguments (see adapters: no countdown for Ctrl-C)
    straight: bool = False

    def __post_init__(self) -> None:
        if len(self.types) != len(self.cxx_types):
            raise ValueError("types and cxx_types differ in length")

    @property
    def pythran(self) -> str:
        """The export as pythran spells it, e.g. ``f(int32, float64*, float64*)``."""
        return f"{self.name}({', '.join(self.types)})"

    @property
    def declared(self) -> str:
        """The export as its comment declares it: pythran's spelling, or a natural kernel's role."""
        if not self.role:
            return self.pythran
        params = list(self.parameters) + [f"{p}={v!r}" for p, v in self.constants]
        return f"{self.role} {self.name}({', '.join(self.provided)}; {', '.join(params)})"

    @property
    def formula(self) -> str:
        """The docstring's first line: by convention, what the kernel computes."""
        return self.doc.strip().split("\n", 1)[0].strip()

    @property
    def user_data_layout(self) -> str:
        """The docstring paragraph that starts with ``user_data:`` (joined into one line), or ""."""
        for paragraph in self.doc.split("\n\n"):
            text = " ".join(paragraph.split())
            if text.startswith("user_data:"):
                return text[len("user_data:") :].strip()
        return ""

    def where(self) -> dict[str, Any]:
        """Keyword arguments locating an error at this export's comment."""
        return {"path": self.path, "line": self.line, "source_line": self.source_line}

    def to_json(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        del data["path"]  # the cache entry is shared by every copy of the source
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], path: str) -> ExportSpec:
        # a later capsules may record more about an export (in a wheel's
        # prebuilt entry, say): what this one does not know, it does not read
        fields = {k: _tuples(v) for k, v in data.items() if k in cls.__dataclass_fields__ and k != "path"}
        return cls(path=path, **fields)


def _tuples(value: Any) -> Any:
    # JSON has lists where the dataclass holds (nested) tuples
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


@dataclass(frozen=True)
class Scan:
    """What :func:`scan` found: the good exports and one error per bad one."""

    path: str
    exports: tuple[ExportSpec, ...]
    errors: tuple[CapsulesError, ...]
    source: str = ""  # what to compile: the module (rewritten if checked) and the generated adapters
    # a line of ``source`` -> the user's line, where they differ (a checked build's rewritten module)
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


NOTHING_TO_BUILD = "no '#pythran export' or '#capsules' comment: nothing to build"
DECORATED_SCRIPT = (
    "this script's kernels are decorated, and capsules.load() takes a kernel file with '#pythran export' "
    "or '#capsules' comments: import the script and call kernel.lowlevel() on its kernels (built at first "
    "use), or build them ahead with 'capsules build {path}'"
)


def read_scan(
    path: str | Path, text: str | None = None, *, checked: bool = False, constants: Constants | None = None
) -> Scan:
    """:func:`scan`, raising the first problem found (or that there is nothing to export)."""
    text = _read_text(path) if text is None else text
    result = scan(path, text, checked=checked, constants=constants)
    if result.errors:
        raise result.errors[0]
    if not result.exports:
        line = inline.first_decorator(text)
        if line is not None:  # capsules.load() of a script whose kernels are decorated
            raise SpecError(DECORATED_SCRIPT.format(path=path), path=path, line=line)
        raise SpecError(NOTHING_TO_BUILD, path=path)
    return result


def scan(
    path: str | Path, text: str | None = None, *, checked: bool = False, constants: Constants | None = None
) -> Scan:
    """Parse every export comment of ``path``, collecting errors instead of raising.

    Natural kernels (``#capsules`` comments) are expanded into generated
    capsules; ``checked`` selects the checked build's rewriting, ``constants``
    fixes natural kernels' parameters at build time.  Errors that
    make the whole file unreadable (missing file, invalid Python) are still
    raised as :class:`SpecError`.
    """
    text = _read_text(path) if text is None else text
    # CPython 3.11's ast.parse is not safe in parallel threads (builds use -j): one scan at a time
    with _AST_LOCK:
        return _scan(path, text, checked, constants)


_AST_LOCK = threading.Lock()


def _scan(path: str | Path, text: str, checked: bool, constants: Constants | None) -> Scan:
    tree = _parse_python(text, path)
    naturals, errors = natural.find(text, path, tree)
    if constants:
        naturals, problems = natural.specialize(naturals, constants)
        errors += problems
    division = not checked and natural.has_integer_division(tree)
    defs = natural.functions(tree)
    generated = natural.adapters(naturals, defs, checked=checked, division=division)
    exports = _scan_text(text, tree, str(path), errors)
    if generated:
        made = _scan_text(generated, ast.parse(generated), str(path), errors)
        exports += [_attach(spec, naturals, tree) for spec in made if spec.name.startswith(natural.PREFIX)]
    seen: dict[str, int] = {}
    for spec in list(exports):
        try:
            _check_duplicate(spec, seen)
        except CapsulesError as err:
            errors.append(err)
            exports.remove(spec)
    body, lines = text, {}
    if checked or division:  # else the user's text is compiled as it is
        directives = ["\n".join(line.strip() for line in block) for _, block in _export_blocks(text.splitlines())]
        body, lines = natural.rewritten_module(text, naturals, directives, checked=checked)
    lines = {**lines, **_adapter_lines(generated, naturals, defs, offset=len(body.splitlines()))}
    return Scan(str(path), tuple(_merge_overloads(exports)), tuple(errors), body + generated, lines)


def _adapter_lines(
    generated: str, naturals: list[natural.NaturalSpec], defs: Mapping[str, ast.FunctionDef], offset: int
) -> dict[int, int]:
    """Each line of the generated code -> the user's line that errors there are about.

    An adapter's lines are its ``#capsules`` comment's (errors there are the
    kernel's); a twin's statements are the kernel's own statements.
    """
    if not generated:
        return {}
    comment = {spec.entry: spec.line for spec in naturals}
    twins = {spec.twin: defs[spec.name] for spec in naturals}
    lines = {}
    for node in ast.parse(generated).body:
        if isinstance(node, ast.FunctionDef) and node.name in comment:
            lines |= {offset + line: comment[node.name]
                      for line in range(node.lineno, (node.end_lineno or node.lineno) + 1)}
        elif isinstance(node, ast.FunctionDef) and node.name in twins:
            lines |= {offset + new: old for new, old in natural.twin_lines(twins[node.name], node).items()}
    return lines


def _scan_text(text: str, tree: ast.Module, path: str, errors: list[CapsulesError]) -> list[ExportSpec]:
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    lines = text.splitlines()
    exports: list[ExportSpec] = []
    for lineno, block in _export_blocks(lines):
        try:
            exports += _parse_block(block, lineno, lines, defs, path)
        except CapsulesError as err:
            errors.append(err)
    names = _math_names(tree)
    return [replace(e, straight=_straight(defs[e.name], names)) for e in exports]


# Calls a straight kernel may make: scalar functions whose time does not
# depend on their arguments' size; of math's, not those that run over an
# iterable or count up to an argument.
_SCALAR_BUILTINS = frozenset({"abs", "float", "int", "bool", "round"})
_LOOPING_MATH = frozenset({"fsum", "prod", "dist", "sumprod", "factorial", "comb", "perm"})


def _math_names(tree: ast.Module) -> tuple[frozenset[str], frozenset[str]]:
    """The module's names for ``math`` itself (``import math``) and for its functions (``from math import sin``).

    A name the module also binds otherwise (a ``def sin``, an assignment) is neither.
    """
    modules, functions, rebound = set(), set(), set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            modules |= {a.asname or a.name for a in node.names if a.name == "math"}
            rebound |= {a.asname or a.name.split(".")[0] for a in node.names if a.name != "math"}
        elif isinstance(node, ast.ImportFrom) and node.module == "math" and not node.level:
            functions |= {a.asname or a.name for a in node.names if a.name not in _LOOPING_MATH}
        else:
            rebound |= _bound(node)
    return frozenset(modules - rebound), frozenset(functions - rebound)


def _bound(node: ast.AST) -> set[str]:
    """The names a top-level statement binds (whatever an if or a try binds included)."""
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
            names.add(sub.id)
        elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(sub.name)
        elif isinstance(sub, (ast.Import, ast.ImportFrom)):
            names |= {a.asname or a.name.split(".")[0] for a in sub.names}
    return names


def _straight(node: ast.AST, names: tuple[frozenset[str], frozenset[str]]) -> bool:
    """Whether a kernel's body has no loop and calls only math functions and scalar builtins (see ExportSpec)."""
    modules, functions = names
    for sub in ast.walk(node):
        if sub is not node and isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return False
        if isinstance(sub, (ast.For, ast.AsyncFor, ast.While, ast.comprehension)):
            return False
        if isinstance(sub, ast.Call):
            f = sub.func
            by_module = (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in modules
                         and f.attr not in _LOOPING_MATH)
            by_name = isinstance(f, ast.Name) and (f.id in functions or f.id in _SCALAR_BUILTINS)
            if not (by_module or by_name):
                return False
    return True


def _attach(spec: ExportSpec, naturals: list[natural.NaturalSpec], tree: ast.Module) -> ExportSpec:
    """Present a generated capsule as the natural kernel it serves."""
    nat = next(n for n in naturals if n.entry == spec.name)
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == nat.name)
    return replace(
        spec,
        name=nat.name,
        entry=spec.name,
        role=nat.role,
        provided=nat.provided,
        parameters=nat.runtime_parameters,
        constants=nat.constants,
        line=nat.line,
        source_line=nat.source_line,
        doc=ast.get_docstring(node) or "",
    )


def declares_kernels(text: str) -> bool:
    """Whether a source has a ``#pythran export`` or ``#capsules`` comment."""
    return any(_EXPORT.match(line) or natural.is_comment(line) for line in text.splitlines())


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


def _first_bad_line(data: bytes) -> int | None:
    """The line of the first byte that is not UTF-8, if any."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        return data.count(b"\n", 0, err.start) + 1
    return None


def _read_text(path: str | Path) -> str:
    return decode_source(read_source(path), path)


def _parse_python(text: str, path: str | Path) -> ast.Module:
    if "\0" in text:  # Python before 3.12 raises ValueError for it, with no line
        line = text.count("\n", 0, text.index("\0")) + 1
        raise SpecError("not valid Python: source code cannot contain null bytes", path=path, line=line,
                        source_line=text.splitlines()[line - 1].rstrip())
    try:
        return ast.parse(text, filename=str(path))
    except SyntaxError as err:
        raise SpecError(
            f"not valid Python: {err.msg}", path=path, line=err.lineno, source_line=(err.text or "").rstrip()
        ) from None


def _export_blocks(lines: list[str]) -> list[tuple[int, list[str]]]:
    """Group each ``#pythran`` comment with its continuation lines, as pythran does.

    Pythran joins the comment lines that directly follow a ``#pythran`` line,
    and rejects the build for any such comment that is not a valid export, so
    every one of them is checked, not only those that say ``export``.
    """
    blocks: list[tuple[int, list[str]]] = []
    i = 0
    while i < len(lines):
        if not _PYTHRAN.match(lines[i]):
            i += 1
            continue
        start, block = i + 1, [lines[i]]
        i += 1
        while i < len(lines) and lines[i].strip().startswith("#") and not _PYTHRAN.match(lines[i]):
            block.append(lines[i])
            i += 1
        blocks.append((start, block))
    return blocks


_PARSER: Any = None
# pythran's parser (ply) keeps its state in the instance: builds run in
# threads (-j), so one parse at a time
_PARSER_LOCK = threading.Lock()


def _import_pythran() -> None:
    # pythran logs warnings about numpy's signatures at import, which are not
    # the user's business; its errors still come through
    logging.getLogger("pythran").setLevel(logging.ERROR)
    if "pythran.spec" in sys.modules or "pythran.syntax" in sys.modules:
        importlib.import_module("pythran.spec")
        return
    # pythran.spec takes nothing from pythran.syntax but PythranSyntaxError,
    # which pythran.errors defines; importing pythran.syntax builds pythran's
    # tables of every function it supports (numpy, scipy.special, a probe for
    # OpenMP that runs the compiler three times): 0.45 s, nine tenths of a
    # scan.  The compiler process imports all of it anyway; the scan does not
    # need it, so pythran.spec is imported with pythran.errors standing in.
    from pythran.errors import PythranSyntaxError

    stand_in = types.ModuleType("pythran.syntax")
    stand_in.PythranSyntaxError = PythranSyntaxError  # type: ignore[attr-defined]
    sys.modules["pythran.syntax"] = stand_in
    try:
        importlib.import_module("pythran.spec")
    except ImportError:  # a pythran whose spec parser needs more of pythran.syntax
        _forget(stand_in)
        importlib.import_module("pythran.spec")
    finally:
        _forget(stand_in)


def _forget(stand_in: types.ModuleType) -> None:
    """Take the stand-in out, so that the next import of pythran.syntax is the real one."""
    if sys.modules.get("pythran.syntax") is stand_in:
        del sys.modules["pythran.syntax"]
    package = sys.modules.get("pythran")
    if package is not None and vars(package).get("syntax") is stand_in:
        delattr(package, "syntax")


def _pythran_parse(text: str) -> Any:
    """Run pythran's own spec parser on one export comment."""
    global _PARSER
    try:
        with _PARSER_LOCK:
            if _PARSER is None:
                _import_pythran()
                from pythran.spec import SpecParser

                _PARSER = SpecParser()
            return _PARSER(text)
    except Exception as err:
        from pythran.errors import PythranSyntaxError

        inner = getattr(err, "e", err)  # pythran >= 0.19 wraps its syntax errors
        if isinstance(inner, PythranSyntaxError):
            raise inner from None
        raise


def _parse_block(
    block: list[str], lineno: int, lines: list[str], defs: dict[str, ast.AST], path: str
) -> list[ExportSpec]:
    from pythran.errors import PythranSyntaxError

    source_line = lines[lineno - 1].rstrip()
    try:
        spec = _pythran_parse("\n".join(_normalise(line) for line in block))
    except PythranSyntaxError as err:
        message = str(err.args[0]) if err.args else "malformed export comment"
        raise SpecError(message, path=path, line=lineno, source_line=source_line) from None
    found = [(name, sig, True) for name, sig in spec.capsules.items()]
    found += [(name, sig, False) for name, sigs in spec.functions.items() for sig in sigs or [()]]
    return [_make_spec(name, sig, capsule, lineno, source_line, defs, path) for name, sig, capsule in found]


def _normalise(line: str) -> str:
    # pythran's parser wants '#pythran' at the start of the line; it joins the
    # comment lines that follow by itself
    return re.sub(r"^\s*#\s*pythran", "#pythran", line)


def _make_spec(
    name: str, sig: tuple, capsule: bool, lineno: int, source_line: str, defs: dict[str, ast.AST], path: str
) -> ExportSpec:
    from pythran.types.conversion import pytype_to_ctype, pytype_to_pretty_type

    where = {"path": path, "line": lineno, "source_line": source_line}
    node = defs.get(name)
    if node is None:
        hint = _closest(name, defs)
        raise SpecError(f"export names '{name}', but the file has no top-level 'def {name}'{hint}", **where)
    params = _params(node, name, len(sig), capsule, where)
    return ExportSpec(
        name=name,
        types=tuple(pytype_to_pretty_type(t) for t in sig),
        cxx_types=tuple(pytype_to_ctype(t) for t in sig),
        params=params,
        capsule=capsule,
        path=path,
        line=lineno,
        source_line=source_line,
        doc=ast.get_docstring(node) or "",
        reads=tuple(_reads(node, p) for p in params),
    )


def _closest(name: str, defs: dict[str, ast.AST]) -> str:
    import difflib

    match = difflib.get_close_matches(name, list(defs), n=1)
    return f" (did you mean '{match[0]}'?)" if match else ""


def _params(node: Any, name: str, ntypes: int, capsule: bool, where: dict) -> tuple[str, ...]:
    args = node.args
    if args.vararg or args.kwarg or args.kwonlyargs:
        raise SpecError(f"'{name}' takes *args, **kwargs or keyword-only arguments, which pythran cannot export", **where)
    params = tuple(a.arg for a in args.posonlyargs + args.args)
    required = len(params) - len(args.defaults)
    low = len(params) if capsule else required
    if not low <= ntypes <= len(params):
        kind = "capsule " if capsule else ""
        raise SpecError(
            f"{kind}'{name}' takes {len(params)} argument(s) ({', '.join(params)}), "
            f"but the export comment gives {ntypes} type(s)",
            **where,
        )
    return params[:ntypes]


def _reads(node: ast.AST, param: str) -> int | None:
    """How many items the body provably reads from ``param`` (see ExportSpec.reads)."""
    used = False
    need = 0
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id == param and isinstance(sub.ctx, ast.Load):
            used = True
        if isinstance(sub, ast.Subscript) and isinstance(sub.value, ast.Name) and sub.value.id == param:
            index = sub.slice
            if isinstance(index, ast.Constant) and type(index.value) is int:
                need = max(need, index.value + 1 if index.value >= 0 else -index.value)
    return need if used else None


def _check_duplicate(spec: ExportSpec, seen: dict[str, int]) -> None:
    if not spec.capsule:
        return
    first = seen.setdefault(spec.name, spec.line)
    if first != spec.line:
        raise SpecError(
            f"capsule '{spec.name}' is exported twice (first at line {first}); a capsule has exactly one signature",
            **spec.where(),
        )


def _merge_overloads(exports: list[ExportSpec]) -> list[ExportSpec]:
    """Keep one entry per plain export name (its first overload); capsules as they are."""
    out: list[ExportSpec] = []
    names: set[tuple[str, bool]] = set()
    for spec in exports:
        key = (spec.name, spec.capsule)
        if key not in names:
            names.add(key)
            out.append(spec)
    return out
