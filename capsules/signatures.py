"""Stage 2: map a capsule export to the exact C signature SciPy accepts.

SciPy finds a ``LowLevelCallable``'s calling convention by comparing the
capsule's name with a list of C signature strings, character for character.
The table :data:`FORMS` holds every signature SciPy 1.x accepts for the
functions we serve; :func:`match` finds the one a pythran export fits, and
explains the first argument that does not fit when none does.

The trailing ``void *`` of a SciPy signature is the user_data slot: any
pythran pointer type may take it, and its element type is the dtype
``Kernel.lowlevel`` converts user_data to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import SignatureError
from .generate.roles import ND_INTEGRATORS
from .spec import ExportSpec

USER_DATA = "void *"


@dataclass(frozen=True)
class Form:
    """One calling convention of a SciPy caller.

    ``args`` are canonical C spellings; ``roles`` say what SciPy passes in
    each position, for error messages.  ``lengths`` say how many items SciPy
    passes behind each pointer, for the checked build's bounds checks: the
    number itself or ``"{k}"``, the value of argument ``k``; None where
    there is no pointer, and for user_data, whose length capsules knows
    because it made the copy.  ``ranges`` are C conditions on the arguments
    (``"{k}"`` again) that SciPy's own calls always meet, such as a filter
    size of at least 1: the entry point tells the compiler so, on a path it
    takes only when they hold (see capsules.generate.entries).
    """

    ret: str
    args: tuple[str, ...]
    roles: tuple[str, ...]
    targets: tuple[str, ...]
    lengths: tuple[str | None, ...]
    ranges: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.args) != len(self.roles):
            raise ValueError("each argument needs a role")
        if len(self.lengths) != len(self.args):
            raise ValueError("each argument needs a length (None where it is no pointer)")
        pointers = [arg.endswith("*") and arg != USER_DATA for arg in self.args]
        if pointers != [length is not None for length in self.lengths]:
            raise ValueError("exactly the pointers SciPy passes, other than user_data, have lengths")

    @property
    def text(self) -> str:
        """The signature string SciPy compares against, e.g. ``double (int, double *, void *)``."""
        return f"{self.ret} ({', '.join(self.args)})"

    @property
    def user_data(self) -> int | None:
        """Index of the user_data argument, or None."""
        return self.args.index(USER_DATA) if USER_DATA in self.args else None


FORMS: tuple[Form, ...] = (
    Form("double", ("double",), ("x",), ("quad",), (None,)),
    Form("double", ("double", USER_DATA), ("x", "user_data"), ("quad",), (None, None)),
    Form("double", ("int", "double *"), ("n (number of variables)", "x (the point)"), ND_INTEGRATORS, (None, "{0}")),
    Form(
        "double",
        ("int", "double *", USER_DATA),
        ("n (number of variables)", "x (the point)", "user_data"),
        ND_INTEGRATORS,
        (None, "{0}", None),
    ),
    Form(
        "int",
        ("double *", "npy_intp", "double *", USER_DATA),
        ("buffer", "filter_size", "return_value", "user_data"),
        ("generic_filter",),
        ("{1}", None, "1", None),
    ),
    Form(
        "int",
        ("double *", "npy_intp", "double *", "npy_intp", USER_DATA),
        ("input_line", "input_length", "output_line", "output_length", "user_data"),
        ("generic_filter1d",),
        # input_length counts the extension by the filter size on both sides
        ("{1}", None, "{3}", None, None),
        # generic_filter1d refuses a filter size under 1: each window holds a point
        ("{1} >= {3}",),
    ),
    Form(
        "int",
        ("npy_intp *", "double *", "int", "int", USER_DATA),
        ("output_coordinates", "input_coordinates", "output_rank", "input_rank", "user_data"),
        ("geometric_transform",),
        ("{2}", "{3}", None, None, None),
    ),
)

# C++ types pythran passes for each export type -> (C type, numpy dtype).
_SCALARS: dict[str, tuple[str, str]] = {
    "double": ("double", "float64"),
    "float": ("float", "float32"),
    "npy_int32": ("int", "int32"),
    "npy_int64": ("npy_intp", "int64"),
    "long": ("npy_intp", "int64"),
    "npy_int16": ("short", "int16"),
    "npy_int8": ("signed char", "int8"),
    "npy_uint8": ("unsigned char", "uint8"),
    "npy_uint16": ("unsigned short", "uint16"),
    "npy_uint32": ("unsigned int", "uint32"),
    "npy_uint64": ("npy_uintp", "uint64"),
    "bool": ("bool", "bool"),
}
_POINTER = re.compile(r"^pythonic::types::pointer<(.+)>$")

# What the C return value may be, per C return type, in the names the exports
# function gives the inferred types (kind() in generate/runtime/entry_runtime.hpp).
ACCEPTED_RETURNS: dict[str, tuple[str, ...]] = {
    "double": ("float64", "float32"),
    "int": ("int64", "int32", "int16", "int8", "bool"),
}


@dataclass(frozen=True)
class Signature:
    """A capsule export matched to a SciPy form."""

    form: Form
    c_args: tuple[str, ...]
    user_data_dtype: str | None

    @property
    def text(self) -> str:
        return self.form.text

    @property
    def targets(self) -> tuple[str, ...]:
        return self.form.targets


def c_type(cxx_type: str) -> str | None:
    """The C type of a pythran C++ argument type, or None if it is not a C scalar or pointer."""
    pointer = _POINTER.match(cxx_type)
    if pointer:
        inner = _SCALARS.get(pointer.group(1))
        return f"{inner[0]} *" if inner else None
    scalar = _SCALARS.get(cxx_type)
    return scalar[0] if scalar else None


def pointee_dtype(cxx_type: str) -> str | None:
    """The numpy dtype name a pointer argument points to, or None."""
    pointer = _POINTER.match(cxx_type)
    if pointer and pointer.group(1) in _SCALARS:
        return _SCALARS[pointer.group(1)][1]
    return None


def match(spec: ExportSpec) -> Signature:
    """Find the SciPy form a capsule export fits.

    Raises
    ------
    SignatureError
        No form fits; the message names the first argument that does not.
    """
    c_args = tuple(_argument_c_type(spec, i) for i in range(len(spec.types)))
    candidates = [f for f in FORMS if len(f.args) == len(c_args)]
    for form in candidates:
        if not _mismatches(form, c_args):
            ud = form.user_data
            dtype = pointee_dtype(spec.cxx_types[ud]) if ud is not None else None
            return Signature(form, c_args, dtype)
    raise SignatureError(_explain(spec, c_args, candidates), **spec.where())


# what a '#capsules' comment declares between its parentheses
_PARENTHESES = re.compile(r"\((.*)\)\s*$")


def check_return(spec: ExportSpec, sig: Signature, kind: str) -> None:
    """Refuse a return type the SciPy caller would misread.

    ``kind`` is what pythran inferred, as a dtype name (``"float64"``,
    ``"int64"``, ``"None"``, ...), recorded by the build.
    """
    allowed = ACCEPTED_RETURNS[sig.form.ret]
    if kind in allowed:
        return
    if "complex" in kind and spec.role and sig.form.ret == "double":  # a natural integrand: it may say so
        raise SignatureError(f"'{spec.name}' returns a complex value; declare it {_complex_declaration(spec)}, "
                             "and lowlevel() gives its real and imaginary parts", **spec.where())
    callers = ", ".join(sig.targets)
    if sig.form.ret == "double":
        hint = "return a float (for example float(...))"
        if "int" in kind:
            hint += "; an integer read as double gives a wrong answer"
    else:
        hint = "return 1 for success (an int)"
    raise SignatureError(
        f"'{spec.name}' returns {kind} (pythran infers it), but {callers} read a C {sig.form.ret}: {hint}",
        **spec.where(),
    )


def _complex_declaration(spec: ExportSpec) -> str:
    """The kernel's declaration ending ``-> complex``, as a comment and as a decorator would write it."""
    line = spec.source_line.strip()
    inside = _PARENTHESES.search(line)
    if not line.startswith("#") or inside is None:
        return "with '-> complex' after the parentheses of its '#capsules' comment (or at the end of its decorator's string)"
    return f"'{line} -> complex' (decorated: '@capsules.{spec.role}(\"{inside.group(1)} -> complex\")')"


def _argument_c_type(spec: ExportSpec, i: int) -> str:
    c = c_type(spec.cxx_types[i])
    if c is None:
        raise SignatureError(
            f"'{spec.name}': argument {i + 1} '{spec.params[i]}' is {spec.types[i]}, which is not a C scalar "
            f"or pointer; SciPy passes raw C values to a capsule (write e.g. float64* for a double *)",
            **spec.where(),
        )
    return c


def _fits(expected: str, actual: str) -> bool:
    if expected == USER_DATA:
        return actual.endswith("*")
    return expected == actual


def _mismatches(form: Form, c_args: tuple[str, ...]) -> list[int]:
    return [i for i, (e, a) in enumerate(zip(form.args, c_args)) if not _fits(e, a)]


def _explain(spec: ExportSpec, c_args: tuple[str, ...], candidates: list[Form]) -> str:
    if not candidates:
        arities = sorted({len(f.args) for f in FORMS})
        return (
            f"'{spec.name}' takes {len(c_args)} argument(s), but SciPy callbacks take "
            f"{', '.join(map(str, arities))}: {'; '.join(f.text for f in FORMS)}"
        )
    form = min(candidates, key=lambda f: len(_mismatches(f, c_args)))
    i = _mismatches(form, c_args)[0]
    callers = ", ".join(form.targets)
    expected = "a pointer (user_data)" if form.args[i] == USER_DATA else form.args[i]
    return (
        f"'{spec.name}': argument {i + 1} '{spec.params[i]}' is {spec.types[i]} (C {c_args[i]}), "
        f"but {callers} pass{'es' if len(form.targets) == 1 else ''} {expected} there "
        f"({form.roles[i]}, in '{form.text}')"
    )
