"""The C++ entry points: SciPy's exact C signature around each kernel, planned as data, rendered from one template.

Pythran's own capsule is named with pythran's spec and returns whatever C++
type pythran inferred.  For each capsule export we append to pythran's C++ a
plain function with the SciPy signature, which converts the raw C arguments
to pythran's argument types, calls the kernel inside an exception barrier,
and converts the result to the C return type when that conversion is honest.
One exported function (``EXPORTS_SYMBOL``) returns a tuple of ``(name,
PyCapsule, inferred_return_kind)``: each capsule is named with the SciPy
signature string, and the kind is what pythran inferred, for the build to
check.

Each entry point is an :class:`EntryPlan`, computed from the export and its
signature, rendered from the ``entry`` section of ``entry.cpp.in``.  The C++
they share is the entry runtime (capsules.generate.runtime).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from string import Template

from ..child.protocol import EXPORTS_SYMBOL, c_string, in_part
from ..signatures import Signature
from ..spec import ExportSpec
from . import names
from .roles import ND_INTEGRATORS
from .parameters import types_of, unpacking
from .runtime import entry_runtime


@dataclass(frozen=True)
class EntryPlan:
    """One entry point, as the fields of the ``entry`` template (a flag's text is empty where it is off)."""

    name: str  # the entry point's C name
    export: str  # the export as pythran spells it
    signature: str  # SciPy's signature string
    function: str  # the compiled function it calls: the kernel, or a natural kernel's adapter
    ret: str  # SciPy's C return type
    params: str  # the C parameters: SciPy's types, named a0, a1, ...
    args: str  # a0, a1, ...
    convert: str  # the call of the kernel, converted to the C return type
    where: str  # a C string locating the kernel, for the errors it raises
    failed: str  # what the entry point returns when the kernel failed
    call_attributes: str  # of the plain path: cold where SciPy's promises have a path of their own
    kept: str  # SciPy's promises on the arguments, as a C condition ("": none to keep)
    fast: str  # the parameters of the path where they hold
    apart: str  # `` && `` the test that SciPy's buffers share no byte
    due: str  # the test of whether it is time to ask Python for a Ctrl-C or a failure ("": it never asks)
    countdown: str  # the counter `due` counts down (see entry_runtime.hpp)
    short_loops: str  # the kernel's loops are short (a generic_filter footprint), see CAPSULES_SHORT_LOOPS
    scalar_loads: str  # it reads the x its caller just stored into, see CAPSULES_SCALAR_LOADS
    padded: str  # the entry point reserves unused stack (see CAPSULES_FRAME_PAD)


def source(
    exports: list[tuple[ExportSpec, Signature]],
    filename: str,
    *,
    checked: bool = False,
    parts: Sequence[int] | None = None,
) -> str:
    """C++ source to append to pythran's output for these capsule exports.

    ``filename`` (the kernel file's name) and each export's line locate the
    errors a kernel raises at run time.  ``checked``: the C++ starts with
    ``prologue(checked=True)``, and the entry points give each pointer its length.
    ``parts``: the part of a split build (see :func:`partition`) each
    export's entry point is compiled in; compiled without ``CAPSULES_PART``,
    the source is whole.
    """
    body = [entry_runtime(typed=any(spec.unpacked for spec, _ in exports))]
    for i, (spec, sig) in enumerate(exports):
        entry = plan(spec, sig, filename, checked)
        text = render("entry", entry)
        body.append(text if parts is None else in_part(parts[i], text, render("declaration", entry)))
    exported = _exports_function(exports)
    body.append(exported if parts is None else in_part(0, exported))
    return "\n".join(body)


def partition(weights: Sequence[int], count: int) -> list[int]:
    """The part of a split build each kernel goes to, for ``count`` parts of about equal weight.

    A build split into parts compiles its C++ once per part, each compile on
    a core of its own and generating the code of its part's kernels only;
    the parts are then linked into one binary.  Each compile still parses
    the prologue and pythran's core headers, so the split pays where code
    generation is a large share of the compile: a module of several
    kernels.  The heaviest kernel goes to the lightest part first.  Which
    part a kernel is compiled in changes where its code lies in the binary,
    never what it computes.
    """
    loads = [0] * max(1, min(count, len(weights)))
    parts = [0] * len(weights)
    for i in sorted(range(len(weights)), key=lambda i: -weights[i]):
        parts[i] = loads.index(min(loads))
        loads[parts[i]] += max(1, weights[i])
    return parts


def plan(spec: ExportSpec, sig: Signature, filename: str, checked: bool) -> EntryPlan:
    """The entry point of one capsule export."""
    args = [f"a{i}" for i in range(len(sig.form.args))]
    lengths = _lengths(sig) if checked else {}
    call_args = ", ".join(
        [_convert(cxx, i, lengths.get(i), spec.params[i]) for i, cxx in enumerate(spec.cxx_types)]
        + (_unpacked(spec, sig) if spec.unpacked else [])
    )
    call = f"[&]() {{ return {spec.function}({call_args}); }}"
    where = c_string(f"{filename}:{spec.line}: '{spec.name}'")
    if sig.form.ret == "double":
        # quad has no error channel: NaN ends the integration, the pending
        # Python exception surfaces when SciPy returns
        failed = "capsules_rt::fail<double>(std::numeric_limits<double>::quiet_NaN())"
        convert = f"capsules_rt::call_double<R>({call})"
    else:  # ndimage: 0 with an exception set makes SciPy raise it
        failed = f"capsules_rt::fail<{sig.form.ret}>(0)"
        convert = f"capsules_rt::call_flag<R>({call}, {where})"
    kept, fast = _kept_promises(sig)
    straight = _straight_integrand(spec, sig)
    return EntryPlan(
        name=names.entry_point(spec.name),
        export=spec.pythran,
        signature=sig.text,
        function=spec.function,
        ret=sig.form.ret,
        params=", ".join(f"{_c_param(c)} {a}" for c, a in zip(sig.form.args, args)),
        args=", ".join(args),
        convert=convert,
        where=where,
        failed=failed,
        # where SciPy's promises have a path of their own, the plain one is for other callers: out of the hot code
        call_attributes="__attribute__((noinline, cold)) static" if kept else "static inline",
        kept=kept,
        fast=fast,
        apart=_apart(sig),
        due="" if straight else _due(sig),
        countdown=_countdown(sig),
        short_loops="yes" if "generic_filter" in sig.form.targets else "",
        scalar_loads="yes" if set(sig.form.targets) & set(ND_INTEGRATORS) and "double *" in sig.form.args else "",
        padded="yes" if straight else "",
    )


@lru_cache(maxsize=1)
def _sections() -> dict[str, list[str]]:
    """The sections of ``entry.cpp.in``, each a list of lines, its template comments left out."""
    text = resources.files(__package__).joinpath("entry.cpp.in").read_text(encoding="utf-8")
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("##section "):
            current = sections.setdefault(line.split()[1], [])
        elif not line.startswith("##"):
            current.append(line)
    return sections


_FLAG = re.compile(r"^\?(\w+) ")


def render(section: str, fields: object) -> str:
    """A section of ``entry.cpp.in`` filled in from ``fields`` (a dataclass, or a dict)."""
    values = fields if isinstance(fields, dict) else asdict(fields)
    kept = []
    for line in _sections()[section]:
        flag = _FLAG.match(line)
        if flag is None:
            kept.append(line)
        elif values[flag.group(1)]:
            kept.append(line[flag.end() :])
    return Template("".join(f"{line}\n" for line in kept)).substitute(values)


def _exports_function(exports: list[tuple[ExportSpec, Signature]]) -> str:
    capsules = "".join(
        f',\n      "{spec.name}", PyCapsule_New(reinterpret_cast<void*>(&{names.entry_point(spec.name)}), '
        f'"{sig.text}", nullptr), {names.entry_point(spec.name)}_kind()'
        for spec, sig in exports
    )
    fields = {"symbol": EXPORTS_SYMBOL, "items": "(sNs)" * len(exports), "capsules": capsules}
    return render("exports", fields)


def _kept_promises(sig: Signature) -> tuple[str, str]:
    """SciPy's promises on the arguments as a C condition, and the parameters of the path where they hold.

    On that path (a function of its own, called when the promises hold
    and SciPy's buffers share no byte) the compiler reads the kernel
    knowing, for example, that a generic_filter1d window holds at least
    one point and that the output line is not the input line: a loop
    over a window then runs at least once, and the loop over the line
    computes several windows at a time in vector registers, each summed
    in the kernel's own order (bit for bit the same results,
    benchmarks/RESULTS.md, W4).  A call that breaks them (from C code
    other than SciPy's) takes the plain path: nothing is assumed where it
    does not hold.  ``("", "")`` for a form without promises.
    """
    if not sig.form.ranges:
        return "", ""
    args = [f"a{i}" for i in range(len(sig.form.args))]
    kept = " && ".join(f"({condition.format(*args)})" for condition in sig.form.ranges)
    buffers = _buffers(sig)
    fast = ", ".join(
        f"{_c_param(c)}{' __restrict' if i in buffers else ''} a{i}" for i, c in enumerate(sig.form.args)
    )
    return kept, fast


def _buffers(sig: Signature) -> dict[int, str]:
    """SciPy's own buffers (the pointers it passes, but user_data) and their lengths, when there are two or more.

    Each is SciPy's memory, which nothing else the kernel reaches shares:
    once the entry point has checked that they do not overlap, each is
    ``__restrict`` on the path where SciPy's promises hold.  (user_data is
    capsules' copy when it comes through ``lowlevel()``; a direct call
    with user_data inside a buffer is outside the contract, docs/errors.md.)
    """
    lengths = {i: length for i, length in _lengths(sig).items() if i != sig.form.user_data}
    return lengths if len(lengths) > 1 else {}


def _apart(sig: Signature) -> str:
    """`` && `` the C test that SciPy's buffers share no byte, or nothing for fewer than two."""
    buffers = sorted(_buffers(sig).items())
    return "".join(
        f" && capsules_rt::apart(a{i}, {n}, a{j}, {m})"
        for k, (i, n) in enumerate(buffers)
        for j, m in buffers[k + 1 :]
    )


def _straight_integrand(spec: ExportSpec, sig: Signature) -> bool:
    """Whether the kernel is an integrand (quad's forms) with no loop that calls only math.

    Such an entry point never asks Python for a pending Ctrl-C or failure:
    each of its calls is short, and quad returns to Python, which sees a
    Ctrl-C, after at most a few times 21 x ``limit`` calls; a failure's NaN
    ends the integration (the countdown's cost is in benchmarks/RESULTS.md).
    It reserves unused stack (CAPSULES_FRAME_PAD), which one with a loop
    does not: gcc realigned the stack of a vectorized integrand whose frame
    held the pad.
    """
    return sig.form.ret == "double" and spec.straight


def _due(sig: Signature) -> str:
    """The test of whether it is time to ask Python: at the start of each output row for a mapping, else a countdown."""
    if "geometric_transform" in sig.form.targets:  # a0: the output coordinates, a2: their rank
        return "capsules_rt::due_at_row(a0, a2)"
    return f"capsules_rt::due({_countdown(sig)})"


def _countdown(sig: Signature) -> str:
    """The counter of an entry point: its thread's for an integrand (capsules.nquad calls from many threads), else one."""
    if set(sig.form.targets) & set(ND_INTEGRATORS):
        return "capsules_rt::thread_countdown()"
    return "capsules_rt::countdown"


def _unpacked(spec: ExportSpec, sig: Signature) -> list[str]:
    """The adapter's arguments after SciPy's: the parameters the entry point unpacks from user_data (parameters.hpp).

    An array's pointer is unchecked in a checked build too: the adapter
    makes a view of it, whose subscripts the checked build checks.
    """
    user_data = f"a{sig.form.user_data}"
    kinds = types_of(spec.parameter_types, len(spec.parameters))
    values = [value for index, kind in enumerate(kinds) if kind.unpacked for value in unpacking(kind, index, user_data)]
    return [_cast(cxx, value) for cxx, value in zip(spec.unpacked, values, strict=True)]


def _cast(cxx: str, value: str, length: str | None = None, name: str = "") -> str:
    """The C++ ``value`` as pythran's type ``cxx``; a pointer with its length where it is known."""
    if cxx.startswith("pythonic::types::pointer<"):
        inner = cxx[len("pythonic::types::pointer<") : -1]
        if length is None:
            return f"{cxx}{{reinterpret_cast<{inner}*>({value})}}"
        return f"{cxx}{{reinterpret_cast<{inner}*>({value}), {length}, {c_string(name)}}}"
    return f"static_cast<{cxx}>({value})"


def _c_param(c: str) -> str:
    return c.replace(" *", "*")


def _lengths(sig: Signature) -> dict[int, str]:
    """How many items each pointer argument holds, as C++ expressions of the entry point's arguments."""
    args = [f"static_cast<long>(a{i})" for i in range(len(sig.form.args))]
    lengths = {i: length.format(*args) for i, length in enumerate(sig.form.lengths) if length is not None}
    if sig.form.user_data is not None:
        lengths[sig.form.user_data] = f"capsules_rt::user_data_items(a{sig.form.user_data})"
    return lengths


def _convert(cxx: str, i: int, length: str | None = None, name: str = "") -> str:
    """SciPy's argument ``a{i}`` as pythran's C++ type ``cxx``; a pointer with its length where it is known."""
    return _cast(cxx, f"a{i}", length, name)


__all__ = ["EntryPlan", "partition", "plan", "render", "source"]
