"""Stage 5, when it fails: the error of a failed build, located at the user's file and line.

The compiler process reports a failure as data (capsules.child.protocol.Failed):
the stage it failed at, pythran's message and the line of the compiled
source pythran names.  Here that line is taken back to the user's (through
the generated module's line map), a C++ error to the kernel whose code the
compiler was instantiating, and the log's first real error is summarized.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import pointers
from .cache import Cache, no_space, unwritable, write_file
from .child.protocol import NO_SPACE, Failed
from .errors import BuildError, CapsulesError
from .generate import names
from .generate.roles import ROLES
from .inline import line_text
from .source import decode_source

if TYPE_CHECKING:
    from .build import Plan
    from .spec import ExportSpec

SUMMARY_LINES = 20


def no_space_in_build(plan: Plan, cache: Cache, reason: str) -> CapsulesError:
    """The error of a build that ran out of disk (or quota): nothing was published."""
    return no_space(cache.root, reason, f", while building {plan.path.name} (nothing was published)")


def build_error(plan: Plan, result: Failed, log: Path, cache: Cache) -> CapsulesError:
    """The error of a failed build, at the user's line where it can be told; the log is kept in the cache."""
    if result["stage"] == "no space":  # a log could not be kept either
        return no_space_in_build(plan, cache, result["message"])
    kept = cache.log_path(plan.module_name)
    try:
        write_file(kept, log.read_bytes())
    except OSError as err:  # write_file leaves no part of it behind
        return no_space_in_build(plan, cache, err.strerror) if err.errno in NO_SPACE else unwritable(kept.parent, err)
    text = log.read_text(errors="replace")
    lines = decode_source(plan.source, plan.path).splitlines()  # as the scan read it: a PEP 263 coding honoured
    if result["stage"] == "pythran":
        line, message = _pythran_failure(plan, result)
        summary = ""
    elif result["stage"] in ("toolchain", "internal", "interrupted"):
        line, message, summary = None, result["message"], ""
    elif "pointer<" in text and (misused := pointer_error(plan, plan.scan().exports, BuildError, log_path=kept)):
        return misused  # pythran's C++ could not use a pointer as a number: the user's line says why
    else:
        function = _failing_function(text, plan.module_name)
        if function:  # a generated adapter: name the user's kernel
            function = names.kernel_of(function)
        line = _def_line(plan.source, function) if function else None
        message = f"C++ compilation of '{function}' failed" if function else "C++ compilation failed"
        summary = summarize(text)
    source_line = line_text(lines, line)
    return BuildError(message, summary=summary, log_path=kept, path=plan.path, line=line, source_line=source_line)


def pointer_error(
    plan: Plan, exports: Iterable[ExportSpec], error: type[CapsulesError], *, returned: bool = False, **extra: Any
) -> CapsulesError | None:
    """The error of a raw kernel's pointer used as a number (``returned``: returned), at its line, if there is one."""
    misuse = pointers.find(syntax_tree(plan.source), exports, returned=returned)
    if misuse is None:
        return None
    lines = decode_source(plan.source, plan.path).splitlines()
    return error(misuse.message, path=plan.path, line=misuse.line, source_line=line_text(lines, misuse.line), **extra)


def _pythran_failure(plan: Plan, result: Failed) -> tuple[int | None, str]:
    """The user's line of a pythran error, and its message; one in a generated adapter is its kernel's."""
    scan = plan.scan()
    line = scan.user_line(result["line"])
    message = f"pythran: {result['message']}"
    missing = re.match(r"Module '([\w.]+)' not found", result["message"])
    if line is None and missing:  # pythran names the module but not the line that imports it
        line = _import_line(plan.source, missing.group(1))
        message = f"pythran cannot compile module '{missing.group(1)}' (it compiles math, cmath, numpy, " \
                  "scipy.special and a few more from the standard library)"
    unknown = re.match(r"identifier '(\w+)' not found in module '([\w.]+)'", result["message"])
    if unknown:  # from scipy.special import erf: the import is the line to change, and math.erf the way out
        name, module = unknown.groups()
        line = _import_line(plan.source, f"{module}.{name}")
        message = f"pythran does not compile '{module}.{name}'{_instead(name)}; docs/special-functions.md " \
                  "lists what it compiles"
    attribute = re.match(r"Unsupported attribute '(\w+)'", result["message"])
    if line is None and attribute:  # nor the line that uses the attribute
        line = _attribute_line(plan.source, attribute.group(1))
        message = f"pythran cannot compile '.{attribute.group(1)}' here ({result['message']}); " \
                  "docs/special-functions.md lists what it compiles"
    generated = result["line"] is not None and result["line"] > len(plan.source.splitlines())
    kernel = next((e for e in scan.exports if e.role and e.line == line), None) if generated else None
    if kernel is None:
        return line, message
    wanted = ROLES[kernel.role].returns
    return line, f"'{kernel.name}' must return {wanted} for SciPy, which it does not ({message})"


def _instead(name: str) -> str:
    """Where else a function of that name is compiled, as a hint."""
    import cmath
    import math

    found = [f"{m.__name__}.{name}" for m in (math, cmath) if hasattr(m, name)]
    return f": use {' or '.join(found)} instead" if found else ""


def _failing_function(log: str, name: str) -> str | None:
    """The kernel function g++ was instantiating when it failed, from pythran's namespace."""
    found = re.search(rf"__pythran_{re.escape(name)}::(\w+)", log)
    return found.group(1) if found else None


def _import_line(source: bytes, module: str) -> int | None:
    for node in ast.walk(syntax_tree(source)):
        imported = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module:
            imported = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        if module in imported or any(n.startswith(f"{module}.") for n in imported):
            return node.lineno
    return None


def _attribute_line(source: bytes, name: str) -> int | None:
    uses = [n.lineno for n in ast.walk(syntax_tree(source)) if isinstance(n, ast.Attribute) and n.attr == name]
    return min(uses, default=None)


def _def_line(source: bytes, function: str) -> int | None:
    body = syntax_tree(source).body
    return next((n.lineno for n in body if isinstance(n, ast.FunctionDef) and n.name == function), None)


def syntax_tree(source: bytes) -> ast.Module:
    """The module's syntax tree, for locating a failure; an empty one if it does not parse."""
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):  # ValueError: a null byte, before Python 3.12
        return ast.Module(body=[], type_ignores=[])


def summarize(log: str, limit: int = SUMMARY_LINES) -> str:
    """The first real compiler error of a build log, about ``limit`` lines, without the commands that ran."""
    compiler = log.split(" ", 1)[0]  # the log starts with the first command it records
    lines = [line for line in log.splitlines() if not _is_command(line, compiler) and not _TRAILER.match(line)]
    first = next((i for i, line in enumerate(lines) if _is_error(line)), None)
    if first is None:
        tail = [line for line in lines if line.strip()][-limit:]
        return "\n".join(map(_shortened, tail))
    picked = [lines[first]]
    for line in lines[first + 1 :]:
        if len(picked) >= limit or _is_error(line):
            break
        picked.append(line)
    return "\n".join(map(_shortened, picked))


# the line the compiler process ends a failed build's log with: the headline says it already
_TRAILER = re.compile(r"^[\w ]+ failed: ")
SUMMARY_WIDTH = 200  # a template's name can run to thousands of characters: the full log has it


def _is_error(line: str) -> bool:
    return " error: " in line or "error:" in line[:8]


def _is_command(line: str, compiler: str) -> bool:
    """Whether ``line`` is a call of ``compiler`` that the log records."""
    return bool(compiler) and line.startswith(compiler + " ")


def _shortened(line: str) -> str:
    return line if len(line) <= SUMMARY_WIDTH else line[: SUMMARY_WIDTH - 1] + "…"
