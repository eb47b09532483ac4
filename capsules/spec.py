"""Stage 1: the export comments of a kernel file.

A kernel file is plain Python.  Its exports are pythran's own comments::

    #pythran export capsule f(int32, float64*, float64*)
    #pythran export norm(float64[:])

Each comment is parsed with pythran's spec parser, one comment at a time, so
that an error names the line it is on, and checked against the ``def`` it
names (it must exist at top level and take as many arguments as the comment
gives types).  Each gives an :class:`ExportSpec`.  The ``#capsules``
comments of natural kernels are capsules.natural's; the module a build
compiles from both is capsules.generate.module's.

Pythran is imported lazily: loading an already built kernel never pays for it.
"""

from __future__ import annotations

import ast
import importlib
import logging
import re
import sys
import threading
import types
from dataclasses import dataclass, field
from typing import Any

from . import natural
from .errors import CapsulesError, SpecError
from .source import require_ascii_names

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
    # natural kernels (see natural.py): the generated adapter the capsule
    # calls, the role, what SciPy provides and the parameters passed by name
    adapter: str = ""
    role: str = ""
    provided: tuple[str, ...] = ()
    parameters: tuple[str, ...] = ()
    constants: tuple[tuple[str, float], ...] = ()  # parameters fixed at build time
    # the runtime parameters' types ("float64[:]", capsules.generate.parameters); none: all float64
    parameter_types: tuple[str, ...] = ()
    # the C++ types of the adapter's arguments after SciPy's, which the entry
    # point unpacks from user_data: the parameters that are not float64 scalars
    unpacked: tuple[str, ...] = ()
    # an integrand declared ``-> complex``: which part of its value this capsule returns ("real", "imag")
    part: str = ""
    # the body has no loop and calls nothing but the math module: each call
    # is short, whatever the arguments (see capsules.generate.straight)
    straight: bool = False

    def __post_init__(self) -> None:
        if len(self.types) != len(self.cxx_types):
            raise ValueError("types and cxx_types differ in length")

    @property
    def function(self) -> str:
        """The compiled function the capsule calls: the adapter of a natural kernel, else the function itself."""
        return self.adapter or self.name

    @property
    def pythran(self) -> str:
        """The export as pythran spells it, e.g. ``f(int32, float64*, float64*)``."""
        return f"{self.name}({', '.join(self.types)})"

    @property
    def declared(self) -> str:
        """The export as its comment declares it: pythran's spelling, or a natural kernel's role."""
        if not self.role:
            return self.pythran
        typed = dict(zip(self.parameters, self.parameter_types))
        params = [f"{p}: {typed[p]}" if typed.get(p, "float64") != "float64" else p for p in self.parameters]
        params += [f"{p}={v!r}" for p, v in self.constants]
        returns = f" -> complex ({self.part} part)" if self.part else ""
        return f"{self.role} {self.name}({', '.join(self.provided)}; {', '.join(params)}){returns}"

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


def exports(text: str, defs: dict[str, ast.AST], path: str, errors: list[CapsulesError]) -> list[ExportSpec]:
    """Every export of a module's text, checked against its ``defs``; one error per bad comment into ``errors``."""
    lines = text.splitlines()
    found: list[ExportSpec] = []
    for lineno, block in _export_blocks(lines):
        try:
            found += _parse_block(block, lineno, lines, defs, path)
        except CapsulesError as err:
            errors.append(err)
    return found


def directives(text: str) -> list[str]:
    """pythran's comments of a module, each with its continuation lines, as pythran reads them."""
    return ["\n".join(line.strip() for line in block) for _, block in _export_blocks(text.splitlines())]


def declares_kernels(text: str) -> bool:
    """Whether a source has a ``#pythran export`` or ``#capsules`` comment."""
    return any(_EXPORT.match(line) or natural.is_comment(line) for line in text.splitlines())


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
    # OpenMP that runs the compiler three times): most of a scan's time.  The
    # compiler process imports all of it anyway; the scan does not
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
    text = "\n".join(_normalise(line) for line in block)
    where = {"path": path, "line": lineno, "source_line": source_line}
    require_ascii_names(_declaration(block), **where)
    try:
        spec = _pythran_parse(text)
    except PythranSyntaxError as err:
        message = str(err.args[0]) if err.args else "malformed export comment"
        raise SpecError(message, **where) from None
    found = [(name, sig, True) for name, sig in spec.capsules.items()]
    found += [(name, sig, False) for name, sigs in spec.functions.items() for sig in sigs or [()]]
    return [_make_spec(name, sig, capsule, lineno, source_line, defs, path) for name, sig, capsule in found]


def _declaration(block: list[str]) -> str:
    """What a ``#pythran`` block declares, without the remarks pythran skips.

    A remark is what follows a second ``#`` on a line, or the export's last
    closing parenthesis (``f(float64)  café``, or a comment line after it).
    """
    text = "\n".join(line.split("#", 2)[1] if "#" in line else line for line in block)
    depth = 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == ")" and depth == 0 and not text[i + 1 :].lstrip().startswith(","):
            return text[: i + 1]
    return text


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
    params = _def_params(node, name, len(sig), capsule, where)
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


def _def_params(node: Any, name: str, ntypes: int, capsule: bool, where: dict) -> tuple[str, ...]:
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


def unique(exports: list[ExportSpec], errors: list[CapsulesError]) -> list[ExportSpec]:
    """The exports without a capsule exported twice: one error each into ``errors`` (a capsule has one signature)."""
    seen: dict[str, int] = {}
    kept = []
    for spec in exports:
        first = seen.setdefault(spec.name, spec.line) if spec.capsule else spec.line
        if first != spec.line:
            errors.append(SpecError(
                f"capsule '{spec.name}' is exported twice (first at line {first}); a capsule has exactly one signature",
                **spec.where(),
            ))
        else:
            kept.append(spec)
    return kept


def merge_overloads(exports: list[ExportSpec]) -> list[ExportSpec]:
    """Keep one entry per plain export name (its first overload); capsules as they are."""
    out: list[ExportSpec] = []
    names: set[tuple[str, bool]] = set()
    for spec in exports:
        key = (spec.name, spec.capsule)
        if key not in names:
            names.add(key)
            out.append(spec)
    return out
