"""The natural kernels' adapters: the pythran functions with raw capsule signatures that SciPy calls.

For each natural kernel we append to the module a small pythran function
with a raw ``#pythran export capsule`` signature, written from its role's
record (capsules.generate.roles): it unpacks SciPy's pointers into views
(no copy), reads the parameters out of user_data, calls the user's function
and writes or returns its result.  A line kernel or mapping that only
indexes its lines or coordinates and takes their ``len()`` is called through
its pointer twin (capsules.generate.rewrite), outside checked builds, which
keep the views whose subscripts they check.  In front of the adapters come
the helpers they and the rewritten module call.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import TYPE_CHECKING

from . import names
from .parameters import adapter_arguments, adapter_value
from .rewrite import as_pointers, pointer_twin
from .roles import ROLES

if TYPE_CHECKING:
    from ..natural import NaturalSpec


def export_types(spec: NaturalSpec) -> str:
    """The pythran types of a natural kernel's adapter: SciPy's, then the parameters the entry point unpacks."""
    role = ROLES[spec.role]
    scipy = role.types + (", float64*" if spec.runtime_parameters or role.user_data else "")
    return ", ".join([scipy] + [kind for _, kind in unpacked_arguments(spec)])


def unpacked_arguments(spec: NaturalSpec) -> list[tuple[str, str]]:
    """The adapter's arguments after SciPy's (name, pythran type): the parameters that are not float64 scalars."""
    kinds = spec.parameter_types
    return [arg for p in spec.runtime_parameters if kinds[p].unpacked for arg in adapter_arguments(p, kinds[p])]


def _values(spec: NaturalSpec) -> list[str]:
    """What the adapter passes the kernel for each parameter: a constant, ``ud[k]``, or an unpacked value or view."""
    fixed, kinds = dict(spec.constants), spec.parameter_types
    runtime = {p: i for i, p in enumerate(spec.runtime_parameters)}
    return [
        repr(fixed[p]) if p in fixed else adapter_value(p, kinds[p]) if kinds[p].unpacked else f"ud[{runtime[p]}]"
        for p in spec.parameters
    ]


def adapters(
    specs: list[NaturalSpec], defs: Mapping[str, ast.FunctionDef], *, checked: bool = False, division: bool = False
) -> str:
    """Pythran source to append to a module: the helpers and one adapter per natural kernel.

    ``defs``: the module's top-level functions.  ``division``: the module's
    ``//`` and ``%`` were rewritten to the integer-division helpers.
    """
    if not specs and not checked and not division:
        return ""
    helpers = _CHECKED_HELPERS if checked else _DIVISION_HELPERS if division else ""
    parts = [_HELPERS.format(checked=helpers)]
    parts += [_adapter(spec, defs[spec.name], checked, division) for spec in specs]
    return "\n".join(parts)


def takes_pointers(spec: NaturalSpec, node: ast.FunctionDef, checked: bool) -> bool:
    """Whether the kernel's adapter calls its pointer twin (see the module's docstring)."""
    return bool(ROLES[spec.role].pointer_body) and not checked and set(spec.provided) <= set(
        as_pointers(node, spec.provided)
    )


def _adapter(spec: NaturalSpec, node: ast.FunctionDef, checked: bool, division: bool) -> str:
    role = ROLES[spec.role]
    params = ", ".join(_values(spec))
    pointers = takes_pointers(spec, node, checked)
    twin = f"\n\n{pointer_twin(node, spec.provided, division)}\n" if pointers else ""
    fields = {
        "entry": names.adapter(spec.name),
        "name": spec.name,
        "twin": names.twin(spec.name),
        "count": len(spec.provided),
        "provided": ", ".join(spec.provided),
        "xx": ", ".join(f"xx[{i}]" for i in range(len(spec.provided))),
        "ud": ", ud" if spec.runtime_parameters else "",
        "unpacked": "".join(f", {name}" for name, _ in unpacked_arguments(spec)),
        "p": f", {params}" if params else "",
    }
    check = role.check.format(**fields) if checked else ""
    if spec.complex:
        return "".join(_part(role.parts_body, part, entry, spec, check, fields) for part, entry in _parts(spec))
    body = (role.pointer_body if pointers else role.body).format(check=check, **fields)
    return f"{twin}\n\n#pythran export capsule {fields['entry']}({export_types(spec)})\n{body}\n"


def _parts(spec: NaturalSpec) -> tuple[tuple[str, str], ...]:
    """A complex kernel's parts and their adapters: the real part is the kernel's own name's."""
    return ("real", names.adapter(spec.name)), ("imag", names.imaginary(spec.name))


def _part(template: str, part: str, entry: str, spec: NaturalSpec, check: str, fields: dict[str, object]) -> str:
    body = template.format(**{**fields, "entry": entry, "part": part, "check": check})
    return f"\n\n#pythran export capsule {entry}({export_types(spec)})\n{body}\n"


# pythran records a hash of the source it compiles in the binary: a change to
# this text, comment or not, changes every binary that has adapters or helpers.
_HELPERS = '''

# ---- generated by capsules: entry points for natural kernels ----
from numpy.ctypeslib import as_array as _capsules_as_array
import numpy as _capsules_np


def _capsules_at(i, n):
    return i + n if i < 0 else i


# the parts of a value declared complex, as Python's .real and .imag give
# them: isinstance is decided at compile time, a float has no .real in pythran
def _capsules_real(v):
    if isinstance(v, complex):
        return v.real
    return v * 1.0


def _capsules_imag(v):
    if isinstance(v, complex):
        return v.imag
    return 0.0
{checked}'''

# Every build: an integer // or % by zero raises, as in Python, instead of
# SIGFPE.  isinstance is decided at compile time: floats keep IEEE semantics
# and pay nothing, integers one compare next to a division.
_DIVISION_HELPERS = '''

def _capsules_ifloordiv(a, b):
    if not isinstance(b, (float, _capsules_np.float32)) and b == 0:
        raise ZeroDivisionError("integer division or modulo by zero")
    return a // b


def _capsules_imod(a, b):
    if not isinstance(b, (float, _capsules_np.float32)) and b == 0:
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


def _capsules_index(i, n, name):
    if i < -n or i >= n:
        # joined from a list: pythran does not compile a chain of + between strings and str(int)
        raise IndexError(name + str.join("", ["[", str(i), "] is out of range (", name, " has ", str(n), " items)"]))
    return i
'''
